//! The preset for hyper-util's legacy `Client`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::Layer;

use crate::backoff::policy::Exponential;
use crate::classify::StandardClassifier;
use crate::diagnose::Collector;
use crate::fresh_connection::policy::StandardConnections;
use crate::fresh_connection::{FreshConnection, Pooled};
use crate::replay::{ReplayBody, ReplayBodyLayer, ReplayBodyService};
use crate::reset_retry::policy::StandardRetry;
use crate::resume::Resume;
use crate::{
    Backoff, BackoffLayer, FreshConnectionLayer, ResetRetry, ResetRetryLayer, ResumeLayer,
};

/// The recommended stack over hyper-util's legacy `Client`, in the right order:
/// [`ResetRetryLayer`] (whether), [`BackoffLayer`] (when), [`FreshConnectionLayer`] (pooled:
/// which connection).
///
/// `HyperUtilLayer::new()` is the three layers' `new()`; replace any of them with one you
/// configured. The service it makes is a [`HyperUtilStack`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::Layer;
/// use tower_reset::diagnose::Collector;
/// use tower_reset::preset::{HyperUtilLayer, HyperUtilStack};
/// use tower_reset::ResetRetryLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_reset::ConfigError> {
/// let collector = Collector::new(); // why connections are reset: `collector.report()`
/// let layer = HyperUtilLayer::new()
///     .retry(ResetRetryLayer::builder().deadline(Duration::from_secs(5)).build()?)
///     .diagnose(collector.clone());
/// let client = Client::builder(TokioExecutor::new())
///     .pool_idle_timeout(Duration::from_secs(30))
///     .build_http::<Full<Bytes>>();
/// let upstream: HyperUtilStack<_> = layer.layer(client);
/// # let _ = upstream;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HyperUtilLayer<
    P = StandardRetry,
    C = StandardClassifier,
    B = Exponential,
    F = StandardConnections,
> {
    retry: ResetRetryLayer<P, C>,
    backoff: BackoffLayer<B>,
    connections: FreshConnectionLayer<Pooled, F>,
}

/// The service [`HyperUtilLayer`] makes over `S`:
/// `ResetRetry<Backoff<FreshConnection<S, F>, B>, P, C>`.
pub type HyperUtilStack<
    S,
    P = StandardRetry,
    C = StandardClassifier,
    B = Exponential,
    F = StandardConnections,
> = ResetRetry<Backoff<FreshConnection<S, F>, B>, P, C>;

/// The recommended stack over hyper-util's legacy `Client` with request body `Body` (by
/// default `Full<Bytes>`), as [`hyper_util_client`] makes it: a type to store in a struct or in
/// axum's `State`.
///
/// ```
/// use tower_reset::preset::{hyper_util_client, HyperUtilClient};
///
/// #[derive(Clone)]
/// struct App {
///     upstream: HyperUtilClient,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = App { upstream: hyper_util_client() };
/// # let _ = app.upstream;
/// # }
/// ```
pub type HyperUtilClient<Body = Full<Bytes>> = HyperUtilStack<Client<HttpConnector, Body>>;

/// For a proxy: requests whose body is a stream (hyper's `Incoming` by default, or axum's
/// `Body`) go through a [`ReplayBodyLayer`], which keeps up to 64 KiB of each body so that the
/// stack can send it again, over the stack with its client (whose request body is then a
/// `ReplayBody`). As [`proxy_client`] makes it.
pub type ProxyClient<Body = Incoming, C = StandardClassifier> =
    ReplayBodyService<HyperUtilStack<Client<HttpConnector, ReplayBody<Body>>, StandardRetry, C>>;

/// The stack over hyper-util's legacy `Client`, with a [`ResumeLayer`] on top: `GET` bodies
/// that break part-way continue where they stopped. As [`resuming_hyper_util_client`] makes it.
pub type ResumingHyperUtilClient<Body = Full<Bytes>> = Resume<HyperUtilClient<Body>>;

impl HyperUtilLayer {
    /// The three layers with their defaults: `ResetRetryLayer::new()`, `BackoffLayer::new()`,
    /// `FreshConnectionLayer::new()`.
    pub fn new() -> Self {
        Self {
            retry: ResetRetryLayer::new(),
            backoff: BackoffLayer::new(),
            connections: FreshConnectionLayer::new(),
        }
    }
}

impl Default for HyperUtilLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<P, C, B, F> HyperUtilLayer<P, C, B, F> {
    /// The retry layer (whether). Defaults to `ResetRetryLayer::new()`.
    pub fn retry<Q, D>(self, retry: ResetRetryLayer<Q, D>) -> HyperUtilLayer<Q, D, B, F> {
        HyperUtilLayer {
            retry,
            backoff: self.backoff,
            connections: self.connections,
        }
    }

