use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// Retries when either policy says so; built by [`PolicyExt::or`](super::PolicyExt::or).
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{Action, Attempt, Idempotent, PolicyExt, RetryPolicy, Unprocessed};
///
/// // What `StandardRetry` is: unprocessed failures for any method, or idempotent requests.
/// let mut policy = Unprocessed.or(Idempotent);
/// let post = http::Request::post("/").body(()).unwrap();
/// assert_eq!(policy.retry(&Attempt::new(&post, FailureClass::NeverSent, 1)), Action::Retry);
/// assert_eq!(policy.retry(&Attempt::new(&post, FailureClass::UnknownOutcome, 1)), Action::Stop);
/// ```
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
