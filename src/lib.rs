//! Tower middleware that survives "connection reset by peer", safely.
//!
//! A client that talks to real servers meets `ECONNRESET` (errno 104): a pooled keep-alive
//! connection the server already closed, an overloaded server, a proxy that cuts idle
//! connections, a restart. Sending the request again usually fixes it, but not always safely:
//! a connection reset *after* the request was written may come from a server that already acted
//! on it, and a blind retry of a POST can charge a customer twice.
//!
//! This crate answers the question "may this request go out again?" by how far the request got:
//!
//! * **never sent** (connection refused, closed before the request was written): safe to
//!   retry, whatever the method;
//! * **refused by the protocol** (h2 `REFUSED_STREAM`, graceful `GOAWAY`): safe to retry,
//!   whatever the method;
//! * **unknown outcome** (reset or closed after the request was sent): retried only for
//!   idempotent requests (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or a request with an
//!   `Idempotency-Key` header).
//!
//! # Layers
//!
//! | layer | question | module |
//! |---|---|---|
//! | [`ResetRetryLayer`] | **whether** a failed request may be tried again | [`reset_retry`] |
//! | [`BackoffLayer`] | **when** the next attempt may go out (and how long to wait for a server that restarts) | [`backoff`] |
//! | [`FreshConnectionLayer`] | **on which connection** it goes out | [`fresh_connection`] |
//! | `ResumeLayer` (feature `resume`) | a `GET` **body** that breaks part-way continues, by range request | `resume` |
//!
//! Each retry carries an [`AttemptRecord`](attempt::AttemptRecord) in its request extensions, so
//! that layers below can act on it (see [`attempt`]).
//!
//! To learn *why* connections are reset (an idle timeout, a request or age limit, a restart,
//! overload, a size limit, a proxy), attach a [`diagnose::Collector`] to the stack and read its
//! report: it names the probable cause, its evidence, and the setting to change.
//!
//! # Example
//!
//! The recommended stack over hyper-util's legacy client (feature `hyper-util`), outermost
//! first:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};
//!
//! # #[cfg(feature = "hyper-util")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let mut service = ServiceBuilder::new()
//!     .layer(ResetRetryLayer::new()) // whether
//!     .layer(BackoffLayer::new()) // when
//!     .layer(FreshConnectionLayer::new()) // which connection
//!     .service(client);
//!
//! let request = http::Request::get("http://127.0.0.1:3000/").body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! # Events
//!
//! With the `tracing` feature, the layers emit `tracing` events with structured fields, each
//! under a target of its own so that a subscriber can choose what it wants
//! (`RUST_LOG=tower_reset::give_up=info,tower_reset::retry=off`):
//!
//! | target | level | when | fields |
//! |---|---|---|---|
//! | `tower_reset::retry` | INFO | a retry went out, after its backoff (a retry abandoned before it went out is not logged) | `method`, `uri`, `attempt`, `class` (of the failure before it), `delay` |
//! | `tower_reset::give_up` | INFO | a request ended on a failure of this crate's kind without another attempt | `method`, `uri`, `attempts`, `class`, `reason` ([`StopReason::as_str`](attempt::StopReason::as_str)) |
//! | `tower_reset::backoff` | DEBUG | the backoff held an attempt back, or abandoned it; an attempt waited for a host that refuses connections (held, sent as the probe, released, or stopped at the end of the window) | `attempt`, `delay` or `reason`; `window`, `waited`, `how` (`probe`, `released`, `window_end`, or the stop reason) |
//! | `tower_reset::backoff` | INFO | a host started to refuse connections and requests are held for it ([`backoff::RideOut`]), or it answers again and they are released | `host`, `down_for`; and, once it answers, `waiters`, `spread` |
//! | `tower_reset::fresh_connection` | INFO | [`FreshConnectionLayer`] condemned a connection after a failure: the pooled strategy poisoned it (and retired the idle siblings it counts), the reconnect strategy replaces it at the next `poll_ready` | `failure`, `idle_siblings_retired` (pooled) |
//! | `tower_reset::fresh_connection` | DEBUG | the pooled strategy retired idle connections likely to be stale before a request not safe to repeat | `method`, `uri`, `retired`, `stale_after_ms` |
//! | `tower_reset::fresh_connection` | DEBUG | the detour strategy sent an attempt that follows a failure, or a request not safe to repeat while the pool is likely stale, to a new connection | `failure`, `attempt`; or `method`, `uri` |
//! | `tower_reset::fresh_connection` | DEBUG | the reconnect strategy made a connection, retired one past a limit, saw one closed, or failed to connect | `reason`, `error` |
//! | `tower_reset::diagnose` | DEBUG | a [`diagnose`] collector recorded a connection failure | `class`, `reused`, `idle_ms`, `age_ms`, `requests_before`, `body`, `in_flight` |
//! | `tower_reset` | INFO / DEBUG | [`ResumeLayer`] resumed a response body, or did not | `resume`, `offset`; or `why` |
//!
//! The same facts, without `tracing`, are in each request's
//! [`AttemptHistory`](attempt::AttemptHistory).
//!
//! # Feature flags
//!
//! The default build depends only on `tower`, `tower-service`, `tokio` (time), `http` and
//! `pin-project-lite`, and recognises `std::io::Error` kinds anywhere in an error chain. The
//! features teach the classifier other crates' error types:
//!
//! | feature | what it adds |
//! |---|---|
//! | `replay` | [`replay::ReplayBody`]: retry requests whose body is not `Clone` (streams, hyper `Incoming`, tonic); implied by `hyper`, `tonic`, `reqwest` |
//! | `resume` | [`resume::ResumeLayer`]: a `GET` response body that fails part-way continues with `Range` and `If-Range`, never mixing two versions; implied by `hyper` |
//! | `hyper` | `hyper::Error`: canceled (never sent), incomplete message (unknown outcome); implies `replay` and `resume` |
//! | `hyper-util` | hyper-util legacy client connect errors (never sent); implies `hyper` |
//! | `h2` | `h2::Error`: `REFUSED_STREAM`, `GOAWAY`, and the io error inside |
//! | `tonic` | `tonic::Status` and `tonic::transport::Error` (classified through their source, never by the code), and [`tonic`]: the stack over a `Channel` and generated clients; implies `h2`, `hyper`, `replay` |
//! | `reqwest` | `reqwest::Error` connect errors, and `tower_reset::reqwest::HttpClient` to run the stack over a `reqwest::Client`; implies `hyper-util` |
//! | `reqwest-middleware` | [`reqwest_middleware::ResetRetryMiddleware`]: the stack as a reqwest-middleware `Middleware`; implies `reqwest` |
//! | `tracing` | `tracing` events for each retry and each refusal to retry, and for what the fresh-connection strategies and the diagnosis do |
//! | `lab` | [`lab::Lab`]: an in-process loopback HTTP/1.1 and HTTP/2 server whose resets, closes, refusals and restarts are scripted per connection and per request, that answers range requests, and that counts what it received, executed and sent, to test any client |

