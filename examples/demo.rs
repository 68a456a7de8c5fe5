//! What `ResetRetryLayer` changes, over real sockets, in a second.
//!
//! A local server resets the connection on every other request it receives: the 1st, the 3rd,
//! the 5th... It sends a TCP `RST` after reading the request in full, so the client sees
//! "connection reset by peer" and cannot know whether the server acted on the request.
//!
//! The same workload, 20 GET and 10 POST requests (half of the POSTs carry an
//! `Idempotency-Key`), goes through three clients:
//!
//! * a bare hyper-util client, which fails on every reset;
//! * a naive retry (tower's `Retry` on any error), which succeeds but sends POSTs twice, so a
//!   server that acted on the first copy acts again;
//! * the `ResetRetryLayer` stack, which retries what is safe and returns the rest.
//!
//! Run it with `cargo run --example demo`.

// The server is shared with the socket tests; the demo uses only part of it.
#[path = "../tests/support/reset_server.rs"]
mod reset_server;

use std::error::Error;
use std::future::{ready, Ready};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::retry::{Policy, RetryLayer};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::ResetRetryLayer;

use reset_server::{Behaviour, ResetServer, OK};

const GETS: usize = 20;
const POSTS: usize = 10;
const REQUESTS: usize = GETS + POSTS;

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The server's script: reset, answer, reset, answer... (longer than any run can use).
fn script() -> Vec<Behaviour> {
    [Behaviour::ResetAfterHead, OK]
        .into_iter()
        .cycle()
        .take(4 * REQUESTS)
        .collect()
}

/// One request of the workload: two GETs then a POST, ten times; every other POST has a key.
fn request(server: &ResetServer, index: usize) -> (Request<Full<Bytes>>, Kind) {
    let group = index / 3;
    let (kind, builder) = if index % 3 < 2 {
        let builder = Request::get(server.url("/items"));
        (
            Kind::Get,
            builder.header("x-request-id", format!("get-{index}")),
        )
    } else if group.is_multiple_of(2) {
        let builder = Request::post(server.url("/pay"));
        (
            Kind::Post,
            builder.header("x-request-id", format!("post-{index}")),
        )
    } else {
        let builder = Request::post(server.url("/pay"))
            .header("x-request-id", format!("post-{index}"))
            .header("idempotency-key", format!("key-{index}"));
        (Kind::KeyedPost, builder)
    };
    let body = if kind == Kind::Get { "" } else { "amount=10" };
    let request = builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("valid request");
    (request, kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Post,
    KeyedPost,
}

/// What one client did with the workload.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
    failed_posts: usize,
    server_attempts: usize,
    /// POSTs without a key that the server read more than once: the harmful duplicates.
    posts_twice: usize,
    /// POSTs with a key that the server read more than once: harmless, it deduplicates.
    keyed_posts_twice: usize,
    first_error: Option<String>,
}

/// Sends the workload, one request after the other, to a fresh server.
async fn run<S>(service: S) -> Tally
where
    S: Service<Request<Full<Bytes>>, Response = Response<Incoming>, Error = BoxError> + Clone,
{
    let server = ResetServer::start(script());
    let mut tally = Tally::default();
    for index in 0..REQUESTS {
        let (request, kind) = request(&server, index);
        let id = request.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let result = match service.clone().oneshot(request).await {
            Ok(response) => response.into_body().collect().await.map_err(BoxError::from),
            Err(error) => Err(error),
        };
        match result {
            Ok(_) => tally.succeeded += 1,
            Err(error) => {
                tally.failed += 1;
                tally.failed_posts += usize::from(kind == Kind::Post);
                tally.first_error.get_or_insert_with(|| chain(&*error));
            }
        }
        let twice = server.executed_id(&id) > 1;
        tally.posts_twice += usize::from(twice && kind == Kind::Post);
        tally.keyed_posts_twice += usize::from(twice && kind == Kind::KeyedPost);
    }
    tally.server_attempts = server.received_total();
    tally
}

/// An error and its sources, on one line.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// The naive retry: any error, any method, up to `self.0` attempts in total.
#[derive(Debug, Clone)]
struct RetryAnyError(u32);

impl<B: Clone, Res, E> Policy<Request<B>, Res, E> for RetryAnyError {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut Request<B>, result: &mut Result<Res, E>) -> Option<Ready<()>> {
        (result.is_err() && self.0 > 1).then(|| {
            self.0 -= 1;
            ready(())
        })
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        Some(request.clone())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    println!(
        "The server resets the connection on every other request it receives (1st, 3rd, 5th...),"
    );
    println!("after reading it in full: the client cannot know whether the server acted on it.");
    println!(
        "Workload: {GETS} GET and {POSTS} POST, half of the POSTs with an Idempotency-Key, \
         sent one after the other.\n"
    );

    let workload = async {
        let bare = run(client().map_err(BoxError::from)).await;
        let naive = ServiceBuilder::new()
            .layer(RetryLayer::new(RetryAnyError(3)))
            .map_err(BoxError::from)
            .service(client());
        let naive = run(naive).await;
        // The client's errors are boxed so that the three runs share one error type; the
        // standard classifier reads a boxed error by walking its `source()` chain.
        let stack = ServiceBuilder::new()
            .layer(ResetRetryLayer::new())
            .map_err(BoxError::from)
            .service(client());
        let stack = run(stack).await;
        (bare, naive, stack)
    };
    let Ok((bare, naive, stack)) = tokio::time::timeout(Duration::from_secs(10), workload).await
    else {
        eprintln!("the demo took more than 10 seconds");
        return ExitCode::FAILURE;
    };

    println!(
        "Bare client: {} of {REQUESTS} requests failed, for example with\n    {}",
        bare.failed,
        bare.first_error.as_deref().unwrap_or("-")
    );
    println!(
        "Naive retry (any error, 3 attempts): {} succeeded, but {} POSTs without a key reached\n    \
         the server twice: a payment taken twice.",
        naive.succeeded, naive.posts_twice
    );
    println!(
        "ResetRetryLayer: {} succeeded after {} retries, all of GETs or keyed POSTs.\n    \
         The {} POSTs without a key were not retried, since the server may have acted on them:\n    \
         each reached the server once and its error went back to the caller.\n    \
         {} keyed POSTs reached the server twice, which the key makes safe.\n",
        stack.succeeded,
        stack.server_attempts - REQUESTS,
        stack.failed_posts,
        stack.keyed_posts_twice
    );

    println!(
        "{:<16} {:>8} {:>9} {:>6} {:>20} {:>24}",
        "client",
        "requests",
        "succeeded",
        "failed",
        "server-side attempts",
        "POSTs run twice (no key)"
    );
    for (name, tally) in [
        ("bare client", &bare),
        ("naive retry", &naive),
        ("ResetRetryLayer", &stack),
    ] {
        println!(
            "{name:<16} {REQUESTS:>8} {:>9} {:>6} {:>20} {:>24}",
            tally.succeeded, tally.failed, tally.server_attempts, tally.posts_twice
        );
    }

    if stack.posts_twice != 0 || stack.failed != stack.failed_posts {
        eprintln!("\nunexpected: the stack repeated a POST without a key, or lost a safe request");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
