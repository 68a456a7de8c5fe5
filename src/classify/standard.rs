//! The classifier every layer uses unless told otherwise.

use std::error::Error;

use super::{chain, ClassifyError, ClassifyResponse, FailureClass, RetryStatuses};

/// The standard classifier: walks an error's whole `source()` chain and reports how far the
/// request got (see the [module documentation](crate::classify) for the table).
///
/// Responses are successes unless it is given [`statuses`](Self::statuses) to report (or a
/// rule of your own with [`responses`](Self::responses)).
///
/// # Examples
///
/// ```
/// use std::io;
/// use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};
///
/// let classifier = StandardClassifier::new();
/// let reset: tower::BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
/// assert_eq!(classifier.classify_error(&reset), Some(FailureClass::UnknownOutcome));
///
/// let refused: tower::BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
/// assert_eq!(classifier.classify_error(&refused), Some(FailureClass::NeverSent));
///
/// let timeout: tower::BoxError = Box::new(io::Error::from(io::ErrorKind::TimedOut));
/// assert_eq!(classifier.classify_error(&timeout), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandardClassifier {
    statuses: RetryStatuses,
}

impl StandardClassifier {
    /// The standard classifier: errors only, every response is a success.
    pub const fn new() -> Self {
        Self {
            statuses: RetryStatuses::none(),
        }
    }

    /// Reports responses with these statuses as failures, each of its kind (see
    /// [`RetryStatuses`] for which requests each kind lets the standard policy retry).
    ///
    /// ```
    /// use tower_reset::classify::{RetryStatuses, StandardClassifier};
    ///
    /// // 429, 502, 503, 504 and gRPC UNAVAILABLE, retried for idempotent requests.
    /// let classifier = StandardClassifier::new().statuses(RetryStatuses::standard());
    /// # let _ = classifier;
    /// ```
    ///
    /// Defaults to [`RetryStatuses::none`].
    pub const fn statuses(mut self, statuses: RetryStatuses) -> Self {
        self.statuses = statuses;
        self
    }

    /// Also reports `503 Service Unavailable` responses, and gRPC responses whose headers carry
    /// `grpc-status: 14` (`UNAVAILABLE`, a trailers-only response), as
    /// [`FailureClass::Unavailable`]: the same as `statuses(RetryStatuses::unavailable())`
    /// (and `false`, `statuses(RetryStatuses::none())`).
    ///
    /// The standard policy retries those only for idempotent requests: a `503` does not promise
    /// that nothing was done.
    ///
    /// Defaults to `false`.
    pub const fn unavailable_responses(self, enabled: bool) -> Self {
        self.statuses(if enabled {
            RetryStatuses::unavailable()
        } else {
            RetryStatuses::none()
        })
    }

    /// The statuses this classifier reports.
    pub const fn retry_statuses(&self) -> &RetryStatuses {
        &self.statuses
    }

    /// Classifies any error by walking its `source()` chain. This is what every
    /// [`ClassifyError`] impl of this type does; call it to classify your own error types.
    pub fn classify_chain(&self, error: &(dyn Error + 'static)) -> Option<FailureClass> {
        chain::classify(error)
    }
}

impl<B> ClassifyResponse<http::Response<B>> for StandardClassifier {
    fn classify_response(&self, response: &http::Response<B>) -> Option<FailureClass> {
        self.statuses
            .classify(response.status(), response.headers())
    }
}

#[cfg(feature = "reqwest")]
impl ClassifyResponse<reqwest::Response> for StandardClassifier {
    fn classify_response(&self, response: &reqwest::Response) -> Option<FailureClass> {
        self.statuses
            .classify(response.status(), response.headers())
    }
}

/// `ClassifyError` for concrete error types, each by walking its chain.
///
/// A blanket impl over `E: Error` cannot also cover `Box<dyn Error + Send + Sync>` (which does not
/// implement `Error`), so the types are listed.
macro_rules! classify_by_chain {
    ($($(#[$attr:meta])* $ty:ty),* $(,)?) => {$(
        $(#[$attr])*
        impl ClassifyError<$ty> for StandardClassifier {
            fn classify_error(&self, error: &$ty) -> Option<FailureClass> {
                chain::classify(error)
            }
        }
    )*};
}

classify_by_chain! {
    std::io::Error,
    #[cfg(feature = "hyper")]
    hyper::Error,
    #[cfg(feature = "hyper-util")]
    hyper_util::client::legacy::Error,
    #[cfg(feature = "h2")]
    h2::Error,
    #[cfg(feature = "tonic")]
    tonic::Status,
    #[cfg(feature = "tonic")]
    tonic::transport::Error,
    #[cfg(feature = "reqwest")]
    reqwest::Error,
    #[cfg(feature = "reqwest-middleware")]
    reqwest_middleware::Error,
}

/// An error that cannot happen (the body of `Full`, `Empty`, `String`) is never a failure.
impl ClassifyError<std::convert::Infallible> for StandardClassifier {
    fn classify_error(&self, error: &std::convert::Infallible) -> Option<FailureClass> {
        match *error {}
    }
}

impl ClassifyError<Box<dyn Error + Send + Sync>> for StandardClassifier {
    fn classify_error(&self, error: &Box<dyn Error + Send + Sync>) -> Option<FailureClass> {
        chain::classify(&**error)
    }
}

impl ClassifyError<Box<dyn Error + Send>> for StandardClassifier {
    fn classify_error(&self, error: &Box<dyn Error + Send>) -> Option<FailureClass> {
        chain::classify(&**error)
    }
}

impl ClassifyError<Box<dyn Error>> for StandardClassifier {
    fn classify_error(&self, error: &Box<dyn Error>) -> Option<FailureClass> {
        chain::classify(&**error)
    }
}

impl ClassifyError<dyn Error + 'static> for StandardClassifier {
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Option<FailureClass> {
        chain::classify(error)
    }
}

impl ClassifyError<dyn Error + Send + Sync + 'static> for StandardClassifier {
    fn classify_error(&self, error: &(dyn Error + Send + Sync + 'static)) -> Option<FailureClass> {
        chain::classify(error)
    }
}
