//! [`ReplayBody`]: a request body that can be sent again.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tower::BoxError;

/// The default [`cap`](ReplayBody::with_cap): 64 KiB.
pub const DEFAULT_CAP: usize = 64 * 1024;

/// A request body that keeps what it sent, so that a retry can send it again.
///
/// `ReplayBody` wraps any [`http_body::Body`] and, once a copy has been asked for with
/// [`try_clone`](Self::try_clone), keeps every data chunk it yields, up to a cap. A copy
/// replays the kept chunks (the same [`Bytes`], shared, not copied), then goes on reading the
/// original body where the first reader stopped, then replays the trailers. Only one copy reads
/// at a time: a copy that needs the rest of the original body waits until the copy holding it
/// is dropped (hyper drops a request's body when its connection fails).
///
/// A body becomes **not replayable** when:
///
/// * it yielded more than the cap: the kept chunks are freed at once, memory stays bounded,
///   and [`is_capped`](Self::is_capped) turns true;
/// * the original body failed with an error;
/// * it was polled before any copy was asked for (nothing was kept).
///
/// [`ResetRetry`](crate::ResetRetry) asks before each retry and does not retry a body that is
/// not replayable; nor, when the failed attempt ended with a response (a `503`, say), a body
/// that had not been read to its end: the server answered before it had the whole request and
/// may have acted on part of it.
///
/// # Cost
///
/// A `ReplayBody` that is never copied reads straight through: no allocation, no lock. The
/// first copy allocates the shared state; each chunk then costs a lock and a reference count.
/// Chunks are converted to [`Bytes`] with [`Buf::copy_to_bytes`], which shares the buffer for
/// `Bytes` bodies (hyper's `Incoming`, tonic's body, `Full<Bytes>`) and copies it otherwise.
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
    /// The original body, while this copy is the one reading it.
    body: Option<B>,
    /// Set by the first `try_clone`; shared by every copy.
    shared: OnceLock<Arc<Shared<B>>>,
    /// Data bytes this copy has yielded.
    yielded: u64,
    /// Kept chunks this copy has yielded (an index into `State::chunks`).
    position: usize,
    /// Whether this copy has yielded the trailers.
    trailers_sent: bool,
    /// Whether this copy has yielded anything: a body already under way cannot start keeping.
    started: bool,
    /// The original body's size hint, before anything was read: every copy yields the same.
    hint: SizeHint,
    cap: usize,
}

struct Shared<B> {
    state: Mutex<State<B>>,
}

struct State<B> {
    /// The rest of the original body, when no copy is reading it.
    body: Option<B>,
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    kept: usize,
    /// Data bytes read from the original body so far.
    consumed: u64,
    trailers: Option<HeaderMap>,
    /// The original body reached its end.
    ended: bool,
    /// Past the cap, or the original body failed: the chunks are gone.
    broken: bool,
    capped: bool,
    /// Copies waiting for the original body to be handed back.
    waiting: Vec<Waker>,
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
            body: Some(body),
            shared: OnceLock::new(),
            yielded: 0,
            position: 0,
            trailers_sent: false,
            started: false,
            hint,
            cap,
        }
    }

    /// A copy that will yield the same frames, or `None` when that is no longer possible (see
    /// the [type documentation](Self)).
    ///
    /// The first call starts keeping chunks; a body that was already polled without a copy
    /// cannot be replayed.
    pub fn try_clone(&self) -> Option<Self> {
        let shared = match self.shared.get() {
            Some(shared) => shared,
            None if self.started => return None,
            // Nothing to keep: the copy is an empty body of its own, with no shared state.
            None if self.body.as_ref().is_none_or(Body::is_end_stream) => {
                return Some(Self {
                    body: None,
                    shared: OnceLock::new(),
                    yielded: 0,
                    position: 0,
                    trailers_sent: false,
                    started: false,
                    hint: SizeHint::with_exact(0),
                    cap: self.cap,
                })
            }
            None => self.shared.get_or_init(|| Arc::new(Shared::new())),
        };
        if shared.lock().broken {
            return None;
        }
        Some(Self {
            body: None,
            shared: OnceLock::from(Arc::clone(shared)),
            yielded: 0,
            position: 0,
            trailers_sent: false,
            started: false,
            hint: self.hint,
            cap: self.cap,
        })
    }
}

impl<B> ReplayBody<B> {
    /// Whether the body outgrew the cap, so that its kept chunks were dropped.
    pub fn is_capped(&self) -> bool {
        self.shared.get().is_some_and(|shared| shared.lock().capped)
    }

    /// Whether the original body has been read to its end (by any copy). A copy of an empty
    /// body, which shares nothing with the original, is complete from the start: there is
    /// nothing to wait for.
    pub fn is_complete(&self) -> bool {
        match self.shared.get() {
            Some(shared) => shared.lock().ended,
            // The original (or a body never copied) holds its body; a copy of an empty one does
            // not.
            None => self.body.is_none(),
        }
    }

