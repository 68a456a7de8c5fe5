//! Four clients against the same faults, over loopback, counted by the reset lab.
//!
//! Run with `cargo bench --bench faults --features lab,hyper-util,reqwest-middleware`. It prints
//! one Markdown table (a row per scenario and client), the machine and the settings; progress
//! goes to stderr.
//!
//! Each row gets a fresh [`Lab`] and a fresh client, then a fixed workload of logical requests,
//! three GETs for one POST (no idempotency key), each with a unique `x-request-id`, started at a
//! steady pace whatever happened to the earlier ones (an open load: a client that sleeps before
//! a retry is not rewarded with a lighter load). The lab counts on the server side what arrived
//! and what was executed:
//!
//! * **attempts per request**: requests that reached the server (received, plus those reset
//!   unread on a forgotten connection) divided by the logical requests;
//! * **POSTs run twice**: POST ids the server executed more than once;
//! * **latency**: per logical request, measured by the client, failures included.
//!
//! The lab cannot count connections it refuses, so the total outage is played as a server that
//! resets every request after reading its head, and the attempts that met the refused port
//! during a restart are not counted.
//!
//! The clients: a bare hyper-util legacy `Client`; `tower::retry::Retry` over it with a policy
//! that retries any error 3 times at once; reqwest with reqwest-retry's
//! `RetryTransientMiddleware` and `ExponentialBackoff::builder().build_with_max_retries(3)`; and
//! this crate's stack (`ResetRetryLayer::new()`, `BackoffLayer::new()`,
//! `FreshConnectionLayer::new()`) over hyper-util, all defaults.

#[path = "../tests/support/instant_service.rs"]
mod instant_service;
#[path = "support/machine.rs"]
mod machine;

use std::error::Error;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::lab::{Counts, Fault, Lab, LabBuilder, Match, Reply};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

use crate::instant_service::RetryAnyError;

/// Logical requests per row.
const REQUESTS: usize = 1000;
/// Logical requests start one every this often (2,000 per second), whatever happens to them.
const PACE: Duration = Duration::from_micros(500);
/// Connections opened before each round of the stale keep-alive scenario.
const POOL: usize = 16;
/// Rounds of the stale keep-alive scenario.
const STALE_ROUNDS: usize = 10;
/// Server restarts in the restart scenario.
const RESTARTS: usize = 4;
/// How long the server works on a request in the restart scenario, so that restarts catch
/// requests in flight.
const WORK: Duration = Duration::from_millis(1);
/// How long the lab holds the warm-up requests, so that they need a connection each.
const WARM_DELAY: Duration = Duration::from_millis(50);
/// Seed of the lab's random resets.
const SEED: u64 = 7;
/// The share of requests reset at random.
const RESET_RATE: f64 = 0.05;

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// No fault: the cost of each client when nothing fails.
    Healthy,
    /// Rounds of requests, each after a pool of [`POOL`] connections went stale (a NAT forgot
    /// them): each is reset by the next request sent on it, unread.
    Stale,
    /// 5% of requests reset after their head was read (not executed).
    ResetAfterHead,
    /// 5% of requests reset after they were executed, before the response.
    ResetAfterExecution,
    /// [`RESTARTS`] server restarts (every connection reset, the same port bound again) while
    /// requests are in flight; the server takes [`WORK`] per request.
    Restart,
    /// Every request reset after its head: the server is up, but nothing gets through.
    Outage,
}

