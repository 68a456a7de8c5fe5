//! What every client module shares: the request a cell sends, what came back, the layers'
//! settings, and the bounds that turn a hang into a failure.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use tower_reset::attempt::{AttemptHistory, StopReason};
use tower_reset::backoff::policy::{Exponential, Jitter};
use tower_reset::classify::FailureClass;
use tower_reset::lab::Reply;
use tower_reset::resume::ResumeHistory;
use tower_reset::{BackoffLayer, ResetRetryLayer, ResumeLayer};

/// A boxed, sendable future: what [`Sender::send`] returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// No single request may take longer than this (a hang fails the cell instead).
pub(crate) const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// The header that names a request across its attempts, counted by the lab.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The header that makes a `POST` safe to repeat.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The body of every successful reply (long enough to be cut in half).
pub(crate) const REPLY_BODY: &[u8] =
    b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The body every request but a `GET` carries.
pub(crate) const REQUEST_BODY: &[u8] = b"{\"amount\":42}";

/// The four kinds of request of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Method {
    Get,
    Put,
    Post,
    /// A `POST` with an `Idempotency-Key` header.
    PostWithKey,
}

impl Method {
    pub(crate) const ALL: [Method; 4] =
        [Method::Get, Method::Put, Method::Post, Method::PostWithKey];

    /// The HTTP method.
    pub(crate) fn http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Put => http::Method::PUT,
            Method::Post | Method::PostWithKey => http::Method::POST,
        }
    }

    /// Whether the standard policy may send it again after an unknown outcome.
    pub(crate) fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }

    /// Its name in the docs table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::PostWithKey => "POST + key",
        }
    }

    /// The prefix of its request ids: `post-…` ids are the ones that must never run twice.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::PostWithKey => "postkey",
        }
    }

    /// Whether a request id belongs to a `POST` without a key.
    pub(crate) fn is_bare_post_id(id: &str) -> bool {
        id.starts_with("post-")
    }
}

/// One request: its kind and its id (sent in `x-request-id`; a keyed `POST` also sends it as
/// its `Idempotency-Key`).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) id: String,
}

impl Call {
    pub(crate) fn new(method: Method, id: impl Into<String>) -> Self {
        Self {
            method,
            id: id.into(),
        }
    }

    /// The request body: empty for a `GET`.
    pub(crate) fn body(&self) -> Bytes {
        match self.method {
            Method::Get => Bytes::new(),
            _ => Bytes::from_static(REQUEST_BODY),
        }
    }

    pub(crate) fn id_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.id).expect("an ASCII request id")
    }

    /// The `Idempotency-Key`, for a keyed `POST`.
    pub(crate) fn idempotency_key(&self) -> Option<HeaderValue> {
        (self.method == Method::PostWithKey).then(|| self.id_value())
    }

    /// An `http::Request` with the headers of this call, to `uri`.
    pub(crate) fn http_request<B>(&self, uri: &str, body: B) -> http::Request<B> {
        let mut request = http::Request::builder()
            .method(self.method.http())
            .uri(uri)
            .header(REQUEST_ID, self.id_value());
        if let Some(key) = self.idempotency_key() {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        request.body(body).expect("a valid request")
    }
}

/// How a request ended, as its caller saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// A `200` whose body was read to its end (the body, or the gRPC reply's payload).
    Ok(Bytes),
    /// No response: the error (or, behind the axum proxy, its `502`).
    Failed(String),
    /// A response, then its body failed.
    BodyFailed(String),
}

/// What one request observed on the client side.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub(crate) end: End,
    /// Attempts the stack made, from its `AttemptHistory` (success or failure).
    pub(crate) attempts: u32,
    /// The class of each failed attempt, from the same history.
    pub(crate) failures: Vec<FailureClass>,
    /// Resume requests the stack's `ResumeLayer` sent for the body (0 without one).
    pub(crate) resumes: u32,
    /// How long it waited for a host that refused connections (`backoff::RideOut`).
    pub(crate) waited: Duration,
    /// Why it stopped, if the stack recorded a history.
    pub(crate) stop: Option<StopReason>,
}

impl Observed {
    /// What `history` (from a `HistoryObserver`, `None` when nothing was recorded) says, with
    /// `end`.
    pub(crate) fn new(end: End, history: Option<AttemptHistory>) -> Self {
        let waited = history
            .as_ref()
            .map_or(Duration::ZERO, AttemptHistory::total_waited);
        let stop = history.as_ref().map(AttemptHistory::stop_reason);
        let (attempts, failures) = history.map_or((0, Vec::new()), |history| {
            (history.attempts(), history.failures().to_vec())
        });
        Self {
            end,
            attempts,
            failures,
            resumes: 0,
            waited,
            stop,
        }
    }

    /// With the resumes a `ResumeObserver` saw.
    pub(crate) fn resumed(mut self, history: Option<ResumeHistory>) -> Self {
        self.resumes = history.map_or(0, |history| history.resumes());
        self
    }
}

/// A client with its full stack, aimed at one lab.
pub(crate) trait Sender: Send + Sync {
    /// Sends `call` and reads the whole response.
    fn send(&self, call: Call) -> BoxFuture<'_, Observed>;
}

/// The retry layer of every stack in this suite: the standard one.
pub(crate) fn retry_layer() -> ResetRetryLayer {
    ResetRetryLayer::new()
}

/// The resume layer of the stacks that have one (hyper-util, reqwest, the axum app's upstream):
/// the standard one.
pub(crate) fn resume_layer() -> ResumeLayer {
    ResumeLayer::new()
}

/// A boxed response body, so that a stack with or without a `ResumeLayer` has one type.
pub(crate) type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, tower::BoxError>;

/// `response` with its body boxed.
pub(crate) fn boxed<B>(response: http::Response<B>) -> http::Response<BoxBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    use http_body_util::BodyExt;
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// The first backoff delay of every stack in this suite, without jitter, so that the timing of
/// the retries is exact: the first retry after a connection failure goes at once, the second
/// after this delay. (After a refused connection the retry waits for the server instead, behind
/// the ride-out's probes: see the refused-window fault.)
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// The backoff layer of every stack in this suite: the standard one with [`BACKOFF_BASE`] and
/// no jitter.
pub(crate) fn backoff_layer() -> BackoffLayer {
    let schedule = Exponential::builder()
        .base(BACKOFF_BASE)
        .jitter(Jitter::None)
        .build()
        .expect("a valid schedule");
    BackoffLayer::new().schedule(schedule)
}

/// The lab's reply for the plain HTTP clients.
pub(crate) fn http_reply() -> Reply {
    Reply::ok().body(Bytes::from_static(REPLY_BODY))
}

/// A human-readable error chain, one line.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    let mut depth = 0;
    while let Some(link) = next {
        text.push_str(": ");
        text.push_str(&link.to_string());
        next = link.source();
        depth += 1;
        if depth > 16 {
            break;
        }
    }
    text
}
