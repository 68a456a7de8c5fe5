//! Which response statuses are failures to retry, and how safe each is to retry.

use http::{HeaderMap, StatusCode};

use super::FailureClass;
use crate::ConfigError;

/// The statuses from 400 to 599, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct StatusSet([u64; 4]);

impl StatusSet {
    const FIRST: u16 = 400;
    const LAST: u16 = 599;

    const fn with(mut self, status: u16) -> Self {
        let bit = (status - Self::FIRST) as usize;
        self.0[bit / 64] |= 1 << (bit % 64);
        self
    }

    const fn without(mut self, status: u16) -> Self {
        let bit = (status - Self::FIRST) as usize;
        self.0[bit / 64] &= !(1 << (bit % 64));
        self
    }

    const fn contains(&self, status: u16) -> bool {
        if status < Self::FIRST || status > Self::LAST {
            return false;
        }
        let bit = (status - Self::FIRST) as usize;
        self.0[bit / 64] & (1 << (bit % 64)) != 0
    }

    const fn is_empty(&self) -> bool {
        self.0[0] == 0 && self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0
    }
}

/// gRPC status code 14, `UNAVAILABLE`.
const GRPC_UNAVAILABLE: &[u8] = b"14";

/// The response statuses a [`StandardClassifier`](super::StandardClassifier) reports as
/// failures, each with what it says about whether the request was processed.
///
/// A status is one of two kinds, and the kind decides which requests may be sent again
/// (by the standard [`RetryPolicy`](crate::reset_retry::policy::RetryPolicy)):
///
/// | kind | class | retried for | statuses |
/// |---|---|---|---|
/// | *try again later*: the server, or a proxy, did not answer the request, but may have worked on it | [`Unavailable`](FailureClass::Unavailable) | idempotent requests only (GET, PUT, DELETE…, or with an `Idempotency-Key`) | the default set: `429 Too Many Requests`, `502 Bad Gateway`, `503 Service Unavailable`, `504 Gateway Timeout`, and gRPC `UNAVAILABLE` (`grpc-status: 14` in a trailers-only answer) |
/// | *not processed*: the server promises it did no work | [`Rejected`](FailureClass::Rejected) | every request | only those you declare with [`not_processed`](RetryStatusesBuilder::not_processed): a `429` from a rate limiter that rejects before any work, `425 Too Early` (RFC 8470) |
///
/// Why a `POST` is not retried after a `502`, `503`, `504` or `429` by default: a gateway that
/// answers `502` or `504` forwarded the request and lost the answer, and an application may
/// return `503` or `429` after doing part of the work; none of these statuses promises that
/// nothing was done (RFC 9110 §15.6). Declare a status *not processed* only when the server
/// in front of you guarantees it.
///
/// Every retried status honours the server's `Retry-After` (or `grpc-retry-pushback-ms`): the
/// next attempt waits at least that long, and a hint longer than the backoff's `max_hint`
/// means no retry at all.
///
/// # Examples
///
/// What reqwest-retry retries (every `5xx`, `408` and `429`), keeping the crate's safety rule:
/// only idempotent requests are sent again after them.
///
/// ```
/// use http::StatusCode;
/// use tower_reset::classify::{RetryStatuses, StandardClassifier};
/// use tower_reset::ResetRetryLayer;
///
/// let statuses = RetryStatuses::builder()
///     .retry_range(500, 599)
///     .retry(StatusCode::REQUEST_TIMEOUT)
///     .retry(StatusCode::TOO_MANY_REQUESTS)
///     .build()?;
/// let layer = ResetRetryLayer::builder()
///     .classifier(StandardClassifier::new().statuses(statuses))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
///
/// The default set, with a rate limiter that promises `429` means "not processed":
///
/// ```
/// use http::StatusCode;
/// use tower_reset::classify::{ClassifyResponse, FailureClass, RetryStatuses, StandardClassifier};
///
/// let statuses = RetryStatuses::standard()
///     .to_builder()
///     .not_processed(StatusCode::TOO_MANY_REQUESTS)
///     .build()?;
/// let classifier = StandardClassifier::new().statuses(statuses);
/// let throttled = http::Response::builder().status(429).body(()).unwrap();
/// assert_eq!(classifier.classify_response(&throttled), Some(FailureClass::Rejected));
/// let unavailable = http::Response::builder().status(503).body(()).unwrap();
/// assert_eq!(classifier.classify_response(&unavailable), Some(FailureClass::Unavailable));
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryStatuses {
    unavailable: StatusSet,
    rejected: StatusSet,
    grpc_unavailable: bool,
}

