//! The stop reasons over real loopback sockets: hyper-util's legacy client under the stack,
//! against the lab, which counts what it executed. (`ServiceNotReady` and `Abandoned` need a
//! service or a layer that misbehaves on purpose: they are covered over the mock.)

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{AttemptHistory, HistoryObserver, StopReason};
use tower_reset::backoff::policy::delays_fn;
use tower_reset::classify::{RetryStatuses, StandardClassifier};
use tower_reset::lab::{Fault, Lab, Match, Reply};
use tower_reset::replay::ReplayBodyLayer;
use tower_reset::reset_retry::RetryBudget;
use tower_reset::{BackoffLayer, ResetRetryLayer};

const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the test did not finish in time")
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn request(method: Method, url: &str) -> http::Request<Full<Bytes>> {
    let body = if method == Method::GET {
        Full::default()
    } else {
        Full::new(Bytes::from_static(b"0123456789"))
    };
    http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap()
}

/// Sends `request` through `layer` over a fresh client; the history the observer saw.
async fn history_of<L>(layer: L, mut request: http::Request<Full<Bytes>>) -> AttemptHistory
where
    L: Layer<Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>>,
    L::Service: tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<hyper::body::Incoming>,
    >,
    <L::Service as tower::Service<http::Request<Full<Bytes>>>>::Error: std::fmt::Debug,
{
    let observer = HistoryObserver::attach(&mut request);
    let service = layer.layer(client());
    if let Ok(response) = bounded(service.oneshot(request)).await {
        let _ = bounded(response.into_body().collect()).await;
    }
    observer.get().expect("a history")
}

async fn lab(rules: Vec<(Match, Fault)>) -> Lab {
    let mut builder = Lab::builder();
    for (when, action) in rules {
        builder = builder.on(when, action);
    }
    builder.start().await.expect("the lab starts")
}

fn retry() -> ResetRetryLayer {
    ResetRetryLayer::builder().no_budget().build().unwrap()
}

fn statuses_retry() -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .classifier(StandardClassifier::new().statuses(RetryStatuses::standard()))
        .build()
        .unwrap()
}

fn busy(header: &'static str, value: &'static str) -> Fault {
    Reply::new(StatusCode::SERVICE_UNAVAILABLE)
        .header(
            HeaderName::from_static(header),
            HeaderValue::from_static(value),
        )
        .into()
}

#[tokio::test]
async fn over_sockets_each_reason_is_the_one_that_stopped_the_request() {
    // Succeeded: a GET reset after its head, then answered.
    let l = lab(vec![(Match::nth(1), Fault::ResetAfterHead)]).await;
    let history = history_of(retry(), request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::Succeeded);
    assert_eq!(history.attempts(), 2);

    // NotSafeToRepeat: a POST reset after the server executed it.
    let l = lab(vec![(Match::any(), Fault::ResetAfterRequest)]).await;
    let history = history_of(retry(), request(Method::POST, &l.url("/pay"))).await;
    assert_eq!(history.stop_reason(), StopReason::NotSafeToRepeat);
    assert_eq!(l.counts().executed(), 1);

    // AttemptsExhausted: every attempt reset.
    let l = lab(vec![(Match::any(), Fault::ResetAfterHead)]).await;
    let history = history_of(retry(), request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::AttemptsExhausted);
    assert_eq!(l.counts().received(), 3);

    // BudgetSpent: a budget that grants nothing.
    let l = lab(vec![(Match::any(), Fault::ResetAfterHead)]).await;
    let spent = ResetRetryLayer::builder()
        .budget(RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let history = history_of(spent, request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::BudgetSpent);
    assert_eq!(l.counts().received(), 1);

    // NotConnectionFailure: a URI the client refuses to send (no host), not a connection
    // failure.
    let history = history_of(retry(), request(Method::GET, "/no-host")).await;
    assert_eq!(history.stop_reason(), StopReason::NotConnectionFailure);
}

#[tokio::test]
async fn over_sockets_the_reasons_that_come_from_the_backoff_and_the_server() {
    // ServerSaidNoRetry: a 503 with a negative pushback.
    let l = lab(vec![(Match::any(), busy("grpc-retry-pushback-ms", "-1"))]).await;
    let stack = ServiceBuilder::new()
        .layer(statuses_retry())
        .layer(BackoffLayer::new())
        .into_inner();
    let history = history_of(stack, request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::ServerSaidNoRetry);

    // HintTooLong: Retry-After above max_hint.
    let l = lab(vec![(Match::any(), busy("retry-after", "60"))]).await;
    let stack = ServiceBuilder::new()
        .layer(statuses_retry())
        .layer(BackoffLayer::new())
        .into_inner();
    let history = history_of(stack, request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::HintTooLong);
    assert_eq!(l.counts().received(), 1);

    // Deadline: the server's second would end after the 300 ms deadline.
    let l = lab(vec![(Match::any(), busy("retry-after", "1"))]).await;
    let deadline = ResetRetryLayer::builder()
        .no_budget()
        .deadline(Duration::from_millis(300))
        .classifier(StandardClassifier::new().statuses(RetryStatuses::standard()))
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(deadline)
        .layer(BackoffLayer::new())
        .into_inner();
    let history = history_of(stack, request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::Deadline);
    assert_eq!(l.counts().received(), 1);

    // ScheduleExhausted: a schedule with one delay, three resets in a row.
    let l = lab(vec![(Match::any(), Fault::ResetAfterHead)]).await;
    let stack = ServiceBuilder::new()
        .layer(
            ResetRetryLayer::builder()
                .no_budget()
                .max_attempts(5)
                .build()
                .unwrap(),
        )
        .layer(BackoffLayer::new().schedule(delays_fn(|_| [Duration::from_millis(5)].into_iter())))
        .into_inner();
    let history = history_of(stack, request(Method::GET, &l.url("/"))).await;
    assert_eq!(history.stop_reason(), StopReason::ScheduleExhausted);
    assert_eq!(l.counts().received(), 3);
}

#[tokio::test]
async fn over_sockets_a_body_past_the_replay_cap_is_not_replayable() {
    let l = lab(vec![(Match::nth(1), Fault::ResetAfterRequest)]).await;
    let client = Client::builder(TokioExecutor::new())
        .build_http::<tower_reset::replay::ReplayBody<Full<Bytes>>>();
    let service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new().cap(4)) // the 10-byte body outgrows it
        .layer(retry())
        .service(client);
    let mut put = request(Method::PUT, &l.url("/blob"));
    let observer = HistoryObserver::attach(&mut put);
    let result = bounded(service.oneshot(put)).await;
    assert!(result.is_err(), "the reset PUT is not sent again");
    let history = observer.get().unwrap();
    assert_eq!(history.stop_reason(), StopReason::BodyNotReplayable);
    assert_eq!(l.counts().received(), 1);
}
