//! Drives a service stack over the tower-test mock, answering each attempt from a script and
//! recording the instant at which each attempt reached the mock.
//!
//! Used by the `reset_retry` and `backoff` test binaries. The mock panics when `call` comes
//! without a successful `poll_ready` on the same instance, so every test that goes through here
//! also checks the readiness discipline of the layers under test.
//!
//! In paused time the clock only moves when every task is idle, and then straight to the next
//! timer: an attempt that reaches the mock after a backoff sleep arrives exactly when the sleep
//! ended, so gaps between arrivals are the delays themselves.

// Shared by several test binaries, each of which uses only a part.
#![allow(dead_code)]

use std::io;
use std::time::Duration;

use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_reset::attempt::AttemptAbandoned;
use tower_test::mock;

pub(crate) type Req = http::Request<String>;
pub(crate) type Res = http::Response<()>;
pub(crate) type Mock = mock::Mock<Req, Res>;

pub(crate) const RESET: io::ErrorKind = io::ErrorKind::ConnectionReset;
pub(crate) const REFUSED: io::ErrorKind = io::ErrorKind::ConnectionRefused;

/// What the mock does with one attempt.
pub(crate) enum Answer {
    /// Answers with this response.
    Respond(Res),
    /// Fails with an io error of this kind and message.
    Fail(io::ErrorKind, &'static str),
    /// Fails with this error.
    FailWith(BoxError),
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

/// A current-thread runtime whose clock starts paused, for property tests that drive many
/// requests in one test.
pub(crate) fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// A fixed proptest seed, so that CI runs the same cases every time: `default`, or
/// `PROPTEST_RNG_SEED` to explore other cases locally.
pub(crate) fn fixed_seed(default: u64) -> proptest::test_runner::RngSeed {
    use proptest::test_runner::RngSeed;
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .map_or(RngSeed::Fixed(default), RngSeed::Fixed)
}

pub(crate) fn get(path: &str) -> Req {
    http::Request::get(path)
        .body(String::new())
        .expect("valid request")
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
pub(crate) async fn run<L>(layer: &L, request: Req, script: Vec<Answer>) -> Run
where
    L: Layer<Mock>,
    L::Service: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    <L::Service as Service<Req>>::Future: Send,
{
    let (mock, handle) = mock::pair::<Req, Res>();
    run_on(layer.layer(mock), handle, request, script).await
}

/// Like [`run`], on a service already built over `handle`'s mock.
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
                    Answer::FailWith(error) => respond.send_error(error),
                }
            }
        }
    }
}
