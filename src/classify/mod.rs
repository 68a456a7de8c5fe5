//! Classify a failure by how far the request got before it failed.
//!
//! Whether a failed request may be sent again depends on one question: *could the server have
//! acted on it?* A connection that was refused never saw the request; an h2 stream refused with
//! `REFUSED_STREAM` was, by RFC 9113 §8.7, not processed; but a connection reset *after* the
//! request was written may come from a server that already charged the card and died before
//! answering. [`FailureClass`] names these cases, and the classifiers here map errors (and,
//! optionally, responses) to them. What to *do* with a class is the business of the retry policy
//! ([`crate::reset_retry::policy`]), kept apart on purpose, as in tower-http's `classify`.
//!
//! The [`StandardClassifier`] walks the whole [`source()`](std::error::Error::source) chain of an
//! error, so it sees the `io::Error` that hyper, hyper-util, h2, tonic or reqwest wrapped, however
//! deep. Knowledge of those crates' own error types sits behind the features of the same names;
//! `io::Error` kinds are recognised with no feature at all.
//!
//! | what the server did | what the client sees | class |
//! |---|---|---|
//! | refused the connection, reset it during the handshake, or did not answer it in time | `ConnectionRefused`, a hyper-util connect error (its cause refused, reset or timed out: `HttpConnector::set_connect_timeout`), a `tonic::ConnectError` (also `Endpoint::connect_timeout`), `hyper::Error::is_canceled()` | [`NeverSent`](FailureClass::NeverSent) |
//! | h2 `RST_STREAM(REFUSED_STREAM)`, graceful `GOAWAY` above the stream | remote `h2::Error` with that reason | [`Refused`](FailureClass::Refused) |
//! | reset or closed the connection after reading the request | `ConnectionReset`, `ConnectionAborted`, `BrokenPipe`, `UnexpectedEof`, `hyper::Error::is_incomplete_message()` | [`UnknownOutcome`](FailureClass::UnknownOutcome) |
//! | answered "try again later" (opt-in, see [`RetryStatuses`]) | `429`, `502`, `503`, `504`, gRPC `UNAVAILABLE` in the headers | [`Unavailable`](FailureClass::Unavailable) |
//! | answered "not processed" with a status you declared so (opt-in, [`RetryStatusesBuilder::not_processed`]) | say `429` from a rate limiter, `425 Too Early` | [`Rejected`](FailureClass::Rejected) |
//! | nothing: the connection could not be made, and never will be (see below) | a connect error over a DNS failure (hyper-util's "dns error"), a TLS failure reported as `InvalidData` (rustls: a certificate that does not verify, a fatal alert), an `InvalidInput` address, or a URL the connector cannot serve ("invalid URL, scheme is not http") | not retried (`None`) |
//! | anything else: request timeouts, 4xx, application errors | | not a failure of this crate's kind (`None`) |
//!
//! # Connect failures: which are worth another attempt
//!
//! A request whose connection could not be made was never sent, so another attempt is always
//! *safe*; it is only *useful* when the next connection may succeed. A refused connection (a
//! server restarting), one reset during the handshake (a server shedding load) and a connect
//! timeout (a full accept queue, a lost SYN) may all be gone a moment later: they are
//! [`NeverSent`](FailureClass::NeverSent) and retried. Each attempt of a timed-out connect waits
//! the connector's timeout again; a [deadline](crate::reset_retry::ResetRetryBuilder::deadline)
//! bounds the total. A name that does not resolve, a certificate that does not verify and a URL
//! the connector cannot serve fail the same way every time: a link that says so overrules the
//! connect error above it, and the whole error is `None`, returned at once. A TLS library that
//! reports its failures other than as `io::ErrorKind::InvalidData` (native-tls reports its own
//! error type) is not recognised: its handshake failures stay connect errors, and are retried.
//!
//! Errors that say nothing about the connection (`io::ErrorKind::TimedOut` alone, as a request
//! timeout gives, or a `tower::timeout` elapsed) are `None`: the request may have been processed.
//!
//! Among the never-sent failures, [`is_host_down`] picks those that say *nothing listens at the
//! address* (connection refused, host or network unreachable), as opposed to a stale connection
//! (a fresh one at once is the fix) or a struggling server (backing off is): `BackoffLayer`
//! waits for such a host behind one probe instead of retrying on a timer
//! ([`RideOut`](crate::backoff::RideOut)).

