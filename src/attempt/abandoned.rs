//! The error by which an inner layer refuses to send an attempt.

use std::any::Any;
use std::error::Error;
use std::fmt;

use super::StopReason;

/// The error an inner layer returns instead of sending an attempt that must not go out: the
/// backoff would end after the deadline, or the server asked for a longer wait than allowed.
///
/// [`ResetRetry`](crate::ResetRetry) recognises it and hands the caller the outcome of the
/// previous attempt instead, so the caller never sees this error when the layers are stacked;
/// the [`StopReason`] it carries becomes the request's [`AttemptHistory::stop_reason`].
///
/// # The contract
///
/// `ResetRetry` keeps the previous attempt's outcome until the next attempt ends, with one
/// exception: a *response* (a `503`, say) holds its connection, so it is let go as soon as the
/// first poll of the next attempt's future returns `Pending`. An inner layer that may abandon an
/// attempt after a response should therefore do so **at once**: return this error from the
/// first poll of the response future, before waiting on anything (as
/// [`Backoff`](crate::Backoff) does). Abandoned later, after a response, the attempt ends the
/// request with this error itself, since the response is gone. After an error, an attempt may
/// be abandoned at any time.
///
/// [`AttemptHistory::stop_reason`]: super::AttemptHistory::stop_reason
///
/// # Examples
///
/// ```
/// use tower_reset::attempt::{AttemptAbandoned, StopReason};
///
/// let abandoned = AttemptAbandoned::because(StopReason::Deadline);
/// assert_eq!(abandoned.stop_reason(), StopReason::Deadline);
/// assert_eq!(abandoned.to_string(), "retry abandoned: no time left before the deadline");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptAbandoned {
    reason: &'static str,
    stop: StopReason,
}

impl AttemptAbandoned {
    /// An abandoned attempt, with the reason in plain words; its stop reason is
    /// [`StopReason::Abandoned`]. Prefer [`because`](Self::because) when a [`StopReason`] says
    /// why.
    pub const fn new(reason: &'static str) -> Self {
        Self {
            reason,
            stop: StopReason::Abandoned,
        }
    }

    /// An abandoned attempt, for the reason `stop`.
    pub const fn because(stop: StopReason) -> Self {
        Self {
            reason: stop.description(),
            stop,
        }
    }

    /// Why the attempt was not sent, in plain words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Why the attempt was not sent, as the request's stop reason.
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }

    /// The `AttemptAbandoned` in `error` (itself, or a `BoxError` with one anywhere in the chain
    /// the classifier walks), if there is one.
    pub(crate) fn find<E: Any>(error: &E) -> Option<&AttemptAbandoned> {
        let any: &dyn Any = error;
        if let Some(abandoned) = any.downcast_ref::<AttemptAbandoned>() {
            return Some(abandoned);
        }
        let boxed = any.downcast_ref::<tower::BoxError>()?;
        crate::classify::chain::links(&**boxed).find_map(|err| err.downcast_ref())
    }
}

impl fmt::Display for AttemptAbandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry abandoned: {}", self.reason)
    }
}

impl Error for AttemptAbandoned {}
