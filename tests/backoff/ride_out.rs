//! Riding out a host that refuses connections (`backoff::RideOut`), in paused time: who waits
//! and for how long, the probes and their schedule, the release, the window, the deadline, the
//! bounds, and a 30 s outage at 200 requests a second.
//!
//! Most tests run over [`Host`], a service that refuses connections (an `io::Error` of kind
//! `ConnectionRefused`, at once) while it is down and answers `200` after, and that records
//! every attempt; the first one runs over the tower-test mock, which also checks that a held
//! attempt is sent on a service polled ready.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::limit::ConcurrencyLimitLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{AttemptHistory, HistoryObserver, StopReason};
use tower_reset::backoff::RideOut;
use tower_reset::classify::FailureClass;
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::harness::*;

/// What [`Host`] does with the attempts that reach it from some instant on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Fails at once with `ConnectionRefused`.
    Refuse,
    /// Answers `200` at once.
    Answer,
    /// Never answers.
    Hang,
}

/// A host that refuses connections, answers or hangs, by phases, for requests to
/// `down.test`; requests to any other authority are answered at once.
#[derive(Clone)]
struct Host {
    state: Arc<Mutex<HostState>>,
}

struct HostState {
    /// Each phase from its instant on, in order.
    phases: Vec<(Instant, Phase)>,
    attempts: Vec<Seen>,
}

/// One attempt that reached the host.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    phase: Phase,
}

impl Host {
    /// Refuses from now until `after`, answers after that.
    fn refusing_for(after: Duration) -> Self {
        let now = Instant::now();
        Self::phases(vec![(now, Phase::Refuse), (now + after, Phase::Answer)])
    }

    /// Refuses from now on.
    fn down() -> Self {
        Self::phases(vec![(Instant::now(), Phase::Refuse)])
    }

    fn phases(phases: Vec<(Instant, Phase)>) -> Self {
        Self {
            state: Arc::new(Mutex::new(HostState {
                phases,
                attempts: Vec::new(),
            })),
        }
    }

    fn attempts(&self) -> Vec<Seen> {
        self.state.lock().unwrap().attempts.clone()
    }

    /// When the attempts for `path` arrived, relative to `start`.
    fn arrivals(&self, path: &str, start: Instant) -> Vec<Duration> {
        self.attempts()
            .iter()
            .filter(|seen| seen.path == path)
            .map(|seen| seen.at - start)
            .collect()
    }
}

impl Service<Req> for Host {
    type Response = Res;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Res, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let now = Instant::now();
        let phase = if request.uri().host() == Some("down.test") {
            let mut state = self.state.lock().unwrap();
            let phase = state
                .phases
                .iter()
                .rev()
                .find(|(from, _)| *from <= now)
                .map_or(Phase::Answer, |(_, phase)| *phase);
            state.attempts.push(Seen {
                at: now,
                path: request.uri().path().to_owned(),
                phase,
            });
            phase
        } else {
            Phase::Answer
        };
        match phase {
            Phase::Refuse => Box::pin(std::future::ready(Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused",
            )
            .into()))),
            Phase::Answer => Box::pin(std::future::ready(Ok(http::Response::new(())))),
            Phase::Hang => Box::pin(std::future::pending()),
        }
    }
}

/// A window of `window` ms and probes after `base` ms, doubling to `max` ms, without jitter.
fn ride_out(window: u64, base: u64, max: u64) -> RideOut {
    RideOut::builder()
        .window(ms(window))
        .probes(exponential(base, max))
        .build()
        .expect("valid ride-out settings")
}

/// `BackoffLayer` with seed 42 and `ride_out`.
fn backoff(ride_out: RideOut) -> BackoffLayer {
    BackoffLayer::new().seed(42).ride_out(ride_out)
}

/// A `GET` of `path` on the host that goes down.
fn down(path: &str) -> Req {
    get(&format!("http://down.test{path}"))
}

/// How one request ended.
struct Ended {
    result: Result<Res, BoxError>,
    history: Option<AttemptHistory>,
    started: Instant,
    ended: Instant,
}

