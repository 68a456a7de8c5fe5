//! Bodies for the tests: a scripted list of frames, and a long generated upload.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

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
