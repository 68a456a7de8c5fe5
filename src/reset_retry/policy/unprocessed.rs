use super::{Action, Attempt, RetryPolicy};

/// Retries failures the server certainly did not process: the request was
/// [never sent](crate::classify::FailureClass::NeverSent) or
/// [refused by the protocol](crate::classify::FailureClass::Refused). Safe for any method,
/// POST included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unprocessed;

impl RetryPolicy for Unprocessed {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        Action::retry_if(attempt.failure().is_unprocessed())
    }
}