    /// The backoff layer (when). Defaults to `BackoffLayer::new()`.
    pub fn backoff<A>(self, backoff: BackoffLayer<A>) -> HyperUtilLayer<P, C, A, F> {
        HyperUtilLayer {
            retry: self.retry,
            backoff,
            connections: self.connections,
        }
    }

    /// The fresh-connection layer (which connection), pooled strategy. Defaults to
    /// `FreshConnectionLayer::new()`.
    pub fn connections<G>(
        self,
        connections: FreshConnectionLayer<Pooled, G>,
    ) -> HyperUtilLayer<P, C, B, G> {
        HyperUtilLayer {
            retry: self.retry,
            backoff: self.backoff,
            connections,
        }
    }

    /// Feeds `collector` with the connection failures the stack meets (see
    /// [`diagnose`](crate::diagnose)): the same as
    /// [`FreshConnectionLayer::diagnose`] on the fresh-connection layer.
    pub fn diagnose(mut self, collector: Collector) -> Self {
        self.connections = self.connections.diagnose(collector);
        self
    }
}

impl<S, P: Clone, C: Clone, B: Clone, F: Clone> Layer<S> for HyperUtilLayer<P, C, B, F> {
    type Service = HyperUtilStack<S, P, C, B, F>;

    fn layer(&self, inner: S) -> Self::Service {
        self.retry
            .layer(self.backoff.layer(self.connections.layer(inner)))
    }
}

/// hyper-util's legacy `Client` (HTTP/1.1 over `HttpConnector`, on the tokio executor) under
/// the recommended stack: `HyperUtilLayer::new()` over
/// `Client::builder(TokioExecutor::new()).build_http()`.
///
/// Its requests carry a `Full<Bytes>` body. For another body type, or HTTP/2, TLS or pool
/// settings, build the client yourself and put [`HyperUtilLayer`] over it. With HTTP/2, enable this crate's `h2` feature too, so that h2's
/// refusals and resets are recognised.
///
/// # Examples
///
/// ```
/// use tower::ServiceExt;
/// use tower_reset::preset::hyper_util_client;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let client = hyper_util_client();
/// let request = http::Request::get("http://127.0.0.1:3000/").body(Default::default())?;
/// let response = client.oneshot(request).await?;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
pub fn hyper_util_client() -> HyperUtilClient {
    HyperUtilLayer::new().layer(Client::builder(TokioExecutor::new()).build_http())
}

/// A client for a proxy: [`ReplayBodyLayer`] over [`hyper_util_client`], so that the requests a
/// server received, their bodies still streaming in, can be forwarded and sent again (up to
/// 64 KiB of each body is kept). For another classifier or cap, assemble it yourself:
/// `ReplayBodyLayer::new().layer(HyperUtilLayer::new().retry(retry).layer(client))`.
///
/// # Examples
///
/// An axum handler forwarding what it receives:
///
/// ```
/// use axum::body::Body;
/// use axum::extract::{Request, State};
/// use axum::response::{IntoResponse, Response};
/// use tower::ServiceExt;
/// use tower_reset::preset::{proxy_client, ProxyClient};
///
/// async fn forward(State(upstream): State<ProxyClient<Body>>, request: Request) -> Response {
///     // (the URI rewritten to the upstream's, in a real proxy)
///     match upstream.oneshot(request).await {
///         Ok(response) => response.map(Body::new).into_response(),
///         Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app: axum::Router = axum::Router::new()
///     .fallback(forward)
///     .with_state(proxy_client::<Body>());
/// # let _ = app;
/// # }
/// ```
pub fn proxy_client<Body>() -> ProxyClient<Body>
where
    Body: http_body::Body + Send + Unpin + 'static,
    Body::Data: Send,
    Body::Error: Into<tower::BoxError>,
{
    ReplayBodyLayer::new()
        .layer(HyperUtilLayer::new().layer(Client::builder(TokioExecutor::new()).build_http()))
}

/// [`hyper_util_client`] with a [`ResumeLayer`] on top (`ResumeLayer::new()`): the body of a
/// `GET` whose connection breaks part-way continues with a range request, validated, through
/// the stack (see [`resume`](crate::resume)). It costs one copy of each `GET`'s head.
///
/// # Examples
///
/// ```
/// use tower_reset::preset::{resuming_hyper_util_client, ResumingHyperUtilClient};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let downloads: ResumingHyperUtilClient = resuming_hyper_util_client();
/// # let _ = downloads;
/// # }
/// ```
pub fn resuming_hyper_util_client() -> ResumingHyperUtilClient {
    ResumeLayer::new().layer(hyper_util_client())
}
