//! Every request's history says why it stopped: one test per [`StopReason`], over the
//! tower-test mock (the readiness discipline is checked by the mock at the same time), and the
//! per-attempt summaries (failure met, delay slept before).

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use tower::layer::util::{Identity, Stack};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{
    AttemptAbandoned, AttemptHistory, AttemptRecord, HistoryObserver, StopReason,
};
use tower_reset::backoff::policy::{delays_fn, Constant, Schedule};
use tower_reset::classify::FailureClass::{self, NeverSent, Unavailable, UnknownOutcome};
use tower_reset::classify::StandardClassifier;
use tower_reset::reset_retry::policy::{CloneRequest, Never};
use tower_reset::reset_retry::RetryBudget;
use tower_reset::{BackoffLayer, ResetRetryLayer};
use tower_test::mock;

use crate::harness::*;
use crate::scripted_mock::run_on;

fn retry() -> ResetRetryLayer {
    ResetRetryLayer::builder().no_budget().build().unwrap()
}

fn retry_503() -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap()
}

fn with_backoff<B: Schedule + Clone>(
    retry: ResetRetryLayer,
    schedule: B,
) -> ServiceBuilder<Stack<BackoffLayer<B>, Stack<ResetRetryLayer, Identity>>> {
    ServiceBuilder::new()
        .layer(retry)
        .layer(BackoffLayer::new().schedule(schedule).seed(7))
}

/// Sends `request` through `layer` over the mock, answering from `script`; returns the run and
/// the history the observer saw.
async fn observed<L>(
    layer: &L,
    mut request: Req,
    script: Vec<Answer>,
) -> (crate::scripted_mock::Run, AttemptHistory)
where
    L: Layer<Mock>,
    L::Service: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    <L::Service as Service<Req>>::Future: Send,
{
    let observer = HistoryObserver::attach(&mut request);
    let run = run(layer, request, script).await;
    let history = observer.get().expect("every request records a history");
    (run, history)
}

fn respond(status: u16, headers: &[(&'static str, &'static str)]) -> Answer {
    let mut response = http::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Answer::Respond(response.body(()).unwrap())
}

fn failures(history: &AttemptHistory) -> Vec<Option<FailureClass>> {
    history.summaries().iter().map(|s| s.failure()).collect()
}

#[tokio::test(start_paused = true)]
async fn succeeded_after_a_retry() {
    let (run, history) =
        observed(&retry(), get("/"), vec![Fail(RESET, "reset"), status(200)]).await;
    assert_eq!(run.status(), 200);
    assert_eq!(history.stop_reason(), StopReason::Succeeded);
    assert_eq!(failures(&history), [Some(UnknownOutcome), None]);
    assert_eq!(
        run.response().extensions().get::<AttemptHistory>(),
        Some(&history),
        "the response carries the same history"
    );
}

