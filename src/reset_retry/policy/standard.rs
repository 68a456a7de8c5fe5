use super::{Action, Attempt, Idempotent, RetryPolicy, Unprocessed};
use crate::attempt::AttemptRequest;

/// The standard policy: [`Unprocessed`] or [`Idempotent`].
///
/// * A request the server certainly did not process (never sent, refused by the protocol) is
///   retried, whatever its method.
/// * A request whose outcome is unknown (the connection was reset after it was sent, or the
///   server answered "unavailable") is retried only if it is idempotent: GET, HEAD, OPTIONS,
///   TRACE, PUT, DELETE, or any request carrying an `Idempotency-Key` header.
///
/// So a POST is never sent twice unless the server cannot have seen it.
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{Action, Attempt, RetryPolicy, StandardRetry};
///
/// let post = http::Request::post("/pay").body(()).unwrap();
/// let mut policy = StandardRetry::new();
/// assert_eq!(policy.retry(&Attempt::new(&post, FailureClass::NeverSent, 1)), Action::Retry);
/// assert_eq!(policy.retry(&Attempt::new(&post, FailureClass::UnknownOutcome, 1)), Action::Stop);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardRetry {
    _priv: (),
}

impl StandardRetry {
    /// The standard policy.
    pub const fn new() -> Self {
        Self { _priv: () }
    }
}

impl RetryPolicy for StandardRetry {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        match Unprocessed.retry(attempt) {
            Action::Retry => Action::Retry,
            Action::Stop => Idempotent.retry(attempt),
        }
    }

    fn may_retry(&self, _request: &dyn AttemptRequest) -> bool {
        // Any request may fail before it is sent.
        true
    }
}
