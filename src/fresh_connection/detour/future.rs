//! The response future of [`Detour`](super::Detour).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

pin_project! {
    /// The response future of [`Detour`](super::Detour).
    pub struct DetourFuture<Fut, D, Req>
    where
        D: Service<Req>,
    {
        #[pin]
        state: State<Fut, D, D::Future, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<Fut, D, DFut, Req> {
        // The request went to the primary service.
        Primary { #[pin] future: Fut },
        // The request waits for the detour service to be ready.
        DetourPending { detour: D, request: Req },
        // The request went to the detour service.
        Detour { #[pin] future: DFut },
        // The detour service failed to become ready, and its error was returned.
        Done,
    }
}

impl<Fut, D, Req> DetourFuture<Fut, D, Req>
where
    D: Service<Req>,
{
    pub(super) fn primary(future: Fut) -> Self {
        Self {
            state: State::Primary { future },
        }
    }

    pub(super) fn detour(detour: D, request: Req) -> Self {
        Self {
            state: State::DetourPending { detour, request },
        }
    }
}

impl<Fut, D, Req, T, E> Future for DetourFuture<Fut, D, Req>
where
    Fut: Future<Output = Result<T, E>>,
    D: Service<Req, Response = T>,
    D::Error: Into<E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Primary { future } => return future.poll(cx),
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

impl<Fut, D, Req> fmt::Debug for DetourFuture<Fut, D, Req>
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
