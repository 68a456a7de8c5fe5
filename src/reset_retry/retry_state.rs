//! What a retryable request keeps between its attempts, and the decisions taken on it.
//!
//! # The previous outcome, and why it is let go early
//!
//! When an attempt fails and another is to be sent, the failed attempt's outcome is kept: if an
//! inner layer then refuses to send the next attempt (the backoff would end after the deadline,
//! the server asked for a longer wait than allowed), the caller gets that real outcome, not an
//! error of this crate's own. But a kept *response* (a `503` whose body is unread) holds its
//! connection: over a single HTTP/1.1 connection the next attempt could never be sent, and in a
//! pool the connection stays checked out. So a response is kept only until the next attempt
//! shows that it goes ahead (the first poll of its future returns `Pending`; an inner layer that
//! abandons an attempt after a response does so on that first poll, see
//! [`AttemptAbandoned`](crate::attempt::AttemptAbandoned)). A response let go is read on to its
//! end, at most [`DRAIN_LIMIT`] bytes, while the next attempt is under way, so that its
//! connection can be reused; a longer body, or one the response type cannot read, is dropped.
//! An error holds no connection: it is kept until the next attempt ends.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::budget::Budget;
use super::layer::Limits;
use super::policy::{Action, Attempt, CloneRequest, RetryPolicy};
use crate::attempt::{
    AttemptAbandoned, AttemptHistory, AttemptRecord, AttemptRequest, AttemptResponse,
    AttemptSummary, HistoryObserver, Notes, StopReason,
};
use crate::classify::{ClassifyError, ClassifyResponse, FailureClass};
use crate::hint::ServerHint;
#[cfg(feature = "tracing")]
use crate::trace;

/// The most body bytes read from a failed response that is let go for a retry, so that its
/// connection can be reused (go-retryablehttp reads 4 KiB for the same reason). A longer body
/// is dropped, which closes an HTTP/1.1 connection.
pub const DRAIN_LIMIT: usize = 4 * 1024;

/// How an attempt ended, for the response future.
pub(super) enum AttemptEnd<T> {
    /// Send the next attempt, once the service is ready.
    Retry,
    /// The request is over: hand this to the caller.
    Done(T),
}

type Outcome<S, Req> = Result<<S as Service<Req>>::Response, <S as Service<Req>>::Error>;

/// Everything a retryable request needs between attempts.
///
/// It travels inline in the response future, so every retryable request moves it around:
/// what only a retried request needs is in [`Retried`], allocated with the first retry.
pub(super) struct RetryState<S, P, C, R, Req>
where
    S: Service<Req>,
{
    service: S,
    policy: P,
    classifier: C,
    cloner: R,
    /// The untouched copy that the next attempt is cloned from (or, for the last one, is).
    copy: Option<Req>,
    /// The attempts sent so far, the one under way included.
    attempt: u32,
    max_attempts: u32,
    /// Whether the attempt under way went ahead: its future was polled and did not abandon it.
    went_ahead: bool,
    /// The failure of the previous attempt.
    previous: Option<FailureClass>,
    /// Whether the previous attempt's failure came with a server hint (`Retry-After`).
    #[cfg(feature = "tracing")]
    hinted: bool,
    deadline: Option<Instant>,
    budget: Option<Arc<dyn Budget>>,
    /// One per attempt that ended.
    summaries: Vec<AttemptSummary>,
    observer: Option<HistoryObserver>,
    /// The first attempt's channel back from the layers below, given while some host refuses
    /// connections (see `backoff::RideOut`); the retries' notes once they are allocated.
    first_notes: Option<Arc<Notes>>,
    /// Attempts refused by a host that `Backoff` rides out: not counted against
    /// `max_attempts` (see `backoff::RideOut`).
    uncounted: u32,
    /// Allocated with the first retry; `None` while the first attempt is under way.
    retried: Option<Box<Retried<S, Req>>>,
}

