//! The response future of [`Backoff`](super::Backoff).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::BoxError;
use tower_service::Service;

use super::ride_out::{Sent, Ticket, WaitPoll, Watch};
use crate::attempt::{AttemptAbandoned, AttemptRecord, AttemptRequest, StopReason};
use crate::trace::{self, event};

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
        // What the attempt tells the record of its host when it ends.
        watch: Watch,
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
        // Held while its host refuses connections; no readiness is held either. The timer
        // ends the wait (or, for the request that is the next probe, sends the probe).
        Held { #[pin] sleep: Sleep, ticket: Ticket, pending: Option<(S, Req)> },
        // The attempt must not go out.
        Abandoned { reason: StopReason },
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(super) fn now(future: S::Future, watch: Watch) -> Self {
        Self {
            state: State::Called { future },
            watch,
        }
    }

    pub(super) fn after(sleep: Sleep, service: S, request: Req, watch: Watch) -> Self {
        Self {
            state: State::Sleeping {
                sleep,
                pending: Some((service, request)),
            },
            watch,
        }
    }

    pub(super) fn held(ticket: Ticket, service: S, request: Req, watch: Watch) -> Self {
        Self {
            state: State::Held {
                // Set to the right instant at the first poll.
                sleep: tokio::time::sleep_until(Instant::now()),
                ticket,
                pending: Some((service, request)),
            },
            watch,
        }
    }

    pub(super) fn abandoned(reason: StopReason) -> Self {
        Self {
            state: State::Abandoned { reason },
            watch: Watch::none(),
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Whether the wait's timer fired in this poll: the clock is then at least its instant.
        let mut fired = None;
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    this.watch.ended(&result);
                    return Poll::Ready(result);
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
                StateProj::Held {
                    mut sleep,
                    ticket,
                    pending,
                } => {
                    let now = fired.map_or_else(Instant::now, |at| Instant::now().max(at));
                    let verdict = ticket.poll(now, cx.waker());
                    if let WaitPoll::Pending(until) = verdict {
                        if sleep.deadline() != until {
                            sleep.as_mut().reset(until);
                        }
                        ready!(sleep.poll(cx));
                        fired = Some(until);
                        continue;
                    }
                    let Some((service, request)) = pending.take() else {
                        return Poll::Ready(Err(POLLED_AFTER_COMPLETION.into()));
                    };
                    let next = after_wait(verdict, ticket, now, service, request, this.watch);
                    this.state.set(next);
                }
                StateProj::Abandoned { reason } => {
                    return Poll::Ready(Err(AttemptAbandoned::because(*reason).into()));
                }
            }
        }
    }
}

/// What follows a wait for the host, by the registry's `verdict` at `now`: the request goes,
/// or is abandoned. The wait is reported in the request's record.
fn after_wait<S, Req, F>(
    verdict: WaitPoll,
    ticket: &Ticket,
    now: Instant,
    service: S,
    request: Req,
    watch: &mut Watch,
) -> State<S, Req, F>
where
    Req: AttemptRequest,
{
    let record = AttemptRecord::for_ride_out(&request);
    let waited = ticket.waited(now);
    record.report_wait(waited);
    let how = match verdict {
        WaitPoll::Go(sent) => sent.as_str(),
        WaitPoll::Abandon(reason) => reason.as_str(),
        WaitPoll::Pending(_) => Sent::Released.as_str(),
    };
    event!(
        debug,
        target: trace::BACKOFF,
        attempt = record.number(),
        ?waited,
        how,
        "the attempt waited for its host: {}",
        how
    );
    let sent = match verdict {
        WaitPoll::Go(sent) => sent,
        WaitPoll::Abandon(reason) => return State::Abandoned { reason },
        WaitPoll::Pending(_) => Sent::Released,
    };
    watch.sending(sent, &record);
    State::Waiting {
        pending: Some((service, request)),
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
            State::Held { .. } => "waiting for its host",
            State::Abandoned { .. } => "abandoned",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
