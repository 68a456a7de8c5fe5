//! The response future of [`Backoff`](super::Backoff).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::BoxError;
use tower_service::Service;

use crate::attempt::{AttemptAbandoned, StopReason};

const POLLED_AFTER_COMPLETION: AttemptAbandoned =
    AttemptAbandoned::new("future polled after completion");

pin_project! {
    /// The response future of [`Backoff`](super::Backoff).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        // The attempt is under way.
        Called { #[pin] future: F },
        // Waiting out the delay. No readiness is held: the service is a clone not yet polled.
        Sleeping { #[pin] sleep: Sleep, pending: Option<(S, Req)> },
        // The delay is over; waiting for the service to be ready.
        Waiting { pending: Option<(S, Req)> },
        // The attempt must not go out.
        Abandoned { reason: StopReason },
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(super) fn now(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(super) fn after(sleep: Sleep, service: S, request: Req) -> Self {
        Self {
            state: State::Sleeping {
                sleep,
                pending: Some((service, request)),
            },
        }
    }

    pub(super) fn abandoned(reason: StopReason) -> Self {
        Self {
            state: State::Abandoned { reason },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    return Poll::Ready(ready!(future.poll(cx)).map_err(Into::into));
                }
                StateProj::Sleeping { sleep, pending } => {
                    ready!(sleep.poll(cx));
                    let pending = pending.take();
                    this.state.set(State::Waiting { pending });
                }
                StateProj::Waiting { pending } => {
                    let Some((service, _)) = pending.as_mut() else {
                        return Poll::Ready(Err(POLLED_AFTER_COMPLETION.into()));
                    };
                    // The service that is polled ready here is the one that is called.
                    ready!(service.poll_ready(cx)).map_err(Into::into)?;
                    let Some((mut service, request)) = pending.take() else {
                        return Poll::Ready(Err(POLLED_AFTER_COMPLETION.into()));
                    };
                    let future = service.call(request);
                    this.state.set(State::Called { future });
                }
                StateProj::Abandoned { reason } => {
                    return Poll::Ready(Err(AttemptAbandoned::because(*reason).into()));
                }
            }
        }
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Sleeping { .. } => "sleeping",
            State::Waiting { .. } => "waiting for readiness",
            State::Abandoned { .. } => "abandoned",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
