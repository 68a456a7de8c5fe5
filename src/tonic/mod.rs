//! The stack over tonic: a [`tonic::transport::Channel`] and the clients generated
//! for it survive connection resets.
//!
//! # What tonic does on its own
//!
//! tonic does not retry. Its `Channel` reconnects after a connection dies, but the call that was
//! on it fails, and the code a generated client reports says little about why (measured on
//! loopback, tonic 0.14):
//!
//! | what happened | `Status` code | error chain under the `Status` | class |
//! |---|---|---|---|
//! | connection refused, reset during the TCP handshake, or connect timed out (`Endpoint::connect_timeout`) | `Unavailable`, "tcp connect error" | `transport::Error` → [`tonic::ConnectError`] → hyper-util's connect error → `io::Error` | never sent |
//! | name that does not resolve, TLS handshake that failed (rustls: `InvalidData`) | `Unavailable` | `transport::Error` → [`tonic::ConnectError`] → hyper-util's "dns error", or the connector's `io::Error` (`InvalidData`) | none: fails again, not retried |
//! | `RST_STREAM(REFUSED_STREAM)` | `Unknown`\* | `transport::Error` → `hyper::Error` → remote `h2::Error` (`REFUSED_STREAM`) | refused |
//! | `GOAWAY(NO_ERROR)` above the call's stream | `Unknown`\* | `transport::Error` → `hyper::Error` → remote `h2::Error` (`GOAWAY`, `NO_ERROR`) | refused |
//! | TCP reset after the server read the call | `Unknown`, "transport error" | `transport::Error` → `hyper::Error` → `io::Error` (`ConnectionReset`) | unknown outcome |
//!
//! \* When tonic's `server` feature is enabled in the build (a crate that is also a gRPC server,
//! or a workspace that enables it anywhere), tonic maps h2 reasons to codes: `REFUSED_STREAM`
//! becomes `Unavailable` and `GOAWAY(NO_ERROR)` becomes `Internal`. So the same failure has
//! different codes in different builds, and a reset of a call the server executed has the same
//! code (`Unknown`) as an application error. That is why the
//! [`StandardClassifier`](crate::classify::StandardClassifier) never looks at the code: it
//! walks the chain under the `Status` (`tonic::Status` and `tonic::transport::Error` both
//! implement [`ClassifyError`](crate::classify::ClassifyError) for it).
//!
//! # The stack
//!
//! Every gRPC call is an HTTP/2 `POST` whose body is a stream, so the stack over a channel needs
//! four things the hyper-util stack does not:
//!
//! * a **replayable body**: a tonic request body is not `Clone`, so
//!   [`ReplayBodyLayer`](crate::replay::ReplayBodyLayer) wraps it in a
//!   [`ReplayBody`](crate::replay::ReplayBody) that keeps what was sent (up to 64 KiB by
//!   default; a larger call, such as a long client stream, is sent once and not retried), and
//!   [`ChannelBodyLayer`] turns it back into the `tonic::body::Body` the channel takes;
//! * a **policy that knows gRPC idempotency**: [`IdempotentMethods`] retries, on top of what the
//!   server certainly did not process, the methods your proto declares idempotent;
//! * optionally, **gRPC status semantics**: [`UnavailableStatusLayer`] reports a final
//!   connection failure as `UNAVAILABLE`, as the gRPC spec asks of transport errors, and
//!   [`StandardClassifier::unavailable_responses`](crate::classify::StandardClassifier::unavailable_responses) treats a trailers-only `UNAVAILABLE` answer
//!   as a failure to retry, after the server's `grpc-retry-pushback-ms` if it sent one (a
//!   negative pushback means "do not retry", and is obeyed);
//! * a **new connection for each retry**: [`fresh_channel`] in place of the bare channel (see
//!   below).
//!
//! # A new connection for the retry
//!
//! A `Channel` reconnects by itself after its connection dies, but it learns that the
//! connection is dead only when hyper's connection task has ended, a moment after the failed
//! call's error reached the caller. A retry sent at once (as [`BackoffLayer`](crate::BackoffLayer)
//! sends the first retry after a connection failure) can be handed to the dying connection in
//! that moment, which cancels it unsent. Measured with the reset lab over a bare lazy channel
//! (`tests/clients/tonic_channel.rs`, 600 idempotent calls, each after one connection failure:
//! a reset or close at accept, a reset or close after the request, a `GOAWAY`, a forgotten
//! connection), 11 needed a third attempt (`[UnknownOutcome, NeverSent]`,
//! `[Refused, NeverSent]`), leaving none under the default limit of 3 for another fault.
//!
//! So the stack sits on [`fresh_channel`]`(endpoint)`: one *connected* channel at a time, made
//! by [`ConnectEndpoint`] under [`FreshConnectionLayer::reconnect`](crate::FreshConnectionLayer::reconnect),
//! dropped for a new one after any connection failure ([`fresh_channel_policy`]), and shared by
//! the stack's clones through a tower `Buffer`. The retry after a failure then goes out on a
//! connection made after it: in the same 600 calls, every failure cost exactly one more
//! attempt, on a new connection (or none, when the connected channel saw the connection go
//! before it sent, and reconnected by itself). A tonic `Channel` over a balanced list of
//! endpoints is not covered: it has its own reconnect logic per endpoint.

