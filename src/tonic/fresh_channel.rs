//! [`fresh_channel`]: one connected tonic `Channel` at a time, replaced after any connection
//! failure, so that a retry goes out on a connection made after the failure.

use tonic::transport::Endpoint;
use tower::buffer::Buffer;
use tower::Layer;

use super::ConnectEndpoint;
use crate::classify::FailureClass;
use crate::fresh_connection::policy::StandardConnections;
use crate::fresh_connection::ReconnectFuture;
use crate::FreshConnectionLayer;

/// Requests the [`FreshChannel`]'s buffer holds before `poll_ready` waits.
const BUFFER: usize = 1024;

/// What the tonic stack sits on in place of a bare `Channel`: made by [`fresh_channel`].
///
/// A tower `Buffer` (cheap to clone, like a `Channel`) over
/// [`Reconnect`](crate::fresh_connection::Reconnect)`<`[`ConnectEndpoint`]`, Endpoint,
/// StandardConnections>`: one connected channel, dropped for a new one after any connection
/// failure.
pub type FreshChannel = Buffer<
    http::Request<tonic::body::Body>,
    ReconnectFuture<tonic::transport::channel::ResponseFuture, StandardConnections>,
>;

/// One connected tonic channel to `endpoint` at a time, replaced after any connection failure:
/// the bottom of the tonic stack (see the [module documentation](super) for why a bare
/// `Channel` is not enough).
///
/// The first connection is made by the first request, as with `Endpoint::connect_lazy`. Like
/// it, this must be called inside a tokio runtime: the buffer spawns its worker task.
///
/// # Examples
///
/// ```
/// use tonic::transport::Endpoint;
/// use tower_reset::tonic::fresh_channel;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = fresh_channel(Endpoint::from_static("http://127.0.0.1:50051"));
/// // Then `ChannelBodyLayer` and the rest of the stack above it, and
/// // `EchoClient::new(stack)`.
/// # let _ = channel;
/// # }
/// ```
pub fn fresh_channel(endpoint: Endpoint) -> FreshChannel {
    let fresh = FreshConnectionLayer::reconnect(endpoint)
        .policy(fresh_channel_policy())
        .layer(ConnectEndpoint::new());
    Buffer::new(fresh, BUFFER)
}

/// The connection policy of [`fresh_channel`]: the [`StandardConnections`] policy, condemning the
/// connection after *any* connection failure (never sent, refused or unknown outcome), so that
/// the retry goes out on a new one.
///
/// A `GOAWAY` and an h2 `RST_STREAM(REFUSED_STREAM)` are both [`FailureClass::Refused`], so a
/// refused stream also gets a new connection for its retry: a handshake more, after a refusal
/// that is rare (and that a server's per-connection stream limit may have caused).
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::fresh_connection::policy::ConnectionPolicy;
/// use tower_reset::tonic::fresh_channel_policy;
///
/// let policy = fresh_channel_policy();
/// assert!(policy.condemns(FailureClass::NeverSent));
/// assert!(policy.condemns(FailureClass::Refused));
/// assert!(policy.condemns(FailureClass::UnknownOutcome));
/// assert!(!policy.condemns(FailureClass::Unavailable)); // an answer: the connection works
/// ```
pub fn fresh_channel_policy() -> StandardConnections {
    StandardConnections::builder()
        .condemn(FailureClass::NeverSent)
        .condemn(FailureClass::Refused)
        .build()
        .expect("a policy with no limit is valid")
}
