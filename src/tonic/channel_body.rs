//! [`ChannelBodyLayer`]: hands a tonic `Channel` the body type it takes.

use std::task::{Context, Poll};

use bytes::Bytes;
use tower::{BoxError, Layer};
use tower_service::Service;

/// Turns `http::Request<B>` into `http::Request<tonic::body::Body>`, the request type of a
/// [`tonic::transport::Channel`], so that layers which change the body type (such as
/// [`ReplayBodyLayer`](crate::replay::ReplayBodyLayer)) can sit above a channel.
///
/// It goes at the bottom of the stack, right above the channel. The body is boxed with
/// [`tonic::body::Body::new`]; everything else about the request (method, URI, headers,
/// extensions) is kept, and responses and errors pass through untouched.
///
/// # Examples
///
/// ```
/// use tonic::transport::Endpoint;
/// use tower::ServiceBuilder;
/// use tower_reset::replay::ReplayBodyLayer;
/// use tower_reset::tonic::ChannelBodyLayer;
/// use tower_reset::{BackoffLayer, ResetRetryLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let service = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new())
///     .layer(ResetRetryLayer::new())
///     .layer(BackoffLayer::new())
///     .layer(ChannelBodyLayer::new()) // `ReplayBody<tonic::body::Body>` back to `tonic::body::Body`
///     .service(channel);
/// # let _ = service;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelBodyLayer {
    _priv: (),
}

impl ChannelBodyLayer {
    /// The layer.
    pub const fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for ChannelBodyLayer {
    type Service = ChannelBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ChannelBody::new(inner)
    }
}

/// The service made by [`ChannelBodyLayer`]: boxes each request body into a
/// [`tonic::body::Body`] for `inner`.
#[derive(Debug, Clone)]
pub struct ChannelBody<S> {
    inner: S,
}

impl<S> ChannelBody<S> {
    /// Wraps `inner`, typically a [`tonic::transport::Channel`].
    pub const fn new(inner: S) -> Self {
        Self { inner }
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

impl<S, B> Service<http::Request<B>> for ChannelBody<S>
where
    S: Service<http::Request<::tonic::body::Body>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.inner.call(request.map(::tonic::body::Body::new))
    }
}
