//! The axum proxy example (`examples/axum_proxy`): streamed uploads forwarded through the stack
//! to an upstream that resets the first connection after reading the request in full, and a GET
//! (an empty `Incoming`) retried after the upstream answered `503`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower_reset::classify::StandardClassifier;

use crate::proxy;
use crate::reset_server::{Behaviour, ResetServer};

const LIMIT: Duration = Duration::from_secs(10);

/// Serves `router` (the example's proxy) on a fresh loopback port until `f` is done with its
/// address.
async fn through_proxy<F, Fut, T>(router: Router, f: F) -> T
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = T>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let output = f(addr).await;
    server.abort();
    output
}

/// Sends `request` with hyper-util's client and reads the response to its end; returns its
/// status.
async fn status_of<B>(request: http::Request<B>) -> u16
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http();
    tokio::time::timeout(LIMIT, async {
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        status
    })
    .await
    .expect("the request ends")
}

/// Streams a body through a fresh proxy to a fresh upstream whose first request is reset;
/// returns the status the client got and how many times the upstream read the request in full.
async fn upload(method: &str, key: Option<&str>) -> (u16, usize) {
    let upstream = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let base = format!("http://{}/", upstream.addr()).parse().unwrap();
    let status = through_proxy(proxy::router(base), |addr| {
        let chunks = ["stream", "ed ", "upload"].map(|chunk| {
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(chunk.as_bytes())))
        });
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}/files/1"))
            .header("content-length", "15")
            .header("x-request-id", "upload-1");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(StreamBody::new(tokio_stream::iter(chunks)))
            .unwrap();
        status_of(request)
    })
    .await;
    (status, upstream.executed_id("upload-1"))
}

#[tokio::test]
async fn a_streamed_post_is_not_sent_twice() {
    assert_eq!(upload("POST", None).await, (502, 1));
}

#[tokio::test]
async fn a_streamed_post_with_an_idempotency_key_is_replayed() {
    assert_eq!(upload("POST", Some("key-1")).await, (200, 2));
}

#[tokio::test]
async fn a_streamed_put_is_replayed() {
    assert_eq!(upload("PUT", None).await, (200, 2));
}

#[tokio::test]
async fn a_get_answered_503_is_retried() {
    // hyper's `Incoming` of a GET is empty, and says so: its copy has nothing left to send, so a
    // response cannot have come before the end of the body.
    let upstream = ResetServer::start(vec![Behaviour::Respond(503, "busy")]);
    let base = format!("http://{}/", upstream.addr()).parse().unwrap();
    let router = proxy::router_with(base, StandardClassifier::new().unavailable_responses(true));
    let status = through_proxy(router, |addr| {
        let request = http::Request::get(format!("http://{addr}/files/1"))
            .header("x-request-id", "get-1")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        status_of(request)
    })
    .await;
    assert_eq!(status, 200, "the proxy retried the 503");
    assert_eq!(upstream.executed_id("get-1"), 2);
}
