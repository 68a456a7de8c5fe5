//! `Reconnect` over real loopback sockets: a `MakeService` that opens a TCP connection and runs
//! hyper's `client::conn::http1` handshake, against the scripted [`ResetServer`], which counts
//! the connections it accepted and resets (`RST`) a connection after reading a request when
//! its script says so.
//!
//! With the `hyper` feature the connection's error is `hyper::Error` itself (the classifier knows
//! it); without it, the connection boxes it (a `BoxError` is classified by walking its chain,
//! which finds the `io::Error` with no feature at all). Either way the caller can downcast the
//! error to `hyper::Error`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::{FreshConnectionLayer, ResetRetryLayer};

use crate::reset_server::{Behaviour, ResetServer};

/// No test may take longer than this, whatever the client or server does.
const TEST_TIMEOUT: Duration = Duration::from_secs(5);

type Request = http::Request<Full<Bytes>>;
type Response = http::Response<Incoming>;

#[cfg(feature = "hyper")]
type ConnError = hyper::Error;
#[cfg(not(feature = "hyper"))]
type ConnError = BoxError;

/// One HTTP/1.1 connection as a tower service.
struct Http1 {
    send: SendRequest<Full<Bytes>>,
}

// Without the feature, `ConnError::from` boxes hyper's error; with it, it is the identity.
#[cfg_attr(feature = "hyper", allow(clippy::useless_conversion))]
impl Service<Request> for Http1 {
    type Response = Response;
    type Error = ConnError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ConnError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.send.poll_ready(cx).map_err(ConnError::from)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let response = self.send.send_request(request);
        Box::pin(async move { response.await.map_err(ConnError::from) })
    }
}

/// The `MakeService`: connects to the address and runs the handshake; counts its calls.
fn maker(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    SocketAddr,
    Response = Http1,
    Error = BoxError,
    Future = impl Future<Output = Result<Http1, BoxError>> + Send,
> + Send
       + 'static {
    tower::service_fn(move |addr: SocketAddr| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            Ok::<_, BoxError>(Http1 { send })
        }
    })
}

/// `ResetRetryLayer::new()` over a buffer over `FreshConnectionLayer::reconnect(addr)`.
fn stack(
    addr: SocketAddr,
    policy: StandardConnections,
    calls: Arc<AtomicUsize>,
) -> impl Service<Request, Response = Response, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .buffer(16)
        .layer(FreshConnectionLayer::reconnect(addr).policy(policy))
        .service(maker(calls))
}

fn get(server: &ResetServer) -> Request {
    http::Request::get(server.url("/"))
        .body(Full::default())
        .unwrap()
}

fn post(server: &ResetServer) -> Request {
    http::Request::post(server.url("/pay"))
        .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
        .unwrap()
}

/// Sends `request`, and reads the whole body of the response.
async fn send<S>(service: &mut S, request: Request) -> Result<(u16, Bytes), BoxError>
where
    S: Service<Request, Response = Response, Error = BoxError>,
{
    let response = service.ready().await?.call(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn with_timeout<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test timed out")
}

#[tokio::test]
async fn a_reset_get_succeeds_on_a_new_connection_which_later_requests_reuse() {
    with_timeout(async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut service = stack(server.addr(), StandardConnections::new(), calls.clone());

        let (status, body) = send(&mut service, get(&server)).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        assert_eq!(
            server.received("GET"),
            2,
            "the reset request, then its retry"
        );
        assert_eq!(
            server.connections(),
            2,
            "the retry went on a new connection"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        for _ in 0..5 {
            assert_eq!(send(&mut service, get(&server)).await.unwrap().0, 200);
        }
        assert_eq!(server.received("GET"), 7);
        assert_eq!(server.connections(), 2, "the new connection is kept");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn a_reset_post_is_not_sent_again_but_the_connection_is_replaced() {
    with_timeout(async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut service = stack(server.addr(), StandardConnections::new(), calls.clone());

        let error = send(&mut service, post(&server)).await.unwrap_err();
        assert!(
            error.downcast_ref::<hyper::Error>().is_some(),
            "the connection's own error: {error:?}"
        );
        assert_eq!(server.executed("POST"), 1, "never sent twice");

        assert_eq!(send(&mut service, get(&server)).await.unwrap().0, 200);
        assert_eq!(server.connections(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn max_requests_replaces_the_connection_over_real_sockets() {
    with_timeout(async {
        let server = ResetServer::start(vec![]);
        let calls = Arc::new(AtomicUsize::new(0));
        let policy = StandardConnections::builder()
            .max_requests(2)
            .build()
            .unwrap();
        let mut service = stack(server.addr(), policy, calls.clone());

        for _ in 0..5 {
            assert_eq!(send(&mut service, get(&server)).await.unwrap().0, 200);
        }
        assert_eq!(server.connections(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced_without_a_failed_request() {
    with_timeout(async {
        // The first request says `Connection: close`: hyper closes the connection once the
        // response is read, and the connection service is left holding a closed connection.
        let server = ResetServer::start(vec![]);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut service = stack(server.addr(), StandardConnections::new(), calls.clone());

        let mut request = get(&server);
        request
            .headers_mut()
            .insert(http::header::CONNECTION, "close".parse().unwrap());
        assert_eq!(send(&mut service, request).await.unwrap().0, 200);
        // hyper's `SendRequest::poll_ready` now fails: `Reconnect` makes a new connection.
        assert_eq!(send(&mut service, get(&server)).await.unwrap().0, 200);
        assert_eq!(server.connections(), 2);
        assert_eq!(server.received("GET"), 2, "no request failed");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await;
}
