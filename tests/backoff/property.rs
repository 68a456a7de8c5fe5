//! Properties over random schedules and configurations, in paused time.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptAbandoned;
use tower_reset::backoff::policy::{Constant, Exponential, Jitter, Schedule, Zero};
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::harness::{ceil_ms, get, Req, Res, RESET};
use crate::scripted_mock::{fixed_seed, paused_runtime};

const DAY_NANOS: u64 = 24 * 60 * 60 * 1_000_000_000;

/// Any of the built-in schedules, behind one type.
#[derive(Debug, Clone)]
enum AnySchedule {
    Exponential(Exponential),
    Constant(Duration),
    Zero,
    /// A `delays_fn`-like finite list: the schedule ends after it.
    List(Vec<Duration>),
}

impl Schedule for AnySchedule {
    type Delays = Box<dyn Iterator<Item = Duration> + Send>;

    fn delays(&self, seed: u64) -> Self::Delays {
        match self {
            AnySchedule::Exponential(schedule) => Box::new(schedule.delays(seed)),
            AnySchedule::Constant(delay) => Box::new(Constant::new(*delay).delays(seed)),
            AnySchedule::Zero => Box::new(Zero.delays(seed)),
            AnySchedule::List(delays) => Box::new(delays.clone().into_iter()),
        }
    }
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

fn factor() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), Just(2.0), Just(100.0), 1.0f64..=100.0]
}

/// Any valid exponential schedule: nanosecond base up to `max_base`, max from the base up to
/// `max_max` (at most a day), factor from 1 to 100.
fn exponential(max_base: u64, max_max: u64) -> impl Strategy<Value = Exponential> {
    (1..=max_base)
        .prop_flat_map(move |base| {
            let top = max_max.max(base);
            let near = base.saturating_mul(64).min(top);
            (
                Just(base),
                prop_oneof![Just(base), base..=near, base..=top],
                factor(),
                jitter(),
            )
        })
        .prop_map(|(base, max, factor, jitter)| {
            Exponential::builder()
                .base(Duration::from_nanos(base))
                .max(Duration::from_nanos(max))
                .factor(factor)
                .jitter(jitter)
                .build()
                .expect("the strategy makes valid schedules")
        })
}

