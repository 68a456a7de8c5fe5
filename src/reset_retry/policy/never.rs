use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries nothing. Every request takes the fast path: no copy is kept.
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
