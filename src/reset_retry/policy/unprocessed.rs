use super::{Action, Attempt, RetryPolicy};

/// Retries failures the server certainly did not process: the request was
/// [never sent](crate::classify::FailureClass::NeverSent) or
/// [refused by the protocol](crate::classify::FailureClass::Refused). Safe for any method,
/// POST included.
///
/// # Examples
///
/// A service whose every request has side effects, idempotent methods included: retry only what
/// the server never saw.
///
/// ```
/// use tower_reset::reset_retry::policy::Unprocessed;
/// use tower_reset::ResetRetryLayer;
///
/// let layer = ResetRetryLayer::builder().policy(Unprocessed).build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Unprocessed;

impl RetryPolicy for Unprocessed {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        Action::retry_if(attempt.failure().is_unprocessed())
    }
}
