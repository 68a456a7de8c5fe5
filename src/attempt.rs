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

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Extensions, HeaderMap, Method, Uri};
use tokio::time::Instant;

use crate::classify::FailureClass;

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
    deadline: Option<Instant>,
}

impl AttemptRecord {
    /// The record of a first attempt: number 1, no previous failure, no deadline.
    pub const FIRST: AttemptRecord = AttemptRecord {
        number: 1,
        previous_failure: None,
        deadline: None,
    };

    pub(crate) fn retry(number: u32, previous: FailureClass, deadline: Option<Instant>) -> Self {
        Self {
            number,
            previous_failure: Some(previous),
            deadline,
        }
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

    /// The instant after which no further attempt may start, if a deadline was configured.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

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

/// A response that can carry an [`AttemptHistory`]. Implemented for [`http::Response<B>`].
pub trait AttemptResponse {
    /// The response extensions, where the [`AttemptHistory`] is put.
    fn extensions_mut(&mut self) -> &mut Extensions;
}

impl<B> AttemptResponse for http::Response<B> {
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}