fn millis(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

/// Schedules for requests: delays from nothing to a few seconds.
fn any_schedule() -> impl Strategy<Value = AnySchedule> {
    prop_oneof![
        4 => exponential(1_000_000_000, 5_000_000_000).prop_map(AnySchedule::Exponential),
        1 => millis(0..=1000).prop_map(AnySchedule::Constant),
        1 => Just(AnySchedule::Zero),
        1 => proptest::collection::vec(millis(0..=1000), 0..6).prop_map(AnySchedule::List),
    ]
}

/// The waits of the retries of one request whose attempts all fail with a reset (a connection
/// failure), as documented: with `immediate`, the first retry goes at once and the schedule
/// starts with the second. `None` where the schedule has ended.
fn expected_waits(
    schedule: &AnySchedule,
    seed: u64,
    immediate: bool,
    n: usize,
) -> Vec<Option<Duration>> {
    let mut delays = schedule.delays(seed);
    (0..n)
        .map(|retry| {
            if immediate && retry == 0 {
                Some(Duration::ZERO)
            } else {
                delays.next()
            }
        })
        .collect()
}

proptest! {
    // A fixed seed: the same cases on every run, so CI is deterministic. Set PROPTEST_RNG_SEED
    // to explore other cases locally.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: fixed_seed(0xbac0ff),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every delay of every exponential schedule lies within its bounds: `[0, max]` always;
    /// exactly `d` without jitter; `[0, d]` full; `[d/2, d]` equal; `[base, max]` decorrelated,
    /// where `d = min(max, base × factor^k)`.
    #[test]
    fn every_exponential_delay_lies_within_its_bounds(
        schedule in exponential(5_000_000_000, DAY_NANOS),
        seed in any::<u64>(),
    ) {
        let (base, max) = (schedule.base(), schedule.max());
        let mut d = base.as_secs_f64();
        for (k, delay) in schedule.delays(seed).take(64).enumerate() {
            let step = Duration::from_secs_f64(d);
            prop_assert!(delay <= max, "{k}: {delay:?} > max {max:?}");
            match schedule.jitter() {
                Jitter::None => prop_assert_eq!(delay, step, "{}", k),
                Jitter::Full => prop_assert!(delay <= step, "{k}: {delay:?} > {step:?}"),
                Jitter::Equal => prop_assert!(
                    Duration::from_secs_f64(d / 2.0) <= delay && delay <= step,
                    "{k}: {delay:?} outside [{step:?} / 2, {step:?}]"
                ),
                Jitter::Decorrelated => prop_assert!(
                    base <= delay,
                    "{k}: {delay:?} < base {base:?}"
                ),
                other => panic!("unknown jitter {other:?}"),
            }
            d = (d * schedule.factor()).min(max.as_secs_f64());
        }
    }

    /// The other schedules: constant is its delay, zero is zero, and neither ends.
    #[test]
    fn constant_and_zero_delays_are_exact(delay in 0u64..=DAY_NANOS, seed in any::<u64>()) {
        let delay = Duration::from_nanos(delay);
        prop_assert!(Constant::new(delay).delays(seed).take(64).all(|d| d == delay));
        prop_assert!(Zero.delays(seed).take(64).all(|d| d.is_zero()));
    }

    /// A request through `ResetRetry` + `Backoff` over a service that always fails with a reset
    /// (after a random short time of its own) never starts an attempt after its deadline, and
    /// ends as soon as its last attempt fails: its total time is at most the deadline plus the
    /// time the last attempt itself took, and exactly the deadline bound when attempts take no
    /// time. The caller always gets the last attempt's own error. With a fixed seed the whole
    /// timeline is predicted exactly.
    #[test]
    fn a_request_never_outlives_its_deadline(
        deadline in 1u64..=3000,
        max_attempts in 1u32..=10,
        schedule in any_schedule(),
        immediate in any::<bool>(),
        seed in proptest::option::of(any::<u64>()),
        service_times in proptest::collection::vec(prop_oneof![Just(0u64), 0u64..=50], 10),
    ) {
        let deadline = Duration::from_millis(deadline);
        let service_times: Vec<Duration> =
            service_times.into_iter().map(Duration::from_millis).collect();
        let arrivals = Arc::new(Mutex::new(Vec::new()));

        let log = Arc::clone(&arrivals);
        let times = service_times.clone();
        let always_reset = tower::service_fn(move |_request: Req| {
            let log = Arc::clone(&log);
            let times = times.clone();
            async move {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Instant::now());
                    log.len()
                };
                let time = times[(n - 1) % times.len()];
                if !time.is_zero() {
                    tokio::time::sleep(time).await;
                }
                Err::<Res, BoxError>(io::Error::new(RESET, format!("attempt {n}")).into())
            }
        });
        let retry = ResetRetryLayer::builder()
            .no_budget()
            .max_attempts(max_attempts)
            .deadline(deadline)
            .build()
            .unwrap();
        let mut backoff = BackoffLayer::new()
            .schedule(schedule.clone())
            .immediate_first_retry(immediate);
        if let Some(seed) = seed {
            backoff = backoff.seed(seed);
        }
        let service = ServiceBuilder::new().layer(retry).layer(backoff).service(always_reset);

        let (start, end, result) = paused_runtime().block_on(async {
            let start = Instant::now();
            // Fails the case instead of hanging it; paused time makes this far timer free.
            let result = tokio::time::timeout(Duration::from_secs(3600), service.oneshot(get("/")))
                .await
                .expect("the request completes");
            (start, Instant::now(), result)
        });
        let arrivals: Vec<Duration> =
            arrivals.lock().unwrap().iter().map(|at| *at - start).collect();
        let attempts = arrivals.len();

        prop_assert!(attempts >= 1);
        prop_assert!(attempts <= max_attempts as usize);
        for (i, at) in arrivals.iter().enumerate() {
            prop_assert!(*at <= deadline, "attempt {} started at {:?}, after the deadline", i + 1, at);
        }
        let last_took = service_times[(attempts - 1) % service_times.len()];
        let elapsed = end - start;
        prop_assert_eq!(elapsed, arrivals[attempts - 1] + last_took, "no wait after the last attempt");
        prop_assert!(elapsed <= deadline + last_took);
        if last_took.is_zero() {
            prop_assert!(elapsed <= deadline);
        }

        let error = result.expect_err("every attempt fails");
        prop_assert!(error.downcast_ref::<AttemptAbandoned>().is_none(), "{}", error);
        let io = error.downcast_ref::<io::Error>().expect("the service's own io error");
        prop_assert_eq!(io.kind(), RESET);
        prop_assert_eq!(io.to_string(), format!("attempt {attempts}"));

        if let Some(seed) = seed {
            // The whole timeline, from the documented rules.
            let waits = expected_waits(&schedule, seed, immediate, max_attempts as usize - 1);
            let mut now = Duration::ZERO;
            let mut predicted = vec![now];
            now += service_times[0];
            for wait in waits {
                if now >= deadline {
                    break; // ResetRetry: the deadline has passed.
                }
                let Some(wait) = wait else {
                    break; // Backoff: the schedule has ended.
                };
                if now + wait > deadline {
                    break; // Backoff: the wait would end after the deadline.
                }
                // Tokio's timer sleeps to the next whole millisecond.
                now += ceil_ms(wait);
                predicted.push(now);
                now += service_times[predicted.len() - 1];
            }
            prop_assert_eq!(&arrivals, &predicted);
            prop_assert_eq!(elapsed, now);
        }
    }
}
