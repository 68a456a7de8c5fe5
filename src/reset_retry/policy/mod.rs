//! Retry policies: which failed requests may be sent again.
//!
//! A [`RetryPolicy`] sees an [`Attempt`] (the request, the [`FailureClass`] of the failure and the
//! attempt number) and answers [`Action::Retry`] or [`Action::Stop`]. It is only asked about
//! failures the classifier recognised, and only while the limits (attempts, budget, deadline)
//! still allow another attempt; those limits live in the layer, not in the policy.
//!
//! The building blocks, each a named type:
//!
//! * [`Unprocessed`]: retries failures the server certainly did not process (never sent,
//!   refused by the protocol), whatever the method.
//! * [`Idempotent`]: retries requests that are safe to repeat: RFC 9110 idempotent methods, or a
//!   request carrying an `Idempotency-Key` header.
//! * [`StandardRetry`]: the default, `Unprocessed` or `Idempotent`. A POST is never sent twice unless
//!   the server cannot have seen it, or it carries an `Idempotency-Key`.
//! * [`Never`]: retries nothing.
//! * [`retry_if`]: a closure, for rules of your own.
//! * [`PolicyExt::or`] and [`PolicyExt::and`] to combine them.
//!
//! # Examples
//!
//! Also retry `POST /v1/charges` when it carries the payment provider's own deduplication key:
//!
//! ```
//! use http::Method;
//! use tower_reset::reset_retry::policy::{retry_if, Attempt, PolicyExt, StandardRetry};
//!
//! let policy = StandardRetry::new().or(retry_if(|attempt: &Attempt<'_>| {
//!     attempt.method() == Method::POST
//!         && attempt.uri().path() == "/v1/charges"
//!         && attempt.headers().contains_key("x-charge-key")
//! }));
//! # let _ = policy;
//! ```
//!
//! # Safety
//!
//! When in doubt whether a request may have been processed, the built-in policies do not retry
//! it. A retry cannot undo a non-idempotent request that the server already acted on: only
//! loosen the policy for requests your server deduplicates.

mod and;
mod clone_request;
mod idempotent;
mod never;
mod or;
mod retry_if;
mod standard;
mod unprocessed;

pub use self::and::And;
pub use self::clone_request::{CloneBody, CloneRequest, NoClone};
pub use self::idempotent::Idempotent;
pub use self::never::Never;
pub use self::or::Or;
pub use self::retry_if::{retry_if, RetryIf};
pub use self::standard::StandardRetry;
pub use self::unprocessed::Unprocessed;

/// The old name of [`StandardRetry`].
#[deprecated(since = "0.1.0", note = "renamed `StandardRetry`")]
pub type Standard = StandardRetry;

/// The old name of [`RetryPolicy`]. (A re-export cannot be marked deprecated; it is kept so
/// that code written against the old name still compiles.)
#[doc(hidden)]
pub use self::RetryPolicy as Policy;

use std::fmt;

use http::{Extensions, HeaderMap, Method, StatusCode, Uri};

use crate::attempt::AttemptRequest;
use crate::classify::FailureClass;

/// Decides whether a failed request may be sent again.
///
/// Policies are cloned once per retryable request, so keep them cheap to clone (share state
/// with an `Arc`).
///
/// # Examples
///
/// Our payment API deduplicates requests by their `x-charge-key`: a `POST /v1/charges` with one
/// may be sent again whatever happened to it. Everything else follows the standard rules.
///
/// ```
/// use http::Method;
/// use tower_reset::attempt::AttemptRequest;
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{Action, Attempt, RetryPolicy, StandardRetry};
///
/// #[derive(Clone)]
/// struct Charges;
///
/// impl Charges {
///     fn is_keyed_charge(request: &dyn AttemptRequest) -> bool {
///         request.method() == Method::POST
///             && request.uri().path() == "/v1/charges"
///             && request.headers().contains_key("x-charge-key")
///     }
/// }
///
/// impl RetryPolicy for Charges {
///     fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
///         if Self::is_keyed_charge(attempt.request()) {
///             return Action::Retry;
///         }
///         StandardRetry::new().retry(attempt)
///     }
/// }
///
/// let keyed = http::Request::post("/v1/charges").header("x-charge-key", "c-1").body(()).unwrap();
/// let reset = FailureClass::UnknownOutcome;
/// assert_eq!(Charges.retry(&Attempt::new(&keyed, reset, 1)), Action::Retry);
/// let plain = http::Request::post("/v1/refunds").body(()).unwrap();
/// assert_eq!(Charges.retry(&Attempt::new(&plain, reset, 1)), Action::Stop);
/// ```
///
/// Give it to the layer with `ResetRetryLayer::builder().policy(Charges).build()?`.
pub trait RetryPolicy {
    /// Decides about a failed attempt. Called only for recognised connection failures, and only
    /// when the limits allow another attempt.
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action;

    /// Whether any failure of this request could be retried, asked once before the first
    /// attempt. Answering `false` lets the layer send the request without keeping a copy (no
    /// clone, no allocation). Answering `true` is always correct.
    ///
    /// Defaults to `true`.
    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        let _ = request;
        true
    }
}

