//! The response future of [`ResetRetry`](super::ResetRetry).

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::SystemTime;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use super::budget::Budget;
use super::policy::{Action, Attempt, CloneRequest, Policy};
use crate::attempt::{
    AttemptAbandoned, AttemptHistory, AttemptRecord, AttemptRequest, AttemptResponse,
    HistoryObserver,
};
use crate::classify::{ClassifyError, ClassifyResponse, FailureClass};
use crate::hint::ServerHint;
use crate::trace::event;

pin_project! {
    /// The response future of [`ResetRetry`](super::ResetRetry).
    pub struct ResponseFuture<S, P, C, R, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, Req>,
        // `None` on the fast path: the request is sent once and nothing is kept.
        retry: Option<RetryState<S, P, C, R, Req>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Req> {
        // An attempt is under way.
        Called { #[pin] future: F },
        // The next attempt is waiting for the service to be ready.
        Waiting { request: Option<Req> },
    }
}

/// Everything a retryable request needs between attempts.
pub(super) struct RetryState<S, P, C, R, Req>
where
    S: Service<Req>,
{
    pub(super) service: S,
    pub(super) policy: P,
    pub(super) classifier: C,
    pub(super) cloner: R,
    /// The untouched copy that the next attempt is cloned from (or, for the last one, is).
    pub(super) copy: Option<Req>,
    /// The number of the attempt under way, starting at 1.
    pub(super) attempt: u32,
    pub(super) max_attempts: u32,
    pub(super) deadline: Option<Instant>,
    pub(super) budget: Option<Arc<dyn Budget>>,
    pub(super) failures: Vec<FailureClass>,
    pub(super) observer: Option<HistoryObserver>,
    /// The outcome of the attempt before the one under way, handed to the caller if an inner
    /// layer abandons the attempt under way (see [`AttemptAbandoned`]).
    pub(super) last: Option<Result<S::Response, S::Error>>,
    /// Drawn at the first retry; the same for every attempt of the request.
    pub(super) seed: Option<u64>,
}

impl<S, P, C, R, Req> ResponseFuture<S, P, C, R, Req>
where
    S: Service<Req>,
{
    pub(super) fn once(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
            retry: None,
        }
    }

    pub(super) fn retrying(future: S::Future, retry: RetryState<S, P, C, R, Req>) -> Self {
        Self {
            state: State::Called { future },
            retry: Some(retry),
        }
    }
}

