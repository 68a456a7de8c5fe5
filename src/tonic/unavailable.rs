//! [`UnavailableStatusLayer`]: report a connection failure as gRPC `UNAVAILABLE`.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower::{BoxError, Layer};
use tower_service::Service;

use crate::classify::{ClassifyError, StandardClassifier};

/// Reports the final failure of a call as [`tonic::Status::unavailable`] when it is a
/// connection failure, as the gRPC spec asks of transport errors.
///
/// Without it, a generated client reports a connection reset as `Code::Unknown` with the message
/// `"transport error"`: tonic maps only a few transport errors to codes of their own (a failed
/// connect to `Unavailable`). With it, every error that the classifier recognises (the failures
/// this crate retries: never sent, refused, unknown outcome) becomes a `Status` with
/// `Code::Unavailable`, whose message is the error chain in one line and whose
/// [`source`](std::error::Error::source) is the original error, so nothing is lost:
/// `downcast_ref` on the source still finds it. Errors the classifier does not recognise
/// (timeouts, TLS, a `Status` the server sent) pass through untouched.
///
/// Put it at the top of the stack, above [`ResetRetryLayer`](crate::ResetRetryLayer), so that
/// it sees only the failure that ends the call, after the retries. Its error type is
/// [`BoxError`], which a generated client turns into a `Status` (finding the one made here).
///
/// # Examples
///
/// ```
/// use std::io;
/// use tower::{service_fn, BoxError, ServiceExt};
/// use tower_reset::tonic::UnavailableStatusLayer;
/// use tower::Layer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let reset = service_fn(|_: http::Request<()>| async {
///     Err::<http::Response<()>, BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
/// });
/// let service = UnavailableStatusLayer::new().layer(reset);
///
/// let error = service.oneshot(http::Request::new(())).await.unwrap_err();
/// let status = error.downcast_ref::<tonic::Status>().expect("a Status");
/// assert_eq!(status.code(), tonic::Code::Unavailable);
/// let source = std::error::Error::source(status).expect("the original error");
/// assert!(source.downcast_ref::<io::Error>().is_some());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UnavailableStatusLayer<C = StandardClassifier> {
    classifier: C,
}

impl UnavailableStatusLayer {
    /// Reports the failures the [`StandardClassifier`] recognises.
    pub const fn new() -> Self {
        Self {
            classifier: StandardClassifier::new(),
        }
    }
}

impl<C> UnavailableStatusLayer<C> {
    /// The classifier that decides which failures are reported as `UNAVAILABLE`: those it
    /// classifies at all. Use the one given to [`ResetRetryLayer`](crate::ResetRetryLayer).
    ///
    /// Defaults to [`StandardClassifier::new`].
    pub fn classifier<D>(self, classifier: D) -> UnavailableStatusLayer<D> {
        UnavailableStatusLayer { classifier }
    }
}

impl<S, C: Clone> Layer<S> for UnavailableStatusLayer<C> {
    type Service = UnavailableStatus<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        UnavailableStatus {
            inner,
            classifier: self.classifier.clone(),
        }
    }
}

/// The service made by [`UnavailableStatusLayer`].
#[derive(Debug, Clone)]
pub struct UnavailableStatus<S, C = StandardClassifier> {
    inner: S,
    classifier: C,
}

impl<S> UnavailableStatus<S> {
    /// Wraps `inner`, reporting the failures the [`StandardClassifier`] recognises.
    pub const fn new(inner: S) -> Self {
        Self {
            inner,
            classifier: StandardClassifier::new(),
        }
    }
}

impl<S, C> UnavailableStatus<S, C> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for UnavailableStatus<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: ClassifyError<S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            future: self.inner.call(request),
            classifier: self.classifier.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`UnavailableStatus`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        future: F,
        classifier: C,
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: ClassifyError<E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        Poll::Ready(result.map_err(|error| {
            if this.classifier.classify_error(&error).is_some() {
                Box::new(unavailable(error.into())) as BoxError
            } else {
                error.into()
            }
        }))
    }
}

impl<F, C: fmt::Debug> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

/// `Status::unavailable`, with the chain of `error` as its message and `error` as its source.
fn unavailable(error: BoxError) -> ::tonic::Status {
    let mut status = ::tonic::Status::unavailable(chain_message(&*error));
    status.set_source(Arc::from(error));
    status
}

/// The messages of the chain, outermost first, joined by `": "`; a link whose message repeats
/// the one before it (an `io::Error` showing the error it wraps) is said once.
fn chain_message(error: &(dyn Error + 'static)) -> String {
    let mut message = String::new();
    let mut previous = String::new();
    for link in crate::classify::chain::links(error) {
        let text = link.to_string();
        if text.is_empty() || text == previous {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
        previous = text;
    }
    message
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("transport error")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_message_is_the_chain_without_repeats() {
        let inner = io::Error::other(io::Error::from(io::ErrorKind::ConnectionReset));
        let message = chain_message(&Outer(inner));
        assert_eq!(message, "transport error: connection reset");
    }
}
