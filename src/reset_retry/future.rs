//! The response future of [`ResetRetry`](super::ResetRetry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::retry_state::{AttemptEnd, RetryState};
use crate::attempt::{
    AttemptHistory, AttemptRequest, AttemptResponse, HistoryObserver, StopReason,
};
use crate::classify::{ClassifyError, ClassifyResponse};

pin_project! {
    /// The response future of [`ResetRetry`](super::ResetRetry).
    pub struct ResponseFuture<S, P, C, R, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        mode: Mode<S, P, C, R, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is under way.
        Called { #[pin] future: F },
        // The next attempt (its request kept by the retry state) is waiting for the service to
        // be ready.
        Waiting,
    }
}

/// How much the future keeps besides the attempt under way.
// The retry state is inline on purpose: boxing it would cost an allocation on every retryable
// request, which is to cost one copy of the request and nothing more.
#[allow(clippy::large_enum_variant)]
enum Mode<S, P, C, R, Req>
where
    S: Service<Req>,
{
    /// The fast path: the request is sent once and nothing is kept.
    Once,
    /// Sent once, but the caller attached a [`HistoryObserver`]: the outcome is classified at
    /// the end so that the history says what the attempt met.
    Observed {
        observer: HistoryObserver,
        classifier: C,
        /// Why the request could not have been retried.
        reason: StopReason,
    },
    /// A retryable request.
    Retrying(RetryState<S, P, C, R, Req>),
}

impl<S, P, C, R, Req> ResponseFuture<S, P, C, R, Req>
where
    S: Service<Req>,
{
    pub(super) fn once(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
            mode: Mode::Once,
        }
    }

    pub(super) fn observed(
        future: S::Future,
        observer: HistoryObserver,
        classifier: C,
        reason: StopReason,
    ) -> Self {
        Self {
            state: State::Called { future },
            mode: Mode::Observed {
                observer,
                classifier,
                reason,
            },
        }
    }

    #[inline]
    pub(super) fn retrying(future: S::Future, retry: RetryState<S, P, C, R, Req>) -> Self {
        Self {
            state: State::Called { future },
            mode: Mode::Retrying(retry),
        }
    }
}

impl<S, P, C, R, Req> Future for ResponseFuture<S, P, C, R, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
    S::Response: AttemptResponse,
    S::Error: 'static,
    P: crate::reset_retry::policy::RetryPolicy,
    C: ClassifyError<S::Error> + ClassifyResponse<S::Response>,
    R: crate::reset_retry::policy::CloneRequest<Req>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let retry = match this.mode {
            Mode::Once => {
                let StateProj::Called { future } = this.state.project() else {
                    unreachable!("a request sent once never waits for a retry")
                };
                return future.poll(cx);
            }
            Mode::Observed {
                observer,
                classifier,
                reason,
            } => {
                let StateProj::Called { future } = this.state.project() else {
                    unreachable!("a request sent once never waits for a retry")
                };
                let result = ready!(future.poll(cx));
                let failure = match &result {
                    Ok(response) => classifier.classify_response(response),
                    Err(error) => classifier.classify_error(error),
                };
                let stop = match (failure, &result) {
                    (Some(_), _) => *reason,
                    (None, Ok(_)) => StopReason::Succeeded,
                    (None, Err(_)) => StopReason::NotConnectionFailure,
                };
                observer.record(AttemptHistory::single(failure, stop));
                return Poll::Ready(result);
            }
            Mode::Retrying(retry) => retry,
        };
        loop {
            // A failed response given up for a retry is read to its end meanwhile, so that its
            // connection can be reused.
            retry.poll_drain(cx);
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = match future.poll(cx) {
                        Poll::Pending => {
                            // The attempt is going ahead: the previous outcome will not be
                            // needed, and must not hold its connection hostage.
                            retry.went_ahead(cx);
                            return Poll::Pending;
                        }
                        Poll::Ready(result) => result,
                    };
                    match retry.attempt_ended(result) {
                        AttemptEnd::Retry => this.state.set(State::Waiting),
                        AttemptEnd::Done(result) => return Poll::Ready(result),
                    }
                }
                StateProj::Waiting => {
                    // The retry goes to the same service instance that is polled ready here.
                    match retry.poll_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(result)) => return Poll::Ready(result),
                        Poll::Ready(Ok(())) => {}
                    }
                    let future = retry.call();
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S, P, C, R, Req> fmt::Debug for ResponseFuture<S, P, C, R, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting => "waiting for readiness",
        };
        let (attempt, retryable) = match &self.mode {
            Mode::Retrying(retry) => (retry.attempt(), true),
            _ => (1, false),
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempt", &attempt)
            .field("retryable", &retryable)
            .finish()
    }
}
