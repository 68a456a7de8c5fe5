//! [`ConnectEndpoint`]: a tonic `Endpoint` as a `MakeService`, one `Channel` per connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::{Channel, Endpoint};
use tower_service::Service;

/// Connects an [`Endpoint`] into a [`Channel`]: the `MakeService` under
/// [`FreshConnectionLayer::reconnect`](crate::FreshConnectionLayer::reconnect) in the tonic
/// stack, so that the stack, not the channel, decides when a connection is replaced.
///
/// Each call runs [`Endpoint::connect`]: the channel it returns is connected (the TCP and
/// HTTP/2 handshakes are done, or their failure is the call's error), so a request sent on it
/// goes out on that new connection. See the [module documentation](super) for why the stack
/// needs this.
///
/// # Examples
///
/// ```
/// use tonic::transport::Endpoint;
/// use tower::ServiceBuilder;
/// use tower_reset::tonic::{fresh_channel_policy, ConnectEndpoint};
/// use tower_reset::FreshConnectionLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let endpoint = Endpoint::from_static("http://127.0.0.1:50051");
/// let service = ServiceBuilder::new()
///     .buffer(1024) // one connection, shared by every clone of the stack above
///     .layer(FreshConnectionLayer::reconnect(endpoint).policy(fresh_channel_policy()))
///     .service(ConnectEndpoint::new());
/// # let _ = service;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectEndpoint {
    _priv: (),
}

impl ConnectEndpoint {
    /// The `MakeService`.
    pub const fn new() -> Self {
        Self { _priv: () }
    }
}

/// The future of [`ConnectEndpoint`]: [`Endpoint::connect`], boxed (its type has no name).
pub struct ConnectFuture {
    inner: Pin<Box<dyn Future<Output = Result<Channel, tonic::transport::Error>> + Send>>,
}

impl Future for ConnectFuture {
    type Output = Result<Channel, tonic::transport::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ConnectFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectFuture").finish_non_exhaustive()
    }
}

impl Service<Endpoint> for ConnectEndpoint {
    type Response = Channel;
    type Error = tonic::transport::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, endpoint: Endpoint) -> Self::Future {
        ConnectFuture {
            inner: Box::pin(async move { endpoint.connect().await }),
        }
    }
}
