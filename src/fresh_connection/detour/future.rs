//! The response future of [`Detour`](super::Detour).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use super::hosts::{Ended, Start};
use super::Shared;
use crate::classify::{ClassifyError, StandardClassifier};
use crate::fresh_connection::policy::{condemning_failure, ConnectionPolicy, StandardConnections};

pin_project! {
    /// The response future of [`Detour`](super::Detour).
    pub struct DetourFuture<Fut, D, Req, F = StandardConnections>
    where
        D: Service<Req>,
    {
        #[pin]
        state: State<Fut, D, D::Future, Req, F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<Fut, D, DFut, Req, F> {
        // The request went to the primary service, watched when the host's record is kept.
        Primary { #[pin] future: Fut, watch: Option<Watch<F>> },
        // The request waits for the detour service to be ready.
        DetourPending { detour: D, request: Req },
        // The request went to the detour service.
        Detour { #[pin] future: DFut },
        // The detour service failed to become ready, and its error was returned.
        Done,
    }
}

/// A request in flight through the primary, whose end the host's record learns from; a
/// request dropped before it ended is counted out too.
pub(super) struct Watch<F> {
    shared: Arc<Shared<F>>,
    start: Start,
    ended: bool,
}

impl<F> Watch<F> {
    pub(super) fn new(shared: Arc<Shared<F>>, start: Start) -> Self {
        Self {
            shared,
            start,
            ended: false,
        }
    }

    fn end(mut self, ended: Ended) {
        self.ended = true;
        self.shared.hosts.ended(self.start, Instant::now(), ended);
    }
}

impl<F> Drop for Watch<F> {
    fn drop(&mut self) {
        if !self.ended {
            self.shared
                .hosts
                .ended(self.start, Instant::now(), Ended::Other);
        }
    }
}

impl<Fut, D, Req, F> DetourFuture<Fut, D, Req, F>
where
    D: Service<Req>,
{
    pub(super) fn primary(future: Fut, watch: Option<Watch<F>>) -> Self {
        Self {
            state: State::Primary { future, watch },
        }
    }

    pub(super) fn detour(detour: D, request: Req) -> Self {
        Self {
            state: State::DetourPending { detour, request },
        }
    }
}

impl<Fut, D, Req, F, T, E> Future for DetourFuture<Fut, D, Req, F>
where
    Fut: Future<Output = Result<T, E>>,
    D: Service<Req, Response = T>,
    D::Error: Into<E>,
    F: ConnectionPolicy,
    StandardClassifier: ClassifyError<E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Primary { future, watch } => {
                    let result = ready!(future.poll(cx));
                    if let Some(watch) = watch.take() {
                        let ended = match &result {
                            Ok(_) => Ended::Worked,
                            Err(error) => match condemning_failure(&watch.shared.policy, error) {
                                Some(_) => Ended::Condemned,
                                None => Ended::Other,
                            },
                        };
                        watch.end(ended);
                    }
                    return Poll::Ready(result);
                }
                StateProj::Detour { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::DetourPending { detour, .. } => {
                    if let Err(error) = ready!(detour.poll_ready(cx)) {
                        state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    // The clone in this state was just polled ready: take it out, with the
                    // request, and it is the one that is called.
                    let StateReplace::DetourPending {
                        mut detour,
                        request,
                    } = state.as_mut().project_replace(State::Done)
                    else {
                        // Unreachable: the state was `DetourPending` a moment ago.
                        return Poll::Pending;
                    };
                    let future = detour.call(request);
                    state.set(State::Detour { future });
                }
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<Fut, D, Req, F> fmt::Debug for DetourFuture<Fut, D, Req, F>
where
    D: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Primary { .. } => "primary",
            State::DetourPending { .. } => "detour (waiting for readiness)",
            State::Detour { .. } => "detour",
            State::Done => "done",
        };
        f.debug_struct("DetourFuture")
            .field("state", &state)
            .finish()
    }
}
