//! `ResetRetry` over the tower-test mock: what is retried, what is not, and the limits.

use std::io;
use std::time::Duration;

use http::Method;
use tower::{BoxError, Service, ServiceExt};
use tower_reset::attempt::{AttemptHistory, AttemptRecord, HistoryObserver};
use tower_reset::classify::{ClassifyError, ClassifyResponse, FailureClass, StandardClassifier};
use tower_reset::reset_retry::policy::{retry_if, Attempt, Never, PolicyExt, StandardRetry};
use tower_reset::reset_retry::RetryBudget;
use tower_reset::ResetRetryLayer;
use tower_test::mock;

use crate::harness::*;

fn no_budget() -> ResetRetryLayer {
    ResetRetryLayer::builder().no_budget().build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn reset_get_is_retried_up_to_the_limit_and_the_last_error_is_returned() {
    let run = run(
        &no_budget(),
        get("/"),
        vec![
            Fail(RESET, "first"),
            Fail(RESET, "second"),
            Fail(RESET, "third"),
        ],
    )
    .await;
    assert_eq!(run.attempts.len(), 3);
    let error = run.io_error();
    assert_eq!(error.kind(), RESET);
    assert_eq!(error.to_string(), "third");
}

#[tokio::test(start_paused = true)]
async fn reset_get_succeeds_on_the_second_attempt() {
    let run = run(
        &no_budget(),
        get("/"),
        vec![Fail(RESET, "stale"), status(200)],
    )
    .await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.attempts.len(), 2);
    let history = run
        .result
        .as_ref()
        .unwrap()
        .extensions()
        .get::<AttemptHistory>()
        .unwrap();
    assert_eq!(history.attempts(), 2);
    assert_eq!(history.failures(), &[FailureClass::UnknownOutcome]);
}

#[tokio::test(start_paused = true)]
async fn a_response_on_the_first_attempt_carries_no_history() {
    let run = run(&no_budget(), get("/"), vec![status(200)]).await;
    assert!(run
        .result
        .unwrap()
        .extensions()
        .get::<AttemptHistory>()
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn retries_carry_the_attempt_record_and_the_first_attempt_none() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_secs(30))
        .build()
        .unwrap();
    let run = run(
        &layer,
        get("/"),
        vec![Fail(REFUSED, "down"), Fail(RESET, "stale"), status(200)],
    )
    .await;
    assert_eq!(run.status(), 200);
    assert!(run.attempts[0]
        .extensions()
        .get::<AttemptRecord>()
        .is_none());
    assert!(AttemptRecord::of(&run.attempts[0]).is_first());

    let second = run.attempts[1].extensions().get::<AttemptRecord>().unwrap();
    assert_eq!(second.number(), 2);
    assert_eq!(second.previous_failure(), Some(FailureClass::NeverSent));
    let third = run.attempts[2].extensions().get::<AttemptRecord>().unwrap();
    assert_eq!(third.number(), 3);
    assert_eq!(third.previous_failure(), Some(FailureClass::UnknownOutcome));
    // The deadline is the same instant for every attempt: counted from the first.
    assert!(second.deadline().is_some());
    assert_eq!(second.deadline(), third.deadline());
}

