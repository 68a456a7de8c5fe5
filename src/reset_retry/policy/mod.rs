//! Retry policies: which failed requests may be sent again.
//!
//! A [`Policy`] sees an [`Attempt`] (the request, the [`FailureClass`] of the failure and the
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
//! * [`Standard`]: the default, `Unprocessed` or `Idempotent`. A POST is never sent twice unless
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
//! use tower_reset::reset_retry::policy::{retry_if, Attempt, PolicyExt, Standard};
//!
//! let policy = Standard::new().or(retry_if(|attempt: &Attempt<'_>| {
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
pub use self::standard::Standard;
pub use self::unprocessed::Unprocessed;

use std::fmt;

use http::{Extensions, HeaderMap, Method, Uri};

use crate::attempt::AttemptRequest;
use crate::classify::FailureClass;

/// Decides whether a failed request may be sent again.
///
/// Policies are cloned once per retryable request, so keep them cheap to clone (share state
/// with an `Arc`).
pub trait Policy {
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

impl<P: Policy + ?Sized> Policy for &mut P {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        (**self).retry(attempt)
    }
    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        (**self).may_retry(request)
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        (**self).retry(attempt)
    }
    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        (**self).may_retry(request)
    }
}

/// What a [`Policy`] decided.
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

/// A read-only view of a failed attempt, handed to [`Policy::retry`].
pub struct Attempt<'a> {
    request: &'a dyn AttemptRequest,
    failure: FailureClass,
    number: u32,
}

impl<'a> Attempt<'a> {
    /// A view of `request`, whose attempt `number` failed with `failure`. Useful to test
    /// policies of your own.
    pub fn new(request: &'a dyn AttemptRequest, failure: FailureClass, number: u32) -> Self {
        Self {
            request,
            failure,
            number,
        }
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
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("method", self.method())
            .field("uri", self.uri())
            .field("failure", &self.failure)
            .field("number", &self.number)
            .finish()
    }
}

/// Combinators for [`Policy`].
pub trait PolicyExt: Policy + Sized {
    /// Retries when `self` or `other` says so. `other` is asked only when `self` stops.
    fn or<Q: Policy>(self, other: Q) -> Or<Self, Q> {
        Or::new(self, other)
    }

    /// Retries only when both `self` and `other` say so. `other` is asked only when `self`
    /// retries.
    fn and<Q: Policy>(self, other: Q) -> And<Self, Q> {
        And::new(self, other)
    }
}

impl<P: Policy> PolicyExt for P {}
