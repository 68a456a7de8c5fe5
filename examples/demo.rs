//! What the tower-reset stack changes, over real sockets, in about a second.
//!
//! A server on 127.0.0.1 (`tower_reset::lab`) resets the connection of one request in ten
//! after it has executed it, before it answers, so the client cannot tell whether it was done;
//! halfway through the run it also forgets every open connection, as a NAT or a load balancer
//! does after an idle timeout, so that the client's pooled connections go stale.
//!
//! The same 200 requests (150 GET, 50 POST without an `Idempotency-Key`) go through a bare
//! hyper-util client, then through the stack (`ResetRetryLayer`, `BackoffLayer`,
//! `FreshConnectionLayer`, all defaults), each against a fresh server. The server counts what
//! it received and executed.
//!
//! Run it with `cargo run --example demo --features lab,hyper-util`.

use std::error::Error;
use std::io::{self, IsTerminal, Write};
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tower::util::BoxCloneService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::lab::{Fault, Lab, Match};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

const REQUESTS: usize = 200;
/// Requests in flight at once.
const AT_ONCE: usize = 4;
/// The server resets one request in this many.
const ONE_IN: u32 = 10;

type Service = BoxCloneService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

fn bare() -> Service {
    let client = Client::builder(TokioExecutor::new()).build_http();
    BoxCloneService::new(client.map_err(BoxError::from))
}

fn stack() -> Service {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .layer(ResetRetryLayer::new()) // whether
        .layer(BackoffLayer::new()) // when
        .layer(FreshConnectionLayer::new()) // which connection
        .service(client);
    BoxCloneService::new(stack)
}

/// Request `index`: three GETs, then a POST (a payment).
fn request(lab: &Lab, index: usize) -> Request<Full<Bytes>> {
    let (method, path, id, body) = if index % 4 == 3 {
        (
            Method::POST,
            "/payments",
            format!("post-{index}"),
            "amount=10",
        )
    } else {
        (Method::GET, "/items", format!("get-{index}"), "")
    };
    Request::builder()
        .method(method)
        .uri(lab.url(path))
        .header("x-request-id", id)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid request")
}

/// What happened to the workload, counted by the client and by the server.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed_gets: usize,
    failed_posts: usize,
    /// Failed POSTs that the server had executed: a blind retry would have run them twice.
    failed_posts_executed: usize,
    /// Attempts beyond one per request that reached the server.
    retries: usize,
    posts_executed_twice: usize,
    first_error: Option<String>,
}

/// Sends the workload through `service` to a fresh lab: half of it, then the server forgets
/// every connection, then the other half.
async fn run(label: &'static str, service: Service) -> io::Result<Tally> {
    let lab = Arc::new(
        Lab::builder()
            .on(
                Match::any().probability(1.0 / f64::from(ONE_IN)),
                Fault::ResetAfterRequest,
            )
            .seed(3)
            .start()
            .await?,
    );
    let progress = Progress::start(label);
    let mut results = send(&service, &lab, 0..REQUESTS / 2, &progress).await;
    lab.forget_connections();
    results.extend(send(&service, &lab, REQUESTS / 2..REQUESTS, &progress).await);
    progress.finish();

    let counts = lab.counts();
    let mut tally = Tally {
        retries: counts.received() + counts.forgotten_resets() - REQUESTS,
        posts_executed_twice: counts
            .duplicates()
            .iter()
            .filter(|(id, _)| id.starts_with("post-"))
            .count(),
        ..Tally::default()
    };
    for (id, result) in results {
        let Err(error) = result else {
            tally.succeeded += 1;
            continue;
        };
        if id.starts_with("post-") {
            tally.failed_posts += 1;
            tally.failed_posts_executed += usize::from(counts.executions(&id) > 0);
        } else {
            tally.failed_gets += 1;
        }
        tally.first_error.get_or_insert(error);
    }
    Ok(tally)
}

