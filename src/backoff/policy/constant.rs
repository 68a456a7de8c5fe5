use std::iter::Repeat;
use std::time::Duration;

use super::Schedule;

/// The same delay before every backoff step.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::backoff::policy::{Constant, Schedule};
///
/// let delays: Vec<_> = Constant::new(Duration::from_millis(100)).delays(0).take(3).collect();
/// assert_eq!(delays, vec![Duration::from_millis(100); 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constant {
    delay: Duration,
}

impl Constant {
    /// Waits `delay` before every backoff step.
    pub const fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

impl Schedule for Constant {
    type Delays = Repeat<Duration>;
    fn delays(&self, _seed: u64) -> Self::Delays {
        std::iter::repeat(self.delay)
    }
}
