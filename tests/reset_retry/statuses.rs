//! Status retries over real loopback sockets against the lab: each status of
//! `RetryStatuses::standard()` × GET and POST, with the server's own count of what it executed.
//! A *try again later* status is retried for a GET only; a status declared *not processed* for
//! a POST too; `Retry-After` is honoured.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_reset::attempt::{HistoryObserver, StopReason};
use tower_reset::backoff::policy::Constant;
use tower_reset::classify::{FailureClass, RetryStatuses, StandardClassifier};
use tower_reset::lab::{Lab, Match, Reply};
use tower_reset::{BackoffLayer, ResetRetryLayer};

const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the test did not finish in time")
}

/// The first request gets `first`, every later one a `200`.
async fn lab_answering_first(first: Reply) -> Lab {
    Lab::builder()
        .on(Match::nth(1), first)
        .start()
        .await
        .expect("the lab starts")
}

/// Sends one request through the stack with `statuses`; returns the status the caller got, the
/// history, and the lab's count of executions.
async fn send(
    lab: &Lab,
    statuses: RetryStatuses,
    method: Method,
) -> (StatusCode, tower_reset::attempt::AttemptHistory, usize) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = ServiceBuilder::new()
        .layer(
            ResetRetryLayer::builder()
                .classifier(StandardClassifier::new().statuses(statuses))
                .no_budget()
                .build()
                .unwrap(),
        )
        .layer(BackoffLayer::new().schedule(Constant::new(Duration::from_millis(5))))
        .service(client);
    let body = if method == Method::POST {
        Full::new(Bytes::from_static(b"{\"amount\":1}"))
    } else {
        Full::default()
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(lab.url("/resource"))
        .header("x-request-id", "r-1")
        .body(body)
        .unwrap();
    let observer = HistoryObserver::attach(&mut request);
    let response = bounded(service.oneshot(request)).await.expect("a response");
    let status = response.status();
    bounded(response.into_body().collect()).await.unwrap();
    (
        status,
        observer.get().unwrap(),
        lab.counts().executions("r-1"),
    )
}

#[tokio::test]
async fn each_standard_status_is_retried_for_a_get_and_returned_for_a_post() {
    for code in [429, 502, 503, 504] {
        let status = StatusCode::from_u16(code).unwrap();

        let lab = lab_answering_first(Reply::new(status)).await;
        let (got, history, executions) = send(&lab, RetryStatuses::standard(), Method::GET).await;
        assert_eq!(got, StatusCode::OK, "GET after {code}");
        assert_eq!(executions, 2, "GET after {code}: sent twice");
        assert_eq!(history.failures(), [FailureClass::Unavailable]);
        assert_eq!(history.stop_reason(), StopReason::Succeeded);

        let lab = lab_answering_first(Reply::new(status)).await;
        let (got, history, executions) = send(&lab, RetryStatuses::standard(), Method::POST).await;
        assert_eq!(got, status, "POST after {code}: the status is the caller's");
        assert_eq!(executions, 1, "POST after {code}: never sent twice");
        assert_eq!(history.stop_reason(), StopReason::NotSafeToRepeat);
    }
}

#[tokio::test]
async fn statuses_outside_the_set_are_answers() {
    for code in [500, 404, 409] {
        let status = StatusCode::from_u16(code).unwrap();
        let lab = lab_answering_first(Reply::new(status)).await;
        let (got, history, executions) = send(&lab, RetryStatuses::standard(), Method::GET).await;
        assert_eq!(got, status);
        assert_eq!(executions, 1);
        assert_eq!(history.stop_reason(), StopReason::Succeeded);
    }
}

#[tokio::test]
async fn a_status_declared_not_processed_is_retried_for_a_post_too() {
    let statuses = RetryStatuses::standard()
        .to_builder()
        .not_processed(StatusCode::TOO_MANY_REQUESTS)
        .build()
        .unwrap();
    let lab = lab_answering_first(Reply::new(StatusCode::TOO_MANY_REQUESTS)).await;
    let (got, history, executions) = send(&lab, statuses, Method::POST).await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(executions, 2);
    assert_eq!(history.failures(), [FailureClass::Rejected]);

    // The other statuses keep their kind: a POST after a 503 is still not sent twice.
    let lab = lab_answering_first(Reply::new(StatusCode::SERVICE_UNAVAILABLE)).await;
    let (got, _, executions) = send(&lab, statuses, Method::POST).await;
    assert_eq!(got, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(executions, 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let busy = Reply::new(StatusCode::SERVICE_UNAVAILABLE)
        .header(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    let lab = lab_answering_first(busy).await;
    let (got, history, executions) = send(&lab, RetryStatuses::standard(), Method::GET).await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(executions, 2);
    assert_eq!(
        history.summaries()[1].delay(),
        Some(Duration::from_secs(1)),
        "the retry waited the server's second"
    );
    let arrivals: Vec<_> = lab
        .counts()
        .requests()
        .iter()
        .map(|request| request.arrived())
        .collect();
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_secs(1),
        "the server saw the retry no sooner than it asked: {:?}",
        arrivals[1] - arrivals[0]
    );
}
