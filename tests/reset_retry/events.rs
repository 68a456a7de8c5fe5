//! The `tracing` events (feature `tracing`): a retry is logged once it goes out, never when it
//! is abandoned, and a give-up says why, with the method and URI.

use std::time::Duration;

use tower::ServiceBuilder;
use tower_reset::backoff::policy::Constant;
use tower_reset::classify::StandardClassifier;
use tower_reset::{BackoffLayer, ResetRetryLayer};
use tracing::Level;

use crate::captured_events::Capture;
use crate::harness::*;
use crate::scripted_mock::paused_runtime;

fn http_get() -> Req {
    http::Request::get("http://example.com/items")
        .body(String::new())
        .unwrap()
}

#[test]
fn a_retry_that_goes_out_is_logged_with_its_fields() {
    let capture = Capture::default();
    capture.run(|| {
        paused_runtime().block_on(async {
            let layer = ServiceBuilder::new()
                .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
                .layer(BackoffLayer::new().schedule(Constant::new(Duration::from_millis(5))));
            let run = run(&layer, http_get(), vec![Fail(RESET, "reset"), status(200)]).await;
            assert_eq!(run.status(), 200);
        })
    });
    let retries = capture.with_target("tower_reset::retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    let retry = &retries[0];
    assert_eq!(retry.level, Level::INFO);
    assert_eq!(retry.field("method"), Some("GET"));
    assert_eq!(retry.field("uri"), Some("http://example.com/items"));
    assert_eq!(retry.field("attempt"), Some("2"));
    assert_eq!(retry.field("class"), Some("unknown_outcome"));
    assert_eq!(retry.field("delay"), Some("Some(0ns)"));
    assert!(capture.with_target("tower_reset::give_up").is_empty());
}

#[test]
fn an_abandoned_retry_is_not_logged_as_a_retry_and_the_give_up_says_why() {
    let capture = Capture::default();
    capture.run(|| {
        paused_runtime().block_on(async {
            let retry = ResetRetryLayer::builder()
                .no_budget()
                .classifier(StandardClassifier::new().unavailable_responses(true))
                .deadline(Duration::from_millis(100))
                .build()
                .unwrap();
            let layer = ServiceBuilder::new()
                .layer(retry)
                .layer(BackoffLayer::new().schedule(Constant::new(Duration::from_secs(1))));
            let run = run(&layer, http_get(), vec![status(503)]).await;
            assert_eq!(run.status(), 503);
        })
    });
    assert!(
        capture.with_target("tower_reset::retry").is_empty(),
        "the retry was abandoned before it went out"
    );
    let give_ups = capture.with_target("tower_reset::give_up");
    assert_eq!(give_ups.len(), 1, "{give_ups:?}");
    let give_up = &give_ups[0];
    assert_eq!(give_up.level, Level::INFO);
    assert_eq!(give_up.field("reason"), Some("deadline"));
    assert_eq!(give_up.field("class"), Some("unavailable"));
    assert_eq!(give_up.field("attempts"), Some("1"));
    assert_eq!(give_up.field("method"), Some("GET"));
    let backoff = capture.with_target("tower_reset::backoff");
    assert!(
        backoff
            .iter()
            .any(|event| event.field("reason") == Some("deadline") && event.level == Level::DEBUG),
        "{backoff:?}"
    );
}

#[test]
fn a_post_not_safe_to_repeat_is_logged_as_a_give_up() {
    let capture = Capture::default();
    capture.run(|| {
        paused_runtime().block_on(async {
            let layer = ResetRetryLayer::builder().no_budget().build().unwrap();
            let request = http::Request::post("http://example.com/pay")
                .body("{}".to_owned())
                .unwrap();
            let run = run(&layer, request, vec![Fail(RESET, "reset")]).await;
            assert!(run.result.is_err());
        })
    });
    let give_ups = capture.with_target("tower_reset::give_up");
    assert_eq!(give_ups.len(), 1);
    assert_eq!(give_ups[0].field("reason"), Some("not_safe_to_repeat"));
    assert_eq!(give_ups[0].field("method"), Some("POST"));
    assert_eq!(give_ups[0].field("uri"), Some("http://example.com/pay"));
}

#[test]
fn a_host_that_refuses_connections_is_logged_when_it_goes_down_and_comes_back() {
    let capture = Capture::default();
    capture.run(|| {
        paused_runtime().block_on(async {
            let probes = tower_reset::backoff::policy::Exponential::builder()
                .base(Duration::from_millis(10))
                .jitter(tower_reset::backoff::policy::Jitter::None)
                .build()
                .unwrap();
            let ride_out = tower_reset::backoff::RideOut::builder()
                .probes(probes)
                .build()
                .unwrap();
            let layer = ServiceBuilder::new()
                .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
                .layer(BackoffLayer::new().seed(1).ride_out(ride_out));
            let script = vec![
                Fail(REFUSED, "refused"),
                Fail(REFUSED, "refused"),
                status(200),
            ];
            let run = run(&layer, http_get(), script).await;
            assert_eq!(run.status(), 200);
        })
    });
    let events = capture.with_target("tower_reset::backoff");
    let infos: Vec<_> = events.iter().filter(|e| e.level == Level::INFO).collect();
    assert_eq!(
        infos.len(),
        2,
        "one when it went down, one when it came back: {infos:?}"
    );
    assert_eq!(infos[0].field("host"), Some("http://example.com"));
    assert_eq!(infos[0].field("down_for"), Some("0ns"));
    assert_eq!(infos[1].field("host"), Some("http://example.com"));
    assert_eq!(infos[1].field("down_for"), Some("30ms"));
    assert_eq!(
        infos[1].field("waiters"),
        Some("0"),
        "the probe was the only request"
    );
    let hows: Vec<_> = events
        .iter()
        .filter_map(|event| event.field("how"))
        .collect();
    assert_eq!(hows, ["probe", "probe"]);
    // The refused probe does not count: no give-up, one retry event per probe.
    assert!(capture.with_target("tower_reset::give_up").is_empty());
    assert_eq!(capture.with_target("tower_reset::retry").len(), 2);
}

#[test]
fn the_last_attempt_is_logged_with_the_method_and_uri_it_took_from_the_copy() {
    // The last attempt sends the kept copy itself: the events that follow it read the method
    // and URI kept aside when it took the copy.
    let capture = Capture::default();
    capture.run(|| {
        paused_runtime().block_on(async {
            let layer = ResetRetryLayer::builder()
                .no_budget()
                .max_attempts(2)
                .build()
                .unwrap();
            let run = run(
                &layer,
                http_get(),
                vec![Fail(RESET, "one"), Fail(RESET, "two")],
            )
            .await;
            assert!(run.result.is_err());
        })
    });
    let retries = capture.with_target("tower_reset::retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0].field("attempt"), Some("2"));
    assert_eq!(retries[0].field("method"), Some("GET"));
    assert_eq!(retries[0].field("uri"), Some("http://example.com/items"));
    let give_ups = capture.with_target("tower_reset::give_up");
    assert_eq!(give_ups.len(), 1, "{give_ups:?}");
    assert_eq!(give_ups[0].field("reason"), Some("attempts_exhausted"));
    assert_eq!(give_ups[0].field("attempts"), Some("2"));
    assert_eq!(give_ups[0].field("method"), Some("GET"));
    assert_eq!(give_ups[0].field("uri"), Some("http://example.com/items"));
}
