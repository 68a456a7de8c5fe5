use std::fmt;

use super::{Action, Attempt, RetryPolicy};

/// A policy from a closure: retries when `f(attempt)` returns `true`.
///
/// The closure is wrapped in the named type [`RetryIf`] rather than `RetryPolicy` being implemented
/// for every closure: a blanket impl over `FnMut` would make the compiler guess closure argument
/// types, and the lifetime in `&Attempt<'_>` defeats its guess.
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{retry_if, Attempt};
///
/// // Retry anything that failed before it was sent, and nothing else.
/// let policy = retry_if(|attempt: &Attempt<'_>| attempt.failure() == FailureClass::NeverSent);
/// # let _ = policy;
/// ```
pub fn retry_if<F>(f: F) -> RetryIf<F>
where
    F: FnMut(&Attempt<'_>) -> bool,
{
    RetryIf { f }
}

/// A policy from a closure; see [`retry_if`].
#[derive(Clone, Copy)]
pub struct RetryIf<F> {
    f: F,
}

impl<F> RetryPolicy for RetryIf<F>
where
    F: FnMut(&Attempt<'_>) -> bool,
{
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        Action::retry_if((self.f)(attempt))
    }
}

impl<F> fmt::Debug for RetryIf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryIf")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}
