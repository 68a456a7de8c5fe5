//! The retry budget: retries may add only so much to the load.
//!
//! Attempt limits bound the cost of one request; they do not bound the cost of an outage. When
//! every request fails, three attempts each triple the load on a server that is already down.
//! A budget caps retries as a share of the requests sent: with the defaults, retries add at most
//! 20% to the load, or 10 per second when that is more, so that a quiet client can still retry.
//! The two allowances are not added up: under an outage at any rate above 50 requests per
//! second, retries stay at 20% of the requests (1.2 attempts per request).
//!
//! [`RetryBudget`] counts requests and retries in a sliding window of ten slots, without locks:
//! each slot is one atomic word holding both the slot's epoch and its count, so a slot that
//! moves on to a new epoch resets its count in the same compare-and-swap that increments it.
//! A word has room for only the low 24 bits of its epoch, so the budget also keeps the full
//! epoch of the newest slot in use: the first caller in each new epoch empties every slot that
//! left the window before it moves that epoch on. No count outlives its window, and the low
//! bits of the survivors always lie within a few epochs of the full one, so they are read
//! without ambiguity after any idle time (a 24-bit epoch alone wraps after 2^24 slots, 19 days
//! with a 1 s window, and would then read a months-old slot as current).
//! Requests, counted on every retryable request, are striped over eight cache lines per slot,
//! one per thread in turn, so that threads do not fight over one word; retries, counted only on
//! failures, and the sums, taken only when a retry is asked for, read them all.
//! Requests and retries are counted as whole numbers and compared only when a retry is asked
//! for, so the measured ratio converges on the configured one; tower's `TpsBudget` instead
//! rounds a per-request deposit to an integer, which lets small ratios drift upwards.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::ConfigError;

/// Decides whether a retry may be spent, given the requests seen.
///
/// One budget is shared by every service a [`ResetRetryLayer`](crate::ResetRetryLayer) makes.
///
/// # Examples
///
/// A budget of a fixed number of retries for the whole process (a test harness, say):
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower_reset::reset_retry::Budget;
/// use tower_reset::ResetRetryLayer;
///
/// struct Fixed(AtomicU32);
///
/// impl Budget for Fixed {
///     fn deposit(&self) {}
///     fn try_withdraw(&self) -> bool {
///         self.0
///             .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
///             .is_ok()
///     }
/// }
///
/// let layer = ResetRetryLayer::builder().budget(Fixed(AtomicU32::new(100))).build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
pub trait Budget: Send + Sync {
    /// Records a request that could be retried.
    fn deposit(&self);

    /// Spends one retry if the budget allows it; returns whether it did.
    fn try_withdraw(&self) -> bool;
}

impl<B: Budget + ?Sized> Budget for Arc<B> {
    fn deposit(&self) {
        (**self).deposit()
    }
    fn try_withdraw(&self) -> bool {
        (**self).try_withdraw()
    }
}

/// Number of slots in the sliding window.
const SLOTS: usize = 10;
/// Bits of a slot word that hold the count; the rest hold the epoch.
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// A slot word keeps the low 24 bits of its epoch; the full epoch is resolved against
/// [`RetryBudget::latest`].
const EPOCH_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;
/// Half the range of a stored epoch: a stored epoch this far behind the reference, or less, is
/// in its past; further is in its future.
const HALF_EPOCHS: u64 = EPOCH_MASK >> 1;

/// A retry budget: retries may add at most `ratio` of the requests seen in the window, or
/// `min_per_second` retries per second of the window when that is more.
///
/// Only requests that could be retried are deposited: a request the policy would never retry
/// does not raise the allowance, so the budget errs on the side of fewer retries.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::reset_retry::{Budget, RetryBudget};
///
/// // Retries may add 10% to the load, with no allowance for quiet periods.
/// let budget = RetryBudget::new(0.1, 0, Duration::from_secs(10))?;
/// for _ in 0..100 {
///     budget.deposit();
/// }
/// let granted = (0..100).filter(|_| budget.try_withdraw()).count();
/// assert_eq!(granted, 10);
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
pub struct RetryBudget {
    ratio: f64,
    min_per_second: u32,
    window: Duration,
    reserve: f64,
    slot_nanos: u64,
    start: Instant,
    /// Per slot, one counter per stripe.
    requests: Box<[[Padded; STRIPES]; SLOTS]>,
    retries: [Padded; SLOTS],
    /// The newest full epoch any caller has moved the budget to; every slot that left the
    /// window before it was emptied first. Written once per epoch, read by every call.
    latest: Padded,
}

