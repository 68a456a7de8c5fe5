//! One line per client: the stack assembled in the right order, with types you can name.
//!
//! The layers of this crate are public and compose freely, but their order matters (see
//! [below](#the-order-and-what-goes-wrong-in-another)), and the type of a stack is long to
//! write. A preset assembles the recommended stack for one client, and names its type, so that
//! it can be stored in a struct or in axum's `State` in one line:
//!
//! | client | preset | its type | feature |
//! |---|---|---|---|
//! | hyper-util's legacy `Client` | [`hyper_util_client()`], or [`HyperUtilLayer`] over a client of your own | [`HyperUtilClient`] (over your client: [`HyperUtilStack<S>`]) | `hyper-util` |
//! | the same, resuming `GET` bodies that break part-way | [`resuming_hyper_util_client()`] | [`ResumingHyperUtilClient`] | `hyper-util` |
//! | the same, for a proxy forwarding streaming bodies (hyper's `Incoming`, axum's `Body`) | [`proxy_client()`] | [`ProxyClient<Body>`](ProxyClient) | `hyper-util` |
//! | a tonic `Endpoint` (for `Channel`s and generated clients) | [`grpc_channel(endpoint, methods)`](grpc_channel), or [`GrpcLayer`] | [`GrpcChannel`] (over your service: [`GrpcStack<S>`]) | `tonic` |
//! | a `reqwest::Client` | [`reqwest_client(configure)`](reqwest_client), or [`ReqwestLayer`] | [`ReqwestClient`] | `reqwest` |
//! | reqwest-middleware | [`ResetRetryMiddleware::new()`](crate::reqwest_middleware::ResetRetryMiddleware::new) (already one line) | | `reqwest-middleware` |
//!
//! Every preset starts from the layers' defaults and takes the layers you configured in their
//! place (`HyperUtilLayer::new().retry(ResetRetryLayer::builder()..build()?)`); the type
//! aliases take the configured types as parameters, with the defaults' types as defaults.
//!
//! # Examples
//!
//! An axum handler calling an upstream through the hyper-util preset, the client in `State`:
//!
//! ```
//! # #[cfg(feature = "hyper-util")]
//! # mod app {
//! use axum::extract::State;
//! use axum::routing::get;
//! use axum::Router;
//! use tower::ServiceExt;
//! use tower_reset::preset::{hyper_util_client, HyperUtilClient};
//!
//! async fn handler(State(upstream): State<HyperUtilClient>) -> String {
//!     let request = http::Request::get("http://127.0.0.1:3000/")
//!         .body(Default::default())
//!         .unwrap();
//!     match upstream.oneshot(request).await {
//!         Ok(response) => response.status().to_string(),
//!         Err(error) => format!("upstream failed: {error}"),
//!     }
//! }
//!
//! pub fn app() -> Router {
//!     Router::new()
//!         .route("/", get(handler))
//!         .with_state(hyper_util_client())
//! }
//! # }
//! # #[cfg(feature = "hyper-util")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() { let _ = app::app(); }
//! # #[cfg(not(feature = "hyper-util"))]
//! # fn main() {}
//! ```
//!
//! # The order, and what goes wrong in another
//!
//! Outermost first: [`ResumeLayer`](crate::ResumeLayer) (optional), then for streaming request
//! bodies [`ReplayBodyLayer`](crate::replay::ReplayBodyLayer), then
//! [`ResetRetryLayer`](crate::ResetRetryLayer) (*whether*), [`BackoffLayer`](crate::BackoffLayer)
//! (*when*), [`FreshConnectionLayer`](crate::FreshConnectionLayer) (*which connection*), the
//! client. The layers talk through the [`AttemptRecord`](crate::attempt::AttemptRecord) that
//! `ResetRetry` puts on each retry, so each must sit where it can read it:
//!
//! | order | what happens |
//! |---|---|
//! | `BackoffLayer` outside `ResetRetryLayer` | the backoff sees only first attempts (no record) and waits for nothing: retries go out at once, and a server's `Retry-After` is ignored. `ResetRetry` notices that no layer below reported a delay for a retry after a hint, and says so once (a `tower_reset::retry` WARN event, with `tracing`); each retry's [`AttemptSummary::delay`](crate::attempt::AttemptSummary::delay) is `None` |
//! | `FreshConnectionLayer` outside `ResetRetryLayer` | the retries never reach it: a retry can go out on the next stale pooled connection, and the next |
//! | `ReplayBodyLayer` inside `ResetRetryLayer` | does not compile: the retry layer cannot copy a streaming body, and the error says to put `ReplayBodyLayer` outside |
//! | `ResumeLayer` inside `ResetRetryLayer` | a resume request is not retried when its own connection fails |
//!
//! # Limits
//!
//! A preset is the defaults, assembled: 3 attempts, a retry budget, the standard policy (a
//! `POST` is not sent twice unless it was never sent), no status retries. See the README's "How
//! long it keeps trying" for what they bridge and how to ride through longer outages.

#[cfg(feature = "hyper-util")]
mod hyper_util;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tonic")]
mod tonic;

#[cfg(feature = "hyper-util")]
pub use self::hyper_util::{
    hyper_util_client, proxy_client, resuming_hyper_util_client, HyperUtilClient, HyperUtilLayer,
    HyperUtilStack, ProxyClient, ResumingHyperUtilClient,
};
#[cfg(feature = "reqwest")]
pub use self::reqwest::{reqwest_client, ReqwestClient, ReqwestLayer};
#[cfg(feature = "tonic")]
pub use self::tonic::{grpc_channel, GrpcChannel, GrpcLayer, GrpcStack};
