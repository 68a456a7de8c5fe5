//! Streaming bodies over real loopback sockets: hyper-util's client sends a `ReplayBody`, the
//! scripted server resets the connection after reading the whole request.

use std::error::Error;
use std::io;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
use tower_reset::ResetRetryLayer;

use crate::error_chain::io_kinds;
use crate::frames::{chunks, Frames};
use crate::reset_server::{Behaviour, ResetServer};

const LIMIT: Duration = Duration::from_secs(10);

async fn send(
    server: &ResetServer,
    method: &str,
    id: &str,
    idempotency_key: bool,
) -> Result<http::StatusCode, hyper_util::client::legacy::Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Frames>>();
    let mut service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(ResetRetryLayer::new())
        .service(client);
    let mut request = http::Request::builder()
        .method(method)
        .uri(server.url("/upload"))
        .header("x-request-id", id)
        // The scripted server reads `content-length` bodies; the body itself is a stream.
        .header("content-length", "11");
    if idempotency_key {
        request = request.header("idempotency-key", id);
    }
    let request = request.body(chunks(&["hello", " ", "world"])).unwrap();
    let response =
        tokio::time::timeout(LIMIT, async { service.ready().await?.call(request).await })
            .await
            .expect("the request ends");
    response.map(|response| response.status())
}

/// Whether the io error of a reset is in `error`'s chain.
fn has_reset(error: &(dyn Error + 'static)) -> bool {
    io_kinds(error).contains(&io::ErrorKind::ConnectionReset)
}

#[tokio::test]
async fn a_streamed_put_reset_after_it_was_sent_is_replayed() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let status = send(&server, "PUT", "put-1", false).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        server.executed_id("put-1"),
        2,
        "both attempts carried the whole body"
    );
}

#[tokio::test]
async fn a_streamed_post_reset_after_it_was_sent_runs_once() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let error = send(&server, "POST", "post-1", false).await.unwrap_err();
    assert!(has_reset(&error), "the reset reaches the caller: {error:?}");
    assert_eq!(server.executed_id("post-1"), 1, "never sent twice");
}

#[tokio::test]
async fn a_streamed_post_with_an_idempotency_key_is_replayed() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let status = send(&server, "POST", "post-2", true).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.executed_id("post-2"), 2);
}
