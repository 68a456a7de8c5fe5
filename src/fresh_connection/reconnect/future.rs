//! The response future of [`Reconnect`](super::Reconnect).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::BoxError;

use super::Health;
use crate::classify::{ClassifyError, StandardClassifier};
use crate::fresh_connection::policy::{condemning_failure, ConnectionPolicy};
use crate::trace::{self, event};

pin_project! {
    /// The response future of [`Reconnect`](super::Reconnect): the connection's response, or
    /// its error boxed as it is; a failure the policy condemns marks the connection so that the
    /// next `poll_ready` replaces it.
    pub struct ReconnectFuture<Fut, F> {
        #[pin]
        state: State<Fut, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut, F> {
        // The request was sent on a connection.
        Called {
            #[pin]
            future: Fut,
            // `None` once the outcome is recorded.
            tracker: Option<Tracker<F>>,
        },
        // No request was sent: a connect error, or a call without a connection.
        Failed { error: Option<BoxError> },
    }
}

impl<Fut, F> ReconnectFuture<Fut, F> {
    pub(super) fn called(future: Fut, tracker: Tracker<F>) -> Self {
        Self {
            state: State::Called {
                future,
                tracker: Some(tracker),
            },
        }
    }

    pub(super) fn failed(error: BoxError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<Fut, F, R, E> Future for ReconnectFuture<Fut, F>
where
    Fut: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
    StandardClassifier: ClassifyError<E>,
    F: ConnectionPolicy,
{
    type Output = Result<R, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future, tracker } => {
                let result = ready!(future.poll(cx));
                if let (Some(tracker), Err(error)) = (tracker.as_ref(), &result) {
                    tracker.failed(error);
                }
                // Dropping the tracker ends the request: the connection is idle from now on.
                drop(tracker.take());
                Poll::Ready(result.map_err(Into::into))
            }
            StateProj::Failed { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| PolledAfterCompletion.into()))),
        }
    }
}

/// Follows one request on its connection: counts it in flight until it ends, and condemns the
/// connection when it fails in a way the policy condemns.
pub(super) struct Tracker<F> {
    health: Arc<Health<F>>,
}

impl<F> Tracker<F> {
    pub(super) fn start(health: Arc<Health<F>>) -> Self {
        health.started();
        Self { health }
    }
}

impl<F: ConnectionPolicy> Tracker<F> {
    fn failed<E>(&self, error: &E)
    where
        StandardClassifier: ClassifyError<E>,
    {
        if let Some(failure) = condemning_failure(self.health.policy(), error) {
            event!(
                info,
                target: trace::CONNECTION,
                %failure,
                "connection condemned; the next poll_ready reconnects"
            );
            self.health.condemn();
        }
    }
}

impl<F> Drop for Tracker<F> {
    fn drop(&mut self) {
        self.health.ended(Instant::now());
    }
}

/// The error of a [`ReconnectFuture`] polled again after it returned an error of its own.
#[derive(Debug)]
struct PolledAfterCompletion;

impl fmt::Display for PolledAfterCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReconnectFuture polled after completion")
    }
}

impl std::error::Error for PolledAfterCompletion {}

impl<Fut, F> fmt::Debug for ReconnectFuture<Fut, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called {
                tracker: Some(_), ..
            } => "called",
            State::Called { tracker: None, .. } => "done",
            State::Failed { error: Some(_) } => "failed",
            State::Failed { error: None } => "done",
        };
        f.debug_struct("ReconnectFuture")
            .field("state", &state)
            .finish()
    }
}
