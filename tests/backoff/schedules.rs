//! The schedules on their own: exact delays for a fixed seed, compared with hand-computed values
//! and with an independent re-derivation of the documented formulas.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_reset::backoff::policy::{delays_fn, Constant, Exponential, Jitter, Rng, Schedule, Zero};
use tower_reset::BackoffLayer;

use crate::harness::{exponential, ms};

const SEED: u64 = 42;

fn take<S: Schedule>(schedule: &S, seed: u64, n: usize) -> Vec<Duration> {
    schedule.delays(seed).take(n).collect()
}

fn jittered(base: Duration, factor: f64, max: Duration, jitter: Jitter) -> Exponential {
    Exponential::builder()
        .base(base)
        .factor(factor)
        .max(max)
        .jitter(jitter)
        .build()
        .expect("valid schedule")
}

/// The delays of an exponential schedule, derived from the documentation of [`Jitter`] with its
/// own generator: `d = min(max, base × factor^k)`; none: `d`; full: uniform in `[0, d]`; equal:
/// uniform in `[d/2, d]`; decorrelated: uniform in `[base, min(max, 3 × previous)]`, where the
/// first "previous" is `base`. One draw of the generator per delay, none without jitter.
///
/// Decorrelated jitter is read as "the upper bound is capped at `max`" (the sample is uniform
/// below the cap), which is what the crate does; AWS's formula caps the sample instead
/// (`min(max, uniform(base, 3 × previous))`). Both stay within `[base, max]`.
fn derive(
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
    seed: u64,
    n: usize,
) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    let (base, max) = (base.as_secs_f64(), max.as_secs_f64());
    let mut d = base;
    let mut previous = base;
    let mut delays = Vec::with_capacity(n);
    for _ in 0..n {
        let delay = match jitter {
            Jitter::None => d,
            Jitter::Full => rng.next_f64() * d,
            Jitter::Equal => d / 2.0 + rng.next_f64() * (d / 2.0),
            Jitter::Decorrelated => {
                let upper = (3.0 * previous).min(max);
                base + rng.next_f64() * (upper - base)
            }
            other => panic!("a jitter mode this test does not know: {other:?}"),
        };
        previous = delay;
        d = (d * factor).min(max);
        delays.push(Duration::from_secs_f64(delay));
    }
    delays
}

/// The un-jittered step `d` of each delay.
fn steps(base: Duration, factor: f64, max: Duration, n: usize) -> Vec<Duration> {
    let mut d = base.as_secs_f64();
    (0..n)
        .map(|_| {
            let step = Duration::from_secs_f64(d);
            d = (d * factor).min(max.as_secs_f64());
            step
        })
        .collect()
}

#[test]
fn exponential_without_jitter_doubles_up_to_the_cap() {
    let delays = take(&exponential(10, 80), SEED, 7);
    assert_eq!(
        delays,
        [10, 20, 40, 80, 80, 80, 80].map(ms).to_vec(),
        "10, 20, 40, 80 ms, then capped at 80 ms"
    );
    // A cap that is not a power-of-two multiple of the base is reached exactly.
    let delays = take(&exponential(10, 50), SEED, 5);
    assert_eq!(delays, [10, 20, 40, 50, 50].map(ms).to_vec());
    // No jitter: the seed does not matter.
    assert_eq!(
        take(&exponential(10, 80), 7, 7),
        take(&exponential(10, 80), 8, 7)
    );
}

#[test]
fn exponential_without_jitter_follows_the_factor() {
    let schedule = jittered(ms(100), 1.5, ms(600), Jitter::None);
    let micros: Vec<u128> = take(&schedule, SEED, 7)
        .iter()
        .map(Duration::as_micros)
        .collect();
    assert_eq!(
        micros,
        vec![100_000, 150_000, 225_000, 337_500, 506_250, 600_000, 600_000]
    );
    // Factor 1: a constant schedule.
    let flat = jittered(ms(30), 1.0, ms(1000), Jitter::None);
    assert_eq!(take(&flat, SEED, 4), vec![ms(30); 4]);
    // max == base: every delay is the base.
    assert_eq!(take(&exponential(25, 25), SEED, 4), vec![ms(25); 4]);
}

