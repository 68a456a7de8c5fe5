//! What happened to a response body: the resumes made, the bytes skipped, and why the layer
//! stopped, if it did.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::attempt::AttemptRequest;

/// Why a body was not resumed: it could not be from the start, or a failure was passed on.
///
/// The first group is decided when the response head arrives (the body is then passed through
/// untouched); the second when the body fails; the third when the server answers a resume
/// request. In every case the caller gets the body's own error, untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoResume {
    /// The request is not a `GET`.
    NotGet,
    /// The request could not be copied for a resume (its body is not `Clone`, or a
    /// [`ReplayBody`](crate::replay::ReplayBody) past its cap).
    NotCopied,
    /// The response is neither `200 OK` nor `206 Partial Content`.
    Status,
    /// The response carries no validator usable with `If-Range`: neither a strong `ETag` nor,
    /// in the absence of any `ETag`, a `Last-Modified` at least one second before its `Date`
    /// (RFC 9110 §13.1.5).
    NoValidator,
    /// A `206` without a single `Content-Range` (a `multipart/byteranges` answer), or a
    /// `Content-Range` that cannot be parsed; or more than one `Content-Encoding` field.
    Unsupported,

    /// The failure is not a connection failure the classifier recognises (a decoding error, a
    /// protocol error, a timeout): a range request would not fix it.
    NotConnectionFailure,
    /// The body was resumed `max_resumes` times already.
    MaxResumes,
    /// The deadline has passed, or the backoff before the resume would end after it.
    Deadline,
    /// The retry budget is spent.
    Budget,
    /// The backoff schedule has no more delays.
    ScheduleEnded,
    /// Every byte of the body had been delivered: nothing is left to ask for.
    NothingLeft,

    /// The resume request failed (its error is not returned: the body's is).
    ResumeFailed,
    /// The answer carries another validator, or none: the resource changed.
    Changed,
    /// The answer's status is neither `206` nor `200` (`416 Range Not Satisfiable`, `304`,
    /// `412`, a `5xx`...).
    AnswerStatus,
    /// A `206` whose `Content-Range` does not start where the body stopped, does not end where
    /// the body ends, or gives another complete length.
    RangeMismatch,
    /// The answer carries another `Content-Encoding`: its byte offsets are not the body's.
    EncodingChanged,
    /// A `200` to the resume of a body that was itself a range (`206`): the layer would have to
    /// cut the full representation, which it does not do.
    RangeIgnored,
    /// A `200` (the server ignores ranges) would need more bytes skipped than `max_skip`.
    SkipTooLarge,
}

impl NoResume {
    /// A short, stable, lower-case name for logs and metrics, such as `"no_validator"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_reset::resume::NoResume;
    ///
    /// assert_eq!(NoResume::Changed.as_str(), "changed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotGet => "not_get",
            Self::NotCopied => "not_copied",
            Self::Status => "status",
            Self::NoValidator => "no_validator",
            Self::Unsupported => "unsupported",
            Self::NotConnectionFailure => "not_connection_failure",
            Self::MaxResumes => "max_resumes",
            Self::Deadline => "deadline",
            Self::Budget => "budget",
            Self::ScheduleEnded => "schedule_ended",
            Self::NothingLeft => "nothing_left",
            Self::ResumeFailed => "resume_failed",
            Self::Changed => "changed",
            Self::AnswerStatus => "answer_status",
            Self::RangeMismatch => "range_mismatch",
            Self::EncodingChanged => "encoding_changed",
            Self::RangeIgnored => "range_ignored",
            Self::SkipTooLarge => "skip_too_large",
        }
    }
}

impl fmt::Display for NoResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the resume layer did with one response body.
///
/// Read it from [`ResumeBody::history`](super::ResumeBody::history) while or after reading the
/// body, or from a [`ResumeObserver`] attached to the request. It holds no allocation.
///
/// # Examples
///
/// ```
/// use tower_reset::resume::ResumeHistory;
///
/// let history = ResumeHistory::default();
/// assert_eq!(history.resumes(), 0);
/// assert_eq!(history.bytes_skipped(), 0);
/// assert_eq!(history.gave_up(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumeHistory {
    pub(super) resumes: u32,
    pub(super) bytes_skipped: u64,
    pub(super) gave_up: Option<NoResume>,
}

impl ResumeHistory {
    /// A history that says why the body cannot be resumed.
    pub(super) fn unresumable(why: NoResume) -> Self {
        Self {
            gave_up: Some(why),
            ..Self::default()
        }
    }

    /// How many resume requests were sent for this body.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// How many bytes of `200` answers were read and thrown away, because a server that ignores
    /// ranges sent the representation from its start again.
    pub fn bytes_skipped(&self) -> u64 {
        self.bytes_skipped
    }

    /// Why the body was not resumed: from the response head when it could never be, or from the
    /// failure the layer passed on to the caller. `None` for a resumable body that has not
    /// failed, or whose every failure was resumed.
    pub fn gave_up(&self) -> Option<NoResume> {
        self.gave_up
    }
}

/// A handle that receives the [`ResumeHistory`] of one response body.
///
/// Attach it to the request before sending it through the [`ResumeLayer`](super::ResumeLayer);
/// the body records into it when the layer decides whether it can be resumed, after each resume,
/// and when the body ends or fails. This is how to learn what happened to a body that was
/// handed on (collected, streamed to another client) rather than kept.
///
/// # Examples
///
/// ```
/// use tower_reset::resume::ResumeObserver;
///
/// let mut request = http::Request::get("http://example.com/big").body(()).unwrap();
/// let observer = ResumeObserver::attach(&mut request);
/// // ... send `request` through a `Resume` service and read the body ...
/// assert_eq!(observer.get(), None); // nothing recorded before the response
/// ```
#[derive(Clone, Default)]
pub struct ResumeObserver {
    slot: Arc<Mutex<Option<ResumeHistory>>>,
}

impl ResumeObserver {
    /// Creates an observer and puts a handle to it in the request's extensions.
    pub fn attach<R: AttemptRequest + ?Sized>(request: &mut R) -> Self {
        let observer = Self::default();
        request.extensions_mut().insert(observer.clone());
        observer
    }

    /// The latest history recorded; `None` until the layer has decided about the body: when the
    /// request is sent for a request it will not resume (not a `GET`), when the response head
    /// arrives otherwise.
    pub fn get(&self) -> Option<ResumeHistory> {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn record(&self, history: ResumeHistory) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(history);
    }
}

impl fmt::Debug for ResumeObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeObserver")
            .field("history", &self.get())
            .finish()
    }
}
