//! The attempt record: how the layers of the stack talk to each other.
//!
//! [`ResetRetry`](crate::ResetRetry) decides *whether* a request goes out again; the layers below
//! it decide *when* and *on which connection*. They never see each other: each retry carries an
//! [`AttemptRecord`] in its request extensions (its number, why the previous attempt failed, the
//! deadline), and an inner layer reads it. A request without a record is a first attempt, which
//! is why the first attempt carries none: nothing to allocate when nothing fails.
//!
//! When the request is over, [`AttemptHistory`] says what happened: it is put in the extensions
//! of a response that needed more than one attempt, and handed to a [`HistoryObserver`] that the
//! caller attached to the request, which is the way to learn the history of a request that
//! failed (the error itself is returned untouched).

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Extensions, HeaderMap, Method, Uri};
use tokio::time::Instant;

use crate::classify::FailureClass;
use crate::hint::ServerHint;

/// What an attempt after the first knows about the attempts before it.
///
/// Found in the request extensions of every retry sent by [`ResetRetry`](crate::ResetRetry).
/// The first attempt carries none; [`AttemptRecord::of`] reads a missing record as attempt 1.
///
/// # Examples
///
/// An inner service can look at the record to act on a retry:
///
/// ```
/// use tower_reset::attempt::AttemptRecord;
///
/// fn log_attempt<B>(request: &http::Request<B>) {
///     let record = AttemptRecord::of(request);
///     if let Some(cause) = record.previous_failure() {
///         println!("attempt {} after {cause}", record.number());
///     }
/// }
/// # log_attempt(&http::Request::new(()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    number: u32,
    previous_failure: Option<FailureClass>,
    first_failure: Option<FailureClass>,
    hint: Option<ServerHint>,
    deadline: Option<Instant>,
    seed: u64,
}

impl AttemptRecord {
    /// The record of a first attempt: number 1, no failure, no hint, no deadline.
    pub const FIRST: AttemptRecord = AttemptRecord {
        number: 1,
        previous_failure: None,
        first_failure: None,
        hint: None,
        deadline: None,
        seed: 0,
    };

    /// The record of retry `number` (2 or more). Public so that the layers below
    /// [`ResetRetry`](crate::ResetRetry) can be tested alone; `ResetRetry` fills it in.
    pub fn retry(number: u32, previous_failure: FailureClass) -> Self {
        Self {
            number: number.max(2),
            previous_failure: Some(previous_failure),
            first_failure: Some(previous_failure),
            hint: None,
            deadline: None,
            seed: 0,
        }
    }

    /// The class of the first failure of the request, when it differs from the previous one.
    pub fn with_first_failure(mut self, first_failure: FailureClass) -> Self {
        self.first_failure = Some(first_failure);
        self
    }

    /// What the server said about retrying, in the response that failed.
    pub fn with_hint(mut self, hint: Option<ServerHint>) -> Self {
        self.hint = hint;
        self
    }

    /// The instant after which no attempt may start.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The request's random seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The record carried by `request`, or [`AttemptRecord::FIRST`] when it carries none.
    pub fn of<R: AttemptRequest + ?Sized>(request: &R) -> &AttemptRecord {
        request
            .extensions()
            .get::<AttemptRecord>()
            .unwrap_or(&Self::FIRST)
    }

    /// The number of this attempt, starting at 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Returns `true` for a first attempt.
    pub fn is_first(&self) -> bool {
        self.number <= 1
    }

    /// Why the previous attempt failed; `None` for a first attempt.
    pub fn previous_failure(&self) -> Option<FailureClass> {
        self.previous_failure
    }

    /// Why the first attempt failed; `None` for a first attempt.
    pub fn first_failure(&self) -> Option<FailureClass> {
        self.first_failure
    }

    /// What the server said about retrying in the failed response (`Retry-After`,
    /// `grpc-retry-pushback-ms`), if it said anything.
    pub fn hint(&self) -> Option<ServerHint> {
        self.hint
    }

    /// The instant after which no further attempt may start, if a deadline was configured.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A random number drawn once per request and the same for all its attempts, for layers
    /// that need per-request randomness (such as backoff jitter).
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The error an inner layer returns instead of sending an attempt that must not go out: the
/// backoff would end after the deadline, or the server asked for a longer wait than allowed.
///
/// [`ResetRetry`](crate::ResetRetry) recognises it and hands the caller the outcome of the
/// previous attempt instead, so the caller never sees this error when the layers are stacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptAbandoned {
    reason: &'static str,
}

