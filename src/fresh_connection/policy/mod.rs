//! Connection policies: when a connection must not carry another request.
//!
//! A [`ConnectionPolicy`] answers five questions about a connection, whatever the strategy that
//! enforces them (see [`FreshConnectionLayer`](super::FreshConnectionLayer)):
//!
//! * does a failure of this [`FailureClass`] condemn the connection it happened on?
//! * how old, how long idle, and how used may a connection be before it is retired?
//! * should a reset also retire the *idle* connections to the same host that have been idle as
//!   long as the one that failed, when it looks like the peer dropped idle connections (they are
//!   probably just as dead)?
//! * should the idle timeout of a peer be learned from the idle times at which its connections
//!   were reset (and unlearned when connections idle longer keep working)?
//! * should a request that is not safe to repeat (a `POST` without an `Idempotency-Key`) avoid
//!   connections that the evidence says are likely stale, and which requests are safe to
//!   repeat?
//!
//! [`StandardConnections`] is the default: a reset or a close with an unknown outcome condemns the
//! connection, idle siblings are retired with it, requests not safe to repeat are kept off
//! connections likely to be stale, and no age, idle or request limit applies until you set one.

mod standard;

pub use self::standard::{StandardConnections, StandardConnectionsBuilder};

/// The old name of [`StandardConnections`].
#[deprecated(since = "0.1.0", note = "renamed `StandardConnections`")]
pub type Standard = StandardConnections;

/// The old name of [`StandardConnectionsBuilder`].
#[deprecated(since = "0.1.0", note = "renamed `StandardConnectionsBuilder`")]
pub type StandardBuilder = StandardConnectionsBuilder;

/// The old name of [`ConnectionPolicy`]. (A re-export cannot be marked deprecated; it is kept so
/// that code written against the old name still compiles.)
#[doc(hidden)]
pub use self::ConnectionPolicy as Policy;

use std::time::Duration;

use crate::attempt::AttemptRequest;
use crate::classify::{ClassifyError, FailureClass, StandardClassifier};
use crate::reset_retry::policy::Idempotent;

/// Decides when a connection must not carry another request.
///
/// Every method has a default, so a policy only says what it changes.
pub trait ConnectionPolicy {
    /// Whether a failure of this class condemns the connection it happened on.
    ///
    /// Defaults to `true` for [`FailureClass::UnknownOutcome`] only: a reset or an unexpected
    /// close. A refused connection has no connection to condemn, an h2 refusal says nothing bad
    /// about the connection, and a `503` is the server's answer, not the connection's fault.
    fn condemns(&self, failure: FailureClass) -> bool {
        failure == FailureClass::UnknownOutcome
    }

    /// The longest a connection may live, from its first request. Defaults to no limit.
    fn max_age(&self) -> Option<Duration> {
        None
    }

    /// The longest a connection may sit idle and still be reused. Defaults to no limit.
    fn max_idle(&self) -> Option<Duration> {
        None
    }

    /// The most requests a connection may carry. Defaults to no limit.
    fn max_requests(&self) -> Option<u32> {
        None
    }

    /// Whether a reset also retires the idle connections to the same host that have been idle
    /// at least as long as the one that failed, when the failure looks like the peer dropped
    /// idle connections rather than like one connection breaking (the pooled strategy's
    /// `FreshConnection` documentation says how it tells). Defaults to `true`.
    fn evict_idle_siblings(&self) -> bool {
        true
    }

    /// Whether to learn a peer's idle timeout from the idle times at which its connections
    /// were reset, and retire connections before they reach it. The pooled strategy learns from
    /// repeated resets only, and unlearns a limit that connections reused past it disprove (its
    /// `FreshConnection` documentation has the rules). Defaults to `false`.
    fn learn_idle_timeout(&self) -> bool {
        false
    }

    /// Whether a request not [safe to repeat](ConnectionPolicy::is_safe_to_repeat) is kept off
    /// connections likely to be stale: once a host's connections have been reset after some
    /// idle time, such a request does not reuse a connection that has been idle about as long,
    /// while requests safe to repeat keep reusing them (a retry covers them if they fail). With
    /// no such evidence nothing changes. The pooled strategy retires those connections before
    /// the request checks one out, the detour strategy sends the request on a new connection
    /// when every pooled one has been idle that long (their `FreshConnection` and `Detour`
    /// documentation give the rules). Defaults to `true`.
    ///
    /// A retry cannot help such a request: if its connection turns out to be stale, the request
    /// may have been processed, and the failure reaches the caller.
    fn protect_unrepeatable(&self) -> bool {
        true
    }

    /// Whether `request` may be sent again after a failure that leaves its outcome unknown: it
    /// decides which requests [`protect_unrepeatable`](ConnectionPolicy::protect_unrepeatable)
    /// protects, and only requests safe to repeat are used to test a learned idle limit.
    ///
    /// Defaults to [`Idempotent::is_idempotent`]: an RFC 9110 idempotent method (GET, HEAD,
    /// OPTIONS, TRACE, PUT, DELETE) or an `Idempotency-Key` header, as the standard retry policy
    /// judges it. If your retry policy repeats more requests than that (or fewer), say the same
    /// here.
    fn is_safe_to_repeat(&self, request: &dyn AttemptRequest) -> bool {
        Idempotent::is_idempotent(request)
    }
}

/// `ConnectionPolicy` for pointers to a policy, each method forwarded to the pointee.
macro_rules! forward_policy {
    ($($pointer:ty),*) => {$(
        impl<P: ConnectionPolicy + ?Sized> ConnectionPolicy for $pointer {
            fn condemns(&self, failure: FailureClass) -> bool {
                (**self).condemns(failure)
            }
            fn max_age(&self) -> Option<Duration> {
                (**self).max_age()
            }
            fn max_idle(&self) -> Option<Duration> {
                (**self).max_idle()
            }
            fn max_requests(&self) -> Option<u32> {
                (**self).max_requests()
            }
            fn evict_idle_siblings(&self) -> bool {
                (**self).evict_idle_siblings()
            }
            fn learn_idle_timeout(&self) -> bool {
                (**self).learn_idle_timeout()
            }
            fn protect_unrepeatable(&self) -> bool {
                (**self).protect_unrepeatable()
            }
            fn is_safe_to_repeat(&self, request: &dyn AttemptRequest) -> bool {
                (**self).is_safe_to_repeat(request)
            }
        }
    )*};
}

forward_policy!(&P, std::sync::Arc<P>);

/// The class of `error`, as the [`StandardClassifier`] sees it, when `policy` condemns the
/// connection it happened on; `None` for any other error. What every strategy asks of a failed
/// request.
pub(crate) fn condemning_failure<P, E>(policy: &P, error: &E) -> Option<FailureClass>
where
    P: ConnectionPolicy + ?Sized,
    StandardClassifier: ClassifyError<E>,
{
    StandardClassifier::new()
        .classify_error(error)
        .filter(|failure| policy.condemns(*failure))
}
