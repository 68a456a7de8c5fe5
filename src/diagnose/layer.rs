//! The collector layer for clients the pooled strategy does not cover.

use std::task::{Context, Poll};

use tower::Layer;
use tower_service::Service;

use super::collector::{content_length, Collector, Recorder};
use super::future::DiagnoseFuture;
use crate::classify::{ClassifyError, StandardClassifier};

/// Feeds a [`Collector`] from any HTTP client: each request's failure class, body size (from
/// its `content-length` header), the requests in flight and the time.
///
/// For hyper-util's legacy `Client`, use
/// [`FreshConnectionLayer::diagnose`](crate::FreshConnectionLayer::diagnose) instead: the
/// pooled strategy also knows each connection's idle time, age and request count, the facts
/// behind the idle-timeout, request-limit and age causes. This layer is for the others (a
/// tonic `Channel`, reqwest through the detour strategy): without those facts, a report can
/// still name a size limit, overload, restarts, refusals and cut connections.
///
/// Place it just above the client, below [`ResetRetryLayer`](crate::ResetRetryLayer), so that
/// it sees every attempt.
///
/// # Examples
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_reset::diagnose::{Collector, DiagnoseLayer};
/// use tower_reset::{BackoffLayer, ResetRetryLayer};
///
/// # fn wrap<S: Clone>(client: S) {
/// let collector = Collector::new();
/// let service = ServiceBuilder::new()
///     .layer(ResetRetryLayer::new())
///     .layer(BackoffLayer::new())
///     .layer(DiagnoseLayer::new(collector.clone()))
///     .service(client);
/// // Later, in a log:
/// println!("{}", collector.report());
/// # let _ = service;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DiagnoseLayer {
    collector: Collector,
}

impl DiagnoseLayer {
    /// A layer that feeds `collector`.
    pub fn new(collector: Collector) -> Self {
        Self { collector }
    }
}

impl<S> Layer<S> for DiagnoseLayer {
    type Service = Diagnose<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Diagnose {
            inner,
            recorder: Recorder::new(self.collector.clone()),
        }
    }
}

/// Feeds a [`Collector`] with what each request meets; made by [`DiagnoseLayer`].
///
/// Costs a few relaxed atomic operations per request, and no lock while the requests go to
/// the host this clone saw last.
#[derive(Debug, Clone)]
pub struct Diagnose<S> {
    inner: S,
    recorder: Recorder,
}

impl<S> Diagnose<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for Diagnose<S>
where
    S: Service<http::Request<B>>,
    StandardClassifier: ClassifyError<S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = DiagnoseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let watch = self
            .recorder
            .start(request.uri(), content_length(request.headers()));
        DiagnoseFuture::new(self.inner.call(request), watch)
    }
}
