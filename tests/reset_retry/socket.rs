//! `ResetRetry` over real loopback sockets: a hyper-util legacy client against the scripted
//! [`ResetServer`], which resets (`RST`) or closes (`FIN`) connections after reading a request.
//!
//! The server counts every request it read in full, by `x-request-id`, so each test checks what
//! matters: how many times the server may have acted on a request, not only what the client saw.
//!
//! With the `hyper-util` feature the stack is exactly `ResetRetryLayer::new()` over the client.
//! Without it, `StandardClassifier` has no `ClassifyError` impl for the client's error type, so
//! `ResetRetry<Client>` is not a `Service`; the client's errors are then boxed (a `BoxError` is
//! classified by walking its chain, which finds the `io::Error` kinds with no feature at all).

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, Error as LegacyError};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
#[cfg(not(feature = "hyper"))]
use tower_reset::attempt::StopReason;
use tower_reset::attempt::{AttemptHistory, HistoryObserver};
use tower_reset::classify::FailureClass::{NeverSent, UnknownOutcome};
use tower_reset::{ResetRetry, ResetRetryLayer};

use crate::error_chain::io_kinds;
use crate::reset_server::{Behaviour, ResetServer, OK};

/// No test may take longer than this, whatever the client or server does.
const TEST_TIMEOUT: Duration = Duration::from_secs(5);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The error the stack returns: the client's own error, or the same boxed without the feature.
#[cfg(feature = "hyper-util")]
type StackError = LegacyError;
#[cfg(not(feature = "hyper-util"))]
type StackError = tower::BoxError;

#[cfg(feature = "hyper-util")]
type Stack = ResetRetry<HttpClient>;
#[cfg(not(feature = "hyper-util"))]
type Stack = ResetRetry<tower::util::MapErr<HttpClient, fn(LegacyError) -> StackError>>;

/// The stack under test: the standard layer over a bare legacy client.
#[cfg(feature = "hyper-util")]
fn stack() -> Stack {
    ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .service(client())
}

/// The stack under test, with the client's errors boxed (see the module documentation).
#[cfg(not(feature = "hyper-util"))]
fn stack() -> Stack {
    ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .map_err(stack_error as fn(LegacyError) -> StackError)
        .service(client())
}

#[cfg_attr(feature = "hyper-util", allow(clippy::useless_conversion))]
fn stack_error(error: LegacyError) -> StackError {
    error.into()
}

/// The client's error inside the stack's error.
#[cfg(feature = "hyper-util")]
fn client_error(error: &StackError) -> &LegacyError {
    error
}

/// The client's error inside the stack's error.
#[cfg(not(feature = "hyper-util"))]
fn client_error(error: &StackError) -> &LegacyError {
    error.downcast_ref().expect("a hyper-util client error")
}

/// A request tagged with `x-request-id: id`, which every attempt of it carries.
fn request(method: &str, url: &str, id: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", id)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("valid request")
}

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test timed out")
}

/// A port on which connections are refused: a socket bound to it that is not listening. Keep
/// the socket alive for as long as the port must stay refused; `listen` on it opens the port.
fn refusing_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind 127.0.0.1:0");
    socket
}

#[tokio::test]
async fn get_reset_after_the_request_was_read_is_retried() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead, OK]);
        let response = stack()
            .oneshot(request("GET", &server.url("/"), "get-1", ""))
            .await
            .expect("the retry succeeds");

        assert_eq!(response.status(), StatusCode::OK);
        let history = response
            .extensions()
            .get::<AttemptHistory>()
            .expect("a retried response carries its history")
            .clone();
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), [UnknownOutcome]);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
        assert_eq!(server.received("GET"), 2);
        assert_eq!(server.executed_id("get-1"), 2);
        // The reset connection is dead: the retry went out on a new one.
        assert_eq!(server.connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn post_reset_after_the_request_was_read_is_not_retried() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead, OK]);
        let mut post = request("POST", &server.url("/pay"), "post-1", "amount=10");
        let observer = HistoryObserver::attach(&mut post);
        let error = stack()
            .oneshot(post)
            .await
            .expect_err("a POST is not retried");

        // The error is the client's own, untouched, with the reset at the bottom of its chain.
        assert!(!client_error(&error).is_connect());
        assert!(
            io_kinds(client_error(&error)).contains(&io::ErrorKind::ConnectionReset),
            "expected ECONNRESET in the chain of {error:?}"
        );
        let history = observer.get().expect("the history is recorded");
        assert_eq!(history.attempts(), 1);
        assert_eq!(history.failures(), [UnknownOutcome]);
        // The server read the POST once, and only once: it may have acted on it.
        assert_eq!(server.executed_id("post-1"), 1);
        assert_eq!(server.received("POST"), 1);
        assert_eq!(server.script_left(), 1);
    })
    .await;
}

#[tokio::test]
async fn post_with_idempotency_key_is_retried_after_reset() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead, OK]);
        let mut post = request("POST", &server.url("/pay"), "post-2", "amount=10");
        post.headers_mut()
            .insert("idempotency-key", "key-2".parse().unwrap());
        let response = stack().oneshot(post).await.expect("the retry succeeds");

        assert_eq!(response.status(), StatusCode::OK);
        let history = response.extensions().get::<AttemptHistory>().unwrap();
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), [UnknownOutcome]);
        // Seen twice: safe only because the server deduplicates by the key.
        assert_eq!(server.executed_id("post-2"), 2);
    })
    .await;
}

