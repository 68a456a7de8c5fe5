use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries nothing. Every request takes the fast path: no copy is kept.
///
/// # Examples
///
/// A layer that only records histories and classifies, for a client that must never repeat a
/// request:
///
/// ```
/// use tower_reset::reset_retry::policy::Never;
/// use tower_reset::ResetRetryLayer;
///
/// let layer = ResetRetryLayer::builder().policy(Never).build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Never;

impl RetryPolicy for Never {
    fn retry(&mut self, _attempt: &Attempt<'_>) -> Action {
        Action::Stop
    }

    fn may_retry(&self, _request: &dyn AttemptRequest) -> bool {
        false
    }
}
