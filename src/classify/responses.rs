//! Classifying responses with a rule of your own, errors the standard way.

use std::fmt;

use super::{ClassifyError, ClassifyResponse, FailureClass, StandardClassifier};

/// The [`StandardClassifier`]'s classification of errors, and `R`'s of responses; made by
/// [`StandardClassifier::responses`].
///
/// A custom classifier must answer for both errors and responses; this type lets a rule for
/// responses alone (a closure through [`classify_response_fn`], or any [`ClassifyResponse`])
/// keep the standard, feature-aware classification of errors.
///
/// # Examples
///
/// ```
/// use tower_reset::classify::{classify_response_fn, FailureClass, StandardClassifier};
/// use tower_reset::ResetRetryLayer;
///
/// let classifier = StandardClassifier::new().responses(classify_response_fn(
///     |response: &http::Response<String>| {
///         (response.headers().get("x-shed").is_some()).then_some(FailureClass::Rejected)
///     },
/// ));
/// let layer = ResetRetryLayer::builder().classifier(classifier).build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WithResponses<R> {
    errors: StandardClassifier,
    responses: R,
}

impl StandardClassifier {
    /// This classifier for errors, and `responses` for responses (this classifier's own
    /// [`statuses`](Self::statuses) are then not consulted).
    pub fn responses<R>(self, responses: R) -> WithResponses<R> {
        WithResponses {
            errors: self,
            responses,
        }
    }
}

impl<R> WithResponses<R> {
    /// The classifier of errors.
    pub fn error_classifier(&self) -> &StandardClassifier {
        &self.errors
    }

    /// The classifier of responses.
    pub fn response_classifier(&self) -> &R {
        &self.responses
    }
}

impl<R, E: ?Sized> ClassifyError<E> for WithResponses<R>
where
    StandardClassifier: ClassifyError<E>,
{
    fn classify_error(&self, error: &E) -> Option<FailureClass> {
        self.errors.classify_error(error)
    }
}

impl<R, Res: ?Sized> ClassifyResponse<Res> for WithResponses<R>
where
    R: ClassifyResponse<Res>,
{
    fn classify_response(&self, response: &Res) -> Option<FailureClass> {
        self.responses.classify_response(response)
    }
}

/// A response classifier from a closure: `Some(class)` for a response that failed, `None` for
/// one to hand to the caller. Made by [`classify_response_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyResponseFn<F> {
    f: F,
}

/// Classifies responses with `f`; combine it with the standard classification of errors with
/// [`StandardClassifier::responses`].
///
/// A named adapter rather than an impl for every closure: a blanket impl over `Fn` would make
/// the closure's parameter type impossible to infer and would collide with the other impls.
///
/// # Examples
///
/// ```
/// use tower_reset::classify::{classify_response_fn, ClassifyResponse, FailureClass};
///
/// let teapots = classify_response_fn(|response: &http::Response<()>| {
///     (response.status() == 418).then_some(FailureClass::Unavailable)
/// });
/// let response = http::Response::builder().status(418).body(()).unwrap();
/// assert_eq!(teapots.classify_response(&response), Some(FailureClass::Unavailable));
/// ```
pub fn classify_response_fn<F>(f: F) -> ClassifyResponseFn<F> {
    ClassifyResponseFn { f }
}

impl<F, Res> ClassifyResponse<Res> for ClassifyResponseFn<F>
where
    F: Fn(&Res) -> Option<FailureClass>,
{
    fn classify_response(&self, response: &Res) -> Option<FailureClass> {
        (self.f)(response)
    }
}

impl<F> fmt::Debug for ClassifyResponseFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyResponseFn").finish_non_exhaustive()
    }
}
