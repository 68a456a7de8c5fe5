//! The previous attempt's outcome is kept only until the next attempt goes ahead, over real
//! loopback sockets against the lab: a `503` whose body is unread must never hold its own
//! connection hostage (issue 11, item 1).
//!
//! * Over a single HTTP/1.1 connection (hyper's `client::conn::http1` under
//!   `FreshConnectionLayer::reconnect`, behind a `Buffer`), the retry needs the connection the
//!   `503` is still on: before the fix, the request never ended, deadline or not.
//! * Over hyper-util's pool, a small `503` body is read to its end while the retry waits out its
//!   backoff, so the retry and the requests after it reuse the same connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{HistoryObserver, StopReason};
use tower_reset::backoff::policy::Constant;
use tower_reset::classify::StandardClassifier;
use tower_reset::lab::{Lab, Match, Reply};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

/// No test may take longer than this: a hang fails the test instead of stalling the suite.
const BOUND: Duration = Duration::from_secs(10);

type Request = http::Request<Full<Bytes>>;
type Response = http::Response<Incoming>;

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the request never ended: a held response blocked its own retry")
}

/// One HTTP/1.1 connection as a tower service.
struct Http1 {
    send: SendRequest<Full<Bytes>>,
}

impl Service<Request> for Http1 {
    type Response = Response;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Box::pin(self.send.send_request(request))
    }
}

/// Connects to the address and runs hyper's HTTP/1.1 handshake.
async fn connect(addr: SocketAddr) -> Result<Http1, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(Http1 { send })
}

/// A lab whose first request gets a `503` with a body of `len` bytes, and every other a `200`.
async fn unavailable_once(len: usize) -> Lab {
    unavailable_once_with(Reply::new(StatusCode::SERVICE_UNAVAILABLE).body(vec![b'x'; len])).await
}

/// A lab whose first request gets a small `503` written in four pieces: more than the one read
/// that hyper takes in with the head, so the body must be read for the connection to be free.
async fn small_sliced_503() -> Lab {
    unavailable_once_with(
        Reply::new(StatusCode::SERVICE_UNAVAILABLE)
            .body(vec![b'x'; 2048])
            .sliced(4, Duration::from_millis(2)),
    )
    .await
}

async fn unavailable_once_with(reply: Reply) -> Lab {
    Lab::builder()
        .on(Match::nth(1), reply)
        .start()
        .await
        .expect("the lab starts")
}

fn retry_503(deadline: Option<Duration>) -> ResetRetryLayer {
    let builder = ResetRetryLayer::builder()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .no_budget();
    match deadline {
        Some(deadline) => builder.deadline(deadline),
        None => builder,
    }
    .build()
    .expect("valid settings")
}

fn backoff() -> BackoffLayer<Constant> {
    BackoffLayer::new().schedule(Constant::new(Duration::from_millis(20)))
}

fn get(lab: &Lab) -> Request {
    http::Request::get(lab.url("/"))
        .body(Full::default())
        .unwrap()
}

/// The single-connection stack: ResetRetry, Backoff, a Buffer, and one HTTP/1.1 connection.
async fn single_connection(lab: &Lab, deadline: Option<Duration>) -> (u16, Option<StopReason>) {
    let addr = lab.addr();
    let service = ServiceBuilder::new()
        .layer(retry_503(deadline))
        .layer(backoff())
        .buffer(16)
        .layer(FreshConnectionLayer::reconnect(addr))
        .service(tower::service_fn(connect));
    let mut request = get(lab);
    let observer = HistoryObserver::attach(&mut request);
    let response = bounded(service.oneshot(request)).await.expect("a response");
    let status = response.status().as_u16();
    bounded(response.into_body().collect())
        .await
        .expect("the body");
    (status, observer.get().map(|history| history.stop_reason()))
}

#[tokio::test]
async fn a_large_503_on_a_single_http1_connection_does_not_block_its_retry() {
    let lab = unavailable_once(256 * 1024).await;
    let (status, stop) = single_connection(&lab, None).await;
    assert_eq!(status, 200, "the retry went out and succeeded");
    assert_eq!(stop, Some(StopReason::Succeeded));
    assert_eq!(lab.counts().received(), 2);
}

#[tokio::test]
async fn with_a_deadline_too_the_large_503_does_not_block_its_retry() {
    let lab = unavailable_once(256 * 1024).await;
    let (status, _) = single_connection(&lab, Some(Duration::from_secs(2))).await;
    assert_eq!(status, 200);
    assert_eq!(lab.counts().received(), 2);
}

#[tokio::test]
async fn a_small_503_on_a_single_http1_connection_is_read_and_the_connection_reused() {
    let lab = small_sliced_503().await;
    let (status, _) = single_connection(&lab, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        lab.counts().connections(),
        1,
        "the 503 was read to its end: its connection carried the retry"
    );
}

#[tokio::test]
async fn a_small_503_in_the_pool_is_read_so_the_retry_and_later_requests_reuse_its_connection() {
    let lab = small_sliced_503().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // The body is read while the retry waits out its backoff: give it a wait long enough that a
    // loaded machine finishes reading the 503 (written in four pieces over ~6 ms) first.
    let mut service = ServiceBuilder::new()
        .layer(retry_503(None))
        .layer(BackoffLayer::new().schedule(Constant::new(Duration::from_millis(500))))
        .service(client);
    for _ in 0..3 {
        let response = bounded(service.ready().await.unwrap().call(get(&lab)))
            .await
            .expect("a response");
        assert_eq!(response.status(), 200);
        bounded(response.into_body().collect()).await.unwrap();
    }
    let counts = lab.counts();
    assert_eq!(
        counts.received(),
        4,
        "one 503, its retry, two more requests"
    );
    assert_eq!(
        counts.connections(),
        1,
        "every request, the retry included, reused the 503's connection"
    );
}

#[tokio::test]
async fn a_large_503_in_the_pool_is_dropped_and_nothing_waits_on_it() {
    let lab = unavailable_once(256 * 1024).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = ServiceBuilder::new()
        .layer(retry_503(None))
        .layer(backoff())
        .service(client);
    let response = bounded(service.oneshot(get(&lab)))
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(lab.counts().received(), 2);
}

#[tokio::test]
async fn a_retry_abandoned_at_the_deadline_hands_back_the_intact_503() {
    // The backoff (1 s) would end after the deadline (200 ms): the retry is abandoned before it
    // goes ahead, so the 503 is still held, and the caller reads all of it.
    let lab = unavailable_once(256 * 1024).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = ServiceBuilder::new()
        .layer(retry_503(Some(Duration::from_millis(200))))
        .layer(BackoffLayer::new().schedule(Constant::new(Duration::from_secs(1))))
        .service(client);
    let mut request = get(&lab);
    let observer = HistoryObserver::attach(&mut request);
    let response = bounded(service.oneshot(request)).await.expect("a response");
    assert_eq!(response.status(), 503);
    let body = bounded(response.into_body().collect()).await.unwrap();
    assert_eq!(body.to_bytes().len(), 256 * 1024, "the whole body");
    assert_eq!(
        observer.get().map(|history| history.stop_reason()),
        Some(StopReason::Deadline)
    );
    assert_eq!(lab.counts().received(), 1);
}
