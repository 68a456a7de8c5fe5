//! Decide **whether** a failed request may go out again.
//!
//! [`ResetRetry`] sends a request again when the connection under it failed, and only when that
//! is safe. Three questions are asked, in this order, each by its own part:
//!
//! 1. *Is this a connection failure, and how far did the request get?* The classifier
//!    ([`crate::classify`]) answers with a [`FailureClass`](crate::classify::FailureClass), or
//!    with "not ours" for timeouts, TLS errors, 4xx and the like, which are returned untouched.
//! 2. *May another attempt start?* The limits: at most `max_attempts` in total, an optional
//!    deadline, and a [`Budget`] shared by every service of the layer so that retries cannot
//!    multiply the load of a struggling server. Protocol refusals (h2 `REFUSED_STREAM`, graceful
//!    `GOAWAY`) do not spend the budget, since the server did no work, but still count against
//!    `max_attempts`. A retry refused by a host that `BackoffLayer` rides out (it refuses
//!    connections, see [`RideOut`](crate::backoff::RideOut)) counts against neither: the request
//!    waits for the host instead, for at most the ride-out window.
//! 3. *Is it safe to send this request again?* The [`policy`]: by default, a request the server
//!    never processed may be retried whatever its method, and a request whose outcome is unknown
//!    only if it is idempotent.
//!
//! A server that answers "do not retry" (a negative `grpc-retry-pushback-ms` on a response the
//! classifier reported as a failure) is obeyed as well. When any answer is no, the error of the
//! last attempt is returned as it is: not wrapped, so `downcast_ref` and `source()` work as if
//! the layer were not there.
//!
//! # Cost
//!
//! A request that can never be retried (the policy's [`may_retry`](policy::RetryPolicy::may_retry)
//! says so, the request cannot be copied, or `max_attempts` is 1) goes straight to the inner
//! service: no copy, no allocation, no clock read. A retryable request is copied once before it
//! is sent (the copy is needed because sending consumes the body), deposits into the budget (one
//! clock read), and keeps a clone of the inner service for the next attempt, as `tower::retry`
//! does. What only a retried request needs (the previous outcome, the next request, the notes
//! of the layers below) is allocated with its first retry, so that the response future of a
//! request that succeeds at once carries nothing more: over a hyper-util `Client` it is about the
//! size of `tower::retry`'s. `benches/healthy` measures what each layer adds to a request to a
//! real server.
//!
//! # What a retry cannot fix
//!
//! A connection that fails in the middle of the response *body* fails after the service call
//! returned its response: that error reaches the caller while reading the body, out of reach of
//! this layer. And a retry cannot undo a request the server already processed: that is why the
//! policy refuses to repeat non-idempotent requests whose outcome is unknown.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceBuilder;
//! use tower_reset::ResetRetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let service = ServiceBuilder::new()
//!     .layer(ResetRetryLayer::new())
//!     .service(client);
//! # let _ = service;
//! # }
//! ```

mod budget;
pub mod future;
mod layer;
pub mod policy;
mod retry_state;

pub use self::budget::{Budget, RetryBudget};
pub use self::future::ResponseFuture;
#[allow(deprecated)]
pub use self::layer::Builder;
pub use self::layer::{ResetRetryBuilder, ResetRetryLayer};
pub use self::retry_state::DRAIN_LIMIT;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;

use self::layer::Limits;
use self::policy::{CloneBody, CloneRequest, RetryPolicy, StandardRetry};
use self::retry_state::RetryState;
use crate::attempt::{
    self, AttemptRequest, AttemptResponse, FirstAttemptNotes, HistoryObserver, Notes, StopReason,
};
use crate::classify::{ClassifyError, ClassifyResponse, StandardClassifier};

/// Sends a failed request again when the connection failed and doing so is safe; see the
/// [module documentation](self).
///
/// Made by [`ResetRetryLayer`].
pub struct ResetRetry<S, P = StandardRetry, C = StandardClassifier, R = CloneBody> {
    inner: S,
    policy: P,
    classifier: C,
    cloner: R,
    limits: Limits,
}

impl<S> ResetRetry<S> {
    /// Wraps `inner` with the standard settings of [`ResetRetryLayer::new`], including a budget
    /// of its own.
    pub fn new(inner: S) -> Self {
        Self::from_parts(
            inner,
            StandardRetry::new(),
            StandardClassifier::new(),
            CloneBody,
            Limits::standard(),
        )
    }
}

impl<S, P, C, R> ResetRetry<S, P, C, R> {
    pub(crate) fn from_parts(
        inner: S,
        policy: P,
        classifier: C,
        cloner: R,
        limits: Limits,
    ) -> Self {
        Self {
            inner,
            policy,
            classifier,
            cloner,
            limits,
        }
    }

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

impl<S, P, C, R, Req> Service<Req> for ResetRetry<S, P, C, R>
where
    Req: AttemptRequest,
    S: Service<Req> + Clone,
    S::Response: AttemptResponse,
    S::Error: 'static,
    P: RetryPolicy + Clone,
    C: ClassifyError<S::Error> + ClassifyResponse<S::Response> + Clone,
    R: CloneRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, P, C, R, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Req) -> Self::Future {
        let never = if self.limits.max_attempts <= 1 {
            Some(StopReason::AttemptsExhausted)
        } else if !self.policy.may_retry(&request) {
            Some(StopReason::NotSafeToRepeat)
        } else {
            None
        };
        // Kept as the `Option` it is made in, and moved once, into the future: this is the path
        // of every retryable request.
        let copy = match never {
            None => self.cloner.clone_request(&request),
            Some(_) => None,
        };
        if copy.is_none() {
            // Fast path: this request is sent once, as it is.
            let reason = never.unwrap_or(StopReason::BodyNotReplayable);
            return match request.extensions().get::<HistoryObserver>().cloned() {
                None => ResponseFuture::once(self.inner.call(request)),
                Some(observer) => ResponseFuture::observed(
                    self.inner.call(request),
                    observer,
                    self.classifier.clone(),
                    reason,
                ),
            };
        }

        if let Some(budget) = &self.limits.budget {
            budget.deposit();
        }
        let deadline = self
            .limits
            .deadline
            .and_then(|deadline| Instant::now().checked_add(deadline));
        let observer = request.extensions().get::<HistoryObserver>().cloned();
        // While some host refuses connections, the first attempt carries notes (not a record:
        // a first attempt has none), so that `Backoff` can report holding it for its host and
        // count that against the request's ride-out window (see `backoff::RideOut`).
        let notes = attempt::any_host_down().then(|| Arc::new(Notes::new()));
        if let Some(notes) = &notes {
            let first = FirstAttemptNotes::new(Arc::clone(notes), deadline);
            request.extensions_mut().insert(first);
        }

        // `self.inner` was polled ready: it is the one that takes this request (and the caller
        // polls it ready again before the next). The retries go to a clone, which they poll
        // ready before each call.
        let future = self.inner.call(request);
        ResponseFuture::retrying(
            future,
            RetryState::new(
                self.inner.clone(),
                self.policy.clone(),
                self.classifier.clone(),
                self.cloner.clone(),
                copy,
                &self.limits,
                deadline,
                observer,
                notes,
            ),
        )
    }
}

impl<S: Clone, P: Clone, C: Clone, R: Clone> Clone for ResetRetry<S, P, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
            cloner: self.cloner.clone(),
            limits: self.limits.clone(),
        }
    }
}

impl<S: fmt::Debug, P: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug
    for ResetRetry<S, P, C, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetRetry")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .field("cloner", &self.cloner)
            .field("limits", &self.limits)
            .finish()
    }
}
