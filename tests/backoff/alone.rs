//! `Backoff` without `ResetRetry`: requests without an attempt record pass through untouched,
//! and a record put on by hand is obeyed.

use std::time::Duration;

use tower::Layer;
use tower_reset::attempt::{AttemptAbandoned, AttemptRecord};
use tower_reset::backoff::policy::Constant;
use tower_reset::classify::FailureClass;
use tower_reset::hint::ServerHint;
use tower_reset::{Backoff, BackoffLayer};
use tower_test::mock;

use crate::harness::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag(u32);

/// A layer whose schedule would make any retry wait a long time.
fn slow() -> BackoffLayer<Constant> {
    BackoffLayer::new()
        .schedule(Constant::new(Duration::from_secs(5)))
        .immediate_first_retry(false)
}

#[tokio::test(start_paused = true)]
async fn a_request_passes_through_untouched_and_at_once() {
    let mut request = http::Request::put("/items/7?dry-run=1")
        .header("x-request-id", "abc")
        .header("content-type", "text/plain")
        .body("payload".to_owned())
        .unwrap();
    request.extensions_mut().insert(Tag(7));
    let response = http::Response::builder()
        .status(503)
        .header("retry-after", "1")
        .body(())
        .unwrap();
    let run = send(&slow(), request, vec![Answer::Respond(response)]).await;

    assert_eq!(run.attempts.len(), 1, "Backoff alone never retries");
    assert_eq!(run.elapsed(), Duration::ZERO, "no delay");
    let sent = &run.attempts[0];
    assert_eq!(sent.method(), http::Method::PUT);
    assert_eq!(sent.uri(), "/items/7?dry-run=1");
    assert_eq!(sent.headers().len(), 2);
    assert_eq!(sent.headers()["x-request-id"], "abc");
    assert_eq!(sent.headers()["content-type"], "text/plain");
    assert_eq!(sent.body(), "payload");
    assert_eq!(sent.extensions().get::<Tag>(), Some(&Tag(7)));
    assert!(sent.extensions().get::<AttemptRecord>().is_none());
    // The response, hint and all, is handed back as it is.
    assert_eq!(run.status(), 503);
    assert_eq!(run.response().headers()["retry-after"], "1");
}

#[tokio::test(start_paused = true)]
async fn an_error_passes_through_boxed_and_downcastable() {
    let run = send(&slow(), get("/"), vec![fail(RESET, "reset by peer")]).await;
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.elapsed(), Duration::ZERO);
    let error = run.io_error();
    assert_eq!(error.kind(), RESET);
    assert_eq!(error.to_string(), "reset by peer");
}

#[tokio::test(start_paused = true)]
async fn backoff_new_is_the_standard_layer() {
    let (mock, handle) = mock::pair::<Req, Res>();
    let service = Backoff::new(mock);
    let run = run_on(service, handle, get("/"), vec![status(204)]).await;
    assert_eq!(run.status(), 204);
    assert_eq!(run.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_record_put_on_by_hand_is_obeyed() {
    // The record is what makes Backoff wait: with one, the same layer delays the request.
    let mut request = get("/");
    request
        .extensions_mut()
        .insert(AttemptRecord::retry(2, FailureClass::UnknownOutcome));
    let run = send(&slow(), request, vec![status(200)]).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.elapsed(), Duration::from_secs(5));
    assert_eq!(run.arrivals[0] - run.start, Duration::from_secs(5));

    // A record that says "do not retry": the attempt is not sent, and alone (with no
    // ResetRetry to replace it) the caller sees why.
    let mut request = get("/");
    request.extensions_mut().insert(
        AttemptRecord::retry(2, FailureClass::Unavailable).with_hint(Some(ServerHint::DoNotRetry)),
    );
    let (mock, handle) = mock::pair::<Req, Res>();
    let run = run_on(slow().layer(mock), handle, request, vec![]).await;
    assert!(run.attempts.is_empty());
    let error = run.result.expect_err("abandoned");
    let abandoned = error
        .downcast_ref::<AttemptAbandoned>()
        .expect("an AttemptAbandoned");
    assert!(!abandoned.reason().is_empty());
}
