//! Failures to open a connection, one per cause, over real sockets and connectors: which are
//! worth another attempt (the peer may answer the next one) and which will fail the same way
//! every time (a name that does not resolve, a certificate that does not verify, a URL the
//! connector cannot serve). Each is classified, then sent through `ResetRetry` with 3 attempts,
//! counting how often the connector was called.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::{Client, Error as LegacyError};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};
use tower_reset::ResetRetryLayer;

use crate::counting_connector::CountingConnector;
use crate::support::{bounded, closed_port, io_kinds};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

/// A TLS connector whose handshake fails: it opens the TCP connection, then fails the way
/// rustls (through tokio-rustls and hyper-rustls) reports it, an `io::Error` of this kind.
#[derive(Clone, Debug)]
struct FailingHandshake {
    addr: SocketAddr,
    kind: io::ErrorKind,
    message: &'static str,
}

impl Service<Uri> for FailingHandshake {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (addr, kind, message) = (self.addr, self.kind, self.message);
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            drop(tcp); // the handshake ends here
            Err(io::Error::new(kind, message))
        })
    }
}

/// Sends one GET to `uri` through a legacy client over `connector`: the error alone, then
/// through `ResetRetry` with 3 attempts. Returns the first error and how many times the stack
/// called the connector.
async fn fail_twice<C>(connector: C, uri: &str) -> (LegacyError, usize)
where
    C: Connect + Clone + Send + Sync + 'static,
    CountingConnector<C>: Connect,
{
    let request = || {
        http::Request::get(uri)
            .body(Full::<Bytes>::default())
            .expect("a valid request")
    };
    let alone = Client::builder(TokioExecutor::new()).build(connector.clone());
    let error = bounded(uri, alone.request(request()))
        .await
        .expect_err("the connection cannot be made");
    let counted = CountingConnector::new(connector);
    let calls = counted.attempts();
    let client = Client::builder(TokioExecutor::new()).build(counted);
    let stack = ServiceBuilder::new()
        .layer(
            ResetRetryLayer::builder()
                .max_attempts(3)
                .no_budget()
                .build()
                .expect("valid settings"),
        )
        .service(client);
    bounded(uri, stack.oneshot(request()))
        .await
        .expect_err("the connection cannot be made");
    (error, calls.count())
}

/// Nothing listens: the server may be restarting, and the request never left.
#[tokio::test]
async fn a_refused_connection_is_never_sent_and_retried() {
    let uri = format!("http://{}/", closed_port());
    let (error, calls) = fail_twice(HttpConnector::new(), &uri).await;
    assert!(error.is_connect(), "{error:?}");
    assert!(io_kinds(&error).contains(&io::ErrorKind::ConnectionRefused));
    assert_eq!(
        CLASSIFIER.classify_error(&error),
        Some(FailureClass::NeverSent)
    );
    assert_eq!(calls, 3);
}

/// A loopback listener whose accept queue is full (backlog 0, one connection already queued,
/// never accepted): the kernel drops every further SYN, so a connect to it times out. Keep the
/// three alive for as long as the connects must time out.
async fn backlog_full_listener() -> (tokio::net::TcpListener, TcpStream, SocketAddr) {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bind");
    let addr = socket.local_addr().expect("local_addr");
    let listener = socket.listen(0).expect("listen");
    let queued = TcpStream::connect(addr)
        .await
        .expect("the queue's one slot");
    (listener, queued, addr)
}

/// A connect to a listener whose accept queue is full times out. The request never left, and
/// a full queue or a lost SYN may be gone by the next attempt, so it is retried (each attempt
/// waits the connector's timeout again: a deadline bounds the total).
#[tokio::test]
async fn a_connect_timeout_is_never_sent_and_retried() {
    let (_listener, _queued, addr) = backlog_full_listener().await;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_millis(100)));

    let (error, calls) = fail_twice(connector, &format!("http://{addr}/")).await;
    assert!(error.is_connect(), "{error:?}");
    assert!(
        io_kinds(&error).contains(&io::ErrorKind::TimedOut),
        "{error:?}"
    );
    assert_eq!(
        CLASSIFIER.classify_error(&error),
        Some(FailureClass::NeverSent)
    );
    assert_eq!(calls, 3);
}

