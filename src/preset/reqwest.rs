//! The preset for reqwest: two clients, one for fresh connections.

use ::reqwest::ClientBuilder;
use tower::Layer;

use crate::backoff::policy::Exponential;
use crate::classify::StandardClassifier;
use crate::fresh_connection::policy::StandardConnections;
use crate::fresh_connection::{Detour, DetourTo};
use crate::reqwest::HttpClient;
use crate::reset_retry::policy::StandardRetry;
use crate::{Backoff, BackoffLayer, FreshConnectionLayer, ResetRetry, ResetRetryLayer};

/// The recommended stack over a [`HttpClient`] (a `reqwest::Client` taking `http::Request`s),
/// in the right order: [`ResetRetryLayer`], [`BackoffLayer`], and the detour strategy of
/// [`FreshConnectionLayer`] (reqwest hides its pool: an attempt after a reset goes to a second
/// client that keeps no connection).
///
/// # Examples
///
/// ```
/// use tower::Layer;
/// use tower_reset::preset::ReqwestLayer;
/// use tower_reset::reqwest::HttpClient;
///
/// # fn run() -> Result<(), reqwest::Error> {
/// let pooled = HttpClient::new(reqwest::Client::builder().build()?);
/// let fresh = HttpClient::new(reqwest::Client::builder().pool_max_idle_per_host(0).build()?);
/// let client = ReqwestLayer::new(fresh).layer(pooled);
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestLayer<P = StandardRetry, C = StandardClassifier, B = Exponential> {
    retry: ResetRetryLayer<P, C>,
    backoff: BackoffLayer<B>,
    detour: FreshConnectionLayer<DetourTo<HttpClient>, StandardConnections>,
}

/// The recommended stack over reqwest, as [`reqwest_client`] makes it.
pub type ReqwestClient<P = StandardRetry, C = StandardClassifier, B = Exponential> =
    ResetRetry<Backoff<Detour<HttpClient, HttpClient, StandardConnections>, B>, P, C>;

impl ReqwestLayer {
    /// The stack's defaults, detouring attempts that follow a reset to `fresh`: a client built
    /// never to keep a connection (`pool_max_idle_per_host(0)`).
    pub fn new(fresh: HttpClient) -> Self {
        Self {
            retry: ResetRetryLayer::new(),
            backoff: BackoffLayer::new(),
            detour: FreshConnectionLayer::detour(fresh),
        }
    }
}

impl<P, C, B> ReqwestLayer<P, C, B> {
    /// The retry layer. Defaults to `ResetRetryLayer::new()`.
    pub fn retry<Q, D>(self, retry: ResetRetryLayer<Q, D>) -> ReqwestLayer<Q, D, B> {
        ReqwestLayer {
            retry,
            backoff: self.backoff,
            detour: self.detour,
        }
    }

    /// The backoff layer. Defaults to `BackoffLayer::new()`.
    pub fn backoff<A>(self, backoff: BackoffLayer<A>) -> ReqwestLayer<P, C, A> {
        ReqwestLayer {
            retry: self.retry,
            backoff,
            detour: self.detour,
        }
    }
}

impl<P: Clone, C: Clone, B: Clone> Layer<HttpClient> for ReqwestLayer<P, C, B> {
    type Service = ReqwestClient<P, C, B>;

    fn layer(&self, pooled: HttpClient) -> Self::Service {
        self.retry
            .layer(self.backoff.layer(self.detour.layer(pooled)))
    }
}

/// reqwest under the recommended stack: two clients from `configure` (the same settings: TLS,
/// proxies, timeouts), one of them with `pool_max_idle_per_host(0)` for the attempts that
/// follow a reset.
///
/// # Errors
///
/// The error `reqwest::ClientBuilder::build` returned.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::preset::{reqwest_client, ReqwestClient};
///
/// # fn run() -> Result<(), reqwest::Error> {
/// let client: ReqwestClient = reqwest_client(|builder| builder.timeout(Duration::from_secs(10)))?;
/// // `ServiceExt::<http::Request<String>>::oneshot(client, request)`
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub fn reqwest_client<F>(configure: F) -> Result<ReqwestClient, ::reqwest::Error>
where
    F: Fn(ClientBuilder) -> ClientBuilder,
{
    let pooled = HttpClient::new(configure(::reqwest::Client::builder()).build()?);
    let fresh = HttpClient::new(
        configure(::reqwest::Client::builder())
            .pool_max_idle_per_host(0)
            .build()?,
    );
    Ok(ReqwestLayer::new(fresh).layer(pooled))
}