impl<S, P, C, R, Req> Future for ResponseFuture<S, P, C, R, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
    S::Response: AttemptResponse,
    S::Error: 'static,
    P: Policy,
    C: ClassifyError<S::Error> + ClassifyResponse<S::Response>,
    R: CloneRequest<Req>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx));
                    let Some(retry) = this.retry.as_mut() else {
                        return Poll::Ready(result);
                    };
                    if let Err(error) = &result {
                        if retry.attempt > 1 && AttemptAbandoned::is(error) {
                            // An inner layer refused to send this attempt (it would have
                            // started after the deadline, say): the caller gets the real
                            // outcome of the attempt before it.
                            return Poll::Ready(retry.abandon(result));
                        }
                    }
                    let (failure, hint) = match &result {
                        Ok(response) => {
                            let failure = retry.classifier.classify_response(response);
                            let hint = failure.and_then(|_| {
                                ServerHint::from_headers(response.headers(), SystemTime::now())
                            });
                            (failure, hint)
                        }
                        Err(error) => (retry.classifier.classify_error(error), None),
                    };
                    let Some(failure) = failure else {
                        return Poll::Ready(retry.finish(result));
                    };
                    retry.failures.push(failure);
                    match retry.next_request(failure, hint, result.is_ok()) {
                        Some(request) => {
                            retry.last = Some(result);
                            this.state.set(State::Waiting {
                                request: Some(request),
                            });
                        }
                        None => return Poll::Ready(retry.finish(result)),
                    }
                }
                StateProj::Waiting { request } => {
                    let retry = this
                        .retry
                        .as_mut()
                        .expect("only a retryable request waits for a retry");
                    // The retry goes to the same service instance that is polled ready here.
                    if let Err(error) = ready!(retry.service.poll_ready(cx)) {
                        return Poll::Ready(retry.finish(Err(error)));
                    }
                    let request = request.take().expect("a waiting retry holds its request");
                    let future = retry.service.call(request);
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
    P: Policy,
    R: CloneRequest<Req>,
{
    /// The request for the next attempt, or `None` when the failure of the attempt under way
    /// must be returned: no attempts left, deadline passed, the copy cannot be replayed, policy
    /// says no, budget spent. `responded` tells whether the attempt ended with a response.
    fn next_request(
        &mut self,
        failure: FailureClass,
        hint: Option<ServerHint>,
        responded: bool,
    ) -> Option<Req> {
        let attempt = self.attempt;
        if attempt >= self.max_attempts {
            event!(debug, attempt, %failure, "no retry: attempts exhausted");
            return None;
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            event!(debug, attempt, %failure, "no retry: deadline passed");
            return None;
        }
        if hint == Some(ServerHint::DoNotRetry) {
            event!(debug, attempt, %failure, "no retry: the server asked not to retry");
            return None;
        }
        let copy = self.copy.as_ref()?;
        if !self.cloner.can_replay(copy, responded) {
            event!(debug, attempt, %failure, "no retry: the request body cannot be replayed");
            return None;
        }
        if self.policy.retry(&Attempt::new(copy, failure, attempt)) == Action::Stop {
            event!(debug, attempt, %failure, "no retry: the policy says the request is not safe to repeat");
            return None;
        }
        // A protocol refusal cost the server nothing, so it does not spend the budget.
        if failure != FailureClass::Refused {
            if let Some(budget) = &self.budget {
                if !budget.try_withdraw() {
                    event!(debug, attempt, %failure, "no retry: retry budget spent");
                    return None;
                }
            }
        }

        let next = attempt + 1;
        // Keep the copy while more attempts may follow; the last attempt takes it.
        let mut request = if next < self.max_attempts {
            match self.cloner.clone_request(copy) {
                Some(request) => request,
                None => self.copy.take()?,
            }
        } else {
            self.copy.take()?
        };
        let first_failure = self.failures.first().copied().unwrap_or(failure);
        let seed = *self
            .seed
            .get_or_insert_with(|| RandomState::new().hash_one(next));
        let record = AttemptRecord::retry(next, failure)
            .with_first_failure(first_failure)
            .with_hint(hint)
            .with_deadline(self.deadline)
            .with_seed(seed);
        request.extensions_mut().insert(record);
        self.attempt = next;
        event!(info, attempt = next, %failure, "retrying after a connection failure");
        Some(request)
    }
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    S: Service<Req>,
    S::Response: AttemptResponse,
{
    /// The attempt under way was abandoned before it was sent: hands the caller the outcome of
    /// the attempt before it.
    fn abandon(
        &mut self,
        abandoned: Result<S::Response, S::Error>,
    ) -> Result<S::Response, S::Error> {
        event!(
            debug,
            attempt = self.attempt,
            "no retry: an inner layer abandoned the attempt"
        );
        match self.last.take() {
            Some(last) => {
                self.attempt -= 1;
                self.finish(last)
            }
            None => self.finish(abandoned),
        }
    }

    /// Hands the outcome to the caller, recording the history where someone looks for it.
    fn finish(
        &mut self,
        mut result: Result<S::Response, S::Error>,
    ) -> Result<S::Response, S::Error> {
        self.last = None;
        let multiple = self.attempt > 1;
        if multiple || self.observer.is_some() {
            let history = AttemptHistory::new(self.attempt, std::mem::take(&mut self.failures));
            if let Some(observer) = &self.observer {
                observer.record(history.clone());
            }
            if let (true, Ok(response)) = (multiple, &mut result) {
                response.extensions_mut().insert(history);
            }
        }
        result
    }
}

impl<S, P, C, R, Req> fmt::Debug for ResponseFuture<S, P, C, R, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting for readiness",
        };
        let attempt = self.retry.as_ref().map_or(1, |retry| retry.attempt);
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempt", &attempt)
            .field("retryable", &self.retry.is_some())
            .finish()
    }
}