impl Ended {
    fn elapsed(&self) -> Duration {
        self.ended - self.started
    }

    fn history(&self) -> &AttemptHistory {
        self.history.as_ref().expect("the observer got the history")
    }

    /// The io error the request failed with: the host's own, unwrapped.
    fn io_error(&self) -> &io::Error {
        let error = self.result.as_ref().expect_err("an error");
        error
            .downcast_ref::<io::Error>()
            .unwrap_or_else(|| panic!("the io error itself: {error:?}"))
    }
}

/// Sends `request` through `service` after `delay`, in a task of its own.
fn spawn_at<S>(service: &S, delay: Duration, mut request: Req) -> JoinHandle<Ended>
where
    S: Service<Req, Response = Res, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    let service = service.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let observer = HistoryObserver::attach(&mut request);
        let started = Instant::now();
        let result = service.oneshot(request).await;
        Ended {
            result,
            history: observer.get(),
            started,
            ended: Instant::now(),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_refused_connection_waits_for_the_probes_which_do_not_count() {
    // Two attempts at most: the probes the host refused are not counted.
    let layer = ServiceBuilder::new()
        .layer(retry(2))
        .layer(backoff(ride_out(2000, 10, 80)));
    let script = vec![
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        status(200),
    ];
    let run = send(&layer, down("/a"), script).await;
    assert_eq!(run.status(), 200);
    // The first probe 10 ms after the refusal, then each 20 ms, 40 ms after the one before.
    assert_eq!(run.gaps(), [10, 20, 40].map(ms).to_vec());
    let history = run.response().extensions().get::<AttemptHistory>().unwrap();
    assert_eq!(history.attempts(), 4);
    assert_eq!(history.failures(), vec![FailureClass::NeverSent; 3]);
    let summaries = history.summaries();
    assert_eq!(
        summaries[0].waited(),
        None,
        "the first attempt went out at once"
    );
    assert!(
        summaries[0].counted(),
        "the refusal that found the host down counts"
    );
    for (summary, waited) in summaries[1..].iter().zip([10, 20, 40]) {
        assert_eq!(summary.waited(), Some(ms(waited)));
        assert_eq!(summary.delay(), Some(Duration::ZERO), "no backoff besides");
    }
    assert!(
        !summaries[1].counted() && !summaries[2].counted(),
        "refused probes do not"
    );
    assert!(summaries[3].counted(), "the answered probe");
    assert_eq!(history.total_waited(), ms(70));
    assert_eq!(history.stop_reason(), StopReason::Succeeded);
    assert_eq!(
        history.to_string(),
        "4 attempts (never_sent, never_sent after 0ns waited 10ms (not counted), never_sent \
         after 0ns waited 20ms (not counted), ok after 0ns waited 40ms); stopped: the request \
         succeeded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_host_refuses_does_not_count_and_waits_for_it() {
    // A GET reset when the server died: the retry goes at once, on a new connection, and is
    // refused. That refusal finds the host down; it does not count, and the request waits:
    // after three refusals, its third attempt (the last it is allowed) is sent.
    let layer = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(ride_out(2000, 10, 80)));
    let script = vec![
        fail(RESET, "reset"),
        fail(REFUSED, "refused"),
        fail(REFUSED, "refused"),
        status(200),
    ];
    let run = send(&layer, down("/a"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), [0, 10, 20].map(ms).to_vec());
    let history = run.response().extensions().get::<AttemptHistory>().unwrap();
    let counted: Vec<bool> = history.summaries().iter().map(|s| s.counted()).collect();
    assert_eq!(counted, [true, false, false, true]);

    // With two attempts, the retry is the last that counts; a copy is kept all the same, so
    // that its refusal does not count either and the request waits for the host (before, the
    // refusal of a request's last attempt ended it, the host back or not).
    let layer = ServiceBuilder::new()
        .layer(retry(2))
        .layer(backoff(ride_out(2000, 10, 80)));
    let script = vec![fail(RESET, "reset"), fail(REFUSED, "refused"), status(200)];
    let run = send(&layer, down("/b"), script).await;
    assert_eq!(run.status(), 200);
    let history = run.response().extensions().get::<AttemptHistory>().unwrap();
    let counted: Vec<bool> = history.summaries().iter().map(|s| s.counted()).collect();
    assert_eq!(counted, [true, false, true]);

    // Without `Backoff`, nothing rides the host out: the refusal of the last attempt counts and
    // ends the request.
    let layer = ServiceBuilder::new().layer(retry(2));
    let mut request = down("/c");
    let observer = HistoryObserver::attach(&mut request);
    let script = vec![fail(RESET, "reset"), fail(REFUSED, "refused")];
    let run = send(&layer, request, script).await;
    assert_eq!(run.io_error().kind(), io::ErrorKind::ConnectionRefused);
    let history = observer.get().unwrap();
    assert_eq!(history.stop_reason(), StopReason::AttemptsExhausted);
    assert!(history.summaries().iter().all(|s| s.counted()));
}

#[tokio::test(start_paused = true)]
async fn without_riding_out_the_retry_after_a_refusal_is_immediate() {
    let layer = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(RideOut::off()).schedule(exponential(10, 80)));
    let script = vec![fail(REFUSED, "refused"), status(200)];
    let run = send(&layer, down("/a"), script).await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.gaps(), vec![Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn a_long_outage_ends_the_request_at_the_window_with_its_own_error() {
    let host = Host::down();
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(ride_out(500, 10, 80)))
        .service(host.clone());
    let ended = spawn_at(&service, Duration::ZERO, down("/a"))
        .await
        .unwrap();

    assert_eq!(ended.io_error().kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(ended.elapsed(), ms(500));
    let history = ended.history();
    assert_eq!(history.stop_reason(), StopReason::HostDown);
    assert_eq!(history.total_waited(), ms(500));
    // The refusal and the probes on their schedule; at the end of the window the host had
    // refused its last probe 30 ms before: no other attempt.
    assert_eq!(
        host.arrivals("/a", start),
        [0, 10, 30, 70, 150, 230, 310, 390, 470].map(ms).to_vec()
    );
    assert_eq!(history.unsent_wait(), Some(ms(30)));
}

#[tokio::test(start_paused = true)]
async fn requests_that_start_while_the_host_is_down_wait_and_are_released_spread() {
    let host = Host::refusing_for(ms(300));
    let start = Instant::now();
    let layer = backoff(ride_out(2000, 10, 80));
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(layer.clone())
        .service(host.clone());
    let calls: Vec<_> = (0..16)
        .map(|i| spawn_at(&service, ms(20 * i), down(&format!("/r{i}"))))
        .collect();
    tokio::time::sleep(ms(250)).await;
    let status = layer.ride_out_status();
    assert_eq!((status.hosts_down(), status.waiting()), (1, 13));
    let mut ended = Vec::new();
    for call in calls {
        ended.push(call.await.unwrap());
    }

    for (i, ended) in ended.iter().enumerate() {
        assert_eq!(ended.result.as_ref().unwrap().status(), 200, "request {i}");
        let history = ended.history();
        assert_eq!(history.stop_reason(), StopReason::Succeeded);
        // Each waited until the probe got an answer, 310 ms after the start, and then for
        // its turn in the release.
        let waited = history.total_waited();
        let from = ms(20 * i as u64);
        assert!(
            ms(310) - from <= waited && waited <= ms(345) - from,
            "{i}: {waited:?}"
        );
        if i > 0 {
            let summary = &history.summaries()[0];
            assert_eq!(summary.waited().map(|_| ()), Some(()), "{i} waited at once");
        }
    }
    let attempts = host.attempts();
    let refused: Vec<Duration> = attempts
        .iter()
        .filter(|seen| seen.phase == Phase::Refuse)
        .map(|seen| seen.at - start)
        .collect();
    // The first request's refusal, and the probes: nobody else tried while the host was down.
    assert_eq!(refused, [0, 10, 30, 70, 150, 230].map(ms).to_vec());
    let answered: Vec<Duration> = attempts
        .iter()
        .filter(|seen| seen.phase == Phase::Answer)
        .map(|seen| seen.at - start)
        .collect();
    assert_eq!(answered.len(), 16);
    assert_eq!(answered[0], ms(310), "the probe that found the host back");
    // The 15 others, released oldest first, 2 ms apart (jittered within their slot).
    for (n, window) in answered[1..].windows(2).enumerate() {
        assert!(window[1] >= window[0], "{n}: {answered:?}");
    }
    assert!(
        *answered.last().unwrap() <= ms(310 + 30 + 2),
        "{answered:?}"
    );
    let in_10_ms = answered
        .iter()
        .map(|from| {
            answered
                .iter()
                .filter(|at| **at >= *from && **at < *from + ms(10))
                .count()
        })
        .max()
        .unwrap();
    assert!(in_10_ms <= 6, "at most 6 in any 10 ms: {answered:?}");
    let status = layer.ride_out_status();
    assert_eq!((status.hosts_down(), status.waiting()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_that_waited_its_whole_window_goes_out_once_and_stops() {
    let host = Host::down();
    let start = Instant::now();
    // The first probe would come after the window: nobody probes.
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(ride_out(100, 1000, 1000)))
        .service(host.clone());
    let first = spawn_at(&service, Duration::ZERO, down("/first"));
    let second = spawn_at(&service, ms(50), down("/second"));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());

    // The request that found the host down: its retry waited the window, then looked.
    assert_eq!(host.arrivals("/first", start), vec![ms(0), ms(100)]);
    assert_eq!(first.elapsed(), ms(100));
    assert_eq!(first.history().stop_reason(), StopReason::HostDown);
    // The one that came later: held at once, sent once at the end of its window, stopped.
    assert_eq!(host.arrivals("/second", start), vec![ms(150)]);
    assert_eq!(second.elapsed(), ms(100));
    assert_eq!(second.io_error().kind(), io::ErrorKind::ConnectionRefused);
    let history = second.history();
    assert_eq!(history.attempts(), 1);
    assert_eq!(history.summaries()[0].waited(), Some(ms(100)));
    assert_eq!(history.stop_reason(), StopReason::HostDown);
    assert_eq!(
        history.to_string(),
        "1 attempt (never_sent waited 100ms); stopped: the host refused connections for the \
         whole ride-out window"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_wait_of_a_retry() {
    let host = Host::down();
    let retry = ResetRetryLayer::builder()
        .no_budget()
        .deadline(ms(150))
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(retry)
        .layer(backoff(ride_out(2000, 1000, 1000)))
        .service(host.clone());
    let ended = spawn_at(&service, Duration::ZERO, down("/a"))
        .await
        .unwrap();
    assert_eq!(ended.elapsed(), ms(150));
    assert_eq!(ended.io_error().kind(), io::ErrorKind::ConnectionRefused);
    let history = ended.history();
    assert_eq!(history.stop_reason(), StopReason::Deadline);
    assert_eq!(history.attempts(), 1);
    assert_eq!(history.unsent_wait(), Some(ms(150)));
    assert_eq!(history.total_waited(), ms(150));
    assert_eq!(host.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_line_is_bounded_and_who_finds_it_full_does_not_wait() {
    let host = Host::down();
    let start = Instant::now();
    let layer = BackoffLayer::new().seed(42).ride_out(
        RideOut::builder()
            .window(ms(1000))
            .probes(exponential(10_000, 10_000))
            .max_waiters(2)
            .build()
            .unwrap(),
    );
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(layer.clone())
        .service(host.clone());
    let first = spawn_at(&service, Duration::ZERO, down("/r0"));
    let later: Vec<_> = (1..5)
        .map(|i| spawn_at(&service, ms(10), down(&format!("/r{i}"))))
        .collect();
    tokio::time::sleep(ms(20)).await;
    let status = layer.ride_out_status();
    assert_eq!((status.hosts_down(), status.waiting()), (1, 2));
    let later: Vec<Ended> = {
        let mut ended = Vec::new();
        for call in later {
            ended.push(call.await.unwrap());
        }
        ended
    };
    let first = first.await.unwrap();

    // r1 took the second place; r2 to r4 found the line full: sent at once, stopped.
    assert_eq!(later[0].elapsed(), ms(1000));
    for ended in &later[1..] {
        assert_eq!(ended.elapsed(), Duration::ZERO);
        assert_eq!(ended.io_error().kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(ended.history().stop_reason(), StopReason::HostDown);
        assert_eq!(ended.history().attempts(), 1);
    }
    // r0's retry waited its window; attempts were refused meanwhile, so it was not sent.
    assert_eq!(first.elapsed(), ms(1000));
    assert_eq!(host.arrivals("/r0", start), vec![ms(0)]);
    assert_eq!(first.history().stop_reason(), StopReason::HostDown);
    assert_eq!(first.history().unsent_wait(), Some(ms(1000)));
    assert_eq!(layer.ride_out_status().waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_that_is_dropped_leaves_the_line_and_another_probes() {
    let host = Host::refusing_for(ms(100));
    let start = Instant::now();
    let layer = backoff(ride_out(2000, 10, 80));
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(layer.clone())
        .service(host.clone());
    let dropped = spawn_at(&service, Duration::ZERO, down("/dropped"));
    let kept = spawn_at(&service, ms(1), down("/kept"));
    tokio::time::sleep(ms(5)).await;
    assert_eq!(layer.ride_out_status().waiting(), 2);
    dropped.abort();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(layer.ride_out_status().waiting(), 1);

    let kept = kept.await.unwrap();
    assert_eq!(kept.result.unwrap().status(), 200);
    // It took over the probe: 10, 30, 70 ms refused, 150 ms answered.
    assert_eq!(
        host.arrivals("/kept", start),
        [10, 30, 70, 150].map(ms).to_vec()
    );
    assert_eq!(host.arrivals("/dropped", start), vec![ms(0)]);
    assert_eq!(layer.ride_out_status().waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_caller_gives_up_hands_the_probe_to_another_request() {
    let start = Instant::now();
    let host = Host::phases(vec![
        (start, Phase::Refuse),
        (start + ms(5), Phase::Hang),
        (start + ms(15), Phase::Answer),
    ]);
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(ride_out(2000, 10, 80)))
        .service(host.clone());
    let hung = spawn_at(&service, Duration::ZERO, down("/hung"));
    let next = spawn_at(&service, ms(12), down("/next"));
    tokio::time::sleep(ms(20)).await;
    // The probe went at 10 ms and hangs: the other request waits for it.
    assert_eq!(host.arrivals("/hung", start), vec![ms(0), ms(10)]);
    assert!(host.arrivals("/next", start).is_empty());
    hung.abort();

    let next = next.await.unwrap();
    assert_eq!(next.result.unwrap().status(), 200);
    assert_eq!(host.arrivals("/next", start), vec![ms(20)]);
}

#[tokio::test(start_paused = true)]
async fn requests_to_another_host_are_not_held_nor_is_a_permit() {
    let host = Host::down();
    // One request at a time below the backoff: a held request must not keep the permit.
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(backoff(ride_out(2000, 1000, 1000)))
        .layer(ConcurrencyLimitLayer::new(1))
        .service(host.clone());
    let held = spawn_at(&service, Duration::ZERO, down("/a"));
    let other = spawn_at(&service, ms(5), get("http://up.test/b"))
        .await
        .unwrap();
    assert_eq!(other.elapsed(), Duration::ZERO);
    assert_eq!(other.result.unwrap().status(), 200);
    held.abort();
}

#[tokio::test(start_paused = true)]
async fn backoff_alone_holds_requests_and_the_first_to_reach_its_window_looks() {
    let host = Host::refusing_for(ms(50));
    let start = Instant::now();
    // No `ResetRetry`: no request can be sent again, so none is sent as a probe.
    let service = ServiceBuilder::new()
        .layer(backoff(ride_out(200, 10, 80)))
        .service(host.clone());
    let first = spawn_at(&service, Duration::ZERO, down("/r0"))
        .await
        .unwrap();
    assert_eq!(first.io_error().kind(), io::ErrorKind::ConnectionRefused);
    let second = spawn_at(&service, ms(10), down("/r1"));
    let third = spawn_at(&service, ms(20), down("/r2"));
    let (second, third) = (second.await.unwrap(), third.await.unwrap());
    assert_eq!(second.result.unwrap().status(), 200);
    assert_eq!(host.arrivals("/r1", start), vec![ms(210)]);
    // Released when the second one got its answer.
    assert_eq!(third.result.unwrap().status(), 200);
    let third_at = host.arrivals("/r2", start)[0];
    assert!(ms(210) <= third_at && third_at <= ms(214), "{third_at:?}");
}

#[test]
fn nonsense_settings_are_rejected() {
    let error = RideOut::builder()
        .window(Duration::from_secs(601))
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "ride_out window");
    let error = RideOut::builder().max_waiters(0).build().unwrap_err();
    assert_eq!(error.setting(), "ride_out max_waiters");
    let error = RideOut::builder().max_waiters(65_537).build().unwrap_err();
    assert_eq!(error.setting(), "ride_out max_waiters");
    let error = RideOut::builder()
        .window(ms(50))
        .release_spread(ms(100))
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "ride_out release_spread");
    assert!(RideOut::builder()
        .window(Duration::ZERO)
        .build()
        .unwrap()
        .is_off());
    assert_eq!(RideOut::default(), RideOut::new());
    assert_eq!(BackoffLayer::new().ride_out_settings(), RideOut::new());
}

/// The acceptance run: a 30 s total outage at 200 requests a second (3 GETs for one POST),
/// through the default stack. Every request ends at the window with the connection refused;
/// connection attempts stay at about one per request plus the probes; the line and the tasks
/// stay bounded.
#[tokio::test(start_paused = true)]
async fn a_30_s_outage_at_200_requests_a_second() {
    let host = Host::down();
    let layer = BackoffLayer::new().seed(42);
    let service = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(layer.clone())
        .service(host.clone());
    let window = RideOut::DEFAULT_WINDOW;
    let requests = 30 * 200;
    let mut calls = Vec::with_capacity(requests);
    let mut most_waiting = 0;
    let mut most_tasks = 0;
    for i in 0..requests {
        let mut request = down(&format!("/r{i}"));
        if i % 4 == 3 {
            *request.method_mut() = http::Method::POST;
        }
        calls.push(spawn_at(&service, Duration::ZERO, request));
        tokio::time::sleep(ms(5)).await;
        most_waiting = most_waiting.max(layer.ride_out_status().waiting());
        most_tasks = most_tasks.max(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        );
    }
    let mut ended = Vec::with_capacity(requests);
    for call in calls {
        ended.push(call.await.unwrap());
    }

    for (i, ended) in ended.iter().enumerate() {
        assert_eq!(
            ended.io_error().kind(),
            io::ErrorKind::ConnectionRefused,
            "{i}"
        );
        let elapsed = ended.elapsed();
        assert!(
            window <= elapsed && elapsed <= window + ms(1),
            "{i}: {elapsed:?}"
        );
        assert_eq!(ended.history().stop_reason(), StopReason::HostDown, "{i}");
    }
    let attempts = host.attempts().len();
    let probes = ended
        .iter()
        .flat_map(|ended| ended.history().summaries().to_vec())
        .filter(|summary| !summary.counted())
        .count();
    println!(
        "30 s outage, {requests} requests: {attempts} connection attempts ({probes} probes), \
         at most {most_waiting} waiting, {most_tasks} tasks"
    );
    assert!(
        attempts as f64 <= requests as f64 * 1.1 + probes as f64,
        "{attempts} attempts for {requests} requests and {probes} probes"
    );
    // About 2 to 3 probes a second once the schedule reached its cap.
    assert!(probes <= 30 * 4, "{probes} probes");
    // A window's worth of requests waits at once (400 at 200 a second), never more.
    assert!(most_waiting <= 2 * 200 + 1, "{most_waiting} waiting");
    assert!(most_tasks <= 2 * 200 + 10, "{most_tasks} tasks");
    assert_eq!(layer.ride_out_status().waiting(), 0);
}