#[tokio::test(start_paused = true)]
async fn succeeded_at_once_is_one_attempt() {
    let (run, history) = observed(&retry(), get("/"), vec![status(200)]).await;
    assert_eq!(run.status(), 200);
    assert_eq!(history.stop_reason(), StopReason::Succeeded);
    assert_eq!(failures(&history), [None]);
    // A response that took one attempt carries no history of its own.
    assert!(run
        .response()
        .extensions()
        .get::<AttemptHistory>()
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn an_error_that_is_not_a_connection_failure() {
    let timeout = Fail(io::ErrorKind::TimedOut, "timed out");
    let (run, history) = observed(&retry(), get("/"), vec![timeout]).await;
    assert_eq!(run.io_error().kind(), io::ErrorKind::TimedOut);
    assert_eq!(history.stop_reason(), StopReason::NotConnectionFailure);
    assert_eq!(failures(&history), [None]);
    assert!(!history.stop_reason().is_give_up());
}

#[tokio::test(start_paused = true)]
async fn a_response_the_classifier_does_not_report_is_a_success() {
    let (run, history) = observed(&retry_503(), get("/"), vec![status(500)]).await;
    assert_eq!(run.status(), 500);
    assert_eq!(history.stop_reason(), StopReason::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn not_safe_to_repeat_tells_apart_from_budget_spent() {
    // The two cases the old history could not tell apart: `attempts: 1, [UnknownOutcome]`.
    let (run, not_safe) = observed(&retry(), post("/pay"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run.io_error().kind(), RESET);
    assert_eq!(not_safe.stop_reason(), StopReason::NotSafeToRepeat);

    let spent = ResetRetryLayer::builder()
        .budget(RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let (run, budget) = observed(&spent, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(run.io_error().kind(), RESET);
    assert_eq!(budget.stop_reason(), StopReason::BudgetSpent);
    assert_eq!(not_safe.failures(), budget.failures());
    assert_ne!(not_safe, budget);
}

#[tokio::test(start_paused = true)]
async fn attempts_exhausted() {
    let script = vec![
        Fail(REFUSED, "down"),
        Fail(RESET, "reset"),
        Fail(RESET, "reset"),
    ];
    let (run, history) = observed(&retry(), get("/"), script).await;
    assert_eq!(run.io_error().kind(), RESET);
    assert_eq!(history.stop_reason(), StopReason::AttemptsExhausted);
    assert_eq!(history.attempts(), 3);
    assert_eq!(
        failures(&history),
        [Some(NeverSent), Some(UnknownOutcome), Some(UnknownOutcome)]
    );
}

#[tokio::test(start_paused = true)]
async fn deadline_reached_by_the_backoff_and_hint_too_long_are_told_apart() {
    // Both end a request whose last failure was a 503: the old history was `[Unavailable]` for
    // both.
    let deadline = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_millis(100))
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let layer = with_backoff(deadline, Constant::new(Duration::from_secs(1)));
    let (run, by_deadline) = observed(&layer, get("/"), vec![status(503)]).await;
    assert_eq!(run.status(), 503, "the real outcome, not the abandonment");
    assert_eq!(by_deadline.stop_reason(), StopReason::Deadline);
    assert_eq!(by_deadline.attempts(), 1);

    let layer = with_backoff(retry_503(), Constant::new(Duration::from_millis(10)));
    let (run, by_hint) = observed(
        &layer,
        get("/"),
        vec![respond(503, &[("retry-after", "60")])],
    )
    .await;
    assert_eq!(run.status(), 503);
    assert_eq!(by_hint.stop_reason(), StopReason::HintTooLong);
    assert_eq!(by_deadline.failures(), [Unavailable]);
    assert_eq!(by_hint.failures(), [Unavailable]);
}

#[tokio::test(start_paused = true)]
async fn deadline_passed_before_the_retry() {
    // The first attempt takes longer than the deadline: ResetRetry itself stops.
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_millis(100))
        .build()
        .unwrap();
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let call = tokio::spawn(layer.layer(mock).oneshot(request));
    let (_, respond) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    respond.send_error(io::Error::from(RESET));
    assert!(call.await.unwrap().is_err());
    assert_eq!(observer.get().unwrap().stop_reason(), StopReason::Deadline);
}

#[tokio::test(start_paused = true)]
async fn the_wait_for_readiness_ends_at_the_deadline_with_the_held_outcome() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    let (mock, mut handle) = mock::pair::<Req, Res>();
    handle.allow(1);
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let start = tokio::time::Instant::now();
    let call = tokio::spawn(layer.layer(mock).oneshot(request));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(io::Error::new(RESET, "first"));
    // The mock never becomes ready again: only the deadline ends the wait.
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "first");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let history = observer.get().unwrap();
    assert_eq!(history.stop_reason(), StopReason::Deadline);
    assert_eq!(history.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_server_said_not_to_retry() {
    let stop = respond(503, &[("grpc-retry-pushback-ms", "-1")]);
    let (run, history) = observed(&retry_503(), get("/"), vec![stop]).await;
    assert_eq!(run.status(), 503);
    assert_eq!(history.stop_reason(), StopReason::ServerSaidNoRetry);
}

/// Copies the request, but says before every retry that the copy cannot be sent.
#[derive(Clone)]
struct NeverReplayable;

impl CloneRequest<Req> for NeverReplayable {
    fn clone_request(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
    fn can_replay(&self, _copy: &Req, _responded: bool) -> bool {
        false
    }
}

#[tokio::test(start_paused = true)]
async fn the_body_cannot_be_replayed() {
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .clone_requests(NeverReplayable)
        .build()
        .unwrap();
    let (_, history) = observed(&layer, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(history.stop_reason(), StopReason::BodyNotReplayable);

    // A request that cannot be copied at all takes the fast path, with the same reason.
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .clone_requests(tower_reset::reset_retry::policy::NoClone)
        .build()
        .unwrap();
    let (_, history) = observed(&layer, get("/"), vec![Fail(RESET, "reset")]).await;
    assert_eq!(history.stop_reason(), StopReason::BodyNotReplayable);
    assert_eq!(history.failures(), [UnknownOutcome]);
}

#[tokio::test(start_paused = true)]
async fn the_schedule_ran_out() {
    let layer = with_backoff(
        ResetRetryLayer::builder()
            .no_budget()
            .max_attempts(5)
            .build()
            .unwrap(),
        delays_fn(|_| [Duration::from_millis(10)].into_iter()),
    );
    let script = vec![
        Fail(RESET, "reset"),
        Fail(RESET, "reset"),
        Fail(RESET, "third"),
    ];
    let (run, history) = observed(&layer, get("/"), script).await;
    assert_eq!(run.io_error().to_string(), "third");
    assert_eq!(history.stop_reason(), StopReason::ScheduleExhausted);
    assert_eq!(history.attempts(), 3);
    let delays: Vec<_> = history.summaries().iter().map(|s| s.delay()).collect();
    assert_eq!(
        delays,
        [None, Some(Duration::ZERO), Some(Duration::from_millis(10))],
        "the first retry at once, the second after the schedule's one delay"
    );
    assert_eq!(history.total_delay(), Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn the_service_failed_while_getting_ready() {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let call = tokio::spawn(retry().layer(mock).oneshot(request));
    let (_, respond) = handle.next_request().await.unwrap();
    handle.allow(0);
    respond.send_error(io::Error::from(RESET));
    tokio::task::yield_now().await;
    handle.send_error(io::Error::other("pool closed"));
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "pool closed");
    let history = observer.get().unwrap();
    assert_eq!(history.stop_reason(), StopReason::ServiceNotReady);
    assert_eq!(history.attempts(), 1);
}

/// An inner layer that abandons every retry for a reason of its own.
#[derive(Clone)]
struct Abandoning<S>(S);

impl<S: Service<Req, Response = Res, Error = BoxError>> Service<Req> for Abandoning<S>
where
    S::Future: Send + 'static,
{
    type Response = Res;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Res, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if AttemptRecord::of(&request).is_first() {
            Box::pin(self.0.call(request))
        } else {
            Box::pin(async { Err(AttemptAbandoned::new("maintenance window").into()) })
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_inner_layer_abandoned_the_attempt() {
    let (mock, handle) = mock::pair::<Req, Res>();
    let service = retry().layer(Abandoning(mock));
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let run = run_on(service, handle, request, vec![Fail(RESET, "reset")]).await;
    assert_eq!(run.io_error().kind(), RESET, "the previous, real outcome");
    let history = observer.get().unwrap();
    assert_eq!(history.stop_reason(), StopReason::Abandoned);
    assert_eq!(history.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_fast_path_and_the_retrying_path_agree_on_a_failed_post() {
    let single = ResetRetryLayer::builder().max_attempts(1).build().unwrap();
    let never = ResetRetryLayer::builder().policy(Never).build().unwrap();
    let (_, on_fast_path) = observed(&single, post("/"), vec![Fail(RESET, "reset")]).await;
    let (_, by_policy) = observed(&never, post("/"), vec![Fail(RESET, "reset")]).await;
    let (_, retrying) = observed(&retry(), post("/"), vec![Fail(RESET, "reset")]).await;
    for history in [&on_fast_path, &by_policy, &retrying] {
        assert_eq!(history.attempts(), 1);
        assert_eq!(history.failures(), [UnknownOutcome], "{history}");
    }
    assert_eq!(on_fast_path.stop_reason(), StopReason::AttemptsExhausted);
    assert_eq!(by_policy.stop_reason(), StopReason::NotSafeToRepeat);
    assert_eq!(retrying.stop_reason(), StopReason::NotSafeToRepeat);

    let (_, ok) = observed(&single, post("/"), vec![status(200)]).await;
    assert_eq!(ok.stop_reason(), StopReason::Succeeded);
    assert_eq!(ok.failures(), []);
}

#[tokio::test(start_paused = true)]
async fn the_history_reads_as_one_line() {
    let layer = with_backoff(retry(), Constant::new(Duration::from_millis(40)));
    let script = vec![Fail(RESET, "reset"), Fail(RESET, "reset"), status(200)];
    let (_, history) = observed(&layer, get("/"), script).await;
    assert_eq!(
        history.to_string(),
        "3 attempts (unknown_outcome, unknown_outcome after 0ns, ok after 40ms); \
         stopped: the request succeeded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_policy_sees_the_response_the_attempt_ended_with() {
    use tower_reset::reset_retry::policy::{retry_if, Attempt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let layer = ResetRetryLayer::builder()
        .no_budget()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .policy(retry_if(move |attempt: &Attempt<'_>| {
            record.lock().unwrap().push(attempt.response_status());
            attempt
                .response_headers()
                .is_some_and(|headers| headers.contains_key("x-not-applied"))
        }))
        .build()
        .unwrap();
    let script = vec![
        respond(503, &[("x-not-applied", "1")]),
        Fail(RESET, "reset"),
    ];
    let (_, history) = observed(&layer, post("/"), script).await;
    assert_eq!(
        history.attempts(),
        2,
        "the 503 marked not applied was retried"
    );
    assert_eq!(history.stop_reason(), StopReason::NotSafeToRepeat);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(http::StatusCode::SERVICE_UNAVAILABLE), None],
        "the response's status for the 503, none for the reset"
    );
}
