//! Drives a stack over the tower-test mock, answering each attempt from a script and recording
//! the (paused) instant at which each attempt reached the mock.
//!
//! In paused time the clock only moves when every task is idle, and then straight to the next
//! timer: an attempt that reaches the mock after a backoff sleep arrives exactly when the sleep
//! ended, so gaps between arrivals are the delays themselves. (Tokio's timer has a resolution of
//! one millisecond and rounds deadlines up: a delay of 12.3 ms is slept as 13 ms. Whole-millisecond
//! delays are therefore exact; see [`ceil_ms`] for the others.)
//!
//! The mock panics when `call` comes without a successful `poll_ready` on the same instance, so
//! every test also checks the readiness discipline of both layers.

use std::io;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_reset::attempt::AttemptAbandoned;
use tower_reset::backoff::policy::{Exponential, Jitter};
use tower_reset::classify::StandardClassifier;
use tower_reset::ResetRetryLayer;
use tower_test::mock;

pub(crate) type Req = http::Request<String>;
pub(crate) type Res = http::Response<()>;
pub(crate) type Mock = mock::Mock<Req, Res>;

pub(crate) const RESET: io::ErrorKind = io::ErrorKind::ConnectionReset;
pub(crate) const REFUSED: io::ErrorKind = io::ErrorKind::ConnectionRefused;

/// What the mock does with one attempt.
pub(crate) enum Answer {
    Respond(Res),
    Fail(io::ErrorKind, &'static str),
}

/// The attempt fails with an io error of this kind and message.
pub(crate) fn fail(kind: io::ErrorKind, message: &'static str) -> Answer {
    Answer::Fail(kind, message)
}

/// The attempt gets a response with this status and no headers.
pub(crate) fn status(status: u16) -> Answer {
    Answer::Respond(
        http::Response::builder()
            .status(status)
            .body(())
            .expect("valid response"),
    )
}

/// The attempt gets a `503` with these headers.
pub(crate) fn unavailable(headers: &[(&str, HeaderValue)]) -> Answer {
    let mut response = http::Response::builder().status(503);
    for (name, value) in headers {
        response = response.header(*name, value.clone());
    }
    Answer::Respond(response.body(()).expect("valid response"))
}

/// A header value from a string.
pub(crate) fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

/// One whole request: the result, every attempt the mock received and when.
pub(crate) struct Run {
    pub(crate) result: Result<Res, BoxError>,
    pub(crate) attempts: Vec<Req>,
    /// When each attempt reached the mock.
    pub(crate) arrivals: Vec<Instant>,
    /// When the request was sent.
    pub(crate) start: Instant,
    /// When the caller got the result.
    pub(crate) end: Instant,
}

impl Run {
    /// The gaps between consecutive attempts, as the mock saw them.
    pub(crate) fn gaps(&self) -> Vec<Duration> {
        self.arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The time from the last attempt's arrival to the caller getting the result.
    pub(crate) fn after_last_attempt(&self) -> Duration {
        self.end - *self.arrivals.last().expect("at least one attempt")
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.end - self.start
    }

    pub(crate) fn response(&self) -> &Res {
        match &self.result {
            Ok(response) => response,
            Err(error) => panic!("expected a response, got the error {error}"),
        }
    }

    pub(crate) fn status(&self) -> u16 {
        self.response().status().as_u16()
    }

    /// The io error the request failed with: the mock's own error, not a wrapper and never an
    /// `AttemptAbandoned`.
    pub(crate) fn io_error(&self) -> &io::Error {
        let Err(error) = &self.result else {
            panic!(
                "expected an error, got the response {:?}",
                self.result.as_ref().map(|r| r.status())
            );
        };
        assert!(
            error.downcast_ref::<AttemptAbandoned>().is_none(),
            "the caller saw an abandoned attempt: {error}"
        );
        error
            .downcast_ref::<io::Error>()
            .unwrap_or_else(|| panic!("the io error itself, not a wrapper: {error:?}"))
    }
}

/// The longest a scripted request may take, in paused time.
const GUARD: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Sends `request` through `layer` over a fresh mock, answering attempts from `script` in
/// order. An attempt beyond the script fails the test.
pub(crate) async fn send<L>(layer: &L, request: Req, script: Vec<Answer>) -> Run
where
    L: Layer<Mock>,
    L::Service: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    <L::Service as Service<Req>>::Future: Send,
{
    let (mock, handle) = mock::pair::<Req, Res>();
    run_on(layer.layer(mock), handle, request, script).await
}

/// Like [`send`], on a service already built over `handle`'s mock.
pub(crate) async fn run_on<S>(
    service: S,
    mut handle: mock::Handle<Req, Res>,
    request: Req,
    script: Vec<Answer>,
) -> Run
where
    S: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    S::Future: Send,
{
    let start = Instant::now();
    let mut call = tokio::spawn(service.oneshot(request));
    // A request that never completes fails the test instead of hanging it. Paused time jumps
    // to the nearest timer, so this far one changes no other timing.
    let guard = tokio::time::sleep(GUARD);
    tokio::pin!(guard);
    let mut script = script.into_iter();
    let mut attempts = Vec::new();
    let mut arrivals = Vec::new();
    loop {
        tokio::select! {
            () = &mut guard => panic!("the request did not complete within {GUARD:?}"),
            result = &mut call => {
                return Run {
                    result: result.expect("the call does not panic"),
                    attempts,
                    arrivals,
                    start,
                    end: Instant::now(),
                };
            }
            Some((request, respond)) = handle.next_request() => {
                arrivals.push(Instant::now());
                let answer = script.next().unwrap_or_else(|| {
                    panic!("unexpected attempt {}: the script is exhausted", attempts.len() + 1)
                });
                attempts.push(request);
                match answer {
                    Answer::Respond(response) => respond.send_response(response),
                    Answer::Fail(kind, message) => {
                        respond.send_error(io::Error::new(kind, message));
                    }
                }
            }
        }
    }
}

pub(crate) fn get(path: &str) -> Req {
    http::Request::get(path)
        .body(String::new())
        .expect("valid request")
}

/// `ResetRetry` with no budget and at most `max_attempts` attempts.
pub(crate) fn retry(max_attempts: u32) -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(max_attempts)
        .build()
        .expect("valid retry settings")
}

/// Like [`retry`], and `503` responses are failures of class `Unavailable`.
pub(crate) fn retry_unavailable(max_attempts: u32) -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(max_attempts)
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .expect("valid retry settings")
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// An exponential schedule without jitter: `base`, doubling, capped at `max` (in ms).
pub(crate) fn exponential(base: u64, max: u64) -> Exponential {
    Exponential::builder()
        .base(ms(base))
        .max(ms(max))
        .jitter(Jitter::None)
        .build()
        .expect("valid schedule")
}

/// How long tokio sleeps for `delay` in paused time, from a whole millisecond: its timer rounds
/// deadlines up to the next millisecond.
pub(crate) fn ceil_ms(delay: Duration) -> Duration {
    let nanos = delay.as_nanos().div_ceil(1_000_000) * 1_000_000;
    Duration::from_nanos(u64::try_from(nanos).expect("a delay below 584 years"))
}
