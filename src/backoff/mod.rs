//! Decide **when** the next attempt may go out.
//!
//! Retrying a reset at once is right when the cause was a stale pooled connection: a fresh
//! connection fixes it, and waiting only adds latency. It is wrong when the server is overloaded
//! or restarting: an immediate retry from every client at once is a retry storm that keeps it
//! down. [`Backoff`] tells the two apart by the [`AttemptRecord`] that
//! [`ResetRetry`](crate::ResetRetry) puts on each retry:
//!
//! * the **first retry after a connection failure** (never sent, refused, or reset) goes out at
//!   once;
//! * **later retries**, and retries after the server answered "unavailable", wait for the next
//!   delay of a [`Schedule`]: by default exponential, 50 ms doubling to 2 s,
//!   with full jitter so that clients that failed together do not retry together;
//! * a **server hint** (`Retry-After` in seconds or as an HTTP-date, `grpc-retry-pushback-ms`) is
//!   honoured as a minimum wait. A hint longer than [`max_hint`](BackoffLayer::max_hint), or a
//!   negative pushback, means *no retry*, not a shorter wait;
//! * the **deadline** is never slept past: when the wait would end after it, the attempt is not
//!   sent and the caller gets the last real failure at once. (tokio's timer wakes at whole
//!   milliseconds, so a wait that ends exactly at the deadline may start the attempt up to 1 ms
//!   after it.)
//! * a host that **refuses connections** (nothing listens: a restart, a deploy) is ridden out:
//!   requests to it, new ones and retries, wait for it behind one probe, for up to 2 s and never
//!   past the deadline, instead of each failing or retrying on its own timer; when it answers
//!   again they are released spread out. A retry it refuses meanwhile does not count against
//!   the attempts. See [`ride_out`] (on by default, [`BackoffLayer::ride_out`] to change it).
//!
//! An attempt that must not go out ends with an [`AttemptAbandoned`] error, which `ResetRetry`
//! replaces with the outcome of the previous attempt; the caller never sees it when the layers
//! are stacked.
//!
//! A request without a record (a first attempt, or a request that did not come through
//! `ResetRetry`) goes straight to the inner service: no timer, no allocation, no lock; its host
//! is hashed and one atomic bit read, to know whether the host refuses connections (then the
//! request waits for it, see [`ride_out`]). While it sleeps or waits, the layer holds no
//! readiness of the inner service (a concurrency permit, a buffer slot): it polls the service
//! ready only once the wait is over. Dropping the response future cancels the sleep; no task is
//! spawned.
//!
//! The error type is [`tower::BoxError`], like tower's own `Timeout`: the inner service's error
//! is boxed as it is, so `downcast_ref` still finds it.
//!
//! [`AttemptRecord`]: crate::attempt::AttemptRecord
//! [`AttemptAbandoned`]: crate::attempt::AttemptAbandoned

pub mod future;
mod layer;
pub mod policy;
pub mod ride_out;

pub use self::future::ResponseFuture;
pub use self::layer::BackoffLayer;
pub use self::ride_out::{RideOut, RideOutBuilder, RideOutStatus};

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::BoxError;
use tower_service::Service;

use self::policy::{Exponential, Schedule};
use self::ride_out::{Admission, Arrival, Sent, Ticket, Watch};
use crate::attempt::{AttemptRecord, AttemptRequest, StopReason};
use crate::classify::FailureClass;
use crate::hint::ServerHint;
use crate::trace::{self, event};

/// Waits before each retry; see the [module documentation](self).
///
/// Made by [`BackoffLayer`].
#[derive(Debug, Clone)]
pub struct Backoff<S, B = Exponential> {
    inner: S,
    config: BackoffLayer<B>,
}

/// What to do with one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Now,
    After(Duration),
    Abandon(StopReason),
}

impl<S> Backoff<S> {
    /// Wraps `inner` with the settings of [`BackoffLayer::new`].
    pub fn new(inner: S) -> Self {
        Self::from_layer(inner, BackoffLayer::new())
    }
}

