//! What happened to one request across its attempts, and why it stopped.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::AttemptRequest;
use crate::classify::FailureClass;

/// Why a request stopped trying: the last word of its [`AttemptHistory`].
///
/// Every request that goes through [`ResetRetry`](crate::ResetRetry) ends with exactly one
/// reason: it succeeded, or its last failure was not one to retry, or a rule said "no more".
/// [`as_str`](Self::as_str) gives a stable name for logs and metrics; `Display` a sentence.
///
/// # Examples
///
/// Telling the caller's logs why a request failed:
///
/// ```
/// use tower_reset::attempt::{AttemptHistory, StopReason};
///
/// fn explain(history: &AttemptHistory) -> String {
///     match history.stop_reason() {
///         StopReason::Succeeded => "ok".to_owned(),
///         StopReason::NotSafeToRepeat => {
///             "the connection failed after the request was sent, and it is not safe to repeat: \
///              check whether the server processed it"
///                 .to_owned()
///         }
///         other => format!("gave up after {} attempts: {other}", history.attempts()),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last attempt got an answer that is not a failure (any response the classifier does
    /// not report, `4xx` and `5xx` included unless it was told to).
    Succeeded,
    /// The last attempt failed in a way this crate does not retry: not a connection failure
    /// (a timeout, a TLS or application error, a status the classifier does not report). The
    /// error or response is the caller's, untouched.
    NotConnectionFailure,
    /// The policy said the request is not safe to send again: its outcome is unknown (the
    /// connection failed after it was sent) and it is not idempotent, such as a `POST` without
    /// an `Idempotency-Key`.
    NotSafeToRepeat,
    /// The request made the most attempts allowed (`max_attempts`, the first included).
    AttemptsExhausted,
    /// The retry budget shared by the layer's services was spent: retries already added the
    /// most load allowed.
    BudgetSpent,
    /// No time was left before the deadline for another attempt, or for the backoff before it.
    Deadline,
    /// The server said not to retry (a negative `grpc-retry-pushback-ms`).
    ServerSaidNoRetry,
    /// The server asked for a longer wait than the layer allows (`Retry-After` above
    /// [`max_hint`](crate::BackoffLayer::max_hint)): it will not be ready sooner.
    HintTooLong,
    /// The request could not be sent again: its body was not kept (past the
    /// [`ReplayBody`](crate::replay::ReplayBody) cap, failed, or not yet read to its end when
    /// the server answered), or the request could not be copied at all.
    BodyNotReplayable,
    /// The backoff schedule had no more delays.
    ScheduleExhausted,
    /// The inner service failed while getting ready for the next attempt; its error is
    /// returned.
    ServiceNotReady,
    /// An inner layer abandoned the next attempt for a reason of its own (see
    /// [`AttemptAbandoned::reason`](super::AttemptAbandoned::reason)).
    Abandoned,
    /// The host refused connections for the whole ride-out window (or had too many requests
    /// waiting already), so the request did not wait any longer: the caller gets its last
    /// attempt's real connect error. See [`RideOut`](crate::backoff::RideOut).
    HostDown,
}

impl StopReason {
    /// A short, stable, lower-case name for logs and metrics, such as `"budget_spent"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::NotConnectionFailure => "not_a_connection_failure",
            Self::NotSafeToRepeat => "not_safe_to_repeat",
            Self::AttemptsExhausted => "attempts_exhausted",
            Self::BudgetSpent => "budget_spent",
            Self::Deadline => "deadline",
            Self::ServerSaidNoRetry => "server_said_no_retry",
            Self::HintTooLong => "hint_too_long",
            Self::BodyNotReplayable => "body_not_replayable",
            Self::ScheduleExhausted => "schedule_exhausted",
            Self::ServiceNotReady => "service_not_ready",
            Self::Abandoned => "abandoned",
            Self::HostDown => "host_down",
        }
    }

    /// Whether the request gave up on a failure it could have retried, had a limit or rule
    /// not said no: every reason but [`Succeeded`](Self::Succeeded) and
    /// [`NotConnectionFailure`](Self::NotConnectionFailure).
    pub const fn is_give_up(self) -> bool {
        !matches!(self, Self::Succeeded | Self::NotConnectionFailure)
    }

    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::Succeeded => "the request succeeded",
            Self::NotConnectionFailure => "the failure is not a connection failure",
            Self::NotSafeToRepeat => "the request is not safe to repeat",
            Self::AttemptsExhausted => "no attempts left",
            Self::BudgetSpent => "the retry budget is spent",
            Self::Deadline => "no time left before the deadline",
            Self::ServerSaidNoRetry => "the server asked not to retry",
            Self::HintTooLong => "the server asked for a longer wait than max_hint",
            Self::BodyNotReplayable => "the request body cannot be sent again",
            Self::ScheduleExhausted => "the backoff schedule has no more delays",
            Self::ServiceNotReady => "the service failed while getting ready",
            Self::Abandoned => "an inner layer abandoned the attempt",
            Self::HostDown => "the host refused connections for the whole ride-out window",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// One attempt of a request, as its [`AttemptHistory`] remembers it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::attempt::AttemptHistory;
///
/// /// How long a request was held back between its attempts, and how many failed.
/// fn summary(history: &AttemptHistory) -> (Duration, usize) {
///     let waited = history.summaries().iter().filter_map(|a| a.delay()).sum();
///     let failed = history.summaries().iter().filter(|a| a.failure().is_some()).count();
///     (waited, failed)
/// }
/// # let _ = summary;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSummary {
    number: u32,
    failure: Option<FailureClass>,
    delay: Option<Duration>,
    waited: Option<Duration>,
    counted: bool,
}

