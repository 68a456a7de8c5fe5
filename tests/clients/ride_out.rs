//! Riding out a restart (`backoff::RideOut`) over real loopback sockets: requests sent while
//! the lab refuses connections wait for it instead of failing, with every client's stack; the
//! acceptance runs of issue #15 (restarts with refused windows of 300 ms, 1 s and 3 s under 8
//! callers, and a total outage at 200 requests a second) over hyper-util with the default
//! stack, counting the connection attempts with a connector that records them.
//!
//! Real time (paused time and real sockets do not mix: the clock would jump while the kernel
//! works); every request is bounded, and the timings asserted are the ones the behaviour is
//! about (a window of 2 s against waits of a few hundred milliseconds).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{AttemptHistory, HistoryObserver, StopReason};
use tower_reset::backoff::RideOut;
use tower_reset::classify::{is_host_down, FailureClass};
use tower_reset::lab::Lab;
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

use crate::counting_connector::{ConnectAttempts, CountingConnector};
use crate::matrix::Client as Column;
use crate::support::{http_reply, Call, End, Method, Sender, REQUEST_BOUND};

/// How long the lab refuses connections in the per-client runs.
const REFUSED: Duration = Duration::from_millis(300);

/// Sends a GET and a POST as the lab stops, and another pair 100 and 200 ms into its refused
/// window, through `sender`; the lab listens again after [`REFUSED`]. Every call must succeed,
/// none may run twice, and those the stack records a history for must have waited.
async fn waits_for_the_restart(name: &str, lab: &Lab, sender: &dyn Sender) {
    let warm = sender
        .send(Call::new(Method::Get, format!("{name}-warm")))
        .await;
    assert!(
        matches!(warm.end, End::Ok(_)),
        "{name}: warm-up {:?}",
        warm.end
    );
    lab.stop().await;
    let resume = async {
        tokio::time::sleep(REFUSED).await;
        lab.resume().await.expect("the lab listens again");
    };
    let call = |method, n: u64| async move {
        tokio::time::sleep(Duration::from_millis(100 * n)).await;
        let call = Call::new(method, format!("{name}-{}-{n}", method.tag()));
        tokio::time::timeout(REQUEST_BOUND, sender.send(call))
            .await
            .expect("a request ends")
    };
    let ((), a, b, c, d) = tokio::join!(
        resume,
        call(Method::Get, 0),
        call(Method::Post, 0),
        call(Method::Get, 1),
        call(Method::Post, 2)
    );
    for observed in [a, b, c, d] {
        assert!(matches!(observed.end, End::Ok(_)), "{name}: {observed:?}");
        if observed.stop.is_some() {
            assert!(observed.waited > Duration::ZERO, "{name}: {observed:?}");
        }
    }
    assert!(
        lab.duplicates().is_empty(),
        "{name}: {:?}",
        lab.duplicates()
    );
}

