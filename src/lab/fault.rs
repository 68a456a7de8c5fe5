//! What the lab does with a request, with a connection at accept, and with an idle connection.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

/// What the lab does with one request.
///
/// The action is chosen when the request head arrives (see [`Match`](super::Match)), so a rule
/// can look at the method, the path and the headers. Whether a request counts as *executed*
/// (see [`Counts::executed`](super::Counts::executed)) depends only on its action:
///
/// | action | request body read | executed | what the client sees |
/// |---|---|---|---|
/// | [`Reply`](Fault::Reply) | yes | yes | the response |
/// | [`ResetAfterHead`](Fault::ResetAfterHead) | no | **no** | a reset after sending the request |
/// | [`CloseAfterHead`](Fault::CloseAfterHead) | no | **no** | end of file where the response should be |
/// | [`ResetAfterRequest`](Fault::ResetAfterRequest) | yes | yes | a reset after sending the request |
/// | [`CloseAfterRequest`](Fault::CloseAfterRequest) | yes | yes | end of file where the response should be |
/// | [`ResetInHead`](Fault::ResetInHead) | yes | yes | a reset while reading the response head |
/// | [`ResetInBody`](Fault::ResetInBody) | yes | yes | a response whose body fails with a reset |
/// | [`CloseInBody`](Fault::CloseInBody) | yes | yes | a response whose body ends early |
/// | [`ResetAfterBodyBytes`](Fault::ResetAfterBodyBytes) | yes | yes | a response whose body fails with a reset after `n` bytes |
/// | [`CloseAfterBodyBytes`](Fault::CloseAfterBodyBytes) | yes | yes | a response whose body ends after `n` bytes |
/// | [`RefuseStream`](Fault::RefuseStream) (HTTP/2) | no | **no** | `RST_STREAM(REFUSED_STREAM)` |
/// | [`GoAway`](Fault::GoAway) (HTTP/2) | no | **no** | `GOAWAY(NO_ERROR)` whose last stream is below this one |
///
/// The `After…Head` pair and the HTTP/2 refusals are the failures a client may retry whatever
/// the method only in the refusal case, and must treat as an unknown outcome in the reset case;
/// the others happen after the server did the work, which is exactly what a retry of a `POST`
/// must not repeat.
///
/// A *reset* is a TCP `RST` (the socket is closed with `SO_LINGER` set to zero): the client
/// reads `ECONNRESET`. A *close* is a TCP `FIN` (`shutdown(Write)`, then the rest of the input is
/// read and thrown away until the client closes, so that unread bytes never turn the close into
/// a reset): the client reads end-of-file.
///
/// On HTTP/2 a reset or a close ends the whole connection, with every stream on it; the
/// response head is cut in the middle of its `HEADERS` frame and the body in the middle of
/// its `DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Reads the whole request, then answers with this reply.
    Reply(Reply),
    /// Resets the connection as soon as the request head is read; the body is not read and the
    /// request is not executed.
    ResetAfterHead,
    /// Closes the connection (`FIN`) as soon as the request head is read, without answering; the
    /// body is not read and the request is not executed.
    CloseAfterHead,
    /// Reads the whole request (it counts as executed), then resets the connection without
    /// answering: the server did the work and died before it could say so.
    ResetAfterRequest,
    /// Reads the whole request (it counts as executed), then closes the connection (`FIN`)
    /// without answering.
    CloseAfterRequest,
    /// Reads the whole request (executed), writes the first half of the head of the lab's reply
    /// (see [`LabBuilder::reply`](super::LabBuilder::reply); HTTP/1.1: the first bytes of the
    /// status line and headers; HTTP/2: half of the `HEADERS` frame), then resets the
    /// connection.
    ResetInHead,
    /// Reads the whole request (executed), writes the head and the first half of the body of the
    /// lab's reply (see [`LabBuilder::reply`](super::LabBuilder::reply); at least one byte when
    /// the body is not empty), then resets the connection. With an empty body, the head is cut
    /// instead, as by [`ResetInHead`](Fault::ResetInHead).
    ResetInBody,
    /// Like [`ResetInBody`](Fault::ResetInBody), but closes the connection (`FIN`) instead.
    CloseInBody,
    /// Reads the whole request (executed), writes the head and the first `n` bytes of the body
    /// of the lab's reply (all of it when it is shorter), then resets the connection. The reply
    /// is the answer to this request: for a reply that serves ranges (see [`Reply::ranges`]),
    /// the `n` bytes are those of the range asked for, so that a client resuming a download
    /// meets the reset again `n` bytes further on.
    ///
    /// On a lab with such an action every connection's send buffer is kept small, so that the
    /// bytes written before the reset are the bytes that reached the client, give or take a few
    /// KiB, rather than megabytes that the reset throws away.
    ResetAfterBodyBytes(usize),
    /// Like [`ResetAfterBodyBytes`](Fault::ResetAfterBodyBytes), but closes the connection
    /// (`FIN`) instead.
    CloseAfterBodyBytes(usize),
    /// HTTP/2 only: answers the stream with `RST_STREAM(REFUSED_STREAM)` as soon as its headers
    /// arrive; the request is not executed and the connection stays open.
    RefuseStream,
    /// HTTP/2 only: starts a graceful shutdown of the connection with a `GOAWAY(NO_ERROR)` whose
    /// last-stream-id is just below this request's stream, so that this stream and every later
    /// one are refused (not executed), while the earlier streams still in flight are served.
    /// The connection closes once they are done.
    GoAway,
}

