//! Retries of requests with streaming bodies through `ReplayBodyLayer` + `ResetRetry`.

use std::io;

use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::classify::StandardClassifier;
use tower_reset::replay::ReplayBodyLayer;
use tower_reset::ResetRetryLayer;

use crate::frames::{chunks, upload, Frames};
use crate::upstream::{Script, Upstream};

const RESET: io::ErrorKind = io::ErrorKind::ConnectionReset;

fn request(method: &str, body: Frames) -> http::Request<Frames> {
    http::Request::builder()
        .method(method)
        .uri("http://upstream/items/7")
        .body(body)
        .unwrap()
}

async fn send<B>(
    upstream: &Upstream,
    layer: ReplayBodyLayer,
    classifier: StandardClassifier,
    request: http::Request<B>,
) -> Result<http::Response<()>, BoxError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let service = ServiceBuilder::new()
        .layer(layer)
        .layer(
            ResetRetryLayer::builder()
                .classifier(classifier)
                .build()
                .unwrap(),
        )
        .service(upstream.clone());
    service.oneshot(request).await
}

fn io_kind(error: &BoxError) -> Option<io::ErrorKind> {
    error.downcast_ref::<io::Error>().map(io::Error::kind)
}

#[tokio::test]
async fn a_put_reset_in_the_middle_of_its_body_is_replayed_in_full() {
    let upstream = Upstream::new([Script::FailAfter(2, RESET)]);
    let response = send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request("PUT", chunks(&["one ", "two ", "three"])),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let delivered = upstream.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].bytes, b"one two ");
    assert_eq!(
        delivered[1].bytes, b"one two three",
        "the retry sends every byte"
    );
    assert!(delivered[1].complete);
}

#[tokio::test]
async fn a_post_reset_after_it_was_sent_is_not_retried() {
    let upstream = Upstream::new([Script::FailAfter(usize::MAX, RESET)]);
    let error = send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request("POST", chunks(&["charge"])),
    )
    .await
    .unwrap_err();
    assert_eq!(io_kind(&error), Some(RESET), "the real error, untouched");
    assert_eq!(upstream.delivered().len(), 1);
}

#[tokio::test]
async fn a_post_that_was_never_sent_is_retried_with_its_body() {
    let upstream = Upstream::new([Script::FailAfter(0, io::ErrorKind::ConnectionRefused)]);
    send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request("POST", chunks(&["charge ", "me"])),
    )
    .await
    .unwrap();
    let delivered = upstream.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].bytes, b"charge me");
}

#[tokio::test]
async fn a_body_over_the_cap_fails_once_with_the_real_error() {
    // 100 KiB in 1 KiB chunks against the default 64 KiB cap.
    let upstream = Upstream::new([Script::FailAfter(usize::MAX, RESET)]);
    let request = http::Request::put("http://upstream/blob")
        .body(upload(100, 1024))
        .unwrap();
    let error = send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request,
    )
    .await
    .unwrap_err();
    assert_eq!(
        io_kind(&error),
        Some(RESET),
        "no retry, and no error of the replay's own: {error}"
    );
    assert_eq!(upstream.delivered().len(), 1);
    assert_eq!(upstream.delivered()[0].bytes.len(), 100 * 1024);
}

#[tokio::test]
async fn a_body_under_the_cap_is_retried() {
    let upstream = Upstream::new([Script::FailAfter(usize::MAX, RESET)]);
    let request = http::Request::put("http://upstream/blob")
        .body(upload(60, 1024))
        .unwrap();
    send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request,
    )
    .await
    .unwrap();
    let delivered = upstream.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].bytes.len(), 60 * 1024);
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let upstream = Upstream::new([Script::FailAfter(usize::MAX, RESET)]);
    let request = http::Request::put("http://upstream/blob")
        .body(upload(8, 1024))
        .unwrap();
    let error = send(
        &upstream,
        ReplayBodyLayer::new().cap(4 * 1024),
        StandardClassifier::new(),
        request,
    )
    .await
    .unwrap_err();
    assert_eq!(io_kind(&error), Some(RESET));
    assert_eq!(upstream.delivered().len(), 1, "8 KiB is over a 4 KiB cap");
}

#[tokio::test]
async fn a_response_that_came_before_the_body_ended_is_not_retried() {
    // The server answered 503 after the first of three chunks: it may have acted on part of
    // the request, so even an idempotent PUT is not sent again.
    let upstream = Upstream::new([Script::AnswerAfter(1, 503)]);
    let response = send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new().unavailable_responses(true),
        request("PUT", chunks(&["a", "b", "c"])),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503, "the real response");
    assert_eq!(upstream.delivered().len(), 1);
}

#[tokio::test]
async fn a_response_after_the_whole_body_is_retried() {
    let upstream = Upstream::new([Script::AnswerAfter(usize::MAX, 503)]);
    let response = send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new().unavailable_responses(true),
        request("PUT", chunks(&["a", "b", "c"])),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let delivered = upstream.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].bytes, b"abc");
}

#[tokio::test]
async fn every_attempt_up_to_the_limit_replays_the_body() {
    let upstream = Upstream::new([Script::FailAfter(1, RESET), Script::FailAfter(2, RESET)]);
    send(
        &upstream,
        ReplayBodyLayer::new(),
        StandardClassifier::new(),
        request("GET", chunks(&["x", "y", "z"])),
    )
    .await
    .unwrap();
    let delivered: Vec<_> = upstream
        .delivered()
        .into_iter()
        .map(|attempt| String::from_utf8(attempt.bytes).unwrap())
        .collect();
    assert_eq!(delivered, ["x", "xy", "xyz"]);
}

#[tokio::test]
async fn a_get_with_an_empty_body_is_retried_after_a_503_like_a_full_one() {
    let retry = || {
        ResetRetryLayer::builder()
            .classifier(StandardClassifier::new().unavailable_responses(true))
            .build()
            .unwrap()
    };
    let full = Upstream::new([Script::Answer(503)]);
    let response = ServiceBuilder::new()
        .layer(retry())
        .service(full.clone())
        .oneshot(
            http::Request::get("http://upstream/items/7")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a `Full` body is cloned and retried"
    );
    assert_eq!(full.delivered().len(), 2);

    // An empty body that says so (`is_end_stream`), as hyper's `Incoming` of a GET does.
    let replayed = Upstream::new([Script::Answer(503)]);
    let response = send(
        &replayed,
        ReplayBodyLayer::new(),
        StandardClassifier::new().unavailable_responses(true),
        request("GET", chunks(&[])),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "so is an empty `ReplayBody`");
    assert_eq!(replayed.delivered().len(), 2);
}