pub(crate) mod chain;
mod host_down;
mod responses;
mod standard;
mod statuses;

pub use self::host_down::is_host_down;
pub use self::responses::{classify_response_fn, ClassifyResponseFn, WithResponses};
pub use self::standard::StandardClassifier;
pub use self::statuses::{RetryStatuses, RetryStatusesBuilder};

use std::fmt;

/// How far a failed request got: the fact the retry policy decides on.
///
/// The variants are ordered from "certainly not processed" to "may have been processed".
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
///
/// fn may_repeat_a_post(failure: FailureClass) -> bool {
///     // Only when the server certainly did not process it.
///     failure.is_unprocessed()
/// }
/// assert!(may_repeat_a_post(FailureClass::NeverSent));
/// assert!(!may_repeat_a_post(FailureClass::UnknownOutcome));
/// assert_eq!(FailureClass::UnknownOutcome.as_str(), "unknown_outcome");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The request never left the client: the connection was refused, failed to establish, or
    /// was closed before the request was written. Safe to send again, whatever the method.
    NeverSent,
    /// The peer refused the request at the protocol level and promises it did not process it
    /// (h2 `REFUSED_STREAM`, or a graceful `GOAWAY` whose last-stream-id is below the request's
    /// stream). Safe to send again, whatever the method.
    Refused,
    /// The request was sent, at least in part, and the connection failed before a complete
    /// response arrived. The server may or may not have acted on it: only idempotent requests
    /// may be sent again.
    UnknownOutcome,
    /// The server (or a proxy in front of it) answered "try again later", for example a
    /// `503 Service Unavailable`, a `502` or `504` from a gateway, a `429`, or gRPC
    /// `UNAVAILABLE`. Only reported by a classifier that was asked to look at responses (see
    /// [`RetryStatuses`]). Treated like [`UnknownOutcome`](Self::UnknownOutcome) by the standard
    /// policy: such an answer does not promise that nothing was done.
    Unavailable,
    /// The server answered that it did **not** process the request, with a status it promises
    /// that for: one you declared with [`RetryStatusesBuilder::not_processed`] (such as a `429`
    /// from a rate limiter that rejects before any work, or `425 Too Early`). Safe to send again,
    /// whatever the method; unlike a protocol refusal it spends the retry budget and backs off.
    Rejected,
}

impl FailureClass {
    /// Returns `true` when the request certainly was not processed ([`NeverSent`](Self::NeverSent)
    /// or [`Refused`](Self::Refused)), so sending it again is safe for any method.
    pub const fn is_unprocessed(self) -> bool {
        matches!(self, Self::NeverSent | Self::Refused | Self::Rejected)
    }

    /// Returns `true` for the failures of a connection ([`NeverSent`](Self::NeverSent),
    /// [`Refused`](Self::Refused), [`UnknownOutcome`](Self::UnknownOutcome)), and `false` for
    /// the answers of a server ([`Unavailable`](Self::Unavailable),
    /// [`Rejected`](Self::Rejected)). A connection failure is usually fixed by a fresh
    /// connection at once; a server's answer by waiting.
    pub const fn is_connection_failure(self) -> bool {
        matches!(self, Self::NeverSent | Self::Refused | Self::UnknownOutcome)
    }

