//! `ResetRetry` + `Backoff` over the tower-test mock, in paused time: when each attempt reaches
//! the mock, and how the deadline ends a request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::layer::util::{Identity, Stack};
use tower::ServiceBuilder;
use tower_reset::backoff::policy::{delays_fn, Constant, Exponential, Jitter, Schedule, Zero};
use tower_reset::backoff::RideOut;
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::harness::*;

/// `ResetRetry` (no budget, `max_attempts`) over `Backoff` with `schedule` and seed 42.
pub(crate) fn stack<B: Schedule + Clone>(
    retry: ResetRetryLayer,
    schedule: B,
) -> ServiceBuilder<Stack<BackoffLayer<B>, Stack<ResetRetryLayer, Identity>>> {
    ServiceBuilder::new()
        .layer(retry)
        .layer(BackoffLayer::new().schedule(schedule).seed(42))
}

fn resets(n: usize) -> Vec<Answer> {
    (0..n).map(|_| fail(RESET, "reset")).collect()
}

#[tokio::test(start_paused = true)]
async fn after_resets_the_first_retry_is_immediate_and_later_ones_follow_the_schedule() {
    let layer = ServiceBuilder::new()
        .layer(retry(7))
        .layer(BackoffLayer::new().schedule(exponential(10, 80)).seed(42));
    let mut script = resets(6);
    script.push(status(200));
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(
        run.arrivals[0], run.start,
        "the first attempt is not delayed"
    );
    assert_eq!(run.gaps(), [0, 10, 20, 40, 80, 80].map(ms).to_vec());
    assert_eq!(run.after_last_attempt(), Duration::ZERO);
    assert_eq!(run.elapsed(), ms(230));
}

#[tokio::test(start_paused = true)]
async fn after_a_never_sent_failure_the_first_retry_is_immediate() {
    // Without riding out: with it, a refused connection holds the retry for the host's probe
    // (see `ride_out.rs`).
    let layer = ServiceBuilder::new().layer(retry(5)).layer(
        BackoffLayer::new()
            .schedule(exponential(10, 80))
            .seed(42)
            .ride_out(RideOut::off()),
    );
    let script = vec![
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        status(200),
    ];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [0, 10, 20, 40].map(ms).to_vec());
}

#[tokio::test(start_paused = true)]
async fn without_immediate_first_retry_the_first_retry_waits_too() {
    let layer = ServiceBuilder::new().layer(retry(5)).layer(
        BackoffLayer::new()
            .schedule(exponential(10, 80))
            .immediate_first_retry(false)
            .seed(42),
    );
    let mut script = resets(4);
    script.push(status(200));
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [10, 20, 40, 80].map(ms).to_vec());
}