#[tokio::test]
async fn post_refused_at_connect_is_retried_and_executed_once() {
    within(async {
        // The port refuses connections until the first attempt has failed; then it listens.
        let pending = Arc::new(Mutex::new(Some(refusing_socket())));
        let url = {
            let socket = pending.lock().unwrap();
            format!(
                "http://{}/pay",
                socket.as_ref().unwrap().local_addr().unwrap()
            )
        };
        let server: Arc<Mutex<Option<ResetServer>>> = Arc::default();

        let (client, opened, started) = (client(), Arc::clone(&pending), Arc::clone(&server));
        let open_after_failure = tower::service_fn(move |req: Request<Full<Bytes>>| {
            let (client, opened, started) = (client.clone(), opened.clone(), started.clone());
            async move {
                let result = client.oneshot(req).await.map_err(stack_error);
                if let (Err(_), Some(socket)) = (&result, opened.lock().unwrap().take()) {
                    let listener = socket.listen(16).expect("listen");
                    *started.lock().unwrap() = Some(ResetServer::serve(listener, vec![], OK));
                }
                result
            }
        });
        let mut post = request("POST", &url, "post-3", "amount=10");
        let observer = HistoryObserver::attach(&mut post);
        let response = ResetRetryLayer::new()
            .layer(open_after_failure)
            .oneshot(post)
            .await
            .expect("the retry reaches the server");

        assert_eq!(response.status(), StatusCode::OK);
        let history = observer.get().unwrap();
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), [NeverSent]);
        let server = server.lock().unwrap().take().expect("the server started");
        // Retried although it is a POST, and still executed exactly once.
        assert_eq!(server.executed_id("post-3"), 1);
        assert_eq!(server.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn post_to_a_closed_port_uses_every_attempt() {
    within(async {
        let socket = refusing_socket();
        let url = format!("http://{}/pay", socket.local_addr().unwrap());
        let mut post = request("POST", &url, "post-4", "amount=10");
        let observer = HistoryObserver::attach(&mut post);
        let error = stack().oneshot(post).await.expect_err("nothing listens");

        let error = client_error(&error);
        assert!(
            error.is_connect(),
            "expected a connect error, got {error:?}"
        );
        assert!(io_kinds(error).contains(&io::ErrorKind::ConnectionRefused));
        let history = observer.get().unwrap();
        assert_eq!(history.attempts(), ResetRetryLayer::DEFAULT_MAX_ATTEMPTS);
        assert_eq!(history.failures(), [NeverSent; 3]);
        drop(socket);
    })
    .await;
}

/// A FIN after the request reaches hyper as "incomplete message", with no io error under it:
/// only the `hyper` feature recognises it.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn get_closed_after_the_request_was_read_is_retried() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::CloseAfterHead, OK]);
        let response = stack()
            .oneshot(request("GET", &server.url("/"), "get-5", ""))
            .await
            .expect("the retry succeeds");

        assert_eq!(response.status(), StatusCode::OK);
        let history = response.extensions().get::<AttemptHistory>().unwrap();
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), [UnknownOutcome]);
        assert_eq!(server.executed_id("get-5"), 2);
    })
    .await;
}

/// Without the `hyper` feature nothing in the chain of an "incomplete message" is recognised:
/// even a GET is returned as it failed.
#[cfg(not(feature = "hyper"))]
#[tokio::test]
async fn get_closed_after_the_request_was_read_needs_the_hyper_feature() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::CloseAfterHead, OK]);
        let mut get = request("GET", &server.url("/"), "get-8", "");
        let observer = HistoryObserver::attach(&mut get);
        let error = stack().oneshot(get).await.expect_err("not recognised");

        assert!(io_kinds(client_error(&error)).is_empty(), "{error:?}");
        let history = observer.get().unwrap();
        assert_eq!((history.attempts(), history.failures()), (1, vec![]));
        assert_eq!(history.stop_reason(), StopReason::NotConnectionFailure);
        assert_eq!(server.executed_id("get-8"), 1);
    })
    .await;
}

#[cfg(feature = "hyper")]
#[tokio::test]
async fn post_closed_after_the_request_was_read_is_not_retried() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::CloseAfterHead, OK]);
        let error = stack()
            .oneshot(request("POST", &server.url("/pay"), "post-6", "amount=10"))
            .await
            .expect_err("a POST is not retried");

        let hyper_error = crate::error_chain::chain(client_error(&error))
            .into_iter()
            .find_map(|err| err.downcast_ref::<hyper::Error>())
            .expect("a hyper error in the chain");
        assert!(hyper_error.is_incomplete_message(), "{error:?}");
        assert_eq!(server.executed_id("post-6"), 1);
    })
    .await;
}

#[tokio::test]
async fn server_error_response_is_not_retried() {
    within(async {
        let server = ResetServer::start(vec![Behaviour::Respond(500, "boom")]);
        let mut service = stack();
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request("GET", &server.url("/"), "get-7", ""))
            .await
            .expect("a 500 is a response, not an error");

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<AttemptHistory>().is_none());
        assert_eq!(server.received_total(), 1);
        assert_eq!(server.executed_id("get-7"), 1);
    })
    .await;
}

/// The support server itself: its answers are valid HTTP/1.1, and dropping it closes its
/// listener and every connection it accepted, so no test leaves tasks behind.
#[tokio::test]
async fn dropping_the_server_closes_its_connections() {
    within(async {
        let server = ResetServer::start(vec![]);
        let addr = server.addr();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: test\r\nx-request-id: raw-1\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        while !response.ends_with(b"\r\n\r\nok") {
            assert_ne!(
                stream.read_buf(&mut response).await.unwrap(),
                0,
                "early EOF"
            );
        }
        let expected = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(String::from_utf8_lossy(&response), expected);
        assert_eq!(server.executed_id("raw-1"), 1);

        drop(server);
        // The idle keep-alive connection is closed, and nothing listens any more.
        assert_eq!(stream.read(&mut [0; 16]).await.unwrap(), 0);
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    })
    .await;
}
