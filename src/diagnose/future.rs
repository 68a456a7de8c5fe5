//! The response future of [`Diagnose`](super::Diagnose).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::collector::Watch;
use super::host::ConnectionUse;
use crate::classify::{ClassifyError, StandardClassifier};

pin_project! {
    /// The response future of [`Diagnose`](super::Diagnose).
    pub struct DiagnoseFuture<F> {
        #[pin]
        future: F,
        watch: Option<Watch>,
    }
}

impl<F> DiagnoseFuture<F> {
    pub(super) fn new(future: F, watch: Watch) -> Self {
        Self {
            future,
            watch: Some(watch),
        }
    }
}

impl<F, T, E> Future for DiagnoseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    StandardClassifier: ClassifyError<E>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        if let Some(watch) = this.watch.take() {
            match &result {
                Ok(_) => watch.succeeded(None),
                Err(error) => {
                    if let Some(class) = StandardClassifier::new().classify_error(error) {
                        watch.failed(class, ConnectionUse::Unknown);
                    }
                }
            }
        }
        Poll::Ready(result)
    }
}

impl<F> fmt::Debug for DiagnoseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiagnoseFuture")
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}
