use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries when either policy says so; built by [`PolicyExt::or`](super::PolicyExt::or).
#[derive(Debug, Clone, Copy, Default)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<A, B> Or<A, B> {
    pub(crate) fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: RetryPolicy, B: RetryPolicy> RetryPolicy for Or<A, B> {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        match self.first.retry(attempt) {
            Action::Retry => Action::Retry,
            Action::Stop => self.second.retry(attempt),
        }
    }

    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        self.first.may_retry(request) || self.second.may_retry(request)
    }
}
