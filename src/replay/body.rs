//! [`ReplayBody`]: a request body that can be sent again.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tower::BoxError;

use super::kept::{Cursor, Kept};
use super::waiting::Waiting;

/// The default [`cap`](ReplayBody::with_cap): 64 KiB.
pub const DEFAULT_CAP: usize = 64 * 1024;

/// A request body that keeps what it sent, so that a retry can send it again.
///
/// `ReplayBody` wraps any [`http_body::Body`]. Once a copy has been asked for with
/// [`try_clone`](Self::try_clone), the original body is shared by every copy, and each data
/// chunk read from it is kept, up to a cap. A copy replays the kept data, then reads on from
/// the original body where the copies before it stopped, then replays the trailers. Whichever
/// copy has caught up reads the original itself (keeping what it reads for the others), so no
/// copy ever waits for another to be polled or dropped: a copy left inside an error nobody
/// polls holds up nothing.
///
/// A body becomes **not replayable** when:
///
/// * it yielded more than the cap: the kept data is freed at once, memory stays bounded,
///   and [`is_capped`](Self::is_capped) turns true;
/// * the original body failed with an error;
/// * it was polled before any copy was asked for (nothing was kept).
///
/// [`ResetRetry`](crate::ResetRetry) asks before each retry and does not retry a body that is
/// not replayable; nor, when the failed attempt ended with a response (a `503`, say), a body
/// that had not been read to its end ([`is_complete`](Self::is_complete)): the server answered
/// before it had the whole request and may have acted on part of it. A body ends with its last
/// data chunk when it says so, with its trailers (the last frame), or when it yields nothing
/// more; an empty body is complete before it is read.
///
/// # What is kept, and the memory it holds
///
/// A chunk may be a small window on a large buffer, and keeping the window keeps the buffer:
/// hyper's `Incoming` cuts each chunk out of a read buffer of 8 KiB or more (up to about
/// 400 KiB after large reads), so a client sending one byte per TCP segment makes 1-byte
/// chunks that each hold a buffer, and kept 8 and 16 KiB chunks held about twice their size
/// in our measurements. A [`Bytes`] does not tell how large its buffer is, so what is kept is
/// not the chunks as they came:
///
/// * chunks shorter than 64 KiB are copied, back to back, into blocks of their own (512 B,
///   doubling up to 8 KiB, never more than the cap, or than the body's announced length, in
///   all), and the buffers they came from are let go; a copy replays them in pieces of up to a
///   block, not with their original boundaries (which carry no meaning in HTTP);
/// * chunks of 64 KiB or more (a `Full<Bytes>` body, a large read with a cap above the
///   default) are kept as they are: the same [`Bytes`], shared, not copied;
/// * empty chunks carry nothing and are not kept;
/// * the trailers are kept as they came (hyper bounds their size as it does the headers').
///
/// So the data kept holds at most the cap (plus, for chunks of 64 KiB or more, the rest of the
/// buffers they were cut from), and a list of a few dozen segments. Measured through the
/// README's proxy pattern (hyper server, `Incoming` → [`ReplayBodyLayer`](super::ReplayBodyLayer)
/// → `ResetRetryLayer` → hyper-util, upstream not answering yet; `tests/replay/slow_client.rs`),
/// a 64 KiB upload holds the cap and 12 KiB more than the bare proxy, whether it comes in
/// 1-byte TCP segments, 1400-byte ones, 8 KiB ones or one write, and 60,000 one-byte HTTP/2
/// DATA frames the 60,000 bytes and 12 KiB more.
///
/// # Cost
///
/// A `ReplayBody` that is never copied reads straight through: no allocation, no lock. The
/// first copy allocates the shared state (one allocation); each chunk then costs a lock, and
/// a copy of its bytes into a block (short chunks: at most the cap in all, one `memcpy` of
/// 64 KiB by default) or a reference count (long ones); the first time a copy reads the
/// original body, a list of the copies waiting for it is allocated. Chunks are converted to
/// [`Bytes`] with [`Buf::copy_to_bytes`], which shares the buffer for `Bytes` bodies (hyper's
/// `Incoming`, tonic's body, `Full<Bytes>`) and copies it otherwise. The copy reading the
/// original polls it while holding the shared state's lock, so copies polled at the same time
/// on two threads take turns.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_reset::replay::ReplayBody;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let original = ReplayBody::new(Full::new(Bytes::from_static(b"hello")));
/// let copy = original.try_clone().expect("nothing was read yet");
///
/// // The first attempt sends the body (and fails, say)...
/// assert_eq!(original.collect().await.unwrap().to_bytes(), "hello");
/// // ...and the retry sends the same bytes again.
/// assert_eq!(copy.collect().await.unwrap().to_bytes(), "hello");
/// # }
/// ```
///
/// Bodies that are not `Unpin` can be wrapped as `Pin<Box<B>>`.
pub struct ReplayBody<B> {
    /// The original body, until the first copy moves it into the shared state. A mutex only
    /// because `try_clone` takes `&self`: polls reach it with `Mutex::get_mut`, without locking.
    local: Mutex<Option<B>>,
    /// Whether `local` has nothing more to yield (it said so after its last poll, or it is
    /// gone): such a body is copied without a shared state.
    local_ended: bool,
    /// Set by the first `try_clone`; shared by every copy.
    shared: OnceLock<Arc<Shared<B>>>,
    /// How far this copy has read.
    reader: Reader,
    /// The original body's size hint, before anything was read: every copy yields the same.
    hint: SizeHint,
    cap: usize,
}