// A build without every feature leaves out items the docs link to (`FreshConnection` needs
// `hyper-util`, say); their links are then plain text. The docs.rs build, with every feature,
// is checked with broken links denied, so no other link can break unseen.
#![cfg_attr(
    not(all(
        feature = "hyper-util",
        feature = "tonic",
        feature = "reqwest-middleware",
        feature = "lab",
        feature = "resume"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod guide;
/// The old name of [`guide`]. (A re-export cannot carry `#[deprecated]`; it is kept so that
/// links written against the old name still resolve.)
#[doc(hidden)]
pub use self::guide as _docs;
pub mod attempt;
pub mod backoff;
pub mod classify;
mod config_error;
pub mod diagnose;
pub mod fresh_connection;
pub mod hint;
mod host_hash;
#[cfg(feature = "lab")]
pub mod lab;
#[cfg(any(feature = "hyper-util", feature = "tonic"))]
pub mod preset;
#[cfg(feature = "replay")]
pub mod replay;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;
pub mod reset_retry;
#[cfg(feature = "resume")]
pub mod resume;
#[cfg(feature = "tonic")]
pub mod tonic;
mod trace;

pub use self::config_error::ConfigError;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(all(
    doctest,
    feature = "hyper-util",
    feature = "tonic",
    feature = "reqwest-middleware"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
pub use self::backoff::{Backoff, BackoffLayer};
#[cfg(feature = "hyper-util")]
pub use self::fresh_connection::FreshConnection;
pub use self::fresh_connection::FreshConnectionLayer;
pub use self::reset_retry::{ResetRetry, ResetRetryLayer};
#[cfg(feature = "resume")]
pub use self::resume::ResumeLayer;