/// What a request keeps once it is retried, and only then: a request that succeeds at once
/// (nearly all of them) neither allocates nor moves any of it. The first retry allocates its
/// notes and its history anyway; this rides along.
struct Retried<S, Req>
where
    S: Service<Req>,
{
    /// The request of the next attempt, from the decision to retry until the service is ready.
    next: Option<Req>,
    /// The outcome of the attempt before the one under way, until that one goes ahead.
    held: Option<Outcome<S, Req>>,
    /// A failed response let go for a retry, being read to its end.
    draining: Option<S::Response>,
    /// What `draining` may still read.
    drain_budget: usize,
    /// Drawn at the first retry; the same for every attempt of the request.
    seed: u64,
    /// Shared with the records of the retries, for the layers below to report back.
    notes: Arc<Notes>,
    /// Ends the wait for readiness at the deadline.
    ready_timer: Option<Pin<Box<Sleep>>>,
    /// How long an attempt that was then abandoned waited for its host.
    unsent_wait: Option<Duration>,
    /// The request's method and URI, for the events, once the last attempt took the copy.
    #[cfg(feature = "tracing")]
    target: Option<(http::Method, http::Uri)>,
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
{
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn new(
        service: S,
        policy: P,
        classifier: C,
        cloner: R,
        copy: Option<Req>,
        limits: &Limits,
        deadline: Option<Instant>,
        observer: Option<HistoryObserver>,
        notes: Option<Arc<Notes>>,
    ) -> Self {
        Self {
            service,
            policy,
            classifier,
            cloner,
            copy,
            attempt: 1,
            max_attempts: limits.max_attempts,
            went_ahead: false,
            previous: None,
            deadline,
            budget: limits.budget.clone(),
            summaries: Vec::new(),
            observer,
            #[cfg(feature = "tracing")]
            hinted: false,
            first_notes: notes,
            uncounted: 0,
            retried: None,
        }
    }

    /// The channel back from the layers below for the attempt under way, if it has one.
    fn notes(&self) -> Option<&Arc<Notes>> {
        match self.retried.as_deref() {
            Some(retried) => Some(&retried.notes),
            None => self.first_notes.as_ref(),
        }
    }

    /// What the retries keep; only called once a retry was decided.
    fn retried_mut(&mut self) -> &mut Retried<S, Req> {
        self.retried
            .as_deref_mut()
            .expect("a retry was decided, so its state was allocated")
    }

    /// Polls the inner service ready for the next attempt, no longer than the deadline. On
    /// failure, or at the deadline, returns the request's final outcome.
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Outcome<S, Req>>>
    where
        S::Response: AttemptResponse,
    {
        match self.service.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.retried_mut().ready_timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                self.give_up(StopReason::ServiceNotReady);
                Poll::Ready(Err(self.finish(Err(error), StopReason::ServiceNotReady)))
            }
            Poll::Pending => {
                let Some(deadline) = self.deadline else {
                    return Poll::Pending;
                };
                let timer = self
                    .retried_mut()
                    .ready_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let held = self
                    .retried_mut()
                    .held
                    .take()
                    .expect("a retry waiting for readiness holds the previous outcome");
                self.give_up(StopReason::Deadline);
                Poll::Ready(Err(self.finish(held, StopReason::Deadline)))
            }
        }
    }

    /// Sends the next attempt, decided by [`attempt_ended`](Self::attempt_ended), on the
    /// service just polled ready.
    pub(super) fn call(&mut self) -> S::Future {
        let request = self
            .retried_mut()
            .next
            .take()
            .expect("a waiting retry holds its request");
        self.attempt += 1;
        self.went_ahead = false;
        self.service.call(request)
    }

    /// The attempt under way was polled and is pending: it goes ahead, so the previous outcome
    /// is let go (a response is read to its end meanwhile).
    #[inline]
    pub(super) fn went_ahead(&mut self, cx: &mut Context<'_>)
    where
        S::Response: AttemptResponse,
    {
        if !self.went_ahead {
            self.goes_ahead(cx);
        }
    }

    /// The first `Pending` of the attempt under way.
    fn goes_ahead(&mut self, cx: &mut Context<'_>)
    where
        S::Response: AttemptResponse,
    {
        self.went_ahead = true;
        if self.attempt > 1 {
            self.retry_sent();
            self.let_go();
            self.poll_drain(cx);
        }
    }

    /// Reads on the body of a response let go, until it ends or must be dropped.
    #[inline]
    pub(super) fn poll_drain(&mut self, cx: &mut Context<'_>)
    where
        S::Response: AttemptResponse,
    {
        let Some(retried) = self.retried.as_deref_mut() else {
            return;
        };
        if let Some(response) = &mut retried.draining {
            if response
                .poll_drain(cx, &mut retried.drain_budget)
                .is_ready()
            {
                retried.draining = None;
            }
        }
    }

    /// Lets go of a previous outcome that is a response: it is read to its end meanwhile. An
    /// error holds no connection, so it stays until the attempt under way ends, for an inner
    /// layer that abandons the attempt late (after waiting for a host that refused connections,
    /// say).
    fn let_go(&mut self) {
        let Some(retried) = self.retried.as_deref_mut() else {
            return;
        };
        if matches!(retried.held, Some(Ok(_))) {
            if let Some(Ok(response)) = retried.held.take() {
                retried.draining = Some(response);
                retried.drain_budget = DRAIN_LIMIT;
            }
        }
    }

    /// The request's method and URI, for the events: the copy's, or those kept when the last
    /// attempt took the copy.
    #[cfg(feature = "tracing")]
    fn target(&self) -> (Option<&http::Method>, Option<&http::Uri>) {
        match (&self.copy, self.retried.as_deref()) {
            (Some(copy), _) => (Some(copy.method()), Some(copy.uri())),
            (
                None,
                Some(Retried {
                    target: Some((method, uri)),
                    ..
                }),
            ) => (Some(method), Some(uri)),
            _ => (None, None),
        }
    }

    /// The `tower_reset::retry` event: a retry went out. Once per process, a warning when it
    /// went out after a server's `Retry-After` that no layer below waited for: `BackoffLayer`
    /// is missing, or outside `ResetRetryLayer` (see [`crate::preset`]).
    fn retry_sent(&self) {
        #[cfg(feature = "tracing")]
        {
            let (method, uri) = self.target();
            let delay = self
                .retried
                .as_deref()
                .and_then(|retried| retried.notes.delay());
            tracing::info!(
                target: trace::RETRY,
                method = %DisplayOr(method),
                uri = %DisplayOr(uri),
                attempt = self.attempt,
                class = self.previous.map_or("-", FailureClass::as_str),
                delay = ?delay,
                "retrying after a connection failure"
            );
            if self.hinted && delay.is_none() {
                trace::warn_unheeded_hint();
            }
        }
    }

    /// The `tower_reset::give_up` event: the request ends on a failure it could not retry.
    fn give_up(&self, reason: StopReason) {
        #[cfg(feature = "tracing")]
        {
            let (method, uri) = self.target();
            tracing::info!(
                target: trace::GIVE_UP,
                method = %DisplayOr(method),
                uri = %DisplayOr(uri),
                attempts = self.attempt,
                class = self.previous.map_or("-", FailureClass::as_str),
                reason = reason.as_str(),
                "not retrying: {reason}"
            );
        }
        #[cfg(not(feature = "tracing"))]
        let _ = reason;
    }
}

/// Shows a value, or `-` for none (an event field).
#[cfg(feature = "tracing")]
struct DisplayOr<'a, T>(Option<&'a T>);

#[cfg(feature = "tracing")]
impl<T: std::fmt::Display> std::fmt::Display for DisplayOr<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    Req: AttemptRequest,
    S: Service<Req>,
    S::Response: AttemptResponse,
    S::Error: 'static,
    P: RetryPolicy,
    C: ClassifyError<S::Error> + ClassifyResponse<S::Response>,
    R: CloneRequest<Req>,
{
    /// Decides what follows the attempt that just ended with `result`.
    ///
    /// The path of nearly every request is kept apart and small, so that it is inlined into the
    /// future's `poll`: a first attempt that succeeds, with nobody asking for its history, is
    /// handed over as it is (what the general path comes to), without moving the response in
    /// and out of it.
    #[inline]
    pub(super) fn attempt_ended(&mut self, result: Outcome<S, Req>) -> AttemptEnd<Outcome<S, Req>> {
        let classified = match (&result, self.attempt, &self.observer, &self.first_notes) {
            (Ok(response), 1, None, None) => match self.classifier.classify_response(response) {
                None => return AttemptEnd::Done(result),
                failure => failure,
            },
            _ => None,
        };
        self.attempt_ended_in_general(result, classified)
    }

    /// [`attempt_ended`](Self::attempt_ended), for any outcome; `classified` is the failure
    /// class of a response already classified.
    #[inline(never)]
    fn attempt_ended_in_general(
        &mut self,
        result: Outcome<S, Req>,
        classified: Option<FailureClass>,
    ) -> AttemptEnd<Outcome<S, Req>> {
        if self.attempt > 1 {
            if let Some(abandoned) = result.as_ref().err().and_then(AttemptAbandoned::find) {
                // An inner layer refused to send this attempt: the caller gets the real
                // outcome of the attempt before it (unless that was a response the layer
                // abandoned the attempt too late for: it was let go).
                let stop = abandoned.stop_reason();
                // It may have waited for its host before it was abandoned.
                let waited = self.notes().and_then(|notes| notes.take().wait);
                self.retried_mut().unsent_wait = waited;
                self.attempt -= 1;
                let result = self.take_held().unwrap_or(result);
                self.give_up(stop);
                return AttemptEnd::Done(self.finish(result, stop));
            }
            if !self.went_ahead {
                // Ended at its first poll: it went ahead all the same.
                self.retry_sent();
                self.let_go();
            }
        }
        self.went_ahead = false;
        // The attempt was sent: its own outcome replaces the previous one.
        drop(self.take_held());

        let (failure, hint) = match &result {
            Ok(response) => {
                let failure = classified.or_else(|| self.classifier.classify_response(response));
                let hint = failure
                    .and_then(|_| ServerHint::from_headers(response.headers(), SystemTime::now()));
                (failure, hint)
            }
            Err(error) => (self.classifier.classify_error(error), None),
        };
        let reported = self.notes().map(|notes| notes.take()).unwrap_or_default();
        // A first attempt that succeeds needs no history unless someone asked for it or it
        // waited for its host: nothing to allocate.
        if failure.is_some()
            || self.attempt > 1
            || self.observer.is_some()
            || reported.wait.is_some()
        {
            self.summaries.push(
                AttemptSummary::new(self.attempt, failure, reported.delay)
                    .with_wait(reported.wait, !(reported.not_counted && failure.is_some())),
            );
        }
        let Some(failure) = failure else {
            let stop = if result.is_ok() {
                StopReason::Succeeded
            } else {
                StopReason::NotConnectionFailure
            };
            return AttemptEnd::Done(self.finish(result, stop));
        };
        self.previous = Some(failure);
        #[cfg(feature = "tracing")]
        {
            self.hinted = matches!(hint, Some(ServerHint::RetryAfter(_)));
        }
        // What `Backoff` said about a host that refuses connections (see `backoff::RideOut`):
        // a retry it refused while riding it out does not count (the request waits for the
        // host instead, at most the window); a refusal at the end of the window ends the
        // request.
        let uncounted = reported.not_counted;
        if uncounted {
            self.uncounted += 1;
        }
        if reported.ride_out_over {
            self.give_up(StopReason::HostDown);
            return AttemptEnd::Done(self.finish(result, StopReason::HostDown));
        }
        match self.prepare_retry(failure, hint, result.as_ref().ok(), uncounted) {
            Ok(()) => {
                self.retried_mut().held = Some(result);
                AttemptEnd::Retry
            }
            Err(stop) => {
                self.give_up(stop);
                AttemptEnd::Done(self.finish(result, stop))
            }
        }
    }

    /// Prepares the request of the next attempt, or says why there is none. `response` is the
    /// response the failed attempt ended with, if it ended with one; `uncounted`, whether a
    /// host that `Backoff` rides out refused it.
    fn prepare_retry(
        &mut self,
        failure: FailureClass,
        hint: Option<ServerHint>,
        response: Option<&S::Response>,
        uncounted: bool,
    ) -> Result<(), StopReason> {
        let attempt = self.attempt;
        // The attempts that count: those a ridden-out host refused do not.
        let counted = attempt - self.uncounted;
        if counted >= self.max_attempts {
            return Err(StopReason::AttemptsExhausted);
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(StopReason::Deadline);
        }
        if hint == Some(ServerHint::DoNotRetry) {
            return Err(StopReason::ServerSaidNoRetry);
        }
        let copy = self.copy.as_ref().ok_or(StopReason::BodyNotReplayable)?;
        if !self.cloner.can_replay(copy, response.is_some()) {
            return Err(StopReason::BodyNotReplayable);
        }
        let mut view = Attempt::new(copy, failure, attempt);
        if let Some(response) = response {
            if let Some(status) = response.status() {
                view = view.with_response(status, response.headers());
            }
        }
        if self.policy.retry(&view) == Action::Stop {
            return Err(StopReason::NotSafeToRepeat);
        }
        // A protocol refusal cost the server nothing, so it does not spend the budget; nor does
        // a connection refused by a host that is ridden out (the retry waits for it).
        if failure != FailureClass::Refused && !uncounted {
            if let Some(budget) = &self.budget {
                if !budget.try_withdraw() {
                    return Err(StopReason::BudgetSpent);
                }
            }
        }

        let next = attempt + 1;
        // Keep the copy while more attempts may follow. One may even after the last attempt
        // that counts: if that attempt's connection is refused by a host that `Backoff` rides
        // out, it does not count, and the request waits for the host with the copy (without
        // one, a restart that catches a request on its last attempt ends it with the refusal,
        // although the host is back within the window). A copy that cannot be cloned goes
        // with this attempt.
        let clone = self.cloner.clone_request(copy);
        let mut request = match clone {
            Some(request) => request,
            None => self.copy.take().ok_or(StopReason::BodyNotReplayable)?,
        };
        let first_failure = self
            .summaries
            .iter()
            .find_map(AttemptSummary::failure)
            .unwrap_or(failure);
        let first_notes = self.first_notes.take();
        let retried = self.retried.get_or_insert_with(|| {
            Box::new(Retried {
                next: None,
                held: None,
                draining: None,
                drain_budget: 0,
                seed: RandomState::new().hash_one(next),
                notes: first_notes.unwrap_or_else(|| Arc::new(Notes::new())),
                ready_timer: None,
                unsent_wait: None,
                #[cfg(feature = "tracing")]
                target: None,
            })
        });
        #[cfg(feature = "tracing")]
        if self.copy.is_none() && retried.target.is_none() {
            // The events after this one have no copy to read these from.
            retried.target = Some((request.method().clone(), request.uri().clone()));
        }
        let record = AttemptRecord::retry(next, failure)
            .with_first_failure(first_failure)
            .with_hint(hint)
            .with_deadline(self.deadline)
            .with_seed(retried.seed)
            .with_last(self.copy.is_none())
            .with_notes(Arc::clone(&retried.notes));
        request.extensions_mut().insert(record);
        retried.next = Some(request);
        Ok(())
    }
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    S: Service<Req>,
{
    /// The number of the attempt under way (or of the last one sent).
    pub(super) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The outcome held for the attempt under way, taken.
    fn take_held(&mut self) -> Option<Outcome<S, Req>> {
        self.retried.as_deref_mut()?.held.take()
    }
}

impl<S, P, C, R, Req> RetryState<S, P, C, R, Req>
where
    S: Service<Req>,
    S::Response: AttemptResponse,
{
    /// Hands the outcome to the caller, recording the history where someone looks for it.
    fn finish(&mut self, mut result: Outcome<S, Req>, stop: StopReason) -> Outcome<S, Req> {
        drop(self.take_held());
        // More than one attempt, or one that waited for its host: worth telling.
        let multiple = self.attempt > 1 || self.summaries.iter().any(|s| s.waited().is_some());
        if multiple || self.observer.is_some() {
            let unsent_wait = self
                .retried
                .as_deref()
                .and_then(|retried| retried.unsent_wait);
            let history = AttemptHistory::new(std::mem::take(&mut self.summaries), stop)
                .with_unsent_wait(unsent_wait);
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
