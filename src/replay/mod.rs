//! Retry requests whose body is not `Clone`: streaming uploads, hyper's `Incoming` in a
//! proxy, every tonic call.
//!
//! A retry needs the request again, but sending a request consumes its body. Bodies that are
//! `Clone` (`Full<Bytes>`, `String`, `Empty`) are simply cloned by
//! [`CloneBody`](crate::reset_retry::policy::CloneBody). For the others, [`ReplayBody`] keeps
//! the chunks it sent, sharing them rather than copying, up to a cap (64 KiB by default), so
//! that a copy can send them again; [`ReplayBodyLayer`] wraps every request body in one.
//!
//! A request is **not retried** (and no error of its own is raised: the caller gets the
//! attempt's real failure) when its body:
//!
//! * outgrew the cap: the kept chunks are freed at once, so a 1 GiB upload keeps at most the
//!   cap in memory, and is sent once;
//! * had not been read to its end when the failed attempt ended with a *response* (a `503`
//!   or gRPC `UNAVAILABLE` with [`unavailable_responses`]): the server answered before it had
//!   the whole request, and may have acted on part of it;
//! * failed with an error of its own.
//!
//! A connection failure in the middle of the body, before any response, does not stop a
//! retry: the retry replays what was sent and then reads on from the original body.
//!
//! # Examples
//!
//! A proxy handler forwards hyper's `Incoming` body upstream; GETs and PUTs whose upstream
//! connection resets are replayed from the kept chunks:
//!
//! ```
//! use hyper::body::Incoming;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceBuilder;
//! use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
//! use tower_reset::ResetRetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Incoming>>();
//! let upstream = ServiceBuilder::new()
//!     .layer(ReplayBodyLayer::new())
//!     .layer(ResetRetryLayer::new())
//!     .service(client);
//! // `upstream` is a `Service<http::Request<Incoming>>`: hand it the requests your server
//! // receives.
//! # let _ = upstream;
//! # }
//! ```
//!
//! [`unavailable_responses`]: crate::classify::StandardClassifier::unavailable_responses

mod body;
pub(crate) mod head;
mod kept;
mod layer;
mod waiting;

pub use self::body::{ReplayBody, DEFAULT_CAP};
pub use self::layer::{ReplayBodyLayer, ReplayBodyService};
