use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries only when both policies say so; built by [`PolicyExt::and`](super::PolicyExt::and).
///
/// # Examples
///
/// Retry what the standard policy retries, but never on the first attempt of a batch job's
/// request marked `x-no-retry`:
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{retry_if, Action, Attempt, PolicyExt, RetryPolicy, StandardRetry};
///
/// let mut policy = StandardRetry::new().and(retry_if(|attempt: &Attempt<'_>| {
///     !attempt.headers().contains_key("x-no-retry")
/// }));
/// let marked = http::Request::get("/").header("x-no-retry", "1").body(()).unwrap();
/// let plain = http::Request::get("/").body(()).unwrap();
/// let reset = FailureClass::UnknownOutcome;
/// assert_eq!(policy.retry(&Attempt::new(&marked, reset, 1)), Action::Stop);
/// assert_eq!(policy.retry(&Attempt::new(&plain, reset, 1)), Action::Retry);
/// ```
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
