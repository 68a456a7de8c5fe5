//! What the layers below `ResetRetry` report back about an attempt, through its record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Nothing reported yet.
const UNSET: u64 = u64::MAX;

/// One per retried request, allocated at its first retry and shared by the records of all its
/// attempts. `ResetRetry` clears it before each attempt and reads it when the attempt is over.
#[derive(Debug)]
pub(crate) struct Notes {
    /// Nanoseconds the attempt was delayed before it went out, or `UNSET`.
    delay: AtomicU64,
}

impl Notes {
    pub(crate) fn new() -> Self {
        Self {
            delay: AtomicU64::new(UNSET),
        }
    }

    pub(crate) fn delayed(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(UNSET - 1);
        self.delay.store(nanos.min(UNSET - 1), Ordering::Relaxed);
    }

    /// The delay reported for the attempt under way.
    #[cfg(feature = "tracing")]
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self.delay.load(Ordering::Relaxed) {
            UNSET => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The delay reported for the attempt under way, clearing it for the next one.
    pub(crate) fn take_delay(&self) -> Option<Duration> {
        match self.delay.swap(UNSET, Ordering::Relaxed) {
            UNSET => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}