impl<P: RetryPolicy + ?Sized> RetryPolicy for &mut P {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        (**self).retry(attempt)
    }
    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        (**self).may_retry(request)
    }
}

impl<P: RetryPolicy + ?Sized> RetryPolicy for Box<P> {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        (**self).retry(attempt)
    }
    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        (**self).may_retry(request)
    }
}

/// What a [`RetryPolicy`] decided.
///
/// # Examples
///
/// ```
/// use tower_reset::reset_retry::policy::Action;
///
/// let decision = Action::retry_if(2 < 3);
/// assert!(decision.is_retry());
/// assert_eq!(Action::retry_if(false), Action::Stop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a policy decision does nothing unless acted on"]
pub enum Action {
    /// Send the request again.
    Retry,
    /// Give up and return the failure to the caller.
    Stop,
}

impl Action {
    /// `Retry` when `retry` is true, `Stop` otherwise.
    pub const fn retry_if(retry: bool) -> Self {
        if retry {
            Self::Retry
        } else {
            Self::Stop
        }
    }

    /// Returns `true` for [`Action::Retry`].
    pub const fn is_retry(self) -> bool {
        matches!(self, Self::Retry)
    }
}

/// A read-only view of a failed attempt, handed to [`RetryPolicy::retry`].
///
/// # Examples
///
/// A policy that also retries a `POST` the server answered with `409` and a header saying it
/// did not apply it:
///
/// ```
/// use tower_reset::reset_retry::policy::{Action, Attempt, PolicyExt, RetryPolicy, StandardRetry};
///
/// #[derive(Clone)]
/// struct RetryUnapplied;
///
/// impl RetryPolicy for RetryUnapplied {
///     fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
///         let unapplied = attempt
///             .response_headers()
///             .is_some_and(|headers| headers.contains_key("x-not-applied"));
///         Action::retry_if(unapplied)
///     }
/// }
///
/// let policy = StandardRetry::new().or(RetryUnapplied);
/// # let _ = policy;
/// ```
pub struct Attempt<'a> {
    request: &'a dyn AttemptRequest,
    failure: FailureClass,
    number: u32,
    response: Option<(StatusCode, &'a HeaderMap)>,
}

impl<'a> Attempt<'a> {
    /// A view of `request`, whose attempt `number` failed with `failure`. Useful to test
    /// policies of your own.
    pub fn new(request: &'a dyn AttemptRequest, failure: FailureClass, number: u32) -> Self {
        Self {
            request,
            failure,
            number,
            response: None,
        }
    }

    /// The same view, for an attempt that ended with a response the classifier reported (a
    /// `503`, say) with this status and these headers.
    pub fn with_response(mut self, status: StatusCode, headers: &'a HeaderMap) -> Self {
        self.response = Some((status, headers));
        self
    }

    /// How far the failed attempt got.
    pub fn failure(&self) -> FailureClass {
        self.failure
    }

    /// The number of the attempt that failed, starting at 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The request's method.
    pub fn method(&self) -> &'a Method {
        self.request.method()
    }

    /// The request's URI.
    pub fn uri(&self) -> &'a Uri {
        self.request.uri()
    }

    /// The request's headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.request.headers()
    }

    /// The request's extensions.
    pub fn extensions(&self) -> &'a Extensions {
        self.request.extensions()
    }

    /// The whole request.
    pub fn request(&self) -> &'a dyn AttemptRequest {
        self.request
    }

    /// The status of the response the attempt ended with, when it ended with one (the
    /// classifier reported it as a failure); `None` when it failed with an error.
    pub fn response_status(&self) -> Option<StatusCode> {
        self.response.map(|(status, _)| status)
    }

    /// The headers of the response the attempt ended with, when it ended with one.
    pub fn response_headers(&self) -> Option<&'a HeaderMap> {
        self.response.map(|(_, headers)| headers)
    }
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("method", self.method())
            .field("uri", self.uri())
            .field("failure", &self.failure)
            .field("number", &self.number)
            .field("response_status", &self.response_status())
            .finish()
    }
}

/// Combinators for [`RetryPolicy`].
///
/// # Examples
///
/// ```
/// use tower_reset::reset_retry::policy::{retry_if, Attempt, PolicyExt, StandardRetry};
///
/// // The standard rules, or a keyed POST; and never for the health check.
/// let policy = StandardRetry::new()
///     .or(retry_if(|attempt: &Attempt<'_>| attempt.headers().contains_key("x-charge-key")))
///     .and(retry_if(|attempt: &Attempt<'_>| attempt.uri().path() != "/health"));
/// # let _ = policy;
/// ```
pub trait PolicyExt: RetryPolicy + Sized {
    /// Retries when `self` or `other` says so. `other` is asked only when `self` stops.
    fn or<Q: RetryPolicy>(self, other: Q) -> Or<Self, Q> {
        Or::new(self, other)
    }

    /// Retries only when both `self` and `other` say so. `other` is asked only when `self`
    /// retries.
    fn and<Q: RetryPolicy>(self, other: Q) -> And<Self, Q> {
        And::new(self, other)
    }
}

impl<P: RetryPolicy> PolicyExt for P {}
