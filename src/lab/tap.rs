//! The I/O under the h2 server: follows the frames it writes, so that the lab can cut one in
//! half, know when one has reached the kernel, and set the last-stream-id of a `GOAWAY`.
//!
//! Why: `h2` writes frames when its connection is polled, not when a stream handler asks, and
//! it gives a `GOAWAY` the highest stream id it has *seen*, which includes the stream that asked
//! for the `GOAWAY`. The lab needs "this stream and later ones are refused", "the connection is
//! reset once half of this `DATA` frame is out", and "the connection is reset in the middle of
//! this `HEADERS` frame": this layer sees the server's output as frames (a server's output is
//! nothing but frames: 9-byte header, payload) and does exactly that, without touching h2.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::lock;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const GOAWAY: u8 = 0x7;
/// Transformed output waiting for the socket beyond which writes wait.
const OUT_LIMIT: usize = 64 * 1024;

/// What the stream handlers and the connection task know about the output; shared.
#[derive(Debug, Default)]
pub(super) struct Tap {
    state: Mutex<TapState>,
    changed: Notify,
}

#[derive(Debug, Default)]
pub(super) struct TapState {
    /// The last-stream-id every `GOAWAY` is rewritten to.
    pub(super) cutoff: Option<u32>,
    /// A `GOAWAY` reached the kernel.
    pub(super) goaway_sent: bool,
    /// Streams whose `HEADERS` frame is cut in half (everything after it is thrown away).
    cut: HashSet<u32>,
    /// Streams whose `HEADERS` were cut, once the cut reached the kernel.
    pub(super) cut_sent: HashSet<u32>,
    /// Watched streams, and how many `DATA` payload bytes of each reached the kernel.
    pub(super) data_sent: HashMap<u32, usize>,
}

impl Tap {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, TapState> {
        lock(&self.state)
    }

    /// Cuts the `HEADERS` frame of `stream` in half.
    pub(super) fn cut_headers(&self, stream: u32) {
        self.lock().cut.insert(stream);
    }

    /// Counts the `DATA` bytes of `stream` that reach the kernel.
    pub(super) fn watch_data(&self, stream: u32) {
        self.lock().data_sent.entry(stream).or_insert(0);
    }

    /// Waits until `done` holds (the caller bounds the wait).
    pub(super) async fn wait(&self, done: impl Fn(&TapState) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.lock()) {
                return;
            }
            changed.await;
        }
    }
}

/// Frames that matter to someone, reported when their last byte reaches the kernel.
#[derive(Debug)]
enum Event {
    Data { stream: u32, len: usize },
    GoAway,
    Cut { stream: u32 },
}

/// The h2 server's I/O: the socket (in a slot the connection task takes back at the end) and
/// the frame follower.
#[derive(Debug)]
pub(super) struct TapIo {
    slot: Arc<Mutex<Option<TcpStream>>>,
    tap: Arc<Tap>,
    parser: Parser,
    /// Output accepted from h2 (after rewriting), not yet written to the socket from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Bytes ever appended to `out`, and ever written to the socket.
    appended: u64,
    written: u64,
    /// Events and the value of `written` at which each one is complete.
    events: VecDeque<(u64, Event)>,
}

impl TapIo {
    pub(super) fn new(slot: Arc<Mutex<Option<TcpStream>>>, tap: Arc<Tap>) -> Self {
        Self {
            slot,
            tap,
            parser: Parser::default(),
            out: Vec::new(),
            sent: 0,
            appended: 0,
            written: 0,
            events: VecDeque::new(),
        }
    }

