use http::{HeaderName, Method};

use super::{Action, Attempt, RetryPolicy};
use crate::attempt::AttemptRequest;

/// The header by which a client promises that the server deduplicates the request
/// (draft-ietf-httpapi-idempotency-key-header).
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Retries requests that are safe to repeat, whatever the failure: the RFC 9110 §9.2.2
/// idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), and requests carrying an
/// `Idempotency-Key` header.
///
/// # Examples
///
/// ```
/// use tower_reset::reset_retry::policy::Idempotent;
///
/// let get = http::Request::get("/").body(()).unwrap();
/// let post = http::Request::post("/").body(()).unwrap();
/// let keyed = http::Request::post("/").header("idempotency-key", "k-1").body(()).unwrap();
/// assert!(Idempotent::is_idempotent(&get));
/// assert!(!Idempotent::is_idempotent(&post));
/// assert!(Idempotent::is_idempotent(&keyed));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Idempotent;

impl Idempotent {
    /// Whether `request` may be repeated: an idempotent method or an `Idempotency-Key` header.
    pub fn is_idempotent<R: AttemptRequest + ?Sized>(request: &R) -> bool {
        is_idempotent_method(request.method()) || request.headers().contains_key(IDEMPOTENCY_KEY)
    }
}

/// RFC 9110 §9.2.2.
fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl RetryPolicy for Idempotent {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        Action::retry_if(Self::is_idempotent(attempt.request()))
    }

    fn may_retry(&self, request: &dyn AttemptRequest) -> bool {
        Self::is_idempotent(request)
    }
}
