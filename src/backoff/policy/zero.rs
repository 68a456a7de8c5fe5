use std::iter::Repeat;
use std::time::Duration;

use super::Schedule;

/// No delay: every retry goes out at once, as if there were no backoff layer (hints and the
/// deadline still apply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Zero;

impl Schedule for Zero {
    type Delays = Repeat<Duration>;
    fn delays(&self, _seed: u64) -> Self::Delays {
        std::iter::repeat(Duration::ZERO)
    }
}