    /// A short, stable, lower-case name for logs and metrics, such as `"never_sent"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NeverSent => "never_sent",
            Self::Refused => "refused",
            Self::UnknownOutcome => "unknown_outcome",
            Self::Unavailable => "unavailable",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps an error returned by the inner service to a [`FailureClass`], or to `None` when the
/// error is not a connection failure this crate acts on.
///
/// [`StandardClassifier`] implements it for the error types of the clients this crate supports
/// (and for [`BoxError`](tower::BoxError) and [`std::io::Error`]). To support your own error
/// type, implement it and delegate to [`StandardClassifier::classify_chain`]:
///
/// ```
/// use std::fmt;
/// use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};
///
/// #[derive(Debug)]
/// struct MyError(std::io::Error);
/// impl fmt::Display for MyError {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("my error") }
/// }
/// impl std::error::Error for MyError {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
/// }
///
/// #[derive(Clone, Debug)]
/// struct MyClassifier;
/// impl ClassifyError<MyError> for MyClassifier {
///     fn classify_error(&self, error: &MyError) -> Option<FailureClass> {
///         StandardClassifier::new().classify_chain(error)
///     }
/// }
///
/// let reset = MyError(std::io::ErrorKind::ConnectionReset.into());
/// assert_eq!(MyClassifier.classify_error(&reset), Some(FailureClass::UnknownOutcome));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot classify errors of type `{E}`",
    label = "no `ClassifyError<{E}>` for this classifier",
    note = "for a client's own error type, enable the tower-reset feature of that client (`hyper-util`, `tonic`, `reqwest`)",
    note = "or convert the inner service's errors to `tower::BoxError`, e.g. with `.map_err(tower::BoxError::from)`",
    note = "a classifier of your own must implement both `ClassifyError` and `ClassifyResponse`; to change only how responses are classified, use `StandardClassifier::new().responses(..)`"
)]
pub trait ClassifyError<E: ?Sized> {
    /// Classifies `error`; `None` means "not a failure this crate retries".
    fn classify_error(&self, error: &E) -> Option<FailureClass>;
}

/// Maps a response to a [`FailureClass`] when the response itself says the request failed in a
/// retryable way (such as `503`), or to `None` for an ordinary response.
///
/// Off by default: [`StandardClassifier::new`] reports every response as a success; give it
/// [`RetryStatuses`] to report statuses, or a closure of your own with
/// [`StandardClassifier::responses`], which keeps the standard classification of errors (so one
/// closure is all a custom response rule needs).
///
/// # Examples
///
/// ```
/// use tower_reset::classify::{
///     classify_response_fn, ClassifyResponse, FailureClass, StandardClassifier,
/// };
///
/// // A server of ours answers `420` when it sheds load, before doing any work.
/// let classifier = StandardClassifier::new().responses(classify_response_fn(
///     |response: &http::Response<()>| (response.status() == 420).then_some(FailureClass::Rejected),
/// ));
/// let shed = http::Response::builder().status(420).body(()).unwrap();
/// assert_eq!(classifier.classify_response(&shed), Some(FailureClass::Rejected));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot classify responses of type `{Res}`",
    label = "no `ClassifyResponse<{Res}>` for this classifier",
    note = "a classifier of your own must implement both `ClassifyError` and `ClassifyResponse`; to change only how responses are classified, use `StandardClassifier::new().responses(classify_response_fn(|response: &{Res}| ..))`"
)]
pub trait ClassifyResponse<Res: ?Sized> {
    /// Classifies `response`; `None` means "a response to hand to the caller".
    fn classify_response(&self, response: &Res) -> Option<FailureClass>;
}

impl<C, E> ClassifyError<E> for &C
where
    C: ClassifyError<E> + ?Sized,
    E: ?Sized,
{
    fn classify_error(&self, error: &E) -> Option<FailureClass> {
        (**self).classify_error(error)
    }
}

impl<C, Res> ClassifyResponse<Res> for &C
where
    C: ClassifyResponse<Res> + ?Sized,
    Res: ?Sized,
{
    fn classify_response(&self, response: &Res) -> Option<FailureClass> {
        (**self).classify_response(response)
    }
}
