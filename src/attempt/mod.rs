//! The attempt record: how the layers of the stack talk to each other.
//!
//! [`ResetRetry`](crate::ResetRetry) decides *whether* a request goes out again; the layers below
//! it decide *when* and *on which connection*. They never see each other: each retry carries an
//! [`AttemptRecord`] in its request extensions (its number, why the previous attempt failed, the
//! deadline), and an inner layer reads it. A request without a record is a first attempt, which
//! is why the first attempt carries none: nothing to allocate when nothing fails. (While some
//! host refuses connections, `ResetRetry` gives the first attempt of a retryable request a
//! channel back of its own, so that `Backoff` can report holding it for its host: see
//! [`RideOut`](crate::backoff::RideOut).)
//!
//! The record also carries a way back: an inner layer that delays an attempt reports how long
//! ([`AttemptRecord::report_delay`], and [`AttemptRecord::report_wait`] for a wait for a host
//! that refused connections), and one that refuses to send it returns
//! [`AttemptAbandoned`] with the reason. When the request is over, [`AttemptHistory`] says what
//! happened: every attempt with the failure it met and the delay slept before it, and why the
//! request stopped ([`StopReason`]). The history is put in the extensions of a response that
//! needed more than one attempt, and handed to a [`HistoryObserver`] that the caller attached to
//! the request, which is the way to learn the history of a request that failed (the error
//! itself is returned untouched).

mod abandoned;
mod history;
mod message;
mod notes;

pub use self::abandoned::AttemptAbandoned;
pub use self::history::{AttemptHistory, AttemptSummary, HistoryObserver, StopReason};
pub use self::message::{AttemptRequest, AttemptResponse};

pub(crate) use self::notes::{any_host_down, host_came_back, host_went_down, Notes};

/// The notes `ResetRetry` gives the first attempt of a retryable request while some host
/// refuses connections: a first attempt carries no [`AttemptRecord`], but `Backoff` may hold it
/// for its host, and must then report the wait and count it against the request's window.
#[derive(Debug, Clone)]
pub(crate) struct FirstAttemptNotes {
    notes: Arc<Notes>,
    deadline: Option<Instant>,
}

