//! The soak test: thousands of mixed requests (GET, PUT, POST, POST + key), many at once,
//! through the hyper-util HTTP/1.1 stack, against a lab that fails 5% of the attempts at
//! random (seeded): resets and closes after the request head, after the whole request, and in
//! the response head. It proves that every request returns (no hang), that every idempotent
//! request succeeds, and that no POST without a key is executed twice.
//!
//! A request may meet a fault on more than one attempt. With the standard limit of 3 attempts, a
//! request whose three attempts all fail is *meant* to fail, so the lab spares each request's
//! third attempt (it reads the attempt number from an `x-attempt` header that a probe at the
//! bottom of the stack sets from the `AttemptRecord`): every idempotent request can then succeed,
//! and any that does not is a bug.
//!
//! The same workload also goes through a bare hyper-util client at the same time (same seed, a
//! lab of its own), for one number: the connections each client opened per fault the lab fired. Each fault
//! breaks one connection, so a client that only replaces broken connections opens about one
//! per fault; the stack must not open more than 10% more per fault than the bare client (by
//! retiring healthy idle connections along with a broken one).
//!
//! `soak_short` runs in CI (5,000 requests, 32 at once: about a second); `soak_long` (50,000
//! requests, 64 at once) runs with `cargo test --all-features --test clients -- --ignored`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder};
use tower_reset::attempt::AttemptRecord;
use tower_reset::lab::{Fault, Lab, Match};
use tower_reset::{FreshConnectionLayer, ResetRetryLayer};

use crate::hyper_util_h1::{send, Stack};
use crate::matrix::record_bare_posts;
use crate::support::{
    backoff_layer, boxed, http_reply, retry_layer, Call, End, Method, REPLY_BODY, REQUEST_BOUND,
};

/// The attempt number, set by the probe at the bottom of the stack.
const ATTEMPT: HeaderName = HeaderName::from_static("x-attempt");

/// The share of attempts the lab fails (all but the last permitted attempt of each request).
const FAULT_RATE: f64 = 0.05;

/// The faults, in equal shares of [`FAULT_RATE`].
const FAULTS: [Fault; 4] = [
    Fault::ResetAfterHead,
    Fault::ResetAfterRequest,
    Fault::CloseAfterRequest,
    Fault::ResetInHead,
];

/// The hyper-util HTTP/1.1 stack of the matrix, with the probe that writes the attempt number
/// into a header.
fn stack() -> Stack {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let stack = ServiceBuilder::new()
        .map_response(boxed)
        .layer(retry_layer())
        .layer(backoff_layer())
        .map_request(|mut request: http::Request<Full<Bytes>>| {
            let number = AttemptRecord::of(&request).number();
            request
                .headers_mut()
                .insert(ATTEMPT, HeaderValue::from(number));
            request
        })
        .layer(FreshConnectionLayer::new())
        .service(client);
    BoxCloneSyncService::new(stack)
}

/// A lab that fails [`FAULT_RATE`] of the attempts, but no request's last permitted one.
async fn lab(seed: u64) -> Lab {
    let mut builder = Lab::builder().reply(http_reply()).seed(seed);
    let share = FAULT_RATE / FAULTS.len() as f64;
    for (k, action) in FAULTS.into_iter().enumerate() {
        // The rules are tried in order: each one's probability is among the attempts the
        // earlier ones left, so that each fault takes an equal share of all attempts.
        let p = share / (1.0 - share * k as f64);
        let last = HeaderValue::from(ResetRetryLayer::DEFAULT_MAX_ATTEMPTS);
        let not_last = Match::when(move |request| request.headers().get(&ATTEMPT) != Some(&last));
        builder = builder.on(not_last.probability(p), action);
    }
    builder.start().await.expect("start the lab")
}

/// A bare hyper-util client, as the same boxed service type.
fn bare() -> Stack {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_response(boxed)
            .map_err(BoxError::from)
            .service(client),
    )
}

/// What one request ended with.
#[derive(Debug)]
struct Sent {
    call: Call,
    end: Option<End>,
    attempts: u32,
}

/// Connections a client opened, and the faults the lab fired at it.
#[derive(Debug, Clone, Copy)]
struct Churn {
    connections: usize,
    faults: u64,
}

impl Churn {
    fn of(lab: &Lab) -> Self {
        let counts = lab.counts();
        Self {
            connections: counts.connections(),
            faults: counts.rule_hits().iter().sum(),
        }
    }

    fn per_fault(self) -> f64 {
        self.connections as f64 / self.faults as f64
    }
}

