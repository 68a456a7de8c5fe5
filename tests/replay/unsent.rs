//! A client that gives the request back inside its error when it could not send it (as hyper's
//! `TrySendError` does): `ResetRetry` keeps that error as the last outcome while the retry's
//! copy of the body is sent, so the copy must not need the body inside the error.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
use tower_reset::ResetRetryLayer;

use crate::frames::{chunks, Frames};

const LIMIT: Duration = Duration::from_secs(5);

/// The request that could not be sent, and why.
struct NotSent<B> {
    request: http::Request<B>,
    source: io::Error,
}

impl<B> fmt::Debug for NotSent<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotSent")
            .field("uri", self.request.uri())
            .field("source", &self.source)
            .finish()
    }
}

impl<B> fmt::Display for NotSent<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request was not sent")
    }
}

impl<B> Error for NotSent<B> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Refuses the first request, giving it back untouched; reads the next ones in full and
/// answers `200`.
#[derive(Clone, Default)]
struct RefusesFirst {
    calls: Arc<AtomicUsize>,
}

impl Service<http::Request<ReplayBody<Frames>>> for RefusesFirst {
    type Response = http::Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<ReplayBody<Frames>>) -> Self::Future {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        Box::pin(async move {
            if first {
                let source = io::Error::from(io::ErrorKind::ConnectionRefused);
                return Err(NotSent { request, source }.into());
            }
            let body = request.into_body().collect().await?.to_bytes();
            Ok(http::Response::new(body))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_does_not_wait_for_the_body_inside_the_last_error() {
    let inner = RefusesFirst::default();
    let service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(ResetRetryLayer::new())
        .service(inner.clone());
    let request = http::Request::post("http://upstream/orders")
        .body(chunks(&["never ", "sent"]))
        .unwrap();
    let response = tokio::time::timeout(LIMIT, service.oneshot(request))
        .await
        .expect("the request ends")
        .unwrap();
    assert_eq!(
        response.body(),
        "never sent",
        "the retry sends the whole body, read from the original"
    );
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
}