impl RetryStatuses {
    /// No status is a failure: every response is handed to the caller. What
    /// [`StandardClassifier::new`](super::StandardClassifier::new) uses.
    pub const fn none() -> Self {
        Self {
            unavailable: StatusSet([0; 4]),
            rejected: StatusSet([0; 4]),
            grpc_unavailable: false,
        }
    }

    /// `503 Service Unavailable` and gRPC `UNAVAILABLE`, both *try again later*: what
    /// [`StandardClassifier::unavailable_responses`](super::StandardClassifier::unavailable_responses)
    /// turns on.
    pub const fn unavailable() -> Self {
        let mut statuses = Self::none();
        statuses.unavailable = statuses.unavailable.with(503);
        statuses.grpc_unavailable = true;
        statuses
    }

    /// `429`, `502`, `503`, `504` and gRPC `UNAVAILABLE`, all *try again later* (retried for
    /// idempotent requests only): the answers of overloaded servers and of the gateways and
    /// load balancers in front of them.
    pub const fn standard() -> Self {
        let mut statuses = Self::unavailable();
        statuses.unavailable = statuses.unavailable.with(429).with(502).with(504);
        statuses
    }

    /// A builder that starts with no status.
    pub const fn builder() -> RetryStatusesBuilder {
        RetryStatusesBuilder {
            statuses: Self::none(),
            invalid: None,
        }
    }

    /// A builder that starts from these statuses.
    pub const fn to_builder(self) -> RetryStatusesBuilder {
        RetryStatusesBuilder {
            statuses: self,
            invalid: None,
        }
    }

    /// Returns `true` when no status is a failure.
    pub const fn is_empty(&self) -> bool {
        self.unavailable.is_empty() && self.rejected.is_empty() && !self.grpc_unavailable
    }

    /// The class of a response with this status and these headers: `None` for a response to
    /// hand to the caller.
    pub fn classify(&self, status: StatusCode, headers: &HeaderMap) -> Option<FailureClass> {
        let code = status.as_u16();
        if self.rejected.contains(code) {
            return Some(FailureClass::Rejected);
        }
        if self.unavailable.contains(code) {
            return Some(FailureClass::Unavailable);
        }
        let grpc_unavailable = self.grpc_unavailable
            && headers
                .get("grpc-status")
                .is_some_and(|code| code.as_bytes() == GRPC_UNAVAILABLE);
        grpc_unavailable.then_some(FailureClass::Unavailable)
    }
}

/// Builds [`RetryStatuses`]; see [`RetryStatuses::builder`].
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use tower_reset::classify::RetryStatuses;
///
/// let statuses = RetryStatuses::builder()
///     .retry(StatusCode::SERVICE_UNAVAILABLE)
///     .not_processed(StatusCode::TOO_MANY_REQUESTS)
///     .grpc_unavailable(true)
///     .build()?;
/// assert!(RetryStatuses::builder().retry(StatusCode::OK).build().is_err());
/// # let _ = statuses;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RetryStatusesBuilder {
    statuses: RetryStatuses,
    /// The first status given that is not a `4xx` or `5xx`.
    invalid: Option<u16>,
}

impl RetryStatusesBuilder {
    /// Reports `status` as *try again later* ([`FailureClass::Unavailable`]): retried for
    /// idempotent requests only. Must be a `4xx` or `5xx` status.
    pub const fn retry(mut self, status: StatusCode) -> Self {
        let code = status.as_u16();
        if self.check(code) {
            self.statuses.unavailable = self.statuses.unavailable.with(code);
            self.statuses.rejected = self.statuses.rejected.without(code);
        }
        self
    }