impl<S, B> Backoff<S, B> {
    pub(crate) fn from_layer(inner: S, config: BackoffLayer<B>) -> Self {
        Self { inner, config }
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

    /// How many hosts refuse connections and how many requests wait for them now, over every
    /// service of the layer that made this one (see [`RideOut`]).
    pub fn ride_out_status(&self) -> RideOutStatus {
        self.config.ride_out_status()
    }
}

impl<S, B: Schedule> Backoff<S, B> {
    fn decide(&self, record: &AttemptRecord) -> Decision {
        if record.is_first() {
            return Decision::Now;
        }
        let hinted = match record.hint() {
            Some(ServerHint::DoNotRetry) => {
                return Decision::Abandon(StopReason::ServerSaidNoRetry);
            }
            Some(ServerHint::RetryAfter(wait)) if wait > self.config.max_hint => {
                return Decision::Abandon(StopReason::HintTooLong);
            }
            Some(ServerHint::RetryAfter(wait)) => wait,
            _ => Duration::ZERO,
        };
        let Some(scheduled) = self.scheduled_delay(record) else {
            return Decision::Abandon(StopReason::ScheduleExhausted);
        };
        let delay = scheduled.max(hinted);
        if let Some(deadline) = record.deadline() {
            let ends_in_time = Instant::now()
                .checked_add(delay)
                .is_some_and(|end| end <= deadline);
            if !ends_in_time {
                return Decision::Abandon(StopReason::Deadline);
            }
        }
        if delay.is_zero() {
            Decision::Now
        } else {
            Decision::After(delay)
        }
    }

    /// The schedule's delay for this attempt; `None` when the schedule has run out.
    fn scheduled_delay(&self, record: &AttemptRecord) -> Option<Duration> {
        // A connection failure first: the first retry went out at once, and the schedule starts
        // with the second.
        let immediate = self.config.immediate_first_retry
            && record
                .first_failure()
                .is_some_and(FailureClass::is_connection_failure);
        let retry = record.number().saturating_sub(2);
        if immediate && retry == 0 {
            return Some(Duration::ZERO);
        }
        let step = retry - u32::from(immediate);
        let seed = self.config.seed.unwrap_or(record.seed());
        self.config
            .schedule
            .delays(seed)
            .nth(usize::try_from(step).ok()?)
    }
}

impl<S, B, Req> Service<Req> for Backoff<S, B>
where
    Req: AttemptRequest,
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    B: Schedule,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let record = AttemptRecord::of(&request);
        let watch = match &self.config.registry {
            None => Watch::none(),
            Some(registry) => {
                let key = registry.key(&request);
                if registry.may_be_down(key) {
                    let registry = Arc::clone(registry);
                    return self.ride_out(request, Watch::new(registry, key));
                }
                Watch::new(Arc::clone(registry), key)
            }
        };
        if record.is_first() {
            // The happy path: a first attempt to a host not known to be down goes at once.
            return ResponseFuture::now(self.inner.call(request), watch);
        }
        // A retry: were the host to refuse it, the request's notes would say so.
        let watch = watch.with_record(record);
        let decision = self.decide(record);
        self.act(decision, request, watch)
    }
}

impl<S: Clone, B: Schedule> Backoff<S, B> {
    /// Carries out `decision` for `request`.
    #[inline]
    fn act<Req>(&mut self, decision: Decision, request: Req, watch: Watch) -> ResponseFuture<S, Req>
    where
        Req: AttemptRequest,
        S: Service<Req>,
    {
        let record = AttemptRecord::of(&request);
        match decision {
            Decision::Now => {
                if !record.is_first() {
                    record.report_delay(Duration::ZERO);
                }
                ResponseFuture::now(self.inner.call(request), watch)
            }
            Decision::Abandon(reason) => abandon(record, reason),
            Decision::After(delay) => {
                event!(
                    debug,
                    target: trace::BACKOFF,
                    attempt = record.number(),
                    ?delay,
                    "backing off before the next attempt"
                );
                record.report_delay(delay);
                let service = self.give_up_readiness();
                ResponseFuture::after(tokio::time::sleep(delay), service, request, watch)
            }
        }
    }

    /// An attempt to a host that may be down: held while it is (see [`RideOut`]).
    #[cold]
    #[inline(never)]
    fn ride_out<Req>(&mut self, request: Req, watch: Watch) -> ResponseFuture<S, Req>
    where
        Req: AttemptRequest,
        S: Service<Req>,
    {
        let record = &AttemptRecord::for_ride_out(&request);
        let decision = self.decide(record);
        // What the server said, and a schedule that ended, still hold; a wait for the host
        // takes the place of the backoff delay (and ends at the deadline).
        if let Decision::Abandon(reason) = decision {
            if reason != StopReason::Deadline {
                return abandon(record, reason);
            }
        }
        // A retry refused as usual reports it (a first attempt counts whatever happens to it:
        // it is how the host is found down).
        let mut watch = match record.is_first() {
            true => watch,
            false => watch.with_record(record),
        };
        let Some((registry, key)) = watch.registry() else {
            return self.act(decision, request, watch);
        };
        let registry = Arc::clone(registry);
        let arrival = Arrival {
            first: record.is_first(),
            may_probe: record.notes().is_some() && !record.is_last(),
            waited: record.waited(),
            deadline: record.deadline(),
        };
        match registry.admit(key, || host_name(&request), arrival) {
            Admission::Go => self.act(decision, request, watch),
            Admission::Probe => {
                if !record.is_first() {
                    record.report_delay(Duration::ZERO);
                }
                watch.sending(Sent::Probe, record);
                ResponseFuture::now(self.inner.call(request), watch)
            }
            Admission::NoRoom if record.is_first() => {
                // It goes out, to fail with its own error if the host is still down.
                watch.sending(Sent::LastLook, record);
                ResponseFuture::now(self.inner.call(request), watch)
            }
            Admission::NoRoom => abandon(record, StopReason::HostDown),
            Admission::Wait(id) => {
                event!(
                    debug,
                    target: trace::BACKOFF,
                    attempt = record.number(),
                    window = ?registry.config().window().saturating_sub(arrival.waited),
                    "holding the attempt: its host refuses connections"
                );
                if !record.is_first() {
                    record.report_delay(Duration::ZERO);
                }
                let ticket = Ticket::new(registry, key, id, Instant::now());
                let service = self.give_up_readiness();
                ResponseFuture::held(ticket, service, request, watch)
            }
        }
    }