/// Number of request counters per slot.
const STRIPES: usize = 8;

/// An atomic counter alone on its cache line.
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// The stripe of the calling thread: threads take stripes in turn, the first time they count.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

impl RetryBudget {
    /// Default share of retries: 20% of the requests.
    pub const DEFAULT_RATIO: f64 = 0.2;
    /// Default allowance for quiet clients: 10 retries per second.
    pub const DEFAULT_MIN_PER_SECOND: u32 = 10;
    /// Default window: 10 seconds.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

    /// A budget that lets retries add `ratio` of the requests seen in the last `window`, or
    /// `min_per_second` retries per second of the window when that is more (a quiet client's
    /// allowance).
    ///
    /// # Errors
    ///
    /// `ratio` must be a finite number from 0 to 1000; `window` from 1 second to 1 hour;
    /// `min_per_second` at most 1,000,000.
    pub fn new(ratio: f64, min_per_second: u32, window: Duration) -> Result<Self, ConfigError> {
        if !ratio.is_finite() || !(0.0..=1000.0).contains(&ratio) {
            return Err(ConfigError::new(
                "budget ratio",
                format!("must be a finite number from 0 to 1000, got {ratio}"),
            ));
        }
        if window < Duration::from_secs(1) || window > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "budget window",
                format!("must be from 1 s to 1 h, got {window:?}"),
            ));
        }
        if min_per_second > 1_000_000 {
            return Err(ConfigError::new(
                "budget min_per_second",
                format!("must be at most 1000000, got {min_per_second}"),
            ));
        }
        Ok(Self {
            ratio,
            min_per_second,
            window,
            reserve: f64::from(min_per_second) * window.as_secs_f64(),
            slot_nanos: (window.as_nanos() / SLOTS as u128) as u64,
            start: Instant::now(),
            requests: Box::new(std::array::from_fn(|_| Default::default())),
            retries: Default::default(),
            latest: Padded::default(),
        })
    }

    /// The configured share of retries.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The configured retries per second allowed regardless of load.
    pub fn min_per_second(&self) -> u32 {
        self.min_per_second
    }

    /// The configured window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The current epoch, in full: the slot number since the budget was made. It saturates
    /// after 2^64 slots (5.8e10 years with a 1 s window), where the window stops sliding.
    fn epoch(&self) -> u64 {
        let nanos = Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos();
        match u64::try_from(nanos) {
            // The first 584 years: a 64-bit division, on every deposit, rather than a call into
            // 128-bit arithmetic.
            Ok(nanos) => nanos / self.slot_nanos,
            Err(_) => u64::try_from(nanos / u128::from(self.slot_nanos)).unwrap_or(u64::MAX),
        }
    }

    /// Moves the budget on to epoch `now` if no caller has yet, emptying first the slots that
    /// left the window; returns the reference epoch for reading slot words (the newest epoch,
    /// `now` or later).
    ///
    /// A caller that moves the budget on sweeps every slot, about once per slot duration: the
    /// requests of every other call cost one load and one comparison here.
    fn advance(&self, now: u64) -> u64 {
        let mut latest = self.latest.0.load(Ordering::Acquire);
        while latest < now {
            // Every word still counting was written within the window that ends at `latest`,
            // so `latest` resolves them; those outside the window that ends at `now` go.
            for slot in self.requests.iter().flatten().chain(self.retries.iter()) {
                empty_if_outside(&slot.0, latest, now);
            }
            match self
                .latest
                .0
                .compare_exchange(latest, now, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return now,
                Err(actual) => latest = actual,
            }
        }
        latest
    }

    /// The sum of the counters that belong to the window ending at `now`.
    fn sum<'a>(counters: impl Iterator<Item = &'a Padded>, now: u64, reference: u64) -> u64 {
        counters
            .filter_map(|counter| {
                let (stored, count) = unpack(counter.0.load(Ordering::Acquire));
                (count > 0 && in_window(now, resolve(reference, stored))).then_some(count)
            })
            .sum()
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new(
            Self::DEFAULT_RATIO,
            Self::DEFAULT_MIN_PER_SECOND,
            Self::DEFAULT_WINDOW,
        )
        .expect("the default budget is valid")
    }
}

impl Budget for RetryBudget {
    fn deposit(&self) {
        let now = self.epoch();
        let reference = self.advance(now);
        increment(
            &self.requests[(now % SLOTS as u64) as usize][stripe()].0,
            now,
            reference,
        );
    }

