//! Bodies for the tests: a scripted list of frames, a long generated upload, a body that
//! hides its end, and one that waits until the test hands it frames.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tower::BoxError;

/// One step of a [`Frames`] body.
pub(crate) enum Step {
    Data(&'static str),
    Trailers(&'static str, &'static str),
    /// Returns `Pending` once (waking itself), as a network body does between chunks.
    Pause,
    Fail,
}

/// A body that yields its steps in order. Not `Clone`, like a real streaming body.
pub(crate) struct Frames {
    steps: VecDeque<Step>,
}

pub(crate) fn frames(steps: impl IntoIterator<Item = Step>) -> Frames {
    Frames {
        steps: steps.into_iter().collect(),
    }
}

/// The data chunks `a`, `b`, ... as a body of several frames.
pub(crate) fn chunks(parts: &[&'static str]) -> Frames {
    frames(parts.iter().map(|part| Step::Data(part)))
}

impl Body for Frames {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.steps.pop_front() {
            None => Poll::Ready(None),
            Some(Step::Data(data)) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(data.as_bytes())))))
            }
            Some(Step::Trailers(name, value)) => {
                let mut trailers = HeaderMap::new();
                trailers.insert(name, value.parse().expect("a valid header value"));
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Some(Step::Pause) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::Fail) => Poll::Ready(Some(Err(io::Error::other("the upload broke")))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty()
    }
}

/// A long upload of `chunks` chunks of `chunk_size` bytes, each chunk freshly allocated like
/// the buffers a network body hands out.
pub(crate) struct Upload {
    left: usize,
    chunk_size: usize,
}

pub(crate) fn upload(chunks: usize, chunk_size: usize) -> Upload {
    Upload {
        left: chunks,
        chunk_size,
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        let chunk = Bytes::from(vec![b'u'; self.chunk_size]);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.left * self.chunk_size) as u64)
    }
}

/// `body`, but never announcing its end (`is_end_stream` stays false), like hyper's `Incoming`
/// for a chunked upload or a stream: the end is only seen by polling, and a client that has its
/// trailers does not poll again.
pub(crate) struct Unannounced<B>(pub(crate) B);

impl<B: Body + Unpin> Body for Unannounced<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

/// A body that is pending until the test pushes a chunk or ends it through its [`GateHandle`].
/// Like a network body, it keeps the waker of its last pending poll and wakes it when a chunk
/// comes.
pub(crate) struct Gate {
    shared: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    chunks: VecDeque<Bytes>,
    ended: bool,
    waker: Option<Waker>,
}

/// Feeds a [`Gate`].
#[derive(Clone)]
pub(crate) struct GateHandle {
    shared: Arc<Mutex<GateState>>,
}

pub(crate) fn gate() -> (Gate, GateHandle) {
    let shared = Arc::new(Mutex::new(GateState::default()));
    let handle = GateHandle {
        shared: Arc::clone(&shared),
    };
    (Gate { shared }, handle)
}

impl GateHandle {
    /// Hands the body one more chunk.
    pub(crate) fn push(&self, chunk: impl Into<Bytes>) {
        let mut state = self.shared.lock().unwrap();
        state.chunks.push_back(chunk.into());
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Ends the body after the chunks already pushed.
    pub(crate) fn end(&self) {
        let mut state = self.shared.lock().unwrap();
        state.ended = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

impl Body for Gate {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut state = self.shared.lock().unwrap();
        if let Some(chunk) = state.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Everything a body yields: the data frames one by one, then the trailers if any.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Collected {
    pub(crate) data: Vec<Bytes>,
    pub(crate) trailers: Option<HeaderMap>,
}

/// Reads `body` to its end, frame by frame.
pub(crate) async fn collect<B>(mut body: B) -> Result<Collected, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut collected = Collected {
        data: Vec::new(),
        trailers: None,
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Into::into)?;
        match frame.into_data() {
            Ok(data) => collected.data.push(data),
            Err(frame) => collected.trailers = frame.into_trailers().ok(),
        }
    }
    Ok(collected)
}

/// The data of `collected`, joined.
pub(crate) fn joined(collected: &Collected) -> String {
    collected
        .data
        .iter()
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect()
}
