//! [`ReplayBodyLayer`]: wraps every request body in a [`ReplayBody`].

use std::task::{Context, Poll};

use tower::Layer;
use tower_service::Service;

use super::body::{ReplayBody, DEFAULT_CAP};

/// Wraps the body of each `http::Request<B>` in a [`ReplayBody`], so that
/// [`ResetRetry`](crate::ResetRetry) can retry requests whose body is not `Clone`.
///
/// Put it outside `ResetRetryLayer`. It costs nothing for requests that are never retried: a
/// `ReplayBody` keeps no chunk until the retry layer asks it for a copy.
///
/// # Examples
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_reset::replay::ReplayBodyLayer;
/// use tower_reset::ResetRetryLayer;
///
/// # fn wrap<S: Clone>(client: S) {
/// let service = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new().cap(16 * 1024)) // bodies up to 16 KiB can be replayed
///     .layer(ResetRetryLayer::new())
///     .service(client);
/// # let _ = service;
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReplayBodyLayer {
    cap: usize,
}

impl ReplayBodyLayer {
    /// Keeps up to 64 KiB of each body for replays.
    pub const fn new() -> Self {
        Self { cap: DEFAULT_CAP }
    }

    /// Keeps up to `cap` bytes of each body for replays; longer bodies are sent once and never
    /// retried. A cap of 0 replays only empty bodies.
    pub const fn cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }
}

impl Default for ReplayBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = ReplayBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayBodyService {
            inner,
            cap: self.cap,
        }
    }
}

/// The service made by [`ReplayBodyLayer`]: hands `inner` requests whose body is a
/// [`ReplayBody`].
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower::{service_fn, BoxError, ServiceExt};
/// use tower_reset::replay::{ReplayBody, ReplayBodyService};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// // The inner service sees a `ReplayBody` around the body it was sent.
/// let inner = service_fn(|request: http::Request<ReplayBody<Full<Bytes>>>| async move {
///     let body = request.into_body().collect().await?.to_bytes();
///     Ok::<_, BoxError>(http::Response::new(body))
/// });
/// let service = ReplayBodyService::new(inner);
/// let response = service
///     .oneshot(http::Request::new(Full::new(Bytes::from_static(b"hi"))))
///     .await?;
/// assert_eq!(response.body(), "hi");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReplayBodyService<S> {
    inner: S,
    cap: usize,
}

impl<S> ReplayBodyService<S> {
    /// Wraps `inner`, keeping up to 64 KiB of each body.
    pub fn new(inner: S) -> Self {
        ReplayBodyLayer::new().layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for ReplayBodyService<S>
where
    S: Service<http::Request<ReplayBody<B>>>,
    B: http_body::Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let cap = self.cap;
        self.inner
            .call(request.map(|body| ReplayBody::with_cap(body, cap)))
    }
}