impl Scenario {
    const ALL: [Self; 6] = [
        Self::Healthy,
        Self::Stale,
        Self::ResetAfterHead,
        Self::ResetAfterExecution,
        Self::Restart,
        Self::Outage,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Healthy => "no fault",
            Self::Stale => "stale keep-alive",
            Self::ResetAfterHead => "5% reset after the head",
            Self::ResetAfterExecution => "5% reset after execution",
            Self::Restart => "restarts, warm pool",
            Self::Outage => "total outage",
        }
    }

    /// The lab's script; the warm-up requests (path `/warm`) are held so that each needs its
    /// own connection.
    fn lab(self) -> LabBuilder {
        let lab = Lab::builder()
            .seed(SEED)
            .on(Match::path("/warm"), Reply::ok().delay(WARM_DELAY));
        match self {
            Self::Healthy | Self::Stale => lab,
            Self::ResetAfterHead => {
                lab.on(Match::any().probability(RESET_RATE), Fault::ResetAfterHead)
            }
            Self::ResetAfterExecution => lab.on(
                Match::any().probability(RESET_RATE),
                Fault::ResetAfterRequest,
            ),
            Self::Restart => lab.reply(Reply::ok().delay(WORK)),
            Self::Outage => lab.on(Match::any(), Fault::ResetAfterHead),
        }
    }

    /// The workload is sent in this many rounds.
    fn rounds(self) -> usize {
        match self {
            Self::Stale => STALE_ROUNDS,
            _ => 1,
        }
    }

    /// What happens before each round.
    async fn before_round(self, lab: &Lab, client: &Fixture) {
        if let Self::Stale = self {
            warm(lab, client).await;
            lab.forget_connections();
        }
    }

    /// What happens while the requests of a round go out; `started` counts the requests started.
    async fn during(self, lab: &Lab, started: &AtomicUsize, requests: usize) -> io::Result<()> {
        if let Self::Restart = self {
            for restart in 1..=RESTARTS {
                let at = requests * restart / (RESTARTS + 1);
                while started.load(Ordering::Relaxed) < at {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                lab.restart().await?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum ClientKind {
    Bare,
    TowerRetry,
    ReqwestRetry,
    Stack,
}

impl ClientKind {
    const ALL: [Self; 4] = [
        Self::Bare,
        Self::TowerRetry,
        Self::ReqwestRetry,
        Self::Stack,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "hyper-util",
            Self::TowerRetry => "tower::retry",
            Self::ReqwestRetry => "reqwest-retry",
            Self::Stack => "tower-reset",
        }
    }

    fn build(self) -> Fixture {
        match self {
            Self::Bare => {
                Fixture::Hyper(BoxCloneSyncService::new(hyper_client().map_err(Into::into)))
            }
            Self::TowerRetry => Fixture::Hyper(tower_retry()),
            Self::ReqwestRetry => Fixture::Reqwest(reqwest_retry()),
            Self::Stack => Fixture::Hyper(stack()),
        }
    }
}

type HyperClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;
type HyperService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

fn hyper_client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `tower::retry` as a user would write it for "retry any error 3 times": no backoff.
fn tower_retry() -> HyperService {
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryAnyError { retries: 3 }))
        .map_err(BoxError::from)
        .service(hyper_client());
    BoxCloneSyncService::new(service)
}

/// reqwest-retry with its defaults and 3 retries: waits drawn from [0, 1 s], [0, 2 s], [0, 4 s].
fn reqwest_retry() -> ClientWithMiddleware {
    let policy = ExponentialBackoff::builder().build_with_max_retries(3);
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .build()
}

/// This crate's stack, all defaults (the retry budget included).
fn stack() -> HyperService {
    let service = ServiceBuilder::new()
        .map_err(BoxError::from)
        .layer(ResetRetryLayer::new())
        .layer(BackoffLayer::new())
        .layer(FreshConnectionLayer::new())
        .service(hyper_client());
    BoxCloneSyncService::new(service)
}

/// A client under test, ready to send.
#[derive(Clone)]
enum Fixture {
    Hyper(HyperService),
    Reqwest(ClientWithMiddleware),
}

impl Fixture {
    /// Sends one request and reads the whole response; `Ok` only for a complete `2xx`.
    async fn send(&self, method: Method, url: &str, id: &str) -> Result<(), BoxError> {
        let body = if method == Method::POST {
            Bytes::from_static(b"{\"amount\":1}")
        } else {
            Bytes::new()
        };
        let status = match self {
            Self::Hyper(service) => {
                let request = Request::builder()
                    .method(method)
                    .uri(url)
                    .header("x-request-id", id)
                    .body(Full::new(body))?;
                let response = service.clone().oneshot(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                status
            }
            Self::Reqwest(client) => {
                let response = client
                    .request(method, url)
                    .header("x-request-id", id)
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                response.bytes().await?;
                status
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("status {status}").into())
        }
    }
}

/// Opens [`POOL`] connections: as many requests at once, each held by the lab. A warm-up
/// request may fail on a connection left stale by the previous round: that is not counted.
async fn warm(lab: &Lab, client: &Fixture) {
    let calls: Vec<_> = (0..POOL)
        .map(|index| {
            let client = client.clone();
            let url = lab.url("/warm");
            tokio::spawn(async move {
                client
                    .send(Method::GET, &url, &format!("warm-{index}"))
                    .await
            })
        })
        .collect();
    for call in calls {
        let _ = call.await.expect("the warm-up task");
    }
}

/// What happened to one logical request.
#[derive(Debug)]
struct Outcome {
    method: Method,
    ok: bool,
    latency: Duration,
}

/// The `index`th request of the workload: three GETs, then a POST.
fn workload(index: usize) -> (Method, &'static str, String) {
    if index % 4 == 3 {
        (Method::POST, "/orders", format!("post-{index}"))
    } else {
        (Method::GET, "/items", format!("get-{index}"))
    }
}

/// Starts logical requests from `next` up to `end`, one every [`PACE`], and waits for them all.
///
/// The load is open: a request starts on time even when earlier ones are still waiting to be
/// retried, so that a client that sleeps between attempts is not measured at a lighter load
/// than one that does not.
async fn drive(lab: &Lab, client: &Fixture, next: &AtomicUsize, end: usize) -> Vec<Outcome> {
    let base = format!("http://{}", lab.addr());
    let mut pace = tokio::time::interval(PACE);
    let mut calls = Vec::with_capacity(end.saturating_sub(next.load(Ordering::Relaxed)));
    for index in next.load(Ordering::Relaxed)..end {
        pace.tick().await;
        next.store(index + 1, Ordering::Relaxed);
        let (method, path, id) = workload(index);
        let (client, url) = (client.clone(), format!("{base}{path}"));
        calls.push(tokio::spawn(async move {
            let start = Instant::now();
            let ok = client.send(method.clone(), &url, &id).await.is_ok();
            Outcome {
                method,
                ok,
                latency: start.elapsed(),
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(calls.len());
    for call in calls {
        outcomes.push(call.await.expect("a request task"));
    }
    outcomes
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    scenario: Scenario,
    client: ClientKind,
    requests: usize,
    succeeded: usize,
    gets: usize,
    gets_succeeded: usize,
    attempts: usize,
    posts_twice: usize,
    p50: Duration,
    p99: Duration,
}

impl Row {
    fn new(
        scenario: Scenario,
        client: ClientKind,
        outcomes: &[Outcome],
        attempts: usize,
        counts: &Counts,
    ) -> Self {
        let gets: Vec<_> = outcomes
            .iter()
            .filter(|o| o.method == Method::GET)
            .collect();
        let mut latencies: Vec<_> = outcomes.iter().map(|o| o.latency).collect();
        latencies.sort();
        Self {
            scenario,
            client,
            requests: outcomes.len(),
            succeeded: outcomes.iter().filter(|o| o.ok).count(),
            gets: gets.len(),
            gets_succeeded: gets.iter().filter(|o| o.ok).count(),
            attempts,
            posts_twice: counts
                .duplicates()
                .iter()
                .filter(|(id, _)| id.starts_with("post-"))
                .count(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        }
    }

    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} |",
            self.scenario.name(),
            self.client.name(),
            percent(self.succeeded, self.requests),
            percent(self.gets_succeeded, self.gets),
            self.attempts as f64 / self.requests as f64,
            self.posts_twice,
            duration(self.p50),
            duration(self.p99),
        )
    }
}

/// Requests that reached the server: received, or reset unread on a forgotten connection.
fn reached(counts: &Counts) -> usize {
    counts.received() + counts.forgotten_resets()
}

/// The `q` quantile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn percent(part: usize, whole: usize) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

fn duration(value: Duration) -> String {
    if value >= Duration::from_secs(1) {
        format!("{:.2} s", value.as_secs_f64())
    } else if value >= Duration::from_millis(1) {
        format!("{:.1} ms", value.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", value.as_micros())
    }
}

/// One scenario through one client, on a lab of its own.
async fn run(scenario: Scenario, client: ClientKind) -> Result<Row, Box<dyn Error>> {
    let lab = scenario.lab().start().await?;
    let fixture = client.build();
    let requests = REQUESTS;
    let rounds = scenario.rounds();
    let next = AtomicUsize::new(0);
    let (mut outcomes, mut attempts) = (Vec::with_capacity(requests), 0);
    for round in 1..=rounds {
        scenario.before_round(&lab, &fixture).await;
        let before = reached(&lab.counts());
        let end = requests * round / rounds;
        let (sent, event) = tokio::join!(
            drive(&lab, &fixture, &next, end),
            scenario.during(&lab, &next, end)
        );
        event?;
        outcomes.extend(sent);
        attempts += reached(&lab.counts()) - before;
    }
    Ok(Row::new(
        scenario,
        client,
        &outcomes,
        attempts,
        &lab.counts(),
    ))
}

fn print_settings() {
    let cores = machine::cores();
    println!(
        "Machine: {cores} cores, {}, {} {}; one tokio multi-thread runtime runs the clients and \
         the lab, over 127.0.0.1.\n",
        machine::cpu_model(),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    println!(
        "* Workload per row: {REQUESTS} logical requests, 3 GET for 1 POST (no idempotency key), \
         each with a unique `x-request-id`, one started every {} µs whatever happened to the \
         others (open load), on a fresh lab and a fresh client.",
        PACE.as_micros()
    );
    println!(
        "* Scenarios: *stale keep-alive*: {STALE_ROUNDS} rounds, each after {POOL} pooled \
         connections went stale (`Lab::forget_connections`: the next request on each is reset, \
         unread); *5% reset after the head* (not executed) and *after execution* (before the \
         response): seed {SEED}; *restarts*: {RESTARTS} `Lab::restart`s with requests in flight, \
         the server working {} ms on each; *total outage*: every request reset after its head.",
        WORK.as_millis()
    );
    println!(
        "* Clients: *hyper-util*: the legacy `Client`; *tower::retry*: `Retry` over it, any \
         error retried 3 times at once; *reqwest-retry*: reqwest with `RetryTransientMiddleware` \
         and `ExponentialBackoff::builder().build_with_max_retries(3)` (waits drawn from \
         [0, 1 s], [0, 2 s], [0, 4 s]); *tower-reset*: `ResetRetryLayer::new()`, \
         `BackoffLayer::new()`, `FreshConnectionLayer::new()` over hyper-util (3 attempts, retry \
         budget 20%, or 10/s when more, over 10 s)."
    );
    println!(
        "* Attempts per request: arrivals at the server (with the requests reset unread on a \
         stale connection) / logical requests. POSTs run twice: POSTs the server executed more \
         than once. Latency: per logical request, client side, failures included.\n"
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let started = Instant::now();
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        for client in ClientKind::ALL {
            let row_started = Instant::now();
            let row = run(scenario, client).await?;
            eprintln!(
                "faults: {} / {}: {:.1} s",
                scenario.name(),
                client.name(),
                row_started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
    }
    eprintln!("faults: done in {:.0} s\n", started.elapsed().as_secs_f64());

    print_settings();
    println!(
        "| scenario | client | success | GET success | attempts / request | POSTs run twice | \
         p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{}", row.markdown());
    }
    Ok(())
}