    /// Gives up the readiness `poll_ready` reserved (a permit, a buffer slot) rather than hold
    /// it while waiting: the ready service is dropped, and the attempt uses a clone that it
    /// polls ready once the wait is over.
    fn give_up_readiness(&mut self) -> S {
        let fresh = self.inner.clone();
        drop(mem::replace(&mut self.inner, fresh));
        self.inner.clone()
    }
}

/// The future of an attempt that must not go out.
fn abandon<S, Req>(record: &AttemptRecord, reason: StopReason) -> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    event!(
        debug,
        target: trace::BACKOFF,
        attempt = record.number(),
        reason = reason.as_str(),
        "attempt abandoned before it was sent: {}",
        reason
    );
    ResponseFuture::abandoned(reason)
}

/// `scheme://authority` of `request`, for the events.
fn host_name<R: AttemptRequest + ?Sized>(request: &R) -> String {
    let uri = request.uri();
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        (None, Some(authority)) => authority.to_string(),
        _ => "(no authority)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::policy::{delays_fn, Constant, Jitter};

    fn layer() -> BackoffLayer<Constant> {
        BackoffLayer::new().schedule(Constant::new(Duration::from_millis(100)))
    }

    fn decide<B: Schedule>(layer: BackoffLayer<B>, record: AttemptRecord) -> Decision {
        Backoff::from_layer((), layer).decide(&record)
    }

    #[test]
    fn a_first_attempt_goes_out_now() {
        assert_eq!(decide(layer(), AttemptRecord::FIRST), Decision::Now);
    }

    #[test]
    fn the_first_retry_after_a_connection_failure_goes_out_now() {
        for class in [
            FailureClass::NeverSent,
            FailureClass::Refused,
            FailureClass::UnknownOutcome,
        ] {
            assert_eq!(
                decide(layer(), AttemptRecord::retry(2, class)),
                Decision::Now
            );
            assert_eq!(
                decide(layer(), AttemptRecord::retry(3, class)),
                Decision::After(Duration::from_millis(100))
            );
        }
        let unavailable = AttemptRecord::retry(2, FailureClass::Unavailable);
        assert_eq!(
            decide(layer(), unavailable),
            Decision::After(Duration::from_millis(100))
        );
        let eager = layer().immediate_first_retry(false);
        let reset = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        assert_eq!(
            decide(eager, reset),
            Decision::After(Duration::from_millis(100))
        );
    }

    #[test]
    fn the_schedule_starts_after_the_immediate_retry() {
        let exact = BackoffLayer::new().schedule(
            Exponential::builder()
                .base(Duration::from_millis(10))
                .jitter(Jitter::None)
                .build()
                .unwrap(),
        );
        let delays: Vec<Decision> = (2..=5)
            .map(|n| {
                let record = AttemptRecord::retry(n, FailureClass::UnknownOutcome);
                decide(exact.clone(), record)
            })
            .collect();
        let after = |ms| Decision::After(Duration::from_millis(ms));
        assert_eq!(delays, vec![Decision::Now, after(10), after(20), after(40)]);
    }

    #[test]
    fn a_schedule_that_ends_abandons_the_attempt() {
        let two = BackoffLayer::new()
            .schedule(delays_fn(|_| [Duration::from_millis(5)].into_iter()))
            .immediate_first_retry(false);
        let second = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        assert_eq!(
            decide(two.clone(), second),
            Decision::After(Duration::from_millis(5))
        );
        let third = AttemptRecord::retry(3, FailureClass::UnknownOutcome);
        assert!(matches!(decide(two, third), Decision::Abandon(_)));
    }
}
