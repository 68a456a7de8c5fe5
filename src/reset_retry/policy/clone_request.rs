use crate::attempt::AttemptRequest;

/// Makes the copy of a request that a retry will send.
///
/// The copy is made before the first attempt, because sending consumes the body. Returning
/// `None` means "this request cannot be replayed": it is sent once, with no copy kept.
pub trait CloneRequest<Req> {
    /// A copy of `request` to send again, or `None` when it cannot be replayed.
    fn clone_request(&self, request: &Req) -> Option<Req>;
}

/// Clones `http::Request<B>` whose body is `Clone`, such as `Full<Bytes>`, `Empty<Bytes>`,
/// `String` or `()`. The default.
///
/// Cloning copies the head (a header map allocation) and clones the body, which for `Bytes`
/// bodies shares the buffer instead of copying it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneBody;

impl<B: Clone> CloneRequest<http::Request<B>> for CloneBody {
    fn clone_request(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        Some(request.clone())
    }
}

/// Never copies a request, so nothing is ever retried; for request types that cannot be cloned.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClone;

impl<Req: AttemptRequest> CloneRequest<Req> for NoClone {
    fn clone_request(&self, _request: &Req) -> Option<Req> {
        None
    }
}