/// How far one copy has read.
#[derive(Debug, Default)]
struct Reader {
    /// Data bytes this copy has yielded.
    yielded: u64,
    /// Where this copy is in the kept data.
    cursor: Cursor,
    /// Whether this copy has yielded the trailers.
    trailers_sent: bool,
    /// Whether this copy has yielded anything: a body already under way cannot start keeping.
    started: bool,
    /// This copy's number in the list of copies waiting for the original body, once it has
    /// read it.
    waiting_id: Option<u64>,
}

struct Shared<B> {
    state: Mutex<State<B>>,
    /// Made when a copy first reads the original body.
    waiting: OnceLock<Waiting>,
}

struct State<B> {
    /// The original body, until it ends or fails.
    body: Option<B>,
    kept: Kept,
    cap: usize,
    /// Data bytes read from the original body so far.
    consumed: u64,
    trailers: Option<HeaderMap>,
    /// The original body reached its end.
    ended: bool,
    /// The original body failed: the kept data is gone.
    failed: bool,
    /// The original body outgrew the cap: the kept data is gone.
    capped: bool,
}

/// The error a copy yields if it is polled although it cannot replay (it was capped, say).
/// [`ResetRetry`](crate::ResetRetry) never sends such a copy.
#[derive(Debug)]
struct NotReplayable(&'static str);

impl fmt::Display for NotReplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body cannot be replayed: {}", self.0)
    }
}