#[tokio::test(start_paused = true)]
async fn post_reset_after_sending_is_never_retried() {
    let run = run(&no_budget(), post("/pay"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.io_error().kind(), RESET);
}

#[tokio::test(start_paused = true)]
async fn post_closed_mid_message_is_never_retried() {
    for kind in [
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::ConnectionAborted,
    ] {
        let run = run(&no_budget(), post("/pay"), vec![Fail(kind, "gone")]).await;
        assert_eq!(run.attempts.len(), 1, "{kind:?}");
        assert_eq!(run.io_error().kind(), kind);
    }
}

#[tokio::test(start_paused = true)]
async fn post_that_was_never_sent_is_retried() {
    let run = run(
        &no_budget(),
        post("/pay"),
        vec![Fail(REFUSED, "refused"), status(201)],
    )
    .await;
    assert_eq!(run.status(), 201);
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(
        run.attempts[1].body(),
        "payload",
        "the retry replays the body"
    );
    assert_eq!(run.attempts[1].method(), Method::POST);
}

#[tokio::test(start_paused = true)]
async fn post_with_idempotency_key_is_retried_after_a_reset() {
    let mut request = post("/pay");
    request
        .headers_mut()
        .insert("idempotency-key", "order-17".parse().unwrap());
    let run = run(
        &no_budget(),
        request,
        vec![Fail(RESET, "reset"), status(200)],
    )
    .await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(run.attempts[1].headers()["idempotency-key"], "order-17");
}

#[tokio::test(start_paused = true)]
async fn idempotent_methods_are_retried_and_others_are_not() {
    for (method, retried) in [
        (Method::GET, true),
        (Method::HEAD, true),
        (Method::OPTIONS, true),
        (Method::TRACE, true),
        (Method::PUT, true),
        (Method::DELETE, true),
        (Method::POST, false),
        (Method::PATCH, false),
        (Method::CONNECT, false),
    ] {
        let request = http::Request::builder()
            .method(method.clone())
            .uri("/")
            .body(String::new())
            .unwrap();
        let script = if retried {
            vec![Fail(RESET, "reset"), status(200)]
        } else {
            vec![Fail(RESET, "reset")]
        };
        let run = run(&no_budget(), request, script).await;
        assert_eq!(run.attempts.len(), if retried { 2 } else { 1 }, "{method}");
    }
}

#[tokio::test(start_paused = true)]
async fn errors_that_are_not_resets_are_not_retried() {
    for kind in [
        io::ErrorKind::TimedOut,
        io::ErrorKind::PermissionDenied,
        io::ErrorKind::InvalidData,
        io::ErrorKind::Other,
    ] {
        let run = run(&no_budget(), get("/"), vec![Fail(kind, "not a reset")]).await;
        assert_eq!(run.attempts.len(), 1, "{kind:?}");
        assert_eq!(run.io_error().kind(), kind);
    }
    let run = run(
        &no_budget(),
        get("/"),
        vec![Answer::FailWith("an application error".into())],
    )
    .await;
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.result.unwrap_err().to_string(), "an application error");
}