    /// Writes `out` to the socket until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = {
                let mut slot = lock(&self.slot);
                let Some(stream) = slot.as_mut() else {
                    return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                };
                ready!(Pin::new(stream).poll_write(cx, &self.out[self.sent..]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
            self.written += n as u64;
            self.report();
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Applies the events whose frames have reached the kernel.
    fn report(&mut self) {
        if self
            .events
            .front()
            .is_none_or(|(end, _)| *end > self.written)
        {
            return;
        }
        let mut state = self.tap.lock();
        while let Some((end, _)) = self.events.front() {
            if *end > self.written {
                break;
            }
            let Some((_, event)) = self.events.pop_front() else {
                break;
            };
            match event {
                Event::Data { stream, len } => {
                    if let Some(sent) = state.data_sent.get_mut(&stream) {
                        *sent += len;
                    }
                }
                Event::GoAway => state.goaway_sent = true,
                Event::Cut { stream } => {
                    state.cut_sent.insert(stream);
                }
            }
        }
        drop(state);
        self.tap.changed.notify_waiters();
    }
}

impl AsyncRead for TapIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut slot = lock(&self.slot);
        match slot.as_mut() {
            Some(stream) => Pin::new(stream).poll_read(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }
}

impl AsyncWrite for TapIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() - this.sent >= OUT_LIMIT {
            ready!(this.poll_drain(cx))?;
        }
        {
            let state = this.tap.lock();
            let mut sink = Sink {
                out: &mut this.out,
                appended: &mut this.appended,
                events: &mut this.events,
            };
            this.parser.feed(buf, &mut sink, &state);
        }
        // Start writing now; what the socket does not take yet waits for the next call or for
        // `poll_flush` (a `Pending` here has registered the waker).
        if let Poll::Ready(Err(error)) = this.poll_drain(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let mut slot = lock(&this.slot);
        match slot.as_mut() {
            Some(stream) => Pin::new(stream).poll_flush(cx),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let mut slot = lock(&this.slot);
        match slot.as_mut() {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }
}

/// Where the parser puts what goes to the socket.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    appended: &'a mut u64,
    events: &'a mut VecDeque<(u64, Event)>,
}

impl Sink<'_> {
    fn push(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        *self.appended += bytes.len() as u64;
    }

    fn event(&mut self, event: Event) {
        self.events.push_back((*self.appended, event));
    }
}

/// Follows the server's frames across writes.
#[derive(Debug, Default)]
struct Parser {
    header: [u8; 9],
    /// Bytes of `header` filled; 9 while in the payload.
    filled: usize,
    kind: u8,
    stream: u32,
    len: usize,
    /// Payload bytes seen.
    pos: usize,
    /// The new last-stream-id of the current `GOAWAY`.
    last_stream_id: Option<[u8; 4]>,
    /// Payload bytes of the current frame to keep before cutting, and whether the data of the
    /// current frame is counted.
    keep: Option<usize>,
    watched: bool,
    /// After a cut, everything is thrown away.
    discard: bool,
}

impl Parser {
    fn feed(&mut self, mut input: &[u8], sink: &mut Sink<'_>, state: &TapState) {
        // Each turn consumes at least one byte, or returns.
        while !input.is_empty() && !self.discard {
            if self.filled < 9 {
                let n = (9 - self.filled).min(input.len());
                self.header[self.filled..self.filled + n].copy_from_slice(&input[..n]);
                self.filled += n;
                input = &input[n..];
                if self.filled == 9 {
                    self.start_frame(sink, state);
                }
                continue;
            }
            let n = (self.len - self.pos).min(input.len());
            let mut chunk = input[..n].to_vec();
            input = &input[n..];
            if let Some(last) = self.last_stream_id {
                for (offset, byte) in chunk.iter_mut().enumerate() {
                    if let Some(new) = last.get(self.pos + offset) {
                        *byte = *new;
                    }
                }
            }
            if let Some(keep) = self.keep {
                let kept = keep.saturating_sub(self.pos).min(n);
                sink.push(&chunk[..kept]);
                if self.pos + n >= keep {
                    sink.event(Event::Cut {
                        stream: self.stream,
                    });
                    self.discard = true;
                    return;
                }
            } else {
                sink.push(&chunk);
            }
            self.pos += n;
            if self.pos == self.len {
                self.end_frame(sink);
            }
        }
    }

    fn start_frame(&mut self, sink: &mut Sink<'_>, state: &TapState) {
        let h = self.header;
        self.len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        self.kind = h[3];
        self.stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7FFF_FFFF;
        self.pos = 0;
        self.last_stream_id = match (self.kind, state.cutoff) {
            (GOAWAY, Some(cutoff)) => Some(cutoff.to_be_bytes()),
            _ => None,
        };
        self.keep = (self.kind == HEADERS && state.cut.contains(&self.stream))
            .then(|| (self.len / 2).max(1));
        self.watched = self.kind == DATA && state.data_sent.contains_key(&self.stream);
        sink.push(&h);
        if self.keep.is_some() && self.len == 0 {
            sink.event(Event::Cut {
                stream: self.stream,
            });
            self.discard = true;
        } else if self.len == 0 {
            self.end_frame(sink);
        }
    }

    fn end_frame(&mut self, sink: &mut Sink<'_>) {
        match self.kind {
            DATA if self.watched => sink.event(Event::Data {
                stream: self.stream,
                len: self.len,
            }),
            GOAWAY => sink.event(Event::GoAway),
            _ => {}
        }
        self.filled = 0;
    }
}
