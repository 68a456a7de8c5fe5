//! [`IdempotentMethods`]: the gRPC counterpart of the standard policy.

use std::fmt;
use std::sync::Arc;

use crate::attempt::AttemptRequest;
use crate::reset_retry::policy::{Action, Attempt, RetryPolicy, StandardRetry};

/// The retry policy for gRPC: what [`StandardRetry`] retries, plus every recognised failure of the
/// methods declared idempotent.
///
/// Every gRPC call is an HTTP `POST`, so the standard policy retries a call only when the server
/// certainly did not process it (never sent, `REFUSED_STREAM`, graceful `GOAWAY`) or when it
/// carries an `idempotency-key` header. A proto can declare more: a method with
/// `option idempotency_level = IDEMPOTENT;` (or `NO_SIDE_EFFECTS`) may be sent again even when
/// the connection was reset after the server read it, or when the server answered
/// `UNAVAILABLE` (with [`unavailable_responses`]). List those methods here, by the path of their
/// requests: `/<package>.<Service>/<Method>`, as in the proto (not the snake-case Rust name).
/// A path given without its leading `/` gets one.
///
/// [`unavailable_responses`]: crate::classify::StandardClassifier::unavailable_responses
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::reset_retry::policy::{Action, Attempt, RetryPolicy};
/// use tower_reset::tonic::IdempotentMethods;
/// use tower_reset::ResetRetryLayer;
///
/// let mut policy = IdempotentMethods::new(["/echo.Echo/Get", "echo.Echo/List"]);
///
/// let get = http::Request::post("http://[::1]:50051/echo.Echo/Get").body(()).unwrap();
/// let echo = http::Request::post("http://[::1]:50051/echo.Echo/Echo").body(()).unwrap();
/// let reset = FailureClass::UnknownOutcome;
/// assert_eq!(policy.retry(&Attempt::new(&get, reset, 1)), Action::Retry);
/// assert_eq!(policy.retry(&Attempt::new(&echo, reset, 1)), Action::Stop);
/// // What the server certainly did not process is retried for every method.
/// assert_eq!(policy.retry(&Attempt::new(&echo, FailureClass::Refused, 1)), Action::Retry);
///
/// let layer = ResetRetryLayer::builder().policy(policy).build().unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Default)]
pub struct IdempotentMethods {
    /// Sorted, without duplicates.
    paths: Arc<[Box<str>]>,
}

impl IdempotentMethods {
    /// A policy that also retries unknown-outcome failures of the listed methods, given by the
    /// paths of their requests (`"/echo.Echo/Get"`).
    pub fn new<I>(methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut paths: Vec<Box<str>> = methods
            .into_iter()
            .map(|method| {
                let method = method.as_ref();
                if method.starts_with('/') {
                    method.into()
                } else {
                    format!("/{method}").into()
                }
            })
            .collect();
        paths.sort_unstable();
        paths.dedup();
        Self {
            paths: paths.into(),
        }
    }

    /// Whether the method at `path` (`"/echo.Echo/Get"`) was declared idempotent.
    pub fn contains(&self, path: &str) -> bool {
        self.paths
            .binary_search_by(|listed| (**listed).cmp(path))
            .is_ok()
    }

    /// Whether `request` may be sent again whatever happened to it: its method is listed, or it
    /// is idempotent by the [`StandardRetry`] rules (an `idempotency-key` header, say).
    pub fn is_idempotent<R: AttemptRequest + ?Sized>(&self, request: &R) -> bool {
        self.contains(request.uri().path())
            || crate::reset_retry::policy::Idempotent::is_idempotent(request)
    }
}

impl RetryPolicy for IdempotentMethods {
    fn retry(&mut self, attempt: &Attempt<'_>) -> Action {
        match StandardRetry::new().retry(attempt) {
            Action::Retry => Action::Retry,
            Action::Stop => Action::retry_if(self.contains(attempt.uri().path())),
        }
    }

    fn may_retry(&self, _request: &dyn AttemptRequest) -> bool {
        // Any call may fail before it is sent.
        true
    }
}

impl fmt::Debug for IdempotentMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotentMethods")
            .field(&self.paths)
            .finish()
    }
}