/// A lab for `column`, and the client with its stack aimed at it.
async fn lab_for(column: Column) -> Lab {
    let mut lab = Lab::builder().reply(column.reply());
    if column.http2() {
        lab = lab.http2();
    }
    lab.start().await.expect("start a lab")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_waits_for_a_restarting_server() {
    for column in Column::ALL {
        let lab = lab_for(column).await;
        let sender = column.sender(&lab).await;
        waits_for_the_restart(column.label(), &lab, &*sender).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_channel_without_fresh_channel_waits_for_a_restarting_server() {
    let lab = lab_for(Column::Tonic).await;
    let sender = crate::tonic_channel::Tonic::over_channel(&lab);
    waits_for_the_restart("tonic Channel", &lab, &sender).await;
}

/// One request of a run under load.
struct Sent {
    method: http::Method,
    id: String,
    started: Instant,
    ended: Instant,
    /// The body, or the error chain.
    result: Result<(), String>,
    /// Whether the error shows that nothing answered (a connection refused).
    refused: bool,
    history: Option<AttemptHistory>,
}

/// The default stack over hyper-util with `backoff` (`BackoffLayer::new()`, or one to compare
/// with), whose connector records its attempts.
fn stack_with(
    backoff: BackoffLayer,
) -> (
    impl Service<
            http::Request<Full<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = BoxError,
            Future: Send,
        > + Clone
        + Send
        + 'static,
    BackoffLayer,
    ConnectAttempts,
) {
    let connector = CountingConnector::new(HttpConnector::new());
    let attempts = connector.attempts();
    let client = LegacyClient::builder(TokioExecutor::new()).build(connector);
    let stack = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(backoff.clone())
        .layer(FreshConnectionLayer::new())
        .service(client);
    (stack, backoff, attempts)
}

/// Sends `method` with `id` through `stack`, reading the whole body; bounded.
async fn send_one<S>(stack: S, url: String, method: http::Method, id: String) -> Sent
where
    S: Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<hyper::body::Incoming>,
        Error = BoxError,
    >,
{
    let body = if method == http::Method::GET {
        Full::default()
    } else {
        Full::new(Bytes::from_static(b"{\"amount\":42}"))
    };
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(url.as_str())
        .header("x-request-id", id.as_str())
        .body(body)
        .expect("a valid request");
    let observer = HistoryObserver::attach(&mut request);
    let started = Instant::now();
    let outcome = tokio::time::timeout(REQUEST_BOUND, async {
        let response = stack.oneshot(request).await?;
        response.into_body().collect().await?;
        Ok::<(), BoxError>(())
    })
    .await;
    let (result, refused) = match outcome {
        Err(_) => (Err("timed out".to_owned()), false),
        Ok(Ok(())) => (Ok(()), false),
        Ok(Err(error)) => (Err(format!("{error:?}")), is_host_down(&*error)),
    };
    Sent {
        method,
        id,
        started,
        ended: Instant::now(),
        result,
        refused,
        history: observer.get(),
    }
}

/// What a restart under load came to.
struct Restart {
    sent: Vec<Sent>,
    /// When the lab stopped accepting, and when it listened again.
    down: (Instant, Instant),
    lab: Lab,
    attempts: ConnectAttempts,
}

/// 8 callers send GETs and POSTs (alternating, one at a time each) to a lab that works 5 ms
/// on each request; 300 ms in, the lab stops (live connections reset, new ones refused) for
/// `refused`, then listens again; the callers go on for 1 s more.
async fn restart_under_load(refused: Duration, backoff: BackoffLayer) -> Restart {
    let lab = Lab::builder()
        .reply(http_reply().delay(Duration::from_millis(5)))
        .start()
        .await
        .expect("start a lab");
    let url = lab.url("/work");
    let (stack, _, attempts) = stack_with(backoff);
    let start = Instant::now();
    let stop_at = start + Duration::from_millis(300);
    let end_at = stop_at + refused + Duration::from_secs(1);
    let mut callers = JoinSet::new();
    for caller in 0..8 {
        let (stack, url) = (stack.clone(), url.clone());
        callers.spawn(async move {
            let mut sent = Vec::new();
            for n in 0.. {
                if Instant::now() >= end_at {
                    break;
                }
                let method = if (caller + n) % 2 == 0 {
                    http::Method::GET
                } else {
                    http::Method::POST
                };
                let id = format!("{}-{caller}-{n}", method.as_str().to_lowercase());
                sent.push(send_one(stack.clone(), url.clone(), method, id).await);
            }
            sent
        });
    }
    tokio::time::sleep_until(stop_at).await;
    let down_at = Instant::now();
    lab.stop().await;
    tokio::time::sleep(refused).await;
    lab.resume().await.expect("the lab listens again");
    let up_at = Instant::now();
    let mut sent = Vec::new();
    while let Some(caller) = callers.join_next().await {
        sent.extend(caller.expect("a caller does not panic"));
    }
    Restart {
        sent,
        down: (down_at, up_at),
        lab,
        attempts,
    }
}

impl Restart {
    /// Whether `sent` was on the wire when the server went down: its first attempt failed
    /// after it was written (reset or closed), as its history says. Requests in flight that
    /// had not been written yet (waiting for a connection, say) were never sent. (Some
    /// started after `down_at`: the lab stops listening first, then resets the connections it
    /// has, which may carry a request meanwhile.)
    fn died_in_flight(&self, sent: &Sent) -> bool {
        let (down_at, up_at) = self.down;
        sent.started < up_at
            && sent.ended > down_at
            && sent.history.as_ref().is_some_and(|history| {
                history
                    .summaries()
                    .first()
                    .and_then(|first| first.failure())
                    == Some(FailureClass::UnknownOutcome)
            })
    }

    /// Checks the acceptance criteria and returns the line of the report.
    fn check(&self, refused: Duration, expect_success: bool) -> String {
        let (line, rate) = self.measure(refused);
        let (connects, active) = self.connects();
        let outage = self.down.1 - self.down.0;
        let allowed = active as f64 + 10.0 * outage.as_secs_f64();
        assert!(
            connects as f64 <= allowed,
            "{line}: {connects} connection attempts in {outage:?} for {active} requests"
        );
        let waiting = self.waiting();
        if expect_success {
            assert!(
                rate >= 0.95,
                "{line}: failed: {:?}",
                waiting
                    .iter()
                    .filter(|sent| sent.result.is_err())
                    .map(|sent| self.describe(sent))
                    .collect::<Vec<_>>()
            );
            let died_gets: Vec<&Sent> = self
                .sent
                .iter()
                .filter(|sent| self.died_in_flight(sent) && sent.method == http::Method::GET)
                .collect();
            assert!(
                died_gets.iter().all(|sent| sent.result.is_ok()),
                "{line}: every GET in flight is retried: {:?}",
                died_gets
                    .iter()
                    .filter(|sent| sent.result.is_err())
                    .map(|sent| self.describe(sent))
                    .collect::<Vec<_>>()
            );
        } else {
            // Past the window: each failure is the connection refused, at about the window.
            for sent in waiting.iter().filter(|sent| sent.result.is_err()) {
                let stop = sent.history.as_ref().map(AttemptHistory::stop_reason);
                let took = sent.ended - sent.started;
                assert!(
                    sent.refused
                        && stop == Some(StopReason::HostDown)
                        && took >= RideOut::DEFAULT_WINDOW,
                    "{line}: {}",
                    self.describe(sent)
                );
            }
        }
        line
    }

    /// One request, for a failure message: its id, when it started and ended (from the
    /// moment the server went down), its history and its result.
    fn describe(&self, sent: &Sent) -> String {
        let down_at = self.down.0;
        let from = |at: Instant| {
            if at >= down_at {
                format!("+{:?}", at - down_at)
            } else {
                format!("-{:?}", down_at - at)
            }
        };
        format!(
            "{} from {} to {} (up at {}), died in flight: {}, {}: {:?}",
            sent.id,
            from(sent.started),
            from(sent.ended),
            from(self.down.1),
            self.died_in_flight(sent),
            sent.history
                .as_ref()
                .map_or("no history".to_owned(), ToString::to_string),
            sent.result
        )
    }

    /// Started while the server was down, or in flight but not yet sent when it went down.
    fn waiting(&self) -> Vec<&Sent> {
        let (down_at, up_at) = self.down;
        let in_flight = |sent: &&Sent| sent.started < down_at && sent.ended > down_at;
        let started_down = |sent: &&Sent| sent.started >= down_at && sent.started < up_at;
        self.sent
            .iter()
            .filter(|sent| (started_down(sent) || in_flight(sent)) && !self.died_in_flight(sent))
            .collect()
    }

    /// Checks what holds with or without riding out (no POST run twice, every POST that died
    /// in flight surfaced, the connection attempts bounded); returns the line of the report and
    /// the success rate of the requests that started while the server was down.
    fn measure(&self, refused: Duration) -> (String, f64) {
        let (down_at, up_at) = self.down;
        let outage = up_at - down_at;
        let waiting = self.waiting();
        let succeeded = waiting.iter().filter(|sent| sent.result.is_ok()).count();
        // On the wire when it went down.
        let died: Vec<&Sent> = self
            .sent
            .iter()
            .filter(|sent| self.died_in_flight(sent))
            .collect();
        let is_get = |sent: &&&Sent| sent.method == http::Method::GET;
        let died_gets = died.iter().filter(is_get).count();
        let died_gets_ok = died
            .iter()
            .filter(is_get)
            .filter(|sent| sent.result.is_ok())
            .count();
        let died_posts = died.len() - died_gets;
        let counts = self.lab.counts();
        // A GET may run twice (it was retried after the server ran it and died); a POST never.
        let posts_twice: Vec<_> = counts
            .duplicates()
            .into_iter()
            .filter(|(id, _)| id.starts_with("post-"))
            .collect();
        assert!(posts_twice.is_empty(), "POSTs run twice: {posts_twice:?}");
        let died_posts_surfaced = died
            .iter()
            .filter(|sent| sent.method == http::Method::POST && sent.result.is_err())
            .count();
        assert_eq!(
            died_posts_surfaced, died_posts,
            "a POST that died in flight is surfaced"
        );
        let (connects, active) = self.connects();
        let burst = release_burst(&counts, up_at);
        let rate = succeeded as f64 / waiting.len().max(1) as f64;
        let line = format!(
            "| {refused:?} | {outage:.0?} | {succeeded} of {} ({:.0}%) | {died_gets_ok} of \
             {died_gets} | {died_posts} surfaced, 0 run twice | {connects} for {active} \
             requests | {burst} |",
            waiting.len(),
            rate * 100.0
        );
        (line, rate)
    }

    /// The connection attempts while the server was down, and the requests under way then.
    fn connects(&self) -> (usize, usize) {
        let (down_at, up_at) = self.down;
        let active = self
            .sent
            .iter()
            .filter(|sent| sent.started < up_at && sent.ended > down_at)
            .count();
        (self.attempts.between(down_at, up_at), active)
    }
}

/// The release: the most requests the lab received in any 10 ms of the first 100 ms after the
/// first one it received once it listened again (at `up_at`; the first is the probe, which
/// can come up to one probe interval later).
fn release_burst(counts: &tower_reset::lab::Counts, up_at: Instant) -> usize {
    let mut after: Vec<Instant> = counts
        .requests()
        .iter()
        .map(|record| record.arrived())
        .filter(|at| *at >= up_at)
        .collect();
    after.sort();
    let Some(&first) = after.first() else {
        return 0;
    };
    let ten = Duration::from_millis(10);
    after
        .iter()
        .take_while(|at| **at < first + Duration::from_millis(100))
        .map(|from| {
            after
                .iter()
                .filter(|at| **at >= *from && **at < *from + ten)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refusing_for_300_ms_is_ridden_out() {
    let refused = Duration::from_millis(300);
    let run = restart_under_load(refused, BackoffLayer::new()).await;
    println!("{}", run.check(refused, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refusing_for_1_s_is_ridden_out() {
    let refused = Duration::from_secs(1);
    let run = restart_under_load(refused, BackoffLayer::new()).await;
    println!("{}", run.check(refused, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refusing_for_3_s_ends_the_longest_waits_at_the_window() {
    let refused = Duration::from_secs(3);
    let run = restart_under_load(refused, BackoffLayer::new()).await;
    println!("{}", run.check(refused, false));
}

/// The same 300 ms restart without riding out, as the stack behaved before it: the requests
/// sent while the server was down fail within about 50 ms (what the runs above would show,
/// were riding out broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_riding_out_a_restart_of_300_ms_fails_the_requests_sent_meanwhile() {
    let refused = Duration::from_millis(300);
    let run = restart_under_load(refused, BackoffLayer::new().ride_out(RideOut::off())).await;
    let (line, rate) = run.measure(refused);
    println!("{line} (ride-out off)");
    assert!(rate < 0.5, "{line}");
}

/// A total outage at 200 requests a second for `outage`: every request ends at the window
/// with the connection refused, the connection attempts stay at about one per request plus
/// the probes, and the requests waiting (and the tasks) stay bounded.
async fn total_outage(outage: Duration) {
    let lab = Lab::builder().start().await.expect("start a lab");
    let url = lab.url("/down");
    let (stack, backoff, attempts) = stack_with(BackoffLayer::new());
    // The host goes down for good.
    lab.stop().await;
    let start = Instant::now();
    let requests = (outage.as_millis() / 5) as usize;
    let mut calls = JoinSet::new();
    let mut most_waiting = 0;
    let mut most_tasks = 0;
    let tick = Duration::from_millis(5);
    for i in 0..requests {
        tokio::time::sleep_until(start + tick * i as u32).await;
        let method = if i % 4 == 3 {
            http::Method::POST
        } else {
            http::Method::GET
        };
        calls.spawn(send_one(
            stack.clone(),
            url.clone(),
            method,
            format!("r{i}"),
        ));
        most_waiting = most_waiting.max(backoff.ride_out_status().waiting());
        most_tasks = most_tasks.max(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        );
    }
    let mut sent = Vec::new();
    while let Some(call) = calls.join_next().await {
        sent.push(call.expect("a request does not panic"));
    }
    let window = RideOut::DEFAULT_WINDOW;
    for sent in &sent {
        assert!(sent.refused, "{}: {:?}", sent.id, sent.result);
        let took = sent.ended - sent.started;
        assert!(
            window <= took && took <= window + Duration::from_millis(300),
            "{}: {took:?}",
            sent.id
        );
        let history = sent.history.as_ref().expect("a history");
        assert_eq!(history.stop_reason(), StopReason::HostDown, "{}", sent.id);
    }
    let probes = sent
        .iter()
        .flat_map(|sent| sent.history.iter().flat_map(|h| h.summaries().to_vec()))
        .filter(|summary| !summary.counted())
        .count();
    let connects = attempts.count();
    println!(
        "total outage of {outage:?} at 200 requests/s: {requests} requests, {connects} \
         connection attempts ({probes} probes), at most {most_waiting} waiting, {most_tasks} tasks"
    );
    assert!(connects as f64 <= requests as f64 * 1.1 + probes as f64);
    assert!(most_waiting <= 2 * 200 + 20, "{most_waiting} waiting");
    assert!(most_tasks <= 2 * 200 + 50, "{most_tasks} tasks");
    assert_eq!(backoff.ride_out_status().waiting(), 0);
}

/// 200 requests a second, and the server down for 1 s: the requests that came meanwhile (about
/// 200) all succeed once it is back, released spread out rather than all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_that_waited_is_released_spread() {
    let lab = Lab::builder().start().await.expect("start a lab");
    let url = lab.url("/crowd");
    let (stack, _, attempts) = stack_with(BackoffLayer::new());
    let start = Instant::now();
    let mut calls = JoinSet::new();
    let tick = Duration::from_millis(5);
    let (down_at, up_at) = (
        start + Duration::from_millis(200),
        start + Duration::from_millis(1200),
    );
    let mut down = (None, None);
    for i in 0..300u32 {
        let now = start + tick * i;
        tokio::time::sleep_until(now).await;
        if now >= down_at && down.0.is_none() {
            lab.stop().await;
            down.0 = Some(Instant::now());
        }
        if now >= up_at && down.1.is_none() {
            lab.resume().await.expect("the lab listens again");
            down.1 = Some(Instant::now());
        }
        calls.spawn(send_one(
            stack.clone(),
            url.clone(),
            http::Method::GET,
            format!("get-{i}"),
        ));
    }
    let mut sent = Vec::new();
    while let Some(call) = calls.join_next().await {
        sent.push(call.expect("a request does not panic"));
    }
    let (down_at, up_at) = (down.0.unwrap(), down.1.unwrap());
    let failed: Vec<_> = sent.iter().filter(|sent| sent.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first().map(|f| &f.result)
    );
    let waited = sent
        .iter()
        .filter(|sent| sent.started >= down_at && sent.started < up_at)
        .count();
    let counts = lab.counts();
    let burst = release_burst(&counts, up_at);
    let connects = attempts.between(down_at, up_at);
    println!(
        "1 s outage at 200 requests/s: {waited} requests waited, {connects} connection \
         attempts meanwhile; at most {burst} requests in 10 ms after the release"
    );
    assert!(connects as f64 <= waited as f64 + 10.0 * (up_at - down_at).as_secs_f64());
    // Released 0.5 ms apart at most (100 ms for about 200): not all at once.
    assert!(burst < waited / 2, "{burst} of {waited} in 10 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_outage_at_200_requests_a_second() {
    total_outage(Duration::from_secs(3)).await;
}

/// The acceptance run of issue #15 at full length (about 32 s):
/// `cargo test --all-features --test clients ride_out -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "32 s of real time"]
async fn a_30_s_total_outage_at_200_requests_a_second() {
    total_outage(Duration::from_secs(30)).await;
}