    fn try_withdraw(&self) -> bool {
        let now = self.epoch();
        let reference = self.advance(now);
        let requests = Self::sum(self.requests.iter().flatten(), now, reference) as f64;
        let retries = Self::sum(self.retries.iter(), now, reference) as f64;
        // The larger allowance, not their sum: a busy client gets its share, a quiet one its
        // floor, and neither adds a burst on top of the other.
        if retries + 1.0 > (self.ratio * requests).max(self.reserve) {
            return false;
        }
        increment(
            &self.retries[(now % SLOTS as u64) as usize].0,
            now,
            reference,
        );
        true
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_per_second", &self.min_per_second)
            .field("window", &self.window)
            .finish()
    }
}

fn pack(epoch: u64, count: u64) -> u64 {
    ((epoch & EPOCH_MASK) << COUNT_BITS) | (count & COUNT_MASK)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> COUNT_BITS, word & COUNT_MASK)
}

/// The full epoch of a word whose stored epoch is `stored`, given a `reference` epoch within
/// half the stored range of it.
fn resolve(reference: u64, stored: u64) -> u64 {
    let behind = reference.wrapping_sub(stored) & EPOCH_MASK;
    if behind <= HALF_EPOCHS {
        reference.saturating_sub(behind)
    } else {
        // A caller that moved the budget on after the reference was read.
        reference.saturating_add(EPOCH_MASK + 1 - behind)
    }
}

/// Whether epoch `then` is one of the window's slots, the window ending at epoch `now`.
fn in_window(now: u64, then: u64) -> bool {
    then <= now && now - then < SLOTS as u64
}

/// Empties the slot if its count belongs to an epoch outside the window that ends at `now`.
///
/// Only the caller that is moving the budget from `reference` to `now` sweeps. A word written
/// meanwhile by a caller that already moved it further is resolved correctly unless the two
/// moves are more than 2^23 epochs apart, after a long idle spell; then a few of that caller's
/// counts may be lost, never invented.
fn empty_if_outside(slot: &AtomicU64, reference: u64, now: u64) {
    let mut current = slot.load(Ordering::Relaxed);
    loop {
        let (stored, count) = unpack(current);
        let then = resolve(reference, stored);
        if count == 0 || then > now || in_window(now, then) {
            return;
        }
        match slot.compare_exchange_weak(current, 0, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// Adds one to the slot's count for epoch `now`, first resetting a slot left over from an older
/// epoch. A caller that read the clock just before the slot moved on adds to the newer epoch.
fn increment(slot: &AtomicU64, now: u64, reference: u64) {
    let mut current = slot.load(Ordering::Relaxed);
    loop {
        let (stored, count) = unpack(current);
        let then = resolve(reference, stored);
        let next = if count == 0 || then < now {
            // An empty slot, or one that holds an older epoch: start it afresh.
            pack(now, 1)
        } else {
            // This epoch, or one the slot already moved on to past our reading of the clock.
            pack(stored, count.saturating_add(1).min(COUNT_MASK))
        };
        match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn old_slots_leave_the_window() {
        let budget = RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap();
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.try_withdraw());
        tokio::time::advance(Duration::from_secs(11)).await;
        // The deposits are out of the window, and so is the retry.
        assert!(!budget.try_withdraw());
        budget.deposit();
        budget.deposit();
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn stored_epochs_resolve_against_the_reference() {
        // Behind the reference, across the wrap of the stored bits.
        assert_eq!(resolve((1 << 24) + 3, EPOCH_MASK - 1), (1 << 24) - 2);
        assert_eq!(resolve(5, 5), 5);
        assert_eq!(resolve(u64::MAX, EPOCH_MASK), u64::MAX);
        // Ahead of it: a caller moved the budget on meanwhile.
        assert_eq!(resolve(EPOCH_MASK, 2), EPOCH_MASK + 3);
        assert!(in_window(9, 0) && !in_window(10, 0) && !in_window(3, 4));
    }

    #[test]
    fn invalid_budgets_are_rejected() {
        let window = Duration::from_secs(10);
        assert!(RetryBudget::new(f64::NAN, 0, window).is_err());
        assert!(RetryBudget::new(-0.1, 0, window).is_err());
        assert!(RetryBudget::new(f64::INFINITY, 0, window).is_err());
        assert!(RetryBudget::new(0.2, 0, Duration::from_millis(10)).is_err());
        assert!(RetryBudget::new(0.2, 2_000_000, window).is_err());
        assert!(RetryBudget::new(0.0, 0, window).is_ok());
    }
}
