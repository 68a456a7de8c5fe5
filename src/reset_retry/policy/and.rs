use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries only when both policies say so; built by [`PolicyExt::and`](super::PolicyExt::and).
#[derive(Debug, Clone, Copy, Default)]
pub struct And<A, B> {
    first: A,
    second: B,
}

impl<A, B> And<A, B> {
    pub(crate) fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: RetryPolicy, B: RetryPolicy> RetryPolicy for And<A, B> {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        match self.first.retry(attempt) {
            Action::Retry => self.second.retry(attempt),
            Action::Stop => Action::Stop,
        }
    }

    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        self.first.may_retry(request) && self.second.may_retry(request)
    }
}
