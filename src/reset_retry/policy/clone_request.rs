use crate::attempt::AttemptRequest;
#[cfg(feature = "replay")]
use crate::replay::ReplayBody;

/// Makes the copy of a request that a retry will send.
///
/// The copy is made before the first attempt, because sending consumes the body. Returning
/// `None` means "this request cannot be replayed": it is sent once, with no copy kept.
///
/// # Examples
///
/// A request type of your own, copied by hand:
///
/// ```
/// use tower_reset::reset_retry::policy::CloneRequest;
///
/// #[derive(Clone)]
/// struct CopyUnlessLarge;
///
/// impl CloneRequest<http::Request<Vec<u8>>> for CopyUnlessLarge {
///     fn clone_request(&self, request: &http::Request<Vec<u8>>) -> Option<http::Request<Vec<u8>>> {
///         (request.body().len() <= 64 * 1024).then(|| request.clone())
///     }
/// }
/// let small = http::Request::new(vec![0; 10]);
/// assert!(CopyUnlessLarge.clone_request(&small).is_some());
/// ```
#[diagnostic::on_unimplemented(
    message = "requests of type `{Req}` cannot be copied for a retry by `{Self}`",
    label = "the retry layer cannot copy this request",
    note = "`CloneBody` copies requests whose body is `Clone` (`Full<Bytes>`, `String`, ...) or a `tower_reset::replay::ReplayBody`",
    note = "for a streaming body (hyper `Incoming`, `tonic::body::Body`, ...), put `ReplayBodyLayer` outside (above) `ResetRetryLayer`: `ServiceBuilder::new().layer(ReplayBodyLayer::new()).layer(ResetRetryLayer::new())`",
    note = "or give the layer a `CloneRequest` of your own with `ResetRetryLayer::builder().clone_requests(..)`"
)]
pub trait CloneRequest<Req> {
    /// A copy of `request` to send again, or `None` when it cannot be replayed.
    fn clone_request(&self, request: &Req) -> Option<Req>;

    /// Whether the kept `copy` can still be sent again, asked before each retry.
    ///
    /// `responded` is true when the failed attempt ended with a response (a `503`, say) rather
    /// than an error: a body that was still being sent then may have been acted on in part.
    /// Answering `false` ends the request with the failed attempt's outcome.
    ///
    /// Defaults to `true`: a copy made by `clone_request` is complete.
    fn can_replay(&self, copy: &Req, responded: bool) -> bool {
        let _ = (copy, responded);
        true
    }
}

/// Clones `http::Request<B>` whose body is `Clone`, such as `Full<Bytes>`, `Empty<Bytes>`,
/// `String` or `()`. The default.
///
/// Cloning copies the head (a header map allocation) and clones the body, which for `Bytes`
/// bodies shares the buffer instead of copying it.
///
/// # Examples
///
/// ```
/// use tower_reset::reset_retry::policy::{CloneBody, CloneRequest};
///
/// let request = http::Request::put("/items/1").body("{}".to_owned()).unwrap();
/// let copy = CloneBody.clone_request(&request).unwrap();
/// assert_eq!(copy.body(), "{}");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneBody;

#[diagnostic::do_not_recommend]
impl<B: Clone> CloneRequest<http::Request<B>> for CloneBody {
    fn clone_request(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        Some(request.clone())
    }
}

/// Copies requests whose body is a [`ReplayBody`] (see [`crate::replay`]) while the body can be
/// replayed: not past its cap, and, after a response, read to its end.
///
/// The copy's header values and URI are copied into one buffer of their own, the size of what
/// they hold: those of a request received by a hyper server share the buffer hyper read the
/// head into (8 KiB or more), which a shared clone would hold for the whole request.
#[cfg(feature = "replay")]
#[diagnostic::do_not_recommend]
impl<B: http_body::Body> CloneRequest<http::Request<ReplayBody<B>>> for CloneBody {
    fn clone_request(
        &self,
        request: &http::Request<ReplayBody<B>>,
    ) -> Option<http::Request<ReplayBody<B>>> {
        let body = request.body().try_clone()?;
        // The head in memory of its own: a proxied request's head shares hyper's read buffer.
        Some(crate::replay::head::owned_copy(request, body))
    }

    fn can_replay(&self, copy: &http::Request<ReplayBody<B>>, responded: bool) -> bool {
        let body = copy.body();
        body.is_replayable() && (!responded || body.is_complete())
    }
}

/// Never copies a request, so nothing is ever retried; for request types that cannot be cloned.
///
/// # Examples
///
/// ```
/// use tower_reset::reset_retry::policy::NoClone;
/// use tower_reset::ResetRetryLayer;
///
/// // Requests are sent once; the layer still records each request's history.
/// let layer = ResetRetryLayer::builder().clone_requests(NoClone).build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClone;

impl<Req: AttemptRequest> CloneRequest<Req> for NoClone {
    fn clone_request(&self, _request: &Req) -> Option<Req> {
        None
    }
}
