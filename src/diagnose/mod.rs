//! Tell why connections are reset: bounded per-host statistics of connection failures, and a
//! [`Report`] that names the probable cause, its evidence and the setting to change.
//!
//! # Why
//!
//! "Connection reset by peer" says nothing about its cause, and each cause needs a different
//! fix: a server, proxy, NAT or load balancer that drops idle keep-alive connections (keep
//! idle connections below its timeout), a per-connection request or age limit (retire
//! connections before it), a restart (retry on a fresh connection), overload (send less at
//! once), a request-size limit (send smaller bodies), a proxy that cuts connections (read its
//! logs). The layers of this crate see the facts that tell them apart at the moment a request
//! fails: how far the request got ([`FailureClass`](crate::classify::FailureClass)), and, in
//! the pooled strategy, whether its connection was reused, how long it had been idle, how old
//! it was and how many requests it had carried. A [`Collector`] keeps those facts, and the
//! counts of the requests that worked, which bound every limit from below.
//!
//! # Use
//!
//! One collector, attached where the failures are seen, read whenever you like:
//!
//! * hyper-util's legacy `Client`:
//!   [`FreshConnectionLayer::new().diagnose(collector.clone())`](crate::FreshConnectionLayer::diagnose)
//!   (feature `hyper-util`): every fact above;
//! * any other client (a tonic `Channel`, reqwest): [`DiagnoseLayer`], just above the client:
//!   the failure class, the body size from `content-length`, the requests in flight and the
//!   time, but not the connection facts.
//!
//! ```
//! # #[cfg(feature = "hyper-util")]
//! # fn main() {
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceBuilder;
//! use tower_reset::diagnose::Collector;
//! use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};
//!
//! let collector = Collector::new();
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let service = ServiceBuilder::new()
//!     .layer(ResetRetryLayer::new())
//!     .layer(BackoffLayer::new())
//!     .layer(FreshConnectionLayer::new().diagnose(collector.clone()))
//!     .service(client);
//! # let _ = service;
//!
//! // Later, say every few minutes, or when a request failed:
//! println!("{}", collector.report());
//! # }
//! # #[cfg(not(feature = "hyper-util"))]
//! # fn main() {}
//! ```
//!
//! A report over a server that drops connections idle for 2 s reads:
//!
//! ```text
//! tower-reset diagnosis: 4 connection failures in 25 requests to 1 host in 25.9 s
//! http://127.0.0.1:45595: 4 connection failures in 25 requests (4 unknown outcome)
//!   probable cause: idle timeout: something on the way (the server, a proxy, a NAT or a load balancer) drops connections idle for between 1.9 s and 2.0 s
//!     evidence: 4 failures on connections idle 2.0 s or more; reused connections worked after up to 1.9 s idle
//!     fix: keep idle connections below 1.6 s: `fresh_connection::policy::StandardConnections::builder().max_idle(Duration::from_millis(1600))`, or hyper-util's `Client::builder(..).pool_idle_timeout(Duration::from_millis(1600))`
//! ```
//!
//! and over a healthy one: `tower-reset diagnosis: no connection failures (30 requests to 1
//! host in 9.0 s)`. The same facts are fields: [`Report::hosts`], [`HostReport::causes`], and
//! each [`Cause`] with its figures (`Cause::IdleTimeout { suggested_max_idle, .. }`). When the
//! pooled strategy learns idle timeouts
//! ([`learn_idle_timeout`](crate::fresh_connection::policy::ConnectionPolicy::learn_idle_timeout))
//! and has learned the host's, the idle-timeout fix ends with what it learned (`; learned:
//! 1.9 s`; the field `learned_idle_limit`). With the feature `tracing`, each recorded failure is
//! also a `debug` event (target `tower_reset::diagnose`).
//!
//! # The causes
//!
//! | cause | the evidence | the fix |
//! |---|---|---|
//! | [`IdleTimeout`](Cause::IdleTimeout) | failures on reused connections idle *t* or more, successes after shorter idle times | `max_idle` below *t*, or hyper-util's `pool_idle_timeout` |
//! | [`RequestLimit`](Cause::RequestLimit) | failures on request *n* + 1 of their connection, no connection with more than *n* | `max_requests(n)` |
//! | [`MaxAge`](Cause::MaxAge) | failures on connections *t* old or older, successes on younger ones | `max_age` below *t* |
//! | [`SizeLimit`](Cause::SizeLimit) | failures on bodies of *s* or more, successes with smaller bodies | smaller bodies, or a higher server limit |
//! | [`Overload`](Cause::Overload) | the failure rate rises with the requests in flight | fewer requests at once |
//! | [`Restart`](Cause::Restart) | bursts: several connections failing within a second, often with refusals | none: retries on fresh connections |
//! | [`ProxyCut`](Cause::ProxyCut) | failures with none of the patterns above | the proxy's and the server's logs |
//! | [`Unreachable`](Cause::Unreachable), [`StreamsRefused`](Cause::StreamsRefused) | requests never sent, or refused by HTTP/2, outside a burst | none: they are retried for any method |
//!
//! A cause is named when it explains at least two failures and a fifth of those kept; how
//! they are told apart is in the source (`src/diagnose/analyze.rs`).
//!
//! # Cost and bounds
//!
//! On the happy path a request costs a few relaxed atomic operations on its host's counters
//! (in flight, a count by concurrency, the largest idle time, age, request count and body size
//! that worked), and no allocation; the collector's lock is taken only when a layer clone
//! meets a host other than the last one it saw. A failure takes its host's lock once, to
//! record it.
//!
//! Memory is bounded whatever the traffic: at most 64 hosts (the requests to further hosts
//! are counted together, as `(other hosts)`), and per host the counts and the 128 most recent
//! failures, about 14 KiB; under 1 MiB in all.
//!
//! # Limits
//!
//! * Successes bound the limits from below, so a limit is pinned only once requests have
//!   worked close below it: a client that sends a request every 10 s to a server with a 5 s
//!   idle timeout learns that the limit is *at most* 10 s (and says so).
//! * Connection facts exist only in the pooled strategy, and only for connections whose
//!   connector reports their addresses (hyper-util's `HttpConnector` does).
//! * A failure in a response body, after the response head arrived, is not seen: the layers
//!   return before the body is read.
//! * To measure a server's limits directly, rather than from traffic, run the `probe` example:
//!   `cargo run --release --example probe --features hyper-util -- http://host:port/`.

mod analyze;
mod cause;
mod collector;
mod display;
mod future;
mod host;
mod layer;
mod report;

pub use self::cause::Cause;
pub use self::collector::Collector;
pub use self::future::DiagnoseFuture;
pub use self::layer::{Diagnose, DiagnoseLayer};
pub use self::report::{HostReport, Report};

#[cfg(feature = "hyper-util")]
pub(crate) use self::collector::{content_length, Recorder, Watch};
#[cfg(feature = "hyper-util")]
pub(crate) use self::host::{ConnectionFacts, ConnectionUse};