//! # Examples
//!
//! The whole recipe, outermost layer first. A client generated by `tonic-build` takes any
//! `GrpcService`: `EchoClient::new(service)` where this example uses
//! [`tonic::client::Grpc`], the type every generated client wraps.
//!
//! ```
//! use tonic::transport::Endpoint;
//! use tower::ServiceBuilder;
//! use tower_reset::classify::StandardClassifier;
//! use tower_reset::replay::ReplayBodyLayer;
//! use tower_reset::tonic::{
//!     fresh_channel, ChannelBodyLayer, IdempotentMethods, UnavailableStatusLayer,
//! };
//! use tower_reset::{BackoffLayer, ResetRetryLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_reset::ConfigError> {
//! let endpoint = Endpoint::from_static("http://127.0.0.1:50051");
//!
//! // Also retry calls answered with a trailers-only UNAVAILABLE.
//! let classifier = StandardClassifier::new().unavailable_responses(true);
//! let retry = ResetRetryLayer::builder()
//!     // `rpc Get` has `option idempotency_level = IDEMPOTENT;` in the proto.
//!     .policy(IdempotentMethods::new(["/echo.Echo/Get"]))
//!     .classifier(classifier)
//!     .build()?;
//!
//! let service = ServiceBuilder::new()
//!     .layer(UnavailableStatusLayer::new().classifier(classifier)) // final failures: UNAVAILABLE
//!     .layer(ReplayBodyLayer::new()) // keep what was sent, up to 64 KiB
//!     .layer(retry) // whether
//!     .layer(BackoffLayer::new()) // when
//!     .layer(ChannelBodyLayer::new()) // back to `tonic::body::Body`
//!     .service(fresh_channel(endpoint)); // which connection: a new one after a failure
//!
//! // With a generated client: `let mut client = EchoClient::new(service);`
//! let client = tonic::client::Grpc::new(service);
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
//!
//! The same stack in one line is [`crate::preset::grpc_channel`], whose type
//! [`GrpcChannel`](crate::preset::GrpcChannel) names the client: `EchoClient<GrpcChannel>`.
//!
//! A call's history (why it failed, what each attempt met) reaches a
//! [`HistoryObserver`](crate::attempt::HistoryObserver) put in the `tonic::Request`'s
//! extensions, which tonic hands on to the HTTP request the stack sees:
//!
//! ```
//! use tower_reset::attempt::HistoryObserver;
//!
//! # struct EchoRequest;
//! let observer = HistoryObserver::default();
//! let mut request = tonic::Request::new(EchoRequest);
//! request.extensions_mut().insert(observer.clone());
//! // let result = client.echo(request).await;
//! // if let (Err(status), Some(history)) = (&result, observer.get()) { .. }
//! ```
//!
//! `examples/tonic_client/` runs this stack against an in-process tonic server behind a proxy
//! that resets connections, and prints what happened.
//!
//! # Limits
//!
//! * A call whose body outgrew the replay cap is sent once: raise the cap with
//!   [`ReplayBodyLayer::cap`](crate::replay::ReplayBodyLayer::cap) for longer client streams.
//! * A failure in the middle of the *response* stream (server streaming) happens after the call
//!   returned its response, out of reach of a `Service`-level retry.
//! * The channel's own timeout (`Endpoint::timeout`) applies to each attempt; a deadline for all
//!   attempts together is [`ResetRetryLayer::builder`](crate::ResetRetryLayer::builder)`.deadline(..)`.

mod channel_body;
mod connect_endpoint;
mod fresh_channel;
mod idempotent_methods;
mod unavailable;

pub use self::channel_body::{ChannelBody, ChannelBodyLayer};
pub use self::connect_endpoint::{ConnectEndpoint, ConnectFuture};
pub use self::fresh_channel::{fresh_channel, fresh_channel_policy, FreshChannel};
pub use self::idempotent_methods::IdempotentMethods;
pub use self::unavailable::{ResponseFuture, UnavailableStatus, UnavailableStatusLayer};
