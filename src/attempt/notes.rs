//! What the layers below `ResetRetry` report back about an attempt, through its record.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// Nothing reported yet.
const UNSET: u64 = u64::MAX;

/// The attempt was refused by a host that `Backoff` rides out (it refuses connections): it does
/// not count against the request's attempts, nor spend the budget.
const NOT_COUNTED: u8 = 1;
/// The attempt went to a host that refuses connections at the end of the request's ride-out
/// window, and was refused: the request stops.
const RIDE_OUT_OVER: u8 = 2;

/// One per retried request (and per retryable request whose first attempt went out while some
/// host was down), shared by the records of all its attempts. `ResetRetry` reads and clears it
/// when each attempt is over.
#[derive(Debug)]
pub(crate) struct Notes {
    /// Nanoseconds the attempt was delayed before it went out, or `UNSET`.
    delay: AtomicU64,
    /// Nanoseconds the attempt waited for its host, or `UNSET`.
    wait: AtomicU64,
    /// Nanoseconds the request waited for its host over all its attempts (never cleared).
    waited: AtomicU64,
    /// `NOT_COUNTED`, `RIDE_OUT_OVER`, for the attempt under way.
    flags: AtomicU8,
}

/// What the layers below reported about one attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reported {
    /// The backoff delay before it.
    pub(crate) delay: Option<Duration>,
    /// The wait for its host before it.
    pub(crate) wait: Option<Duration>,
    /// A host that is ridden out refused it: it does not count.
    pub(crate) not_counted: bool,
    /// Its host is down and the request's ride-out window is spent.
    pub(crate) ride_out_over: bool,
}

impl Notes {
    pub(crate) fn new() -> Self {
        Self {
            delay: AtomicU64::new(UNSET),
            wait: AtomicU64::new(UNSET),
            waited: AtomicU64::new(0),
            flags: AtomicU8::new(0),
        }
    }

    pub(crate) fn delayed(&self, delay: Duration) {
        self.delay.store(nanos(delay), Ordering::Relaxed);
    }

    /// The attempt waited `wait` for its host; it adds to the request's total.
    pub(crate) fn waited_for_host(&self, wait: Duration) {
        let wait = nanos(wait);
        self.wait.store(wait, Ordering::Relaxed);
        let total = self.waited.load(Ordering::Relaxed).saturating_add(wait);
        self.waited.store(total.min(UNSET - 1), Ordering::Relaxed);
    }

    /// How long the request waited for its host, over all its attempts.
    pub(crate) fn total_wait(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }

    pub(crate) fn not_counted(&self) {
        self.flags.fetch_or(NOT_COUNTED, Ordering::Relaxed);
    }

    pub(crate) fn ride_out_over(&self) {
        self.flags.fetch_or(RIDE_OUT_OVER, Ordering::Relaxed);
    }

    /// The delay reported for the attempt under way.
    #[cfg(feature = "tracing")]
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self.delay.load(Ordering::Relaxed) {
            UNSET => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// What was reported for the attempt under way, clearing it for the next one.
    pub(crate) fn take(&self) -> Reported {
        let flags = self.flags.swap(0, Ordering::Relaxed);
        Reported {
            delay: duration(self.delay.swap(UNSET, Ordering::Relaxed)),
            wait: duration(self.wait.swap(UNSET, Ordering::Relaxed)),
            not_counted: flags & NOT_COUNTED != 0,
            ride_out_over: flags & RIDE_OUT_OVER != 0,
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(UNSET - 1)
        .min(UNSET - 1)
}

fn duration(nanos: u64) -> Option<Duration> {
    (nanos != UNSET).then(|| Duration::from_nanos(nanos))
}

/// Hosts down in every `BackoffLayer` of the process (see `backoff::RideOut`): while there is
/// one, `ResetRetry` gives the first attempt of a retryable request a record with notes, so that
/// a wait for its host is reported and counted against the request's window. Zero almost all
/// the time, and then the first attempt carries no record: nothing to allocate.
static HOSTS_DOWN: AtomicUsize = AtomicUsize::new(0);

/// Whether some host is down somewhere: one relaxed load.
pub(crate) fn any_host_down() -> bool {
    HOSTS_DOWN.load(Ordering::Relaxed) != 0
}

pub(crate) fn host_went_down() {
    HOSTS_DOWN.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn host_came_back() {
    // Never below zero, whatever the order of the calls.
    let _ = HOSTS_DOWN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}