/// `.invalid` never resolves (RFC 6761): the name will not resolve on the next attempt either.
#[tokio::test]
async fn a_name_that_does_not_resolve_is_not_retried() {
    let (error, calls) = fail_twice(HttpConnector::new(), "http://tower-reset.invalid/").await;
    assert!(error.is_connect(), "{error:?}");
    assert!(
        crate::support::chain(&error)
            .iter()
            .any(|link| link.to_string() == "dns error"),
        "{error:?}"
    );
    assert_eq!(CLASSIFIER.classify_error(&error), None);
    assert_eq!(calls, 1);
}

/// A certificate that failed verification fails the same way every time.
#[tokio::test]
async fn a_certificate_that_does_not_verify_is_not_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let untrusted = FailingHandshake {
        addr,
        kind: io::ErrorKind::InvalidData,
        message: "invalid peer certificate: UnknownIssuer",
    };
    let (error, calls) = fail_twice(untrusted, "http://localhost/").await;
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(CLASSIFIER.classify_error(&error), None);
    let boxed: tower::BoxError = error.into();
    assert_eq!(CLASSIFIER.classify_error(&boxed), None);
    assert_eq!(calls, 1);
}

/// An `https` URL through a connector that only speaks `http` (TLS forgotten in the client's
/// setup): the connector refuses it, and will refuse it again.
#[tokio::test]
async fn a_url_the_connector_cannot_serve_is_not_retried() {
    let uri = format!("https://{}/", closed_port());
    let (error, calls) = fail_twice(HttpConnector::new(), &uri).await;
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(CLASSIFIER.classify_error(&error), None);
    assert_eq!(calls, 1);
}

/// A handshake cut by a reset (a server that resets connections as it accepts them, or
/// restarts) is a broken connection, not an unusable peer: worth another attempt.
#[tokio::test]
async fn a_handshake_cut_by_a_reset_is_never_sent_and_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let cut = FailingHandshake {
        addr,
        kind: io::ErrorKind::ConnectionReset,
        message: "connection reset by peer",
    };
    let (error, calls) = fail_twice(cut, "http://localhost/").await;
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(
        CLASSIFIER.classify_error(&error),
        Some(FailureClass::NeverSent)
    );
    assert_eq!(calls, 3);
}

/// The same causes through a tonic `Channel`, which wraps each in a `tonic::ConnectError`.
#[cfg(feature = "tonic")]
mod tonic_channel {
    use std::io;
    use std::time::Duration;

    use tonic::transport::{Channel, Endpoint};
    use tower::{Service, ServiceExt};
    use tower_reset::classify::{ClassifyError, FailureClass};

    use super::{backlog_full_listener, FailingHandshake, CLASSIFIER};
    use crate::support::bounded;

    /// One call on `channel`: its error, as the stack under a tonic client sees it.
    async fn call(channel: Channel) -> tonic::transport::Error {
        let request = http::Request::post("/echo.Echo/Get")
            .body(tonic::body::Body::empty())
            .expect("a valid request");
        bounded("a tonic call", async move {
            channel
                .ready_oneshot()
                .await
                .expect("a lazy channel is ready")
                .call(request)
                .await
                .expect_err("the connection cannot be made")
        })
        .await
    }

    #[tokio::test]
    async fn a_connect_timeout_is_never_sent() {
        let (_listener, _queued, addr) = backlog_full_listener().await;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid URI")
            .connect_timeout(Duration::from_millis(100))
            .connect_lazy();
        let error = call(channel).await;
        assert_eq!(
            CLASSIFIER.classify_error(&error),
            Some(FailureClass::NeverSent),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_not_retried() {
        let channel = Endpoint::from_static("http://tower-reset.invalid").connect_lazy();
        let error = call(channel).await;
        assert_eq!(CLASSIFIER.classify_error(&error), None, "{error:?}");
    }

    #[tokio::test]
    async fn a_certificate_that_does_not_verify_is_not_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let untrusted = FailingHandshake {
            addr: listener.local_addr().expect("local_addr"),
            kind: io::ErrorKind::InvalidData,
            message: "invalid peer certificate: UnknownIssuer",
        };
        let channel =
            Endpoint::from_static("http://localhost").connect_with_connector_lazy(untrusted);
        let error = call(channel).await;
        assert_eq!(CLASSIFIER.classify_error(&error), None, "{error:?}");
        let status = tonic::Status::from_error(Box::new(error));
        assert_eq!(CLASSIFIER.classify_error(&status), None, "{status:?}");
    }
}