#[tokio::test(start_paused = true)]
async fn after_an_unavailable_response_the_first_retry_waits() {
    let layer = ServiceBuilder::new()
        .layer(retry_unavailable(5))
        .layer(BackoffLayer::new().schedule(exponential(10, 80)).seed(42));
    let script = vec![status(503), status(503), status(503), status(200)];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [10, 20, 40].map(ms).to_vec());
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_decides_whether_the_first_retry_is_immediate() {
    let layer = ServiceBuilder::new().layer(retry_unavailable(5)).layer(
        BackoffLayer::new()
            .schedule(exponential(10, 80))
            .seed(42)
            .ride_out(RideOut::off()),
    );

    // A reset first: immediate, then the schedule from its first step, 503s or not.
    let script = vec![fail(RESET, "reset"), status(503), status(503), status(200)];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [0, 10, 20].map(ms).to_vec());

    // A 503 first: the first retry waits, and later resets do not make a retry immediate.
    let script = vec![
        status(503),
        fail(RESET, "reset"),
        fail(REFUSED, "refused"),
        status(200),
    ];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [10, 20, 40].map(ms).to_vec());
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_through_the_stack_are_those_of_the_schedule_for_the_seed() {
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let schedule = Exponential::builder()
            .base(ms(20))
            .max(ms(500))
            .jitter(jitter)
            .build()
            .unwrap();
        let expected: Vec<Duration> = schedule.delays(42).take(5).collect();
        let layer = stack(retry(7), schedule);
        let mut script = resets(6);
        script.push(status(200));
        let run = send(&layer, get("/"), script).await;
        assert_eq!(run.status(), 200);
        let gaps = run.gaps();
        assert_eq!(gaps[0], Duration::ZERO, "{jitter:?}: the immediate retry");
        // Tokio sleeps to the next whole millisecond; the clock starts on one.
        let rounded: Vec<Duration> = expected.iter().copied().map(ceil_ms).collect();
        assert_eq!(gaps[1..], rounded[..], "{jitter:?}: {expected:?}");
        for (gap, delay) in gaps[1..].iter().zip(&expected) {
            assert!(*gap >= *delay && *gap - *delay < ms(1), "{jitter:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn constant_and_zero_schedules_through_the_stack() {
    let layer = stack(retry(5), Constant::new(ms(25)));
    let mut script = resets(4);
    script.push(status(200));
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.gaps(), [0, 25, 25, 25].map(ms).to_vec());

    let layer = stack(retry_unavailable(5), Zero);
    let script = vec![status(503), fail(RESET, "reset"), status(503), status(200)];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.attempts.len(), 4);
    assert_eq!(
        run.elapsed(),
        Duration::ZERO,
        "no delay at all, even after a 503"
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_that_ends_ends_the_request_with_the_last_real_error() {
    let schedule = delays_fn(|_seed| [7, 11, 13].map(ms).into_iter());
    let layer = stack(retry(10), schedule);
    let script = vec![
        fail(RESET, "first"),
        fail(RESET, "second"),
        fail(RESET, "third"),
        fail(RESET, "fourth"),
        fail(RESET, "fifth"),
    ];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(
        run.attempts.len(),
        5,
        "immediate, then one attempt per delay"
    );
    assert_eq!(run.gaps(), [0, 7, 11, 13].map(ms).to_vec());
    let error = run.io_error();
    assert_eq!(error.kind(), RESET);
    assert_eq!(error.to_string(), "fifth");
    assert_eq!(run.after_last_attempt(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn exhausting_the_attempts_returns_at_once_without_a_last_sleep() {
    let layer = stack(retry(3), exponential(10, 80));
    let run = send(
        &layer,
        get("/"),
        vec![
            fail(RESET, "first"),
            fail(RESET, "second"),
            fail(RESET, "third"),
        ],
    )
    .await;
    assert_eq!(run.gaps(), [0, 10].map(ms).to_vec());
    assert_eq!(run.io_error().to_string(), "third");
    assert_eq!(run.after_last_attempt(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_is_not_retried_is_not_delayed() {
    let layer = stack(retry(5), Constant::new(Duration::from_secs(1)));
    let post = http::Request::post("/pay")
        .body("payload".to_owned())
        .unwrap();
    let run = send(&layer, post, vec![fail(RESET, "reset")]).await;
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.io_error().kind(), RESET);
    assert_eq!(run.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn jitter_comes_from_the_fixed_seed_or_else_from_the_request() {
    let seeds = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seeds);
    let schedule = delays_fn(move |seed| {
        log.lock().unwrap().push(seed);
        std::iter::repeat(ms(1))
    });

    let fixed = ServiceBuilder::new()
        .layer(retry(4))
        .layer(BackoffLayer::new().schedule(schedule.clone()).seed(42));
    let mut script = resets(3);
    script.push(status(200));
    send(&fixed, get("/"), script).await;
    // Attempt 2 is immediate; attempts 3 and 4 consult the schedule.
    assert_eq!(std::mem::take(&mut *seeds.lock().unwrap()), vec![42, 42]);

    let per_request = ServiceBuilder::new()
        .layer(retry(4))
        .layer(BackoffLayer::new().schedule(schedule));
    let mut first_seeds = Vec::new();
    for _ in 0..2 {
        let mut script = resets(3);
        script.push(status(200));
        send(&per_request, get("/"), script).await;
        let seen = std::mem::take(&mut *seeds.lock().unwrap());
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], seen[1], "one seed for all attempts of a request");
        first_seeds.push(seen[0]);
    }
    // Two requests draw independent 64-bit seeds: equal with probability 2^-64.
    assert_ne!(
        first_seeds[0], first_seeds[1],
        "each request draws its own seed"
    );
}

// ----- the deadline -----

#[tokio::test(start_paused = true)]
async fn a_delay_that_would_cross_the_deadline_ends_the_request_at_once() {
    let retry = ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(5)
        .deadline(ms(100))
        .build()
        .unwrap();
    let layer = stack(retry, Constant::new(ms(80)));
    let script = vec![
        fail(RESET, "first"),
        fail(RESET, "second"),
        fail(RESET, "third"),
    ];
    let run = send(&layer, get("/"), script).await;
    // 0 and 0 (immediate), 80 ms; the next would start at 160 ms, after the deadline.
    assert_eq!(run.attempts.len(), 3, "no attempt after the deadline");
    assert_eq!(run.gaps(), [0, 80].map(ms).to_vec());
    assert_eq!(run.after_last_attempt(), Duration::ZERO, "no time advances");
    let error = run.io_error();
    assert_eq!(error.kind(), RESET);
    assert_eq!(error.to_string(), "third", "the last real error");
}

#[tokio::test(start_paused = true)]
async fn a_delay_that_would_cross_the_deadline_after_a_response_returns_the_response() {
    let retry = ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(5)
        .deadline(ms(5))
        .classifier(tower_reset::classify::StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let layer = stack(retry, exponential(10, 80));
    let run = send(&layer, get("/"), vec![status(503)]).await;
    assert_eq!(run.status(), 503);
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_delay_that_ends_exactly_at_the_deadline_is_slept() {
    let retry = ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(10)
        .deadline(ms(100))
        .build()
        .unwrap();
    let layer = stack(retry, Constant::new(ms(50)));
    let script = vec![
        fail(RESET, "first"),
        fail(RESET, "second"),
        fail(RESET, "third"),
        fail(RESET, "fourth"),
    ];
    let run = send(&layer, get("/"), script).await;
    // 0, 0, 50, 100: the last starts exactly at the deadline; none starts after it.
    assert_eq!(run.gaps(), [0, 50, 50].map(ms).to_vec());
    assert_eq!(run.io_error().to_string(), "fourth");
    assert_eq!(run.elapsed(), ms(100));
}
