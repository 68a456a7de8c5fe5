//! A scripted upstream service that reads request bodies the way a client connection does,
//! then answers or fails.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tower::{BoxError, Service};

/// What the upstream does with one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Script {
    /// Reads the whole body, then answers with this status.
    Answer(u16),
    /// Reads this many data frames (all when `usize::MAX`), drops the body, then answers with
    /// this status: a server that answers before it has the whole request.
    AnswerAfter(usize, u16),
    /// Reads this many data frames (all when `usize::MAX`), then fails with this io error.
    FailAfter(usize, io::ErrorKind),
}

/// What one attempt delivered.
#[derive(Debug, Default, Clone)]
pub(crate) struct Delivered {
    /// The bytes, unless the upstream only counts them.
    pub(crate) bytes: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) complete: bool,
}

#[derive(Clone)]
pub(crate) struct Upstream {
    script: Arc<Mutex<VecDeque<Script>>>,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    keep_bytes: bool,
}

impl Upstream {
    /// Follows `script`, then answers `200`.
    pub(crate) fn new(script: impl IntoIterator<Item = Script>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            delivered: Arc::default(),
            keep_bytes: true,
        }
    }

    /// Like [`Upstream::new`], but counts the bytes it reads without keeping them.
    pub(crate) fn counting(script: impl IntoIterator<Item = Script>) -> Self {
        Self {
            keep_bytes: false,
            ..Self::new(script)
        }
    }

    /// What each attempt delivered, in order.
    pub(crate) fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }
}

impl<B> Service<http::Request<B>> for Upstream
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<()>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let script = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Script::Answer(200));
        let delivered = Arc::clone(&self.delivered);
        let keep_bytes = self.keep_bytes;
        Box::pin(async move {
            let (frames, outcome) = match script {
                Script::Answer(status) => (usize::MAX, Ok(status)),
                Script::AnswerAfter(frames, status) => (frames, Ok(status)),
                Script::FailAfter(frames, kind) => (frames, Err(kind)),
            };
            let mut body = request.into_body();
            let mut record = Delivered::default();
            let mut read = 0;
            while read < frames {
                match body.frame().await {
                    None => {
                        record.complete = true;
                        break;
                    }
                    Some(frame) => {
                        let frame = frame.map_err(Into::into)?;
                        if let Ok(data) = frame.into_data() {
                            record.len += data.len();
                            if keep_bytes {
                                record.bytes.extend_from_slice(&data);
                            }
                            read += 1;
                        }
                    }
                }
            }
            drop(body);
            delivered.lock().unwrap().push(record);
            match outcome {
                Ok(status) => Ok(http::Response::builder().status(status).body(()).unwrap()),
                Err(kind) => Err(io::Error::new(kind, "upstream connection failed").into()),
            }
        })
    }
}