#[tokio::test(start_paused = true)]
async fn error_responses_are_not_retried_by_default() {
    let run = run(&no_budget(), get("/"), vec![status(503)]).await;
    assert_eq!(run.status(), 503);
    assert_eq!(run.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn unavailable_responses_are_retried_when_asked_for_idempotent_requests_only() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let run_get = run(&layer, get("/"), vec![status(503), status(200)]).await;
    assert_eq!(run_get.status(), 200);
    assert_eq!(run_get.attempts.len(), 2);

    let run_post = run(&layer, post("/"), vec![status(503)]).await;
    assert_eq!(run_post.status(), 503, "the 503 itself is handed back");
    assert_eq!(run_post.attempts.len(), 1);

    let run_exhausted = run(
        &layer,
        get("/"),
        vec![status(503), status(503), status(503)],
    )
    .await;
    assert_eq!(
        run_exhausted.status(),
        503,
        "the last response is handed back"
    );
    assert_eq!(run_exhausted.attempts.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_asks_not_to_retry_is_obeyed() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let stop = http::Response::builder()
        .status(503)
        .header("grpc-retry-pushback-ms", "-1")
        .body(())
        .unwrap();
    let run = run(&layer, get("/"), vec![Answer::Respond(stop)]).await;
    assert_eq!(run.status(), 503);
    assert_eq!(run.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_waits_for_readiness() {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let service = no_budget().layer_over(mock);
    handle.allow(1);
    let call = tokio::spawn(service.oneshot(get("/")));

    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(io::Error::from(RESET));
    // The mock allows no more calls: the retry must wait in `poll_ready`, not call.
    let early = tokio::time::timeout(Duration::from_secs(60), handle.next_request()).await;
    assert!(
        early.is_err(),
        "a retry went out while the service was not ready"
    );
    assert!(!call.is_finished());

    handle.allow(1);
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(AttemptRecord::of(&request).number(), 2);
    respond.send_response(http::Response::new(()));
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_readiness_error_before_a_retry_is_returned() {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let service = no_budget().layer_over(mock);
    let call = tokio::spawn(service.oneshot(get("/")));
    let (_, respond) = handle.next_request().await.unwrap();
    handle.allow(0);
    respond.send_error(io::Error::from(RESET));
    tokio::task::yield_now().await;
    handle.send_error(io::Error::other("pool closed"));
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "pool closed");
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_means_no_retry() {
    let layer = ResetRetryLayer::builder()
        .budget(RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let run = run(&layer, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.io_error().kind(), RESET);
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_shared_by_every_service_of_one_layer() {
    // Two retryable requests allow one retry (ratio 0.5), whichever service spends it.
    let layer = ResetRetryLayer::builder()
        .budget(RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let (mock_a, mut handle_a) = mock::pair::<Req, Res>();
    let (mock_b, mut handle_b) = mock::pair::<Req, Res>();
    let mut a = layer.layer_over(mock_a);
    let mut b = layer.layer_over(mock_b);

    let call_a = tokio::spawn(a.ready().await.unwrap().call(get("/a")));
    let call_b = tokio::spawn(b.ready().await.unwrap().call(get("/b")));
    let (_, respond_a) = handle_a.next_request().await.unwrap();
    let (_, respond_b) = handle_b.next_request().await.unwrap();

    respond_a.send_error(io::Error::from(RESET));
    let (_, retry_a) = handle_a.next_request().await.unwrap();
    retry_a.send_response(http::Response::new(()));
    assert_eq!(call_a.await.unwrap().unwrap().status(), 200);

    respond_b.send_error(io::Error::from(RESET));
    let error = call_b.await.unwrap().unwrap_err();
    assert_eq!(error.downcast_ref::<io::Error>().unwrap().kind(), RESET);
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_means_no_retry() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let call = tokio::spawn(layer.layer_over(mock).oneshot(get("/")));
    let (_, respond) = handle.next_request().await.unwrap();
    tokio::time::advance(Duration::from_millis(1500)).await;
    respond.send_error(io::Error::new(RESET, "late reset"));
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "late reset");
    assert!(handle.next_request().await.is_none(), "no second attempt");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_not_yet_reached_allows_the_retry() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let call = tokio::spawn(layer.layer_over(mock).oneshot(get("/")));
    let (_, respond) = handle.next_request().await.unwrap();
    tokio::time::advance(Duration::from_millis(900)).await;
    respond.send_error(io::Error::from(RESET));
    let (retry, respond) = handle.next_request().await.unwrap();
    let deadline = AttemptRecord::of(&retry).deadline().unwrap();
    assert!(deadline > tokio::time::Instant::now());
    respond.send_response(http::Response::new(()));
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_huge_deadline_works_like_no_deadline() {
    // `Instant + Duration::MAX` would panic: the layer must not compute it on the request path.
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::MAX)
        .build()
        .unwrap();
    let run = run(&layer, get("/"), vec![Fail(RESET, "reset"), status(200)]).await;
    assert_eq!(run.status(), 200);
    assert_eq!(AttemptRecord::of(&run.attempts[1]).deadline(), None);
}

/// Maps an error whose message is "refused stream" to `Refused`, as h2 would be classified.
#[derive(Clone, Debug)]
struct RefusalClassifier;

impl ClassifyError<BoxError> for RefusalClassifier {
    fn classify_error(&self, error: &BoxError) -> Option<FailureClass> {
        if error.to_string() == "refused stream" {
            Some(FailureClass::Refused)
        } else {
            StandardClassifier::new().classify_error(error)
        }
    }
}

impl ClassifyResponse<Res> for RefusalClassifier {
    fn classify_response(&self, _: &Res) -> Option<FailureClass> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn protocol_refusals_do_not_spend_the_budget_but_count_as_attempts() {
    let layer = ResetRetryLayer::builder()
        .budget(RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap())
        .classifier(RefusalClassifier)
        .build()
        .unwrap();
    let refused = || Answer::FailWith("refused stream".into());
    let run_ok = run(&layer, post("/pay"), vec![refused(), status(200)]).await;
    assert_eq!(
        run_ok.status(),
        200,
        "a refused POST is retried even with no budget"
    );

    let run_capped = run(&layer, post("/pay"), vec![refused(), refused(), refused()]).await;
    assert_eq!(
        run_capped.attempts.len(),
        3,
        "refusals are capped by max_attempts"
    );
    assert_eq!(run_capped.result.unwrap_err().to_string(), "refused stream");
}

#[tokio::test(start_paused = true)]
async fn a_request_that_can_never_be_retried_is_not_copied() {
    let never = CountingClone::default();
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .policy(Never)
        .clone_requests(never.clone())
        .build()
        .unwrap();
    let run_never = run(&layer, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run_never.attempts.len(), 1);
    assert_eq!(never.count(), 0);

    let single = CountingClone::default();
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(1)
        .clone_requests(single.clone())
        .build()
        .unwrap();
    let run_single = run(&layer, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run_single.attempts.len(), 1);
    assert_eq!(single.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_request_is_copied_once_plus_once_per_retry() {
    let clones = CountingClone::default();
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .clone_requests(clones.clone())
        .build()
        .unwrap();
    let happy = run(&layer, get("/"), vec![status(200)]).await;
    assert_eq!(happy.status(), 200);
    assert_eq!(clones.count(), 1, "the happy path copies the request once");

    let three = run(
        &layer,
        get("/"),
        vec![Fail(RESET, "a"), Fail(RESET, "b"), Fail(RESET, "c")],
    )
    .await;
    assert_eq!(three.attempts.len(), 3);
    // The happy run's one, then one before the first attempt and one for each retry: the copy
    // is kept to the end (the third attempt does not take it), so that a last attempt refused
    // by a host that `Backoff` rides out can be followed by another.
    assert_eq!(clones.count(), 1 + 3);
}

#[tokio::test(start_paused = true)]
async fn a_closure_policy_can_allow_a_keyed_post() {
    let policy = StandardRetry::new().or(retry_if(|attempt: &Attempt<'_>| {
        attempt.method() == Method::POST
            && attempt.uri().path() == "/v1/charges"
            && attempt.headers().contains_key("x-charge-key")
    }));
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .policy(policy)
        .build()
        .unwrap();

    let mut keyed = post("/v1/charges");
    keyed
        .headers_mut()
        .insert("x-charge-key", "c-1".parse().unwrap());
    let run_keyed = run(&layer, keyed, vec![Fail(RESET, "reset"), status(200)]).await;
    assert_eq!(run_keyed.status(), 200);

    let run_other = run(&layer, post("/v1/refunds"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run_other.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_the_history_of_a_failed_request() {
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let run = run(
        &no_budget(),
        request,
        vec![
            Fail(REFUSED, "down"),
            Fail(RESET, "reset"),
            Fail(RESET, "reset"),
        ],
    )
    .await;
    assert!(run.result.is_err());
    let history = observer.get().unwrap();
    assert_eq!(history.attempts(), 3);
    assert_eq!(
        history.failures(),
        &[
            FailureClass::NeverSent,
            FailureClass::UnknownOutcome,
            FailureClass::UnknownOutcome
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_a_single_attempt_on_the_fast_path() {
    let layer = ResetRetryLayer::builder().policy(Never).build().unwrap();
    let mut request = post("/");
    let observer = HistoryObserver::attach(&mut request);
    let run = run(&layer, request, vec![Fail(RESET, "reset")]).await;
    assert!(run.result.is_err());
    assert_eq!(observer.get().unwrap().attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_between_attempts_sends_nothing_more() {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let service = no_budget().layer_over(mock);
    handle.allow(1);
    let call = tokio::spawn(service.oneshot(get("/")));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(io::Error::from(RESET));
    tokio::task::yield_now().await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    handle.allow(5);
    let more = tokio::time::timeout(Duration::from_secs(60), handle.next_request()).await;
    assert!(
        matches!(more, Err(_) | Ok(None)),
        "no attempt after the caller gave up"
    );
}

/// Small helpers so tests read as sentences.
trait LayerOver {
    fn layer_over(&self, mock: Mock) -> tower_reset::ResetRetry<Mock>;
}

impl LayerOver for ResetRetryLayer {
    fn layer_over(&self, mock: Mock) -> tower_reset::ResetRetry<Mock> {
        tower::Layer::layer(self, mock)
    }
}