impl Fault {
    /// `Fault::Reply(Reply::ok())`: `200 OK` with body `ok`.
    pub fn ok() -> Self {
        Self::Reply(Reply::ok())
    }

    /// Whether this action needs HTTP/2.
    pub(crate) fn is_http2_only(&self) -> bool {
        matches!(self, Self::RefuseStream | Self::GoAway)
    }

    /// Whether this action cuts a body after a number of bytes.
    pub(crate) fn cuts_after_bytes(&self) -> bool {
        matches!(
            self,
            Self::ResetAfterBodyBytes(_) | Self::CloseAfterBodyBytes(_)
        )
    }

    /// Where this action cuts a reply whose body is `body_len` bytes long, if it is one of the
    /// actions that write part of the reply.
    pub(crate) fn cut(&self, body_len: usize) -> Option<Cut> {
        let half_body = || {
            if body_len == 0 {
                // An empty body cannot be cut: the head is.
                CutAt::Head
            } else {
                CutAt::Body(half(body_len))
            }
        };
        let (at, end) = match self {
            Self::ResetInHead => (CutAt::Head, Disconnect::Reset),
            Self::ResetInBody => (half_body(), Disconnect::Reset),
            Self::CloseInBody => (half_body(), Disconnect::Fin),
            Self::ResetAfterBodyBytes(n) => (CutAt::Body((*n).min(body_len)), Disconnect::Reset),
            Self::CloseAfterBodyBytes(n) => (CutAt::Body((*n).min(body_len)), Disconnect::Fin),
            _ => return None,
        };
        Some(Cut { at, end })
    }
}

/// Half of `len`, at least 1 when `len` is not 0.
pub(crate) fn half(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len / 2).max(1)
    }
}

/// Where an action stops writing a reply, and how it then ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) at: CutAt,
    pub(crate) end: Disconnect,
}

/// Where a reply is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutAt {
    /// In the middle of the head.
    Head,
    /// After the head and this many bytes of the body.
    Body(usize),
}

impl Default for Fault {
    /// [`Fault::ok()`].
    fn default() -> Self {
        Self::ok()
    }
}

impl From<Reply> for Fault {
    fn from(reply: Reply) -> Self {
        Self::Reply(reply)
    }
}

/// A response the lab writes: status, headers, body, and how fast.
///
/// The lab always sets `content-length` (the body length) and, unless
/// [`LabBuilder::echo_request_id`](super::LabBuilder::echo_request_id) turns it off, echoes the
/// request id header. On HTTP/1.1 a reply carrying `connection: close` is followed by a `FIN`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::{header, HeaderValue, StatusCode};
/// use tower_reset::lab::Reply;
///
/// // A 503 that asks the client to come back in one second, after 50 ms of thinking.
/// let busy = Reply::new(StatusCode::SERVICE_UNAVAILABLE)
///     .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
///     .delay(Duration::from_millis(50));
/// // A body written in 4 pieces, 10 ms apart.
/// let slow = Reply::ok().body("0123456789abcdef").sliced(4, Duration::from_millis(10));
/// # let _ = (busy, slow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) trailers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    pub(crate) delay: Duration,
    pub(crate) slices: usize,
    pub(crate) pause: Duration,
    pub(crate) ranges: bool,
}