impl AttemptSummary {
    pub(crate) fn new(number: u32, failure: Option<FailureClass>, delay: Option<Duration>) -> Self {
        Self {
            number,
            failure,
            delay,
            waited: None,
            counted: true,
        }
    }

    /// With what the layers below reported of the attempt besides its delay.
    pub(crate) fn with_wait(mut self, waited: Option<Duration>, counted: bool) -> Self {
        self.waited = waited;
        self.counted = counted;
        self
    }

    /// The attempt's number, starting at 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// How the attempt failed, when it met a connection failure (or a response the classifier
    /// reports); `None` for the attempt that succeeded, or that failed in a way this crate does
    /// not retry.
    pub fn failure(&self) -> Option<FailureClass> {
        self.failure
    }

    /// How long the attempt was held back before it went out, as reported by the layer that
    /// held it ([`Backoff`](crate::Backoff) reports every delay, zero included). `None` for the
    /// first attempt, and for a retry that no such layer saw (a stack without `BackoffLayer`
    /// below `ResetRetryLayer`).
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// How long the attempt was held because its host refused connections (see
    /// [`RideOut`](crate::backoff::RideOut)), as reported by the layer that held it; `None`
    /// when it was not held. A wait for the host takes the place of the backoff delay.
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }

    /// Whether the attempt counts against `max_attempts` (and spent the retry budget): every
    /// attempt does, but a retry that a host refused while [`Backoff`](crate::Backoff) rode
    /// it out (see [`RideOut`](crate::backoff::RideOut)). Such a refusal cost the server
    /// nothing, and the request waits for the host instead, for at most the ride-out window.
    pub fn counted(&self) -> bool {
        self.counted
    }
}

/// What happened to one request across all its attempts, and why it stopped.
///
/// Put in the extensions of a response that took more than one attempt (a response without it
/// took exactly one), and handed to a [`HistoryObserver`] in every case, failures included.
///
/// # Examples
///
/// ```
/// use tower_reset::attempt::AttemptHistory;
///
/// fn log_retries<B>(response: &http::Response<B>) {
///     if let Some(history) = response.extensions().get::<AttemptHistory>() {
///         for attempt in history.summaries() {
///             println!(
///                 "attempt {}: {:?} after {:?}",
///                 attempt.number(),
///                 attempt.failure(),
///                 attempt.delay()
///             );
///         }
///         println!("stopped: {}", history.stop_reason());
///     }
/// }
/// # log_retries(&http::Response::new(()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptHistory {
    summaries: Vec<AttemptSummary>,
    stop: StopReason,
    unsent_wait: Option<Duration>,
}

impl AttemptHistory {
    pub(crate) fn new(summaries: Vec<AttemptSummary>, stop: StopReason) -> Self {
        Self {
            summaries,
            stop,
            unsent_wait: None,
        }
    }

    /// With the wait of an attempt that was then not sent.
    pub(crate) fn with_unsent_wait(mut self, wait: Option<Duration>) -> Self {
        self.unsent_wait = wait;
        self
    }

    /// The history of a request sent once, whose attempt met `failure` (`None`: no failure of
    /// this crate's kind) and then stopped for `stop`.
    pub(crate) fn single(failure: Option<FailureClass>, stop: StopReason) -> Self {
        Self::new(vec![AttemptSummary::new(1, failure, None)], stop)
    }

    /// How many attempts were sent, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.summaries.len()).unwrap_or(u32::MAX)
    }

    /// The class of each failed attempt that was recognised as a connection failure (or a
    /// response the classifier reports), in order. The last attempt's failure is included when
    /// the request ended with one, however it was sent.
    pub fn failures(&self) -> Vec<FailureClass> {
        self.summaries
            .iter()
            .filter_map(AttemptSummary::failure)
            .collect()
    }

    /// Every attempt sent, in order: its failure and the delay slept before it.
    pub fn summaries(&self) -> &[AttemptSummary] {
        &self.summaries
    }

    /// The total time the request was held back between its attempts, as reported by the
    /// layers that held it.
    pub fn total_delay(&self) -> Duration {
        self.summaries
            .iter()
            .filter_map(AttemptSummary::delay)
            .sum()
    }

    /// The wait of an attempt that was not sent in the end (the host was still down at the end
    /// of the window, so the request stopped with the error before it), included in
    /// [`total_waited`](Self::total_waited); `None` when there was none.
    pub fn unsent_wait(&self) -> Option<Duration> {
        self.unsent_wait
    }

    /// The total time the request was held because its host refused connections (see
    /// [`RideOut`](crate::backoff::RideOut)), the wait of an attempt that was then not sent
    /// included.
    pub fn total_waited(&self) -> Duration {
        self.summaries
            .iter()
            .filter_map(AttemptSummary::waited)
            .chain(self.unsent_wait)
            .sum()
    }

    /// Why the request stopped.
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }
}

impl fmt::Display for AttemptHistory {
    /// One line for a log: `3 attempts (unknown_outcome after 0ns, unknown_outcome after 41ms,
    /// ok); stopped: the request succeeded`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempts = self.summaries.len();
        write!(
            f,
            "{attempts} attempt{}",
            if attempts == 1 { "" } else { "s" }
        )?;
        f.write_str(" (")?;
        for (i, summary) in self.summaries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match summary.failure {
                Some(failure) => write!(f, "{failure}")?,
                None => f.write_str("ok")?,
            }
            if let Some(delay) = summary.delay {
                write!(f, " after {delay:?}")?;
            }
            if let Some(waited) = summary.waited {
                write!(f, " waited {waited:?}")?;
            }
            if !summary.counted {
                f.write_str(" (not counted)")?;
            }
        }
        f.write_str(")")?;
        if let Some(waited) = self.unsent_wait {
            write!(f, ", then waited {waited:?}")?;
        }
        write!(f, "; stopped: {}", self.stop)
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