#[test]
fn every_jitter_mode_matches_the_documented_formula_for_a_fixed_seed() {
    let cases = [
        (ms(10), 2.0, ms(80)),
        (ms(50), 2.0, Duration::from_secs(2)),
        (ms(100), 1.5, ms(700)),
        (Duration::from_micros(1), 3.0, Duration::from_secs(86_400)),
        (ms(40), 1.0, ms(40)),
    ];
    for (base, factor, max) in cases {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            for seed in [0, 1, SEED, u64::MAX] {
                let schedule = jittered(base, factor, max, jitter);
                let actual = take(&schedule, seed, 40);
                let expected = derive(base, factor, max, jitter, seed, 40);
                assert_eq!(
                    actual, expected,
                    "{jitter:?} base {base:?} factor {factor} max {max:?} seed {seed}"
                );
            }
        }
    }
}

#[test]
fn every_jitter_mode_stays_within_its_bounds() {
    let (base, factor, max) = (ms(10), 2.0, ms(300));
    let n = 200;
    let step = steps(base, factor, max, n);
    for seed in 0..50 {
        let full = take(&jittered(base, factor, max, Jitter::Full), seed, n);
        let equal = take(&jittered(base, factor, max, Jitter::Equal), seed, n);
        let decorrelated = take(&jittered(base, factor, max, Jitter::Decorrelated), seed, n);
        for k in 0..n {
            assert!(
                full[k] <= step[k],
                "full {k}: {:?} > {:?}",
                full[k],
                step[k]
            );
            assert!(
                step[k] / 2 <= equal[k] && equal[k] <= step[k],
                "equal {k}: {:?} outside [{:?}, {:?}]",
                equal[k],
                step[k] / 2,
                step[k]
            );
            assert!(
                base <= decorrelated[k] && decorrelated[k] <= max,
                "decorrelated {k}: {:?}",
                decorrelated[k]
            );
        }
        // Decorrelated: each delay is at most three times the previous one.
        for pair in decorrelated.windows(2) {
            assert!(pair[1] <= pair[0] * 3, "{pair:?}");
        }
    }
}

#[test]
fn jitter_actually_spreads_the_delays() {
    // Bounds alone would pass for a schedule that ignored the random numbers.
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        let schedule = jittered(ms(100), 2.0, ms(1000), jitter);
        let delays = take(&schedule, SEED, 100);
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() > 90,
            "{jitter:?}: {} distinct",
            distinct.len()
        );
        // The same seed gives the same delays; another seed others.
        assert_eq!(delays, take(&schedule, SEED, 100), "{jitter:?}");
        assert_ne!(delays, take(&schedule, SEED + 1, 100), "{jitter:?}");
    }
}

#[test]
fn the_default_exponential_schedule() {
    let schedule = Exponential::default();
    assert_eq!(schedule.base(), ms(50));
    assert_eq!(schedule.factor(), 2.0);
    assert_eq!(schedule.max(), Duration::from_secs(2));
    assert_eq!(schedule.jitter(), Jitter::Full);
    assert_eq!(Exponential::DEFAULT_BASE, ms(50));
    assert_eq!(Exponential::DEFAULT_MAX, Duration::from_secs(2));
    assert_eq!(Exponential::DEFAULT_FACTOR, 2.0);
    assert_eq!(
        take(&schedule, SEED, 20),
        derive(ms(50), 2.0, Duration::from_secs(2), Jitter::Full, SEED, 20)
    );
    assert_eq!(BackoffLayer::DEFAULT_MAX_HINT, Duration::from_secs(10));
}

#[test]
fn constant_zero_and_shared_schedules() {
    assert_eq!(take(&Constant::new(ms(25)), SEED, 5), vec![ms(25); 5]);
    assert_eq!(take(&Zero, SEED, 5), vec![Duration::ZERO; 5]);
    // Never ends.
    assert_eq!(Constant::new(ms(1)).delays(0).take(10_000).count(), 10_000);
    assert_eq!(Zero.delays(0).take(10_000).count(), 10_000);
    let shared = Arc::new(jittered(ms(10), 2.0, ms(500), Jitter::Equal));
    assert_eq!(take(&shared, SEED, 10), take(&*shared, SEED, 10));
    assert_eq!(take(&&*shared, SEED, 10), take(&*shared, SEED, 10));
}

#[test]
fn delays_fn_gets_the_seed_and_may_end() {
    let seeds = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seeds);
    let schedule = delays_fn(move |seed| {
        log.lock().unwrap().push(seed);
        [7, 11, 13].map(ms).into_iter()
    });
    assert_eq!(take(&schedule, 5, 10), [7, 11, 13].map(ms).to_vec());
    assert_eq!(take(&schedule, 9, 1), vec![ms(7)]);
    assert_eq!(*seeds.lock().unwrap(), vec![5, 9]);
    assert!(format!("{schedule:?}").contains("DelaysFn"));
}
