//! Properties over random configurations and failure sequences, in paused time.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tower::{BoxError, Layer, ServiceExt};
use tower_reset::reset_retry::{Budget, RetryBudget};
use tower_reset::ResetRetryLayer;

use crate::harness::*;
use crate::scripted_mock::{fixed_seed, paused_runtime};

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Reset,
    Refused,
    Timeout,
    Ok,
    Unavailable,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Reset),
        Just(Outcome::Refused),
        Just(Outcome::Timeout),
        Just(Outcome::Ok),
        Just(Outcome::Unavailable),
    ]
}

fn answer(outcome: Outcome) -> Answer {
    match outcome {
        Outcome::Reset => Fail(RESET, "reset"),
        Outcome::Refused => Fail(REFUSED, "refused"),
        Outcome::Timeout => Fail(io::ErrorKind::TimedOut, "timeout"),
        Outcome::Ok => status(200),
        Outcome::Unavailable => status(503),
    }
}

proptest! {
    // A fixed seed: the same cases on every run, so CI is deterministic. Set PROPTEST_RNG_SEED
    // to explore other cases locally.
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: fixed_seed(0x7e5e7),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the configuration and whatever the server does: attempts never exceed the limit,
    /// the request stops at the first answer that is not a recognised failure, and a POST without
    /// a key is never sent again after the server may have seen it.
    #[test]
    fn attempts_stay_within_the_limit_and_posts_are_never_repeated_unsafely(
        max_attempts in 1u32..=6,
        ratio in prop_oneof![Just(None), (0.0f64..2.0).prop_map(Some)],
        is_post in any::<bool>(),
        outcomes in proptest::collection::vec(outcome(), 6),
    ) {
        let builder = ResetRetryLayer::builder().max_attempts(max_attempts);
        let builder = match ratio {
            None => builder.no_budget(),
            Some(ratio) => builder.budget(RetryBudget::new(ratio, 0, Duration::from_secs(10)).unwrap()),
        };
        let layer = builder.build().unwrap();
        let request = if is_post { post("/") } else { get("/") };
        // The script can be longer than what the layer may use: stop feeding it where the
        // layer must stop, and let the harness fail the test on any extra attempt.
        let mut allowed = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            allowed.push(answer(*outcome));
            let attempt = i as u32 + 1;
            let retryable = match outcome {
                Outcome::Refused => true,
                Outcome::Reset => !is_post,
                Outcome::Timeout | Outcome::Ok | Outcome::Unavailable => false,
            };
            if !retryable || attempt == max_attempts {
                break;
            }
        }
        let limit = allowed.len();
        let run = paused_runtime().block_on(run(&layer, request, allowed));
        prop_assert!(run.attempts.len() as u32 <= max_attempts);
        prop_assert!(run.attempts.len() <= limit);
        if ratio.is_none() {
            // With no budget, every allowed retry is taken.
            prop_assert_eq!(run.attempts.len(), limit);
        }
    }

    /// Over a long run in which every request wants retries, the share of retries granted
    /// matches the configured ratio within 1%. The error is bounded by one retry per window, so
    /// 1% needs `ratio * requests per window >= 100`: at the smallest ratio here (0.02) and the
    /// lowest rate (500/s over a 10 s window) that is exactly 100.
    #[test]
    fn the_budget_grants_the_configured_ratio(
        ratio in 0.02f64..2.0,
        per_second in 500u32..1000,
        seconds in 20u64..40,
    ) {
        paused_runtime().block_on(async {
            let budget = RetryBudget::new(ratio, 0, Duration::from_secs(10)).unwrap();
            let step = Duration::from_secs(1) / per_second;
            let (mut requests, mut retries) = (0u64, 0u64);
            for _ in 0..(u64::from(per_second) * seconds) {
                budget.deposit();
                requests += 1;
                // Each request wants up to three retries.
                for _ in 0..3 {
                    if budget.try_withdraw() {
                        retries += 1;
                    }
                }
                tokio::time::advance(step).await;
            }
            let measured = retries as f64 / requests as f64;
            let wanted = ratio.min(3.0);
            assert!(
                (measured - wanted).abs() <= wanted * 0.01,
                "measured {measured:.5}, configured {wanted:.5}"
            );
        });
    }
}

/// The same ratio, measured through the layer: every request fails with a reset forever.
#[tokio::test(start_paused = true)]
async fn under_a_total_outage_the_layer_adds_only_the_budgeted_share_of_load() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let always_reset = tower::service_fn(move |_request: Req| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Err::<Res, BoxError>(io::Error::from(RESET).into()) }
    });
    let layer = ResetRetryLayer::builder()
        .max_attempts(3)
        .budget(RetryBudget::new(0.2, 0, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let service = layer.layer(always_reset);
    let requests = 20_000;
    for _ in 0..requests {
        let result = service.clone().oneshot(get("/")).await;
        assert!(result.is_err());
        tokio::time::advance(Duration::from_millis(2)).await;
    }
    let per_request = attempts.load(Ordering::Relaxed) as f64 / requests as f64;
    assert!(
        (per_request - 1.2).abs() <= 0.2 * 0.01,
        "attempts per request {per_request:.4}, expected 1.2"
    );
}

/// With the default budget (20%, or 10 retries per second when that is more), a burst of
/// failures does not get the quiet client's floor on top of its share.
#[tokio::test(start_paused = true)]
async fn under_a_burst_of_failures_the_default_budget_holds_to_its_share() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let always_reset = tower::service_fn(move |_request: Req| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Err::<Res, BoxError>(io::Error::from(RESET).into()) }
    });
    // The default layer: 3 attempts, the default budget.
    let service = ResetRetryLayer::new().layer(always_reset);
    // 1,000 requests in half a second: well inside the 10 s window.
    let requests = 1_000;
    for _ in 0..requests {
        let result = service.clone().oneshot(get("/")).await;
        assert!(result.is_err());
        tokio::time::advance(Duration::from_micros(500)).await;
    }
    let per_request = attempts.load(Ordering::Relaxed) as f64 / requests as f64;
    assert!(
        per_request <= 1.2 + 1e-9,
        "attempts per request {per_request:.4}, at most 1.2"
    );
    assert!(
        per_request >= 1.19,
        "the share is still granted: {per_request:.4}"
    );
}

/// A quiet client still gets its floor: 10 retries per second of the window, 100 over 10 s,
/// even though 20% of its few requests would allow almost none.
#[test]
fn a_quiet_client_gets_the_floor_not_the_share() {
    let budget = RetryBudget::default();
    for _ in 0..10 {
        budget.deposit();
    }
    let granted = (0..1_000).filter(|_| budget.try_withdraw()).count();
    assert_eq!(granted, 100, "max(20% of 10, 10/s × 10 s) = 100");
}