impl std::error::Error for NotReplayable {}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body`, keeping up to [`DEFAULT_CAP`] (64 KiB) for replays.
    pub fn new(body: B) -> Self {
        Self::with_cap(body, DEFAULT_CAP)
    }

    /// Wraps `body`, keeping up to `cap` bytes for replays. A body longer than `cap` is sent
    /// once and never replayed.
    pub fn with_cap(body: B, cap: usize) -> Self {
        let hint = body.size_hint();
        Self {
            local_ended: body.is_end_stream(),
            local: Mutex::new(Some(body)),
            shared: OnceLock::new(),
            reader: Reader::default(),
            hint,
            cap,
        }
    }

    /// A copy that will yield the same data and trailers, or `None` when that is no longer
    /// possible (see the [type documentation](Self)).
    ///
    /// The first call moves the original body into a state shared by every copy and starts
    /// keeping what is read from it; a body that was already polled without a copy cannot be
    /// replayed.
    pub fn try_clone(&self) -> Option<Self> {
        let shared = match self.shared.get() {
            Some(shared) => shared,
            None if self.reader.started => return None,
            // Nothing to keep: the copy is an empty body of its own, with no shared state.
            None if self.local_ended => {
                return Some(Self {
                    local: Mutex::new(None),
                    local_ended: true,
                    shared: OnceLock::new(),
                    reader: Reader::default(),
                    hint: SizeHint::with_exact(0),
                    cap: self.cap,
                })
            }
            None => self.shared.get_or_init(|| {
                let body = self
                    .local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                Arc::new(Shared::new(body, self.cap, self.hint))
            }),
        };
        if shared.lock().broken() {
            return None;
        }
        Some(Self {
            local: Mutex::new(None),
            local_ended: true,
            shared: OnceLock::from(Arc::clone(shared)),
            reader: Reader::default(),
            hint: self.hint,
            cap: self.cap,
        })
    }

    /// Whether the original body has been read to its end (by any copy), or has nothing to
    /// read: its last data chunk said it was the last, its trailers came, or it was empty.
    pub fn is_complete(&self) -> bool {
        match self.shared.get() {
            Some(shared) => shared.lock().at_end(),
            None => self.local_ended,
        }
    }
}

impl<B> ReplayBody<B> {
    /// Whether the body outgrew the cap, so that its kept data was dropped.
    pub fn is_capped(&self) -> bool {
        self.shared.get().is_some_and(|shared| shared.lock().capped)
    }

    /// Whether a copy made now could send the whole body again: nothing was lost to the cap or
    /// to an error.
    pub fn is_replayable(&self) -> bool {
        match self.shared.get() {
            Some(shared) => !shared.lock().broken(),
            None => !self.reader.started,
        }
    }

    /// The cap this body was made with.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl<B> Shared<B> {
    /// The shared state of `body`, which keeps up to `cap` bytes and announced `hint`.
    fn new(body: Option<B>, cap: usize, hint: SizeHint) -> Self {
        let announced = hint.upper().and_then(|upper| usize::try_from(upper).ok());
        let limit = announced.map_or(cap, |announced| announced.min(cap));
        Self {
            state: Mutex::new(State {
                ended: body.is_none(),
                body,
                kept: Kept::new(limit),
                cap,
                consumed: 0,
                trailers: None,
                failed: false,
                capped: false,
            }),
            waiting: OnceLock::new(),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable (nothing here panics).
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B> State<B> {
    /// Past the cap, or the original body failed: the kept data is gone.
    fn broken(&self) -> bool {
        self.capped || self.failed
    }

    /// Counts `chunk` as read from the original, and keeps it for replays unless that would
    /// pass the cap.
    fn keep(&mut self, chunk: &Bytes) {
        self.consumed += chunk.len() as u64;
        if self.broken() {
            return;
        }
        if self.kept.len().saturating_add(chunk.len()) > self.cap {
            self.capped = true;
            self.kept.clear();
            return;
        }
        self.kept.push(chunk);
    }

    /// The original body has nothing more to yield.
    fn end(&mut self) {
        self.ended = true;
        self.body = None;
    }

    /// The original body failed: nothing can be replayed.
    fn fail(&mut self) {
        self.failed = true;
        self.body = None;
        self.kept.clear();
    }
}

impl<B: Body> State<B> {
    /// Whether the original body has ended, noting it when the body says so without a poll.
    fn at_end(&mut self) -> bool {
        if !self.ended && self.body.as_ref().is_some_and(Body::is_end_stream) {
            self.end();
        }
        self.ended
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this.shared.get() {
            // Never copied: straight through.
            None => this.poll_local(cx),
            Some(shared) => shared.poll(&mut this.reader, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        let Some(shared) = self.shared.get() else {
            return self.local_ended;
        };
        let mut state = shared.lock();
        if self.reader.yielded < state.consumed || !state.at_end() {
            return false;
        }
        self.reader.trailers_sent || state.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let yielded = self.reader.yielded;
        let mut hint = SizeHint::new();
        hint.set_lower(self.hint.lower().saturating_sub(yielded));
        if let Some(upper) = self.hint.upper() {
            hint.set_upper(upper.saturating_sub(yielded));
        }
        hint
    }
}

impl<B> ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    /// Polls the body this value holds alone (nothing is kept).
    fn poll_local(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(body) = local.as_mut() else {
            // An empty copy of its own.
            return Poll::Ready(None);
        };
        let frame = std::task::ready!(Pin::new(&mut *body).poll_frame(cx));
        self.local_ended = frame.is_none() || body.is_end_stream();
        let Some(frame) = frame else {
            return Poll::Ready(None);
        };
        self.reader.started = true;
        Poll::Ready(Some(match frame {
            Ok(frame) => Ok(frame.map_data(|mut data| {
                let chunk = data.copy_to_bytes(data.remaining());
                self.reader.yielded += chunk.len() as u64;
                chunk
            })),
            Err(error) => Err(error.into()),
        }))
    }
}

impl<B> Shared<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    /// The next frame for the copy at `reader`: replayed from what was kept while it is behind,
    /// then read from the original body (and kept for the others), then the trailers.
    fn poll(
        &self,
        reader: &mut Reader,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut state = self.lock();
        loop {
            if reader.yielded < state.consumed {
                // Behind the copies before it: replay what was kept.
                if state.broken() {
                    return Poll::Ready(Some(Err(NotReplayable(
                        "it outgrew its replay cap or failed",
                    )
                    .into())));
                }
                let Some(chunk) = state.kept.read(&mut reader.cursor) else {
                    // Cannot happen: the kept data covers every byte consumed until it breaks.
                    return Poll::Ready(Some(Err(NotReplayable("its kept data is short").into())));
                };
                reader.yielded += chunk.len() as u64;
                reader.started = true;
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if state.at_end() {
                return Poll::Ready(match &state.trailers {
                    Some(trailers) if !reader.trailers_sent => {
                        reader.trailers_sent = true;
                        reader.started = true;
                        Some(Ok(Frame::trailers(trailers.clone())))
                    }
                    _ => None,
                });
            }
            if state.failed {
                return Poll::Ready(Some(Err(NotReplayable("the original body failed").into())));
            }
            // Caught up: read on from the original body, with a waker that wakes every copy
            // waiting for it (this one is listed first, so that no wake is missed).
            let waiting = self.waiting.get_or_init(Waiting::new);
            waiting.add(&mut reader.waiting_id, cx.waker());
            let Some(body) = state.body.as_mut() else {
                state.end();
                continue;
            };
            let polled = Pin::new(&mut *body).poll_frame(&mut Context::from_waker(waiting.waker()));
            let frame = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    state.end();
                    continue;
                }
                Poll::Ready(Some(Err(error))) => {
                    state.fail();
                    reader.started = true;
                    return Poll::Ready(Some(Err(error.into())));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let end_stream = body.is_end_stream();
            reader.started = true;
            let frame = match frame.into_data() {
                Ok(mut data) => {
                    let chunk = data.copy_to_bytes(data.remaining());
                    state.keep(&chunk);
                    reader.yielded += chunk.len() as u64;
                    reader.cursor = state.kept.end();
                    Frame::data(chunk)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        // Trailers are the last frame: a client that has them polls no more.
                        state.trailers = Some(trailers.clone());
                        state.end();
                        reader.trailers_sent = true;
                        Frame::trailers(trailers)
                    }
                    // http-body 1 has only data and trailers frames; pass on anything else.
                    Err(frame) => frame.map_data(|mut data| data.copy_to_bytes(data.remaining())),
                },
            };
            if end_stream {
                state.end();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
    }
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        if let (Some(id), Some(shared)) = (self.reader.waiting_id, self.shared.get()) {
            if let Some(waiting) = shared.waiting.get() {
                waiting.remove(id);
            }
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody")
            .field("cap", &self.cap)
            .field("yielded", &self.reader.yielded)
            .field("copied", &self.shared.get().is_some())
            .finish()
    }
}
