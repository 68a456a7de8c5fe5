//! Retry requests whose body is not `Clone`: streaming uploads, hyper's `Incoming` in a
//! proxy, every tonic call.
//!
//! A retry needs the request again, but sending a request consumes its body. Bodies that are
//! `Clone` (`Full<Bytes>`, `String`, `Empty`) are simply cloned by
//! [`CloneBody`](crate::reset_retry::policy::CloneBody). For the others, [`ReplayBody`] keeps
//! what it sent, up to a cap (64 KiB by default), so that a copy can send it again;
//! [`ReplayBodyLayer`] wraps every request body in one.
//!
//! A request is **not retried** (and no error of its own is raised: the caller gets the
//! attempt's real failure) when its body:
//!
//! * outgrew the cap: the kept data is freed at once, so a 1 GiB upload keeps at most the cap
//!   in memory, and is sent once;
//! * had not been read to its end when the failed attempt ended with a *response* (a `503`
//!   or gRPC `UNAVAILABLE` with [`unavailable_responses`]): the server answered before it had
//!   the whole request, and may have acted on part of it (an empty body, or one whose trailers
//!   were sent, is read to its end);
//! * failed with an error of its own.
//!
//! A connection failure in the middle of the body, before any response, does not stop a
//! retry: the retry replays what was sent and then reads on from the original body itself,
//! whether or not the failed attempt has let go of its copy (a client may keep an unsent
//! request inside its error), then sends the same trailers.
//!
//! # Memory
//!
//! What a body keeps stays within the cap, whatever the sizes of its chunks: a chunk can be a
//! window on a much larger read buffer (hyper cuts each chunk of an `Incoming` out of one), so
//! chunks shorter than 64 KiB are copied into blocks of their own and the buffers are let go,
//! longer ones are shared; empty chunks are not kept. The copy of the request also gets its
//! header values and URI in memory of their own, as a proxied request's share hyper's read
//! buffer. Measured through the README's proxy pattern (`tests/replay/slow_client.rs`), a
//! 64 KiB upload holds the cap and 12 KiB more than the bare proxy, whether the client sends
//! it in 1-byte segments or in one write. See [`ReplayBody`] for the details and the costs.
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