impl Reply {
    /// A reply with this status and an empty body, written at once in one piece.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            trailers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
            slices: 1,
            pause: Duration::ZERO,
            ranges: false,
        }
    }

    /// `200 OK` with body `ok`: the lab's default reply.
    pub fn ok() -> Self {
        Self::new(StatusCode::OK).body(Bytes::from_static(b"ok"))
    }

    /// Sets the body. Defaults to empty (`ok` for [`Reply::ok`]).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header (`content-length` is always set by the lab; do not add it).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds a trailer, sent after the body on HTTP/2 (gRPC's `grpc-status` lives there);
    /// HTTP/1.1 replies carry no trailers.
    pub fn trailer(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.trailers.push((name, value));
        self
    }

    /// Waits this long after the request was read (and executed) before writing the head.
    /// Defaults to zero.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Writes the body in `pieces` pieces of (almost) equal size with `pause` between them.
    /// `pieces` is at least 1 and at most the body length. Defaults to one piece.
    pub fn sliced(mut self, pieces: usize, pause: Duration) -> Self {
        self.slices = pieces.max(1);
        self.pause = pause;
        self
    }

    /// Serves the body as a resource that answers range requests (RFC 9110 §14), as a file or
    /// object server does, for a `200` reply to a `GET`:
    ///
    /// * one satisfiable range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gets `206 Partial Content`
    ///   with those bytes and `Content-Range: bytes a-b/len`;
    /// * an unsatisfiable one gets `416 Range Not Satisfiable` with `Content-Range: bytes */len`;
    /// * a request with `If-Range` that does not name this reply's version gets the whole body,
    ///   `200`: an entity tag must equal the reply's strong `ETag` header, a date its
    ///   `Last-Modified` header, exactly (set them with [`header`](Reply::header));
    /// * anything else (no `Range`, several ranges, another unit) gets the whole body.
    ///
    /// Every answer carries `Accept-Ranges: bytes`. Without this, the lab ignores `Range`, as a
    /// server without range support does. A resource that changes between requests is a rule
    /// whose reply has another body and another `ETag`.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::{header, HeaderValue};
    /// use tower_reset::lab::{Fault, Lab, Match, Reply};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let v1 = Reply::ok()
    ///     .body(vec![1u8; 1 << 20])
    ///     .header(header::ETAG, HeaderValue::from_static("\"v1\""))
    ///     .ranges();
    /// let v2 = Reply::ok()
    ///     .body(vec![2u8; 1 << 20])
    ///     .header(header::ETAG, HeaderValue::from_static("\"v2\""))
    ///     .ranges();
    /// let lab = Lab::builder()
    ///     .reply(v1)
    ///     // The first response is reset after 64 KiB of its body...
    ///     .on(Match::nth(1), Fault::ResetAfterBodyBytes(64 * 1024))
    ///     // ... and from the third request on, the resource is another version.
    ///     .on(Match::when(|request| request.nth() >= 3), v2)
    ///     .start()
    ///     .await?;
    /// # let _ = lab;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ranges(mut self) -> Self {
        self.ranges = true;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Whether the reply asks for the connection to be closed after it.
    pub(crate) fn closes(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name == http::header::CONNECTION && value.as_bytes().eq_ignore_ascii_case(b"close")
        })
    }

    /// The body split into the configured number of pieces (never an empty piece, unless the
    /// body is empty).
    pub(crate) fn pieces(&self) -> Vec<Bytes> {
        let len = self.body.len();
        let count = self.slices.clamp(1, len.max(1));
        let mut pieces = Vec::with_capacity(count);
        let mut start = 0;
        for index in 0..count {
            let end = len * (index + 1) / count;
            pieces.push(self.body.slice(start..end));
            start = end;
        }
        pieces
    }
}

impl Default for Reply {
    /// [`Reply::ok()`].
    fn default() -> Self {
        Self::ok()
    }
}

/// How the lab drops a connection: with a reset or with a clean close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// TCP `RST` (`SO_LINGER` zero, then close): the client reads `ECONNRESET`.
    Reset,
    /// TCP `FIN` (`shutdown(Write)`): the client reads end-of-file. On HTTP/2 a `GOAWAY(NO_ERROR)`
    /// goes first when the connection is idle.
    Fin,
}

/// What the lab does with a keep-alive connection that stays idle (no request in progress)
/// longer than the idle timeout (see [`LabBuilder::idle_timeout`](super::LabBuilder::idle_timeout)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idle {
    /// Resets it when the timeout expires, as a server that aborts idle connections does. The
    /// client usually notices while the connection sits in its pool.
    Reset,
    /// Closes it (`FIN`) when the timeout expires, as most servers' keep-alive timeouts do.
    Fin,
    /// Keeps it open and silent, and resets it when the next request starts to arrive, without
    /// reading or counting that request: what a client sees when a NAT or a load balancer forgot
    /// the connection. The client cannot notice in advance: this is the stale keep-alive
    /// connection that a pooled client reuses and loses a request on.
    Forget,
}