/// Sends `requests` requests of the four kinds in turn, `concurrency` at once, through `stack`
/// to `lab`; returns what each ended with.
async fn drive(stack: Stack, lab: &Lab, requests: usize, concurrency: usize) -> Vec<Sent> {
    let url = lab.url("/soak");
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let started = tokio::time::Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (stack, url, next, outcomes) = (
            stack.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(&outcomes),
        );
        workers.spawn(async move {
            // Each turn takes one request number; there are `requests` of them.
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let method = Method::ALL[n % Method::ALL.len()];
                let call = Call::new(method, format!("{}-soak-{n}", method.tag()));
                let request = call.http_request(&url, Full::new(call.body()));
                let (end, attempts) =
                    match tokio::time::timeout(REQUEST_BOUND, send(stack.clone(), request)).await {
                        Ok(observed) => (Some(observed.end), observed.attempts),
                        Err(_) => (None, 0),
                    };
                outcomes.lock().expect("not poisoned").push(Sent {
                    call,
                    end,
                    attempts,
                });
            }
        });
    }
    let all_done = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(worker) = workers.join_next().await {
            worker.expect("a worker does not panic");
        }
    })
    .await;
    assert!(all_done.is_ok(), "the soak did not end in time");
    println!(
        "soak: {requests} requests, {concurrency} at once, in {:.2?} ({:.0} requests/s)",
        started.elapsed(),
        requests as f64 / started.elapsed().as_secs_f64(),
    );
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("not poisoned"));
    outcomes
}

async fn soak(requests: usize, concurrency: usize, seed: u64) {
    // The bare client runs at the same time, on a lab of its own, so that both meet the same
    // load on the machine (a busier machine holds connections longer, and opens more).
    let (bare_lab, lab) = (lab(seed).await, lab(seed).await);
    let ((), outcomes) = tokio::join!(
        async {
            drive(bare(), &bare_lab, requests, concurrency).await;
        },
        drive(stack(), &lab, requests, concurrency),
    );
    let bare = Churn::of(&bare_lab);
    let churn = Churn::of(&lab);
    let counts = lab.counts();

    // Totals.
    let mut attempts: BTreeMap<u32, usize> = BTreeMap::new();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for outcome in &outcomes {
        *attempts.entry(outcome.attempts).or_default() += 1;
        let method = outcome.call.method;
        match &outcome.end {
            None => problems.push(format!(
                "{}: no answer within {REQUEST_BOUND:?}",
                outcome.call.id
            )),
            Some(End::Ok(body)) if body.as_ref() == REPLY_BODY => {}
            Some(end) => {
                *failures.entry(method.label()).or_default() += 1;
                if method.is_idempotent() {
                    problems.push(format!(
                        "{} (idempotent) failed after {} attempt(s): {end:?}",
                        outcome.call.id, outcome.attempts
                    ));
                } else {
                    // A POST may only fail at its first attempt, and only on a fault.
                    let faulted = counts
                        .requests()
                        .iter()
                        .filter(|record| record.request_id() == Some(&outcome.call.id))
                        .all(|record| record.rule().is_some());
                    if outcome.attempts != 1 || !faulted {
                        problems.push(format!(
                            "{} failed after {} attempt(s), faulted: {faulted}: {end:?}",
                            outcome.call.id, outcome.attempts
                        ));
                    }
                }
            }
        }
    }
    problems.extend(record_bare_posts("soak", &counts));
    let faults: u64 = counts.rule_hits().iter().sum();
    let bare_posts = outcomes
        .iter()
        .filter(|outcome| outcome.call.method == Method::Post)
        .count();
    let bare_post_runs: usize = outcomes
        .iter()
        .filter(|outcome| outcome.call.method == Method::Post)
        .map(|outcome| counts.executions(&outcome.call.id))
        .sum();
    println!(
        "soak: seed {seed}\n  attempts per request: {attempts:?}\n  faults fired: {faults} \
         (rules {:?}) of {} attempts received\n  connections opened: stack {} for {} faults \
         ({:.2} per fault), bare client {} for {} faults ({:.2} per fault)\n  failures by \
         method: {failures:?}\n  POST without key: {bare_posts} sent, {bare_post_runs} \
         executions, duplicates: {:?}",
        counts.rule_hits(),
        counts.received(),
        churn.connections,
        churn.faults,
        churn.per_fault(),
        bare.connections,
        bare.faults,
        bare.per_fault(),
        lab.duplicates()
            .into_iter()
            .filter(|(id, _)| Method::is_bare_post_id(id))
            .collect::<Vec<_>>(),
    );
    crate::matrix::check_ledger();
    assert_eq!(outcomes.len(), requests, "every request returned");
    // The faults must have happened for the soak to prove anything: about 5% of attempts.
    let expected = FAULT_RATE * requests as f64;
    assert!(
        (faults as f64) > expected / 2.0,
        "too few faults: {faults}, about {expected} expected"
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(
        churn.per_fault() <= 1.1 * bare.per_fault(),
        "the stack opened {:.2} connections per fault, the bare client {:.2}",
        churn.per_fault(),
        bare.per_fault()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    soak(5_000, 32, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 50,000 requests; run it with `--ignored`"]
async fn soak_long() {
    soak(50_000, 64, 11).await;
}
