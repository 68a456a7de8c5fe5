//! The request and response types the layers work with.

use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, Method, StatusCode, Uri};

/// A request that the retry layers can read and that can carry an
/// [`AttemptRecord`](super::AttemptRecord).
///
/// Implemented for [`http::Request<B>`]; implement it for your own request type to use the
/// layers with it.
///
/// # Examples
///
/// ```
/// use tower_reset::attempt::AttemptRequest;
///
/// fn describe(request: &dyn AttemptRequest) -> String {
///     format!("{} {}", request.method(), request.uri())
/// }
/// let request = http::Request::get("http://example.com/").body(()).unwrap();
/// assert_eq!(describe(&request), "GET http://example.com/");
/// ```
pub trait AttemptRequest {
    /// The request method.
    fn method(&self) -> &Method;
    /// The request URI.
    fn uri(&self) -> &Uri;
    /// The request headers.
    fn headers(&self) -> &HeaderMap;
    /// The request extensions, where the record travels.
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

/// A response that can carry an [`AttemptHistory`](super::AttemptHistory), whose headers may
/// hold a [`ServerHint`](crate::hint::ServerHint), and whose body can be read to its end when
/// it is thrown away. Implemented for [`http::Response<B>`].
///
/// # Examples
///
/// ```
/// use tower_reset::attempt::AttemptResponse;
///
/// let response = http::Response::builder().status(503).body(()).unwrap();
/// assert_eq!(AttemptResponse::status(&response), Some(http::StatusCode::SERVICE_UNAVAILABLE));
/// ```
pub trait AttemptResponse {
    /// The response headers, read for `Retry-After` and `grpc-retry-pushback-ms`.
    fn headers(&self) -> &HeaderMap;

    /// The response extensions, where the [`AttemptHistory`](super::AttemptHistory) is put.
    fn extensions_mut(&mut self) -> &mut Extensions;

    /// The response status, for policies that look at it.
    ///
    /// Defaults to `None`.
    fn status(&self) -> Option<StatusCode> {
        None
    }

    /// Reads on, and throws away, the body of a failed response that
    /// [`ResetRetry`](crate::ResetRetry) no longer needs (a `503` it is retrying), so that the
    /// connection under it can be reused: HTTP/1.1 gives a connection back to its pool only
    /// once its response was read to the end, and dropping a body before that closes it.
    ///
    /// `budget` is the number of body bytes it may still read; the implementation lowers it by
    /// what it reads. Returns `Ready(true)` once the body has ended, `Ready(false)` when it
    /// cannot be read to its end within the budget (or failed, or is of a type it cannot read):
    /// the response is then dropped.
    ///
    /// Defaults to `Ready(false)`. For `http::Response<B>` it reads the bodies of the clients
    /// this crate supports, when their feature is on: hyper's `Incoming` (`hyper`), tonic's
    /// `Body` (`tonic`), `reqwest::Body` (`reqwest`); other body types are dropped.
    fn poll_drain(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> Poll<bool> {
        let _ = (cx, budget);
        Poll::Ready(false)
    }
}

impl<B: 'static> AttemptResponse for http::Response<B> {
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
    fn status(&self) -> Option<StatusCode> {
        Some(self.status())
    }
    fn poll_drain(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> Poll<bool> {
        drain::poll_known_body(self.body_mut(), cx, budget)
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
    fn status(&self) -> Option<StatusCode> {
        Some(self.status())
    }
}

/// Reading the bodies of the supported clients to their end.
///
/// `AttemptResponse` is implemented for `http::Response<B>` whatever `B` is (so that the layers
/// work over any service), which leaves no bound to read `B` with: the body types of the
/// clients this crate supports are recognised by their type instead.
mod drain {
    use std::any::Any;
    use std::task::{Context, Poll};

    pub(super) fn poll_known_body(
        body: &mut dyn Any,
        cx: &mut Context<'_>,
        budget: &mut usize,
    ) -> Poll<bool> {
        #[cfg(feature = "hyper")]
        if let Some(body) = body.downcast_mut::<hyper::body::Incoming>() {
            return poll_body(body, cx, budget);
        }
        #[cfg(feature = "tonic")]
        if let Some(body) = body.downcast_mut::<tonic::body::Body>() {
            return poll_body(body, cx, budget);
        }
        #[cfg(feature = "reqwest")]
        if let Some(body) = body.downcast_mut::<reqwest::Body>() {
            return poll_body(body, cx, budget);
        }
        let _ = (body, cx, budget);
        Poll::Ready(false)
    }

    #[cfg(feature = "hyper")]
    fn poll_body<B>(body: &mut B, cx: &mut Context<'_>, budget: &mut usize) -> Poll<bool>
    where
        B: http_body::Body + Unpin,
    {
        use bytes::Buf;
        use std::pin::Pin;

        loop {
            if body.is_end_stream() {
                return Poll::Ready(true);
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                Poll::Ready(Some(Ok(frame))) => {
                    let read = frame.data_ref().map_or(0, Buf::remaining);
                    match budget.checked_sub(read) {
                        Some(left) => *budget = left,
                        None => return Poll::Ready(false),
                    }
                }
            }
        }
    }
}
