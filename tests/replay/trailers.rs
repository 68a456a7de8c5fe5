//! Trailers survive a retry, over real loopback connections (HTTP/1.1 chunked and HTTP/2): a
//! hyper server reads each request in full, trailers included, records what it received, and
//! fails the first attempt (a `503`, or on HTTP/1.1 a connection closed without an answer),
//! which the client's stack retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_reset::classify::StandardClassifier;
use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
use tower_reset::ResetRetryLayer;

use crate::frames::{frames, Frames, Step, Unannounced};
use crate::hyper_server::serve_connection;

const LIMIT: Duration = Duration::from_secs(10);

/// What the server received in one request: the body and its trailers.
type Received = Arc<Mutex<Vec<(Bytes, Option<HeaderMap>)>>>;

/// How the server fails the first attempt, after reading it in full.
#[derive(Clone, Copy)]
enum Failure {
    /// Answers `503`.
    Unavailable,
    /// Closes the connection without answering (HTTP/1.1: the service fails).
    Close,
}

/// Serves `127.0.0.1:0` over HTTP/2 when `h2`, else HTTP/1.1; fails the first request as
/// `failure` says and answers `200` to the others, after reading each in full.
async fn serve(h2: bool, failure: Failure) -> (std::net::SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let record = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let record = Arc::clone(&record);
            let service = service_fn(move |request: http::Request<Incoming>| {
                let record = Arc::clone(&record);
                async move {
                    let collected = request.into_body().collect().await;
                    let first = {
                        let mut record = record.lock().unwrap();
                        if let Ok(collected) = collected {
                            let trailers = collected.trailers().cloned();
                            record.push((collected.to_bytes(), trailers));
                        }
                        record.len() == 1
                    };
                    let status = match (first, failure) {
                        (false, _) => 200,
                        (true, Failure::Unavailable) => 503,
                        (true, Failure::Close) => return Err("closing without an answer"),
                    };
                    let response = http::Response::builder()
                        .status(status)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    Ok(response)
                }
            });
            tokio::spawn(serve_connection(stream, service, h2));
        }
    });
    (addr, received)
}

/// Sends a PUT whose body ends with an `x-checksum` trailer through `ReplayBodyLayer` and
/// `ResetRetryLayer` (503s retried too) over hyper-util's client; returns the final status and
/// what the server received for each attempt.
async fn put_with_trailers(h2: bool, failure: Failure) -> (u16, Vec<(Bytes, Option<HeaderMap>)>) {
    let (addr, received) = serve(h2, failure).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http::<ReplayBody<Unannounced<Frames>>>();
    let retry = ResetRetryLayer::builder()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let mut service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(retry)
        .service(client);
    // A stream of unknown length: HTTP/1.1 sends it chunked, with the declared trailer.
    let body = Unannounced(frames([
        Step::Data("checked "),
        Step::Data("payload"),
        Step::Trailers("x-checksum", "abc"),
    ]));
    let request = http::Request::put(format!("http://{addr}/blob"))
        .header("trailer", "x-checksum")
        .body(body)
        .unwrap();
    let status = tokio::time::timeout(LIMIT, async {
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        response.status().as_u16()
    })
    .await
    .expect("the PUT ends");
    let received = received.lock().unwrap().clone();
    (status, received)
}

fn assert_same_trailers(status: u16, received: &[(Bytes, Option<HeaderMap>)]) {
    assert_eq!(status, 200, "the failed attempt was retried");
    assert_eq!(received.len(), 2, "two attempts reached the server");
    for (body, trailers) in received {
        assert_eq!(body, "checked payload");
        assert_eq!(
            trailers.as_ref().map(|trailers| &trailers["x-checksum"]),
            Some(&"abc".parse().unwrap()),
            "every attempt carries the trailer: {received:?}"
        );
    }
}

#[tokio::test]
async fn an_http1_chunked_put_retried_after_a_close_carries_its_trailers() {
    let (status, received) = put_with_trailers(false, Failure::Close).await;
    assert_same_trailers(status, &received);
}

#[tokio::test]
async fn an_http1_chunked_put_retried_after_a_503_carries_its_trailers() {
    // A response after the trailers came after the whole body: the trailers end it.
    let (status, received) = put_with_trailers(false, Failure::Unavailable).await;
    assert_same_trailers(status, &received);
}

#[tokio::test]
async fn an_http2_put_retried_after_a_503_carries_its_trailers() {
    let (status, received) = put_with_trailers(true, Failure::Unavailable).await;
    assert_same_trailers(status, &received);
}