impl AttemptAbandoned {
    /// An abandoned attempt, with the reason in plain words.
    pub const fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// Why the attempt was not sent.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Whether `error` (an `AttemptAbandoned`, or a `BoxError` with one anywhere in the chain
    /// the classifier walks) is an abandoned attempt.
    pub(crate) fn is<E: Any>(error: &E) -> bool {
        let any: &dyn Any = error;
        if any.is::<AttemptAbandoned>() {
            return true;
        }
        let Some(boxed) = any.downcast_ref::<tower::BoxError>() else {
            return false;
        };
        crate::classify::chain::links(&**boxed).any(|err| err.is::<AttemptAbandoned>())
    }
}

impl fmt::Display for AttemptAbandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry abandoned: {}", self.reason)
    }
}

impl Error for AttemptAbandoned {}

/// What happened to one request across all its attempts.
///
/// Put in the extensions of a response that took more than one attempt (a response without it
/// took exactly one), and handed to a [`HistoryObserver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptHistory {
    attempts: u32,
    failures: Vec<FailureClass>,
}

impl AttemptHistory {
    pub(crate) fn single() -> Self {
        Self {
            attempts: 1,
            failures: Vec::new(),
        }
    }

    pub(crate) fn new(attempts: u32, failures: Vec<FailureClass>) -> Self {
        Self { attempts, failures }
    }

    /// How many attempts were sent, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The class of each failed attempt that was recognised as a connection failure, in order.
    /// The last attempt's failure is included when the request failed with one.
    pub fn failures(&self) -> &[FailureClass] {
        &self.failures
    }
}

/// A handle that receives the [`AttemptHistory`] of one request, success or failure.
///
/// Attach it to the request before sending; after the response future completes it holds the
/// history. This is how to learn what happened to a request that failed: the error is returned
/// untouched, so it has no room for the history.
///
/// # Examples
///
/// ```
/// use tower_reset::attempt::HistoryObserver;
///
/// let mut request = http::Request::new(());
/// let observer = HistoryObserver::attach(&mut request);
/// // ... send `request` through a `ResetRetry` service ...
/// assert_eq!(observer.get(), None); // nothing recorded until the request completes
/// ```
#[derive(Clone, Default)]
pub struct HistoryObserver {
    slot: Arc<Mutex<Option<AttemptHistory>>>,
}

impl HistoryObserver {
    /// Creates an observer and puts a handle to it in the request's extensions.
    pub fn attach<R: AttemptRequest + ?Sized>(request: &mut R) -> Self {
        let observer = Self::default();
        request.extensions_mut().insert(observer.clone());
        observer
    }

    /// The history, once the request has completed; `None` before.
    pub fn get(&self) -> Option<AttemptHistory> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record(&self, history: AttemptHistory) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(history);
    }
}

impl fmt::Debug for HistoryObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryObserver")
            .field("history", &self.get())
            .finish()
    }
}

/// A request that the retry layers can read and that can carry an [`AttemptRecord`].
///
/// Implemented for [`http::Request<B>`]; implement it for your own request type to use the
/// layers with it.
pub trait AttemptRequest {
    /// The request method.
    fn method(&self) -> &Method;
    /// The request URI.
    fn uri(&self) -> &Uri;
    /// The request headers.
    fn headers(&self) -> &HeaderMap;
    /// The request extensions, where the [`AttemptRecord`] travels.
    fn extensions(&self) -> &Extensions;
    /// The request extensions, mutably.
    fn extensions_mut(&mut self) -> &mut Extensions;
}

impl<B> AttemptRequest for http::Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }
    fn uri(&self) -> &Uri {
        self.uri()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions(&self) -> &Extensions {
        self.extensions()
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}

/// A response that can carry an [`AttemptHistory`], and whose headers may hold a
/// [`ServerHint`]. Implemented for [`http::Response<B>`].
pub trait AttemptResponse {
    /// The response headers, read for `Retry-After` and `grpc-retry-pushback-ms`.
    fn headers(&self) -> &HeaderMap;
    /// The response extensions, where the [`AttemptHistory`] is put.
    fn extensions_mut(&mut self) -> &mut Extensions;
}

impl<B> AttemptResponse for http::Response<B> {
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}

#[cfg(feature = "reqwest")]
impl AttemptResponse for reqwest::Response {
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}