    /// Whether a copy made now could send the whole body again: nothing was lost to the cap or
    /// to an error.
    pub fn is_replayable(&self) -> bool {
        match self.shared.get() {
            Some(shared) => !shared.lock().broken,
            None => !self.started,
        }
    }

    /// The cap this body was made with.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl<B> Shared<B> {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                body: None,
                chunks: Vec::new(),
                kept: 0,
                consumed: 0,
                trailers: None,
                ended: false,
                broken: false,
                capped: false,
                waiting: Vec::new(),
            }),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable (nothing here panics).
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<B> State<B> {
    /// Keeps `chunk` for replays, unless that would pass `cap`.
    fn keep(&mut self, chunk: &Bytes, cap: usize) {
        self.consumed += chunk.len() as u64;
        if self.broken {
            return;
        }
        if self.kept.saturating_add(chunk.len()) > cap {
            self.capped = true;
            self.break_replay();
            return;
        }
        self.kept += chunk.len();
        self.chunks.push(chunk.clone());
    }

    /// From now on nothing can be replayed: frees what was kept.
    fn break_replay(&mut self) {
        self.broken = true;
        self.chunks = Vec::new();
        self.kept = 0;
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
        let Some(shared) = this.shared.get() else {
            // Never copied: straight through.
            return this.poll_original(cx, None);
        };
        let shared = Arc::clone(shared);
        let mut state = shared.lock();

        if this.yielded < state.consumed || this.position < state.chunks.len() {
            // Behind the original reader: replay what was kept.
            if state.broken {
                return Poll::Ready(Some(Err(NotReplayable(
                    "it outgrew its replay cap or failed",
                )
                .into())));
            }
            let chunk = state.chunks[this.position].clone();
            this.position += 1;
            this.yielded += chunk.len() as u64;
            this.started = true;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if state.ended {
            if !this.trailers_sent {
                if let Some(trailers) = &state.trailers {
                    this.trailers_sent = true;
                    this.started = true;
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))));
                }
            }
            return Poll::Ready(None);
        }
        // Caught up: read on from the original body, once this copy holds it.
        if this.body.is_none() {
            match state.body.take() {
                Some(body) => this.body = Some(body),
                None => {
                    state.waiting.push(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        this.poll_original(cx, Some(&mut state))
    }

    fn is_end_stream(&self) -> bool {
        match self.shared.get() {
            None => self.body.as_ref().is_none_or(Body::is_end_stream),
            Some(shared) => {
                let state = shared.lock();
                let caught_up =
                    self.yielded >= state.consumed && self.position >= state.chunks.len();
                if !caught_up {
                    return false;
                }
                if state.ended {
                    return self.trailers_sent || state.trailers.is_none();
                }
                self.body.as_ref().is_some_and(Body::is_end_stream)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = SizeHint::new();
        hint.set_lower(self.hint.lower().saturating_sub(self.yielded));
        if let Some(upper) = self.hint.upper() {
            hint.set_upper(upper.saturating_sub(self.yielded));
        }
        hint
    }
}

impl<B> ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    /// Polls the original body held by this copy, keeping what it yields when `state` is given.
    fn poll_original(
        &mut self,
        cx: &mut Context<'_>,
        mut state: Option<&mut State<B>>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(body) = self.body.as_mut() else {
            // An empty copy made before anything was read.
            return Poll::Ready(None);
        };
        let frame = match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        self.started = true;
        let end_stream = body.is_end_stream();
        let frame = match frame {
            None => {
                if let Some(state) = state.as_deref_mut() {
                    state.ended = true;
                }
                return Poll::Ready(None);
            }
            Some(Err(error)) => {
                if let Some(state) = state.as_deref_mut() {
                    state.break_replay();
                }
                return Poll::Ready(Some(Err(error.into())));
            }
            Some(Ok(frame)) => frame,
        };
        let frame = match frame.into_data() {
            Ok(mut data) => {
                let chunk = data.copy_to_bytes(data.remaining());
                self.yielded += chunk.len() as u64;
                if let Some(state) = state.as_deref_mut() {
                    state.keep(&chunk, self.cap);
                    self.position = state.chunks.len();
                }
                Frame::data(chunk)
            }
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => {
                    if let Some(state) = state.as_deref_mut() {
                        state.trailers = Some(trailers.clone());
                    }
                    self.trailers_sent = true;
                    Frame::trailers(trailers)
                }
                // http-body 1 has only data and trailers frames; pass on anything else as it is.
                Err(frame) => frame.map_data(|mut data| data.copy_to_bytes(data.remaining())),
            },
        };
        if end_stream {
            if let Some(state) = state {
                state.ended = true;
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        let (Some(body), Some(shared)) = (self.body.take(), self.shared.get()) else {
            return;
        };
        // Hand the rest of the original body to the next copy.
        let mut state = shared.lock();
        state.body = Some(body);
        for waker in state.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody")
            .field("cap", &self.cap)
            .field("yielded", &self.yielded)
            .field("reading_original", &self.body.is_some())
            .field("shared", &self.shared.get().is_some())
            .finish()
    }
}