impl FirstAttemptNotes {
    pub(crate) fn new(notes: Arc<Notes>, deadline: Option<Instant>) -> Self {
        Self { notes, deadline }
    }
}

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
#[derive(Clone)]
pub struct AttemptRecord {
    number: u32,
    previous_failure: Option<FailureClass>,
    first_failure: Option<FailureClass>,
    hint: Option<ServerHint>,
    deadline: Option<Instant>,
    seed: u64,
    last: bool,
    /// Where inner layers report what they did with this attempt; shared with the
    /// `ResetRetry` that sent it.
    notes: Option<Arc<Notes>>,
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
        last: false,
        notes: None,
    };

    /// The record of retry `number` (2 or more). Public so that the layers below
    /// [`ResetRetry`](crate::ResetRetry) can be tested alone; `ResetRetry` fills it in.
    ///
    /// ```
    /// use tower_reset::attempt::AttemptRecord;
    /// use tower_reset::classify::FailureClass;
    ///
    /// let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
    /// assert_eq!(record.number(), 2);
    /// assert_eq!(record.previous_failure(), Some(FailureClass::UnknownOutcome));
    /// ```
    pub fn retry(number: u32, previous_failure: FailureClass) -> Self {
        Self {
            number: number.max(2),
            previous_failure: Some(previous_failure),
            first_failure: Some(previous_failure),
            hint: None,
            deadline: None,
            seed: 0,
            last: false,
            notes: None,
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

    /// Whether this is the request's last attempt: no copy of the request is left for another.
    ///
    /// ```
    /// use tower_reset::attempt::AttemptRecord;
    /// use tower_reset::classify::FailureClass;
    ///
    /// let record = AttemptRecord::retry(3, FailureClass::NeverSent).with_last(true);
    /// assert!(record.is_last());
    /// ```
    pub fn with_last(mut self, last: bool) -> Self {
        self.last = last;
        self
    }

    pub(crate) fn with_notes(mut self, notes: Arc<Notes>) -> Self {
        self.notes = Some(notes);
        self
    }

    /// The channel back to the `ResetRetry` that sent this attempt, if one did.
    pub(crate) fn notes(&self) -> Option<&Arc<Notes>> {
        self.notes.as_ref()
    }

    /// The record of `request` for a layer that holds it for its host: its record, or for a
    /// first attempt, one with the notes and the deadline `ResetRetry` gave it (if it gave
    /// any). Clones; for the slow path only.
    pub(crate) fn for_ride_out<R: AttemptRequest + ?Sized>(request: &R) -> AttemptRecord {
        let record = Self::of(request);
        match request.extensions().get::<FirstAttemptNotes>() {
            Some(first) if record.is_first() => Self::FIRST
                .with_deadline(first.deadline)
                .with_notes(Arc::clone(&first.notes)),
            _ => record.clone(),
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

    /// Whether this is the request's last attempt: [`ResetRetry`](crate::ResetRetry) has no
    /// copy left to send another, whatever happens to this one. `false` for a first attempt.
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// How long the request has waited for its host so far, over its earlier attempts, as
    /// reported with [`report_wait`](Self::report_wait); zero on a record that no
    /// [`ResetRetry`](crate::ResetRetry) sent.
    pub fn waited(&self) -> Duration {
        self.notes
            .as_ref()
            .map_or(Duration::ZERO, |notes| notes.total_wait())
    }

    /// A random number drawn once per request and the same for all its attempts, for layers
    /// that need per-request randomness (such as backoff jitter).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Reports that this attempt was held back for `delay` before it went out (a backoff, a
    /// wait for a server hint). It appears as [`AttemptSummary::delay`] in the request's
    /// [`AttemptHistory`]; [`Backoff`](crate::Backoff) reports every delay it sleeps, zero
    /// included. A layer of your own that delays retries should do the same.
    ///
    /// Does nothing on a record that no [`ResetRetry`](crate::ResetRetry) sent (such as
    /// [`AttemptRecord::FIRST`], or one made with [`AttemptRecord::retry`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::attempt::AttemptRecord;
    ///
    /// fn before_sending<B>(request: &http::Request<B>, waited: Duration) {
    ///     AttemptRecord::of(request).report_delay(waited);
    /// }
    /// # before_sending(&http::Request::new(()), Duration::from_millis(5));
    /// ```
    pub fn report_delay(&self, delay: Duration) {
        if let Some(notes) = &self.notes {
            notes.delayed(delay);
        }
    }

    /// Reports that this attempt was held for `waited` because its host refused connections
    /// (see [`RideOut`](crate::backoff::RideOut)). It appears as [`AttemptSummary::waited`] in
    /// the request's [`AttemptHistory`], and adds to [`waited`](Self::waited), which the
    /// ride-out window is counted against.
    ///
    /// Does nothing on a record that no [`ResetRetry`](crate::ResetRetry) sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::attempt::AttemptRecord;
    ///
    /// fn after_waiting_for_the_host<B>(request: &http::Request<B>, waited: Duration) {
    ///     AttemptRecord::of(request).report_wait(waited);
    /// }
    /// # after_waiting_for_the_host(&http::Request::new(()), Duration::from_millis(300));
    /// ```
    pub fn report_wait(&self, waited: Duration) {
        if let Some(notes) = &self.notes {
            notes.waited_for_host(waited);
        }
    }
}

impl PartialEq for AttemptRecord {
    /// Records are equal when they say the same thing; the channel back to `ResetRetry` is not
    /// compared.
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
            && self.previous_failure == other.previous_failure
            && self.first_failure == other.first_failure
            && self.hint == other.hint
            && self.deadline == other.deadline
            && self.seed == other.seed
            && self.last == other.last
    }
}

impl Eq for AttemptRecord {}

impl fmt::Debug for AttemptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptRecord")
            .field("number", &self.number)
            .field("previous_failure", &self.previous_failure)
            .field("first_failure", &self.first_failure)
            .field("hint", &self.hint)
            .field("deadline", &self.deadline)
            .field("seed", &self.seed)
            .field("last", &self.last)
            .finish()
    }
}