/// Sends the requests of `range`, [`AT_ONCE`] at a time; returns each id with its outcome.
async fn send(
    service: &Service,
    lab: &Arc<Lab>,
    range: Range<usize>,
    progress: &Progress,
) -> Vec<(String, Result<(), String>)> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let (service, lab, next) = (service.clone(), Arc::clone(lab), Arc::clone(&next));
            let done = Arc::clone(&progress.done);
            let end = range.end;
            tokio::spawn(async move {
                let mut results = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= end {
                        return results;
                    }
                    let request = request(&lab, index);
                    let id = request.headers()["x-request-id"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let result = send_one(service.clone(), request).await;
                    results.push((id, result.map_err(|error| chain(&*error))));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await.expect("a worker"));
    }
    results
}

/// Sends one request and reads the whole response.
async fn send_one(service: Service, request: Request<Full<Bytes>>) -> Result<(), BoxError> {
    let response = service.oneshot(request).await?;
    response.into_body().collect().await?;
    Ok(())
}

/// An error and its sources, on one line.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text = format!("{text}: {error}");
        source = error.source();
    }
    text
}

/// A line that counts the requests sent, rewritten in place; shown only on a terminal, and
/// only once a run has taken more than a second.
#[derive(Debug)]
struct Progress {
    done: Arc<AtomicUsize>,
    ticker: JoinHandle<()>,
}

impl Progress {
    fn start(label: &'static str) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let done = Arc::clone(&done);
            async move {
                if !io::stdout().is_terminal() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                loop {
                    let done = done.load(Ordering::Relaxed);
                    print!("\r  {label}: {done} of {REQUESTS} requests...");
                    let _ = io::stdout().flush();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { done, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        if io::stdout().is_terminal() {
            print!("\r{:60}\r", "");
            let _ = io::stdout().flush();
        }
    }
}

fn report(bare: &Tally, stack: &Tally) {
    let (gets, posts) = (REQUESTS - REQUESTS / 4, REQUESTS / 4);
    println!(
        "hyper-util alone: {} of {REQUESTS} requests failed ({} GET, {} POST), for example with\n    \
         {}\n",
        bare.failed_gets + bare.failed_posts,
        bare.failed_gets,
        bare.failed_posts,
        bare.first_error.as_deref().unwrap_or("-"),
    );
    if stack.failed_gets == 0 {
        println!(
            "With tower-reset: all {gets} GETs succeeded, after {} retries.",
            stack.retries
        );
    } else {
        println!(
            "With tower-reset: {} of {gets} GETs succeeded, after {} retries; {} failed 3 times \
             in a row, the attempt limit.",
            gets - stack.failed_gets,
            stack.retries,
            stack.failed_gets
        );
    }
    println!(
        "    POSTs: {} of {posts} failed, and none was retried: the client could not know whether \
         the server\n    had executed them (in fact it had executed {}), and a retry could have \
         charged twice.\n    The caller got the error instead. POSTs executed twice: {}.\n",
        stack.failed_posts, stack.failed_posts_executed, stack.posts_executed_twice
    );
    println!("| client | succeeded | failed | retries | POSTs executed twice |");
    println!("|---|---|---|---|---|");
    for (name, tally) in [("hyper-util", bare), ("tower-reset", stack)] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            tally.succeeded,
            tally.failed_gets + tally.failed_posts,
            tally.retries,
            tally.posts_executed_twice
        );
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    println!(
        "A server on 127.0.0.1 resets the connection of 1 request in {ONE_IN} after executing \
         it, before\nanswering; halfway through, it also forgets every open connection, as a NAT \
         does after an\nidle timeout. {REQUESTS} requests ({} GET, {} POST without an \
         Idempotency-Key), {AT_ONCE} at a time.\n",
        REQUESTS - REQUESTS / 4,
        REQUESTS / 4
    );
    let bare = run("hyper-util alone", bare()).await?;
    let stack = run("with tower-reset", stack()).await?;
    report(&bare, &stack);

    if stack.posts_executed_twice > 0 || stack.succeeded <= bare.succeeded {
        eprintln!("\nunexpected: the stack ran a POST twice, or did not help");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
