//! `RetryBudget` over long runs: whatever the idle time between two requests (days, months,
//! or gaps far longer than any process lives), the window after it starts empty and grants
//! exactly its share. Paused tokio time makes the months take microseconds.

use std::time::Duration;

use proptest::prelude::*;
use tower_reset::reset_retry::{Budget, RetryBudget};

use crate::scripted_mock::{fixed_seed, paused_runtime};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Deposits `requests`, then withdraws until refused (at most `requests * 10 + 10_000` times);
/// returns how many retries were granted.
fn fill_and_drain(budget: &RetryBudget, requests: usize) -> usize {
    for _ in 0..requests {
        budget.deposit();
    }
    (0..requests * 10 + 10_000)
        .take_while(|_| budget.try_withdraw())
        .count()
}

/// The first case: 20% of 100 requests, then ten days without a request (more than
/// 2^23 slots of 100 ms), then the same again.
#[tokio::test(start_paused = true)]
async fn after_ten_idle_days_the_budget_grants_its_share_again() {
    let budget = RetryBudget::new(0.2, 0, Duration::from_secs(1)).unwrap();
    assert_eq!(fill_and_drain(&budget, 100), 20);
    tokio::time::advance(10 * DAY).await;
    assert_eq!(fill_and_drain(&budget, 100), 20);
}

/// The second case: the default budget after 100 idle days still stops at its
/// allowance (the larger of 20% of the requests and 10 per second of its 10 s window).
#[tokio::test(start_paused = true)]
async fn after_a_hundred_idle_days_the_default_budget_is_still_bounded() {
    let budget = RetryBudget::default();
    assert_eq!(fill_and_drain(&budget, 1000), 200);
    tokio::time::advance(100 * DAY).await;
    assert_eq!(fill_and_drain(&budget, 1000), 200);
    tokio::time::advance(100 * DAY).await;
    // A quiet client gets its floor: 10 retries per second of the window.
    assert_eq!(fill_and_drain(&budget, 10), 100);
}

/// Deposits 40 requests and spends 5 retries: a window with allowance left over.
fn leave_allowance(budget: &RetryBudget) {
    for _ in 0..40 {
        budget.deposit();
    }
    for _ in 0..5 {
        assert!(budget.try_withdraw());
    }
}

/// Idle gaps far beyond any process lifetime, up to the largest a clock can hold (2^62 s,
/// about 1.5e11 years; `Duration::MAX` cannot be added to an instant), at both ends of the
/// window's range. Each gap is some 9 million slots past a multiple of 2^30 slots.
#[tokio::test(start_paused = true)]
async fn after_an_idle_gap_of_any_length_the_window_starts_empty() {
    for window in [Duration::from_secs(1), Duration::from_secs(3600)] {
        let budget = RetryBudget::new(0.5, 0, window).unwrap();
        leave_allowance(&budget);
        tokio::time::advance(window / 10 * ((1 << 30) + 9_000_000)).await;
        assert_eq!(fill_and_drain(&budget, 10), 5, "window {window:?}");
    }
    let budget = RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap();
    leave_allowance(&budget);
    tokio::time::advance(Duration::from_secs((1 << 62) + 9_000_000)).await;
    assert_eq!(fill_and_drain(&budget, 10), 5);
    // And the window still slides after it.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(!budget.try_withdraw(), "the deposits left the window");
    assert_eq!(fill_and_drain(&budget, 10), 5);
}

/// A slot that is never written again keeps its old count only until it leaves the window,
/// even when requests keep coming at one phase of the window for longer than 2^24 slots.
#[tokio::test(start_paused = true)]
async fn a_slot_left_behind_never_comes_back() {
    let window = Duration::from_secs(1);
    let budget = RetryBudget::new(0.5, 0, window).unwrap();
    // 1,000 requests in the first slot: 500 retries' worth, spent at once.
    assert_eq!(fill_and_drain(&budget, 1000), 500);
    // Then one request per 2^22 windows + 1 slot: 2^22 * 10 + 1 slots at a time, so that the
    // requests walk over the slots and the first slot's epoch comes round again modulo 2^24.
    let step = window * (1 << 22) + window / 10;
    for _ in 0..12 {
        tokio::time::advance(step).await;
        assert_eq!(fill_and_drain(&budget, 2), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: fixed_seed(12), ..ProptestConfig::default() })]

    /// Whatever the sequence of idle gaps (from nothing to 2^50 s), each burst of requests
    /// after a gap longer than the window gets exactly its share.
    #[test]
    fn every_window_after_a_long_gap_grants_its_share(
        gaps in proptest::collection::vec(11u64..(1 << 50), 1..12),
        requests in 1usize..200,
    ) {
        paused_runtime().block_on(async {
            let budget = RetryBudget::new(0.25, 0, Duration::from_secs(10)).unwrap();
            for gap in gaps {
                // Requests that leave most of their allowance unspent.
                for _ in 0..requests {
                    budget.deposit();
                }
                let _ = budget.try_withdraw();
                tokio::time::advance(Duration::from_secs(gap)).await;
                assert_eq!(fill_and_drain(&budget, requests), requests / 4, "after {gap} s");
            }
        });
    }
}

/// Threads depositing and withdrawing at once (in real time, well inside one 10 s window)
/// neither lose requests nor invent retries: the grants are the share, give or take the
/// withdrawals that raced on the last one.
#[test]
fn threads_sharing_a_budget_get_the_share_between_them() {
    const THREADS: usize = 4;
    const EACH: usize = 10_000;
    let budget = std::sync::Arc::new(RetryBudget::new(0.2, 0, Duration::from_secs(10)).unwrap());
    let deposit = |budget: std::sync::Arc<RetryBudget>| {
        std::thread::spawn(move || {
            for _ in 0..EACH {
                budget.deposit();
            }
        })
    };
    for handle in (0..THREADS)
        .map(|_| deposit(budget.clone()))
        .collect::<Vec<_>>()
    {
        handle.join().unwrap();
    }
    let withdraw = |budget: std::sync::Arc<RetryBudget>| {
        std::thread::spawn(move || (0..EACH).filter(|_| budget.try_withdraw()).count())
    };
    let granted: usize = (0..THREADS)
        .map(|_| withdraw(budget.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    let share = THREADS * EACH / 5;
    assert!(
        (share..=share + THREADS).contains(&granted),
        "granted {granted}, share {share}"
    );
}