    /// Reports every status from `first` to `last` (both included) as *try again later*. Both
    /// must be `4xx` or `5xx` statuses.
    pub const fn retry_range(mut self, first: u16, last: u16) -> Self {
        if !self.check(first) || !self.check(last) {
            return self;
        }
        let mut code = first;
        while code <= last {
            self.statuses.unavailable = self.statuses.unavailable.with(code);
            self.statuses.rejected = self.statuses.rejected.without(code);
            code += 1;
        }
        self
    }

    /// Reports `status` as *not processed* ([`FailureClass::Rejected`]): retried for every
    /// request, `POST` included. Declare it only for a status your server (or the proxy that
    /// answers it) guarantees is sent before any work was done. Must be a `4xx` or `5xx`
    /// status.
    pub const fn not_processed(mut self, status: StatusCode) -> Self {
        let code = status.as_u16();
        if self.check(code) {
            self.statuses.rejected = self.statuses.rejected.with(code);
            self.statuses.unavailable = self.statuses.unavailable.without(code);
        }
        self
    }

    /// No longer reports `status`.
    pub const fn without(mut self, status: StatusCode) -> Self {
        let code = status.as_u16();
        if code >= StatusSet::FIRST && code <= StatusSet::LAST {
            self.statuses.rejected = self.statuses.rejected.without(code);
            self.statuses.unavailable = self.statuses.unavailable.without(code);
        }
        self
    }

    /// Whether a gRPC trailers-only answer with `grpc-status: 14` (`UNAVAILABLE`) is *try again
    /// later*.
    pub const fn grpc_unavailable(mut self, enabled: bool) -> Self {
        self.statuses.grpc_unavailable = enabled;
        self
    }

    /// Checks the statuses.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when a status given is not a `4xx` or `5xx`: a `2xx` is a success and
    /// a `3xx` a redirect, neither a failure to retry.
    pub fn build(self) -> Result<RetryStatuses, ConfigError> {
        match self.invalid {
            Some(code) => Err(ConfigError::new(
                "retry statuses",
                format!("only 4xx and 5xx statuses can be retried, got {code}"),
            )),
            None => Ok(self.statuses),
        }
    }

    /// Whether `code` is a status that can be reported; remembers the first that cannot.
    const fn check(&mut self, code: u16) -> bool {
        let valid = code >= StatusSet::FIRST && code <= StatusSet::LAST;
        if !valid && self.invalid.is_none() {
            self.invalid = Some(code);
        }
        valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_hold_every_status_of_their_range() {
        for code in 400..=599 {
            let set = StatusSet::default().with(code);
            assert!(set.contains(code));
            assert!(!set.contains(code + 1) || code == 599);
            assert!(set.without(code).is_empty());
        }
        assert!(!StatusSet::default().with(400).contains(200));
        assert!(!StatusSet::default().with(599).contains(600));
    }

    #[test]
    fn statuses_outside_4xx_and_5xx_are_rejected() {
        let err = RetryStatuses::builder()
            .retry(StatusCode::OK)
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), "retry statuses");
        assert!(err.to_string().contains("200"), "{err}");
        assert!(RetryStatuses::builder()
            .retry_range(300, 599)
            .build()
            .is_err());
        assert!(RetryStatuses::builder()
            .not_processed(StatusCode::PERMANENT_REDIRECT)
            .build()
            .is_err());
    }

    #[test]
    fn the_last_kind_given_wins() {
        let statuses = RetryStatuses::standard()
            .to_builder()
            .not_processed(StatusCode::TOO_MANY_REQUESTS)
            .build()
            .unwrap();
        let headers = HeaderMap::new();
        assert_eq!(
            statuses.classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            Some(FailureClass::Rejected)
        );
        let back = statuses
            .to_builder()
            .retry(StatusCode::TOO_MANY_REQUESTS)
            .build()
            .unwrap();
        assert_eq!(
            back.classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            Some(FailureClass::Unavailable)
        );
        let without = back
            .to_builder()
            .without(StatusCode::TOO_MANY_REQUESTS)
            .build()
            .unwrap();
        assert_eq!(
            without.classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            None
        );
    }
}
