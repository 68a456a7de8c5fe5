//! `BackoffLayer` outside `ResetRetryLayer` compiles, but waits for nothing: a retry after a
//! server's `Retry-After` goes out at once. `ResetRetry` notices that no layer below reported a
//! delay for it and warns (once per process, so this test has a binary of its own), and the
//! history shows the missing delay. The presets assemble the right order.

#[path = "../support/captured_events.rs"]
mod captured_events;

use std::time::Duration;

use http::header::RETRY_AFTER;
use tower::{ServiceBuilder, ServiceExt};
use tower_reset::attempt::HistoryObserver;
use tower_reset::classify::StandardClassifier;
use tower_reset::{BackoffLayer, ResetRetryLayer};
use tower_test::mock;
use tracing::Level;

use crate::captured_events::Capture;

type Req = http::Request<String>;
type Res = http::Response<()>;

/// Sends one GET that gets a `503` with `Retry-After: 1`, then a `200`, through `stack`;
/// returns the delay each retry reported and whether the warning came.
fn retry_after_503<F, S>(stack: F) -> (Vec<Option<Duration>>, bool)
where
    F: FnOnce(mock::Mock<Req, Res>) -> S,
    S: tower::Service<Req, Response = Res> + Send + 'static,
    S::Error: std::fmt::Debug + Send,
    S::Future: Send,
{
    let capture = Capture::default();
    let delays = capture.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mock, mut handle) = mock::pair::<Req, Res>();
            let mut request = http::Request::get("http://example.com/")
                .body(String::new())
                .unwrap();
            let observer = HistoryObserver::attach(&mut request);
            let call = tokio::spawn(stack(mock).oneshot(request));
            let (_, respond) = handle.next_request().await.unwrap();
            respond.send_response(
                http::Response::builder()
                    .status(503)
                    .header(RETRY_AFTER, "1")
                    .body(())
                    .unwrap(),
            );
            let (_, respond) = handle.next_request().await.unwrap();
            respond.send_response(http::Response::new(()));
            let response = call.await.unwrap().unwrap();
            assert_eq!(response.status(), 200);
            let history = observer.get().unwrap();
            history
                .summaries()
                .iter()
                .skip(1)
                .map(|summary| summary.delay())
                .collect::<Vec<_>>()
        })
    });
    let warned = capture
        .with_target("tower_reset::retry")
        .iter()
        .any(|event| event.level == Level::WARN);
    (delays, warned)
}

fn retry() -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .no_budget()
        .build()
        .unwrap()
}

#[test]
fn backoff_outside_the_retry_layer_is_loud() {
    // The right order first: the retry waits the server's second, and nothing is said.
    let (delays, warned) = retry_after_503(|mock| {
        ServiceBuilder::new()
            .layer(retry())
            .layer(BackoffLayer::new())
            .service(mock)
    });
    assert_eq!(delays, [Some(Duration::from_secs(1))]);
    assert!(!warned);

    // The wrong order: the retry goes out at once, the history says no layer waited, and the
    // warning comes.
    let (delays, warned) = retry_after_503(|mock| {
        ServiceBuilder::new()
            .layer(BackoffLayer::new())
            .layer(retry())
            .service(mock)
    });
    assert_eq!(delays, [None], "no layer below ResetRetry waited");
    assert!(warned, "the wrong order is reported");
}
