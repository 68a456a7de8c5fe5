//! The pooled strategy over hyper-util's legacy `Client`, against a real loopback server that
//! plays restarts and idle timeouts.
//!
//! Time here is real (the sockets are): delays are chosen with wide margins, and the assertions
//! are about what happened on which connection, counted by the server, never about speed.

#![cfg(feature = "hyper-util")]

#[cfg(all(feature = "lab", feature = "tracing"))]
#[path = "../support/captured_events.rs"]
mod captured_events;
#[cfg(feature = "lab")]
mod churn;
#[cfg(feature = "lab")]
#[path = "../support/forgetful_lab.rs"]
mod forgetful_lab;
mod hosts;
#[cfg(feature = "lab")]
mod learning;
#[path = "../support/loopback_resolver.rs"]
mod loopback_resolver;
#[cfg(feature = "lab")]
#[path = "../support/paused_io.rs"]
mod paused_io;
mod server;
#[cfg(feature = "lab")]
mod unrepeatable;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptHistory;
use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
use tower_reset::{BackoffLayer, FreshConnection, FreshConnectionLayer, ResetRetryLayer};

use crate::server::{Config, Server};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const LIMIT: Duration = Duration::from_secs(20);

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(server: &Server) -> http::Request<Full<Bytes>> {
    http::Request::get(server.url("/"))
        .body(Full::default())
        .unwrap()
}

fn retry(max_attempts: u32) -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .max_attempts(max_attempts)
        .no_budget()
        .build()
        .unwrap()
}

fn pooled<P: ConnectionPolicy + Clone>(policy: P) -> FreshConnection<HttpClient, P> {
    FreshConnectionLayer::new().policy(policy).layer(client())
}

/// Sends `n` requests at once through clones of `service`, so that the pool opens `n`
/// connections (the server answers slowly), and checks they all succeeded.
async fn warm<S>(service: &S, server: &Server, n: usize)
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    let calls: Vec<_> = (0..n)
        .map(|_| tokio::spawn(service.clone().oneshot(get(server))))
        .collect();
    for call in calls {
        let response = call.await.unwrap().map_err(Into::into).unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        server.connections().len(),
        n,
        "the pool opened one connection per request"
    );
}

fn attempts<B>(response: &http::Response<B>) -> u32 {
    response
        .extensions()
        .get::<AttemptHistory>()
        .map_or(1, AttemptHistory::attempts)
}

#[tokio::test]
async fn after_a_restart_the_retry_goes_out_on_a_new_connection() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config {
            delay: Duration::from_millis(100),
            ..Config::default()
        })
        .await;
        let fresh = pooled(StandardConnections::new());
        let stack = ServiceBuilder::new()
            .layer(retry(10))
            .layer(BackoffLayer::new())
            .service(fresh.clone());
        warm(&stack, &server, 3).await;
        assert_eq!(fresh.tracked_connections(), 3);

        server.restart();
        let response = stack.oneshot(get(&server)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            attempts(&response),
            2,
            "one stale connection, then a fresh one"
        );
        assert_eq!(server.connections().len(), 4, "exactly one new connection");
        assert_eq!(server.resets(), 1);
        assert_eq!(
            fresh.tracked_connections(),
            1,
            "the stale ones were retired"
        );
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn without_the_layer_a_restart_costs_one_failure_per_stale_connection() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config {
            delay: Duration::from_millis(100),
            ..Config::default()
        })
        .await;
        let stack = ServiceBuilder::new().layer(retry(10)).service(client());
        warm(&stack, &server, 3).await;

        server.restart();
        let response = stack.oneshot(get(&server)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            attempts(&response),
            4,
            "N = 3 stale connections, then a fresh one"
        );
        assert_eq!(server.resets(), 3);
    })
    .await
    .expect("no hang");
}

/// Sends GETs one after the other, waiting `gaps[i]` before request `i`.
async fn spaced<S>(service: S, server: &Server, gaps: &[u64])
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone,
    S::Error: Into<BoxError>,
{
    for &gap in gaps {
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let response = service
            .clone()
            .oneshot(get(server))
            .await
            .map_err(Into::into)
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Short and long pauses around a server that drops connections idle over 300 ms.
const GAPS: [u64; 8] = [0, 50, 500, 50, 500, 50, 500, 50];
const IDLE_TIMEOUT: Duration = Duration::from_millis(300);

/// Runs `gaps` against a server with [`IDLE_TIMEOUT`], through `ResetRetry` over the pooled
/// strategy with `policy`; returns the server for its counts.
async fn idle_run(policy: StandardConnections, gaps: &[u64]) -> Server {
    let server = Server::start(Config {
        idle_timeout: Some(IDLE_TIMEOUT),
        ..Config::default()
    })
    .await;
    let stack = ServiceBuilder::new()
        .layer(retry(3))
        .service(pooled(policy));
    tokio::time::timeout(LIMIT, spaced(stack, &server, gaps))
        .await
        .expect("no hang");
    server
}

#[tokio::test]
async fn with_max_idle_below_the_peer_timeout_no_request_meets_a_reset() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_millis(150))
        .build()
        .unwrap();
    let server = idle_run(policy, &GAPS).await;
    assert_eq!(server.resets(), 0);
    assert_eq!(server.responses(), GAPS.len());
    // Each long pause retired the idle connection: 1 + 3 connections.
    assert_eq!(server.connections().len(), 4);
}

#[tokio::test]
async fn without_max_idle_the_same_run_meets_resets() {
    let server = idle_run(StandardConnections::new(), &GAPS).await;
    assert_eq!(server.resets(), 3, "one reset after each long pause");
}

/// One reset is no evidence of an idle timeout (it may be a restart, an overloaded server):
/// the timeout is learned from the second, and no later long pause meets a reset.
#[tokio::test]
async fn the_peer_idle_timeout_is_learned_from_the_second_reset() {
    let policy = StandardConnections::builder()
        .learn_idle_timeout(true)
        .build()
        .unwrap();
    let gaps = [0, 50, 500, 50, 500, 50, 500, 50, 500, 50, 500, 50];
    let server = idle_run(policy, &gaps).await;
    assert_eq!(
        server.resets(),
        2,
        "of five long pauses, only the first two meet a reset"
    );
    assert_eq!(server.responses(), gaps.len());
}

#[tokio::test]
async fn a_connection_never_carries_more_than_max_requests() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config::default()).await;
        let policy = StandardConnections::builder()
            .max_requests(3)
            .build()
            .unwrap();
        let stack = ServiceBuilder::new()
            .layer(retry(3))
            .service(pooled(policy));
        spaced(stack, &server, &[0; 10]).await;
        let per_connection: Vec<usize> = server.connections().iter().map(|c| c.requests).collect();
        assert_eq!(per_connection, vec![3, 3, 3, 1]);
        assert_eq!(server.resets(), 0);
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_connection_is_retired_at_max_age() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config::default()).await;
        let max_age = Duration::from_millis(300);
        let policy = StandardConnections::builder()
            .max_age(max_age)
            .build()
            .unwrap();
        let stack = ServiceBuilder::new()
            .layer(retry(3))
            .service(pooled(policy));
        spaced(stack, &server, &[40; 25]).await;
        let connections = server.connections();
        assert!(
            connections.len() >= 3,
            "25 requests over ~1 s need several connections"
        );
        for connection in &connections {
            let last = connection
                .last_request
                .expect("every connection carried a request");
            let lifetime = last.duration_since(connection.accepted);
            // The age is counted from the first request's start on the client side, a moment
            // before the server accepts; the margin is for one request's round trip.
            assert!(
                lifetime < max_age + Duration::from_millis(150),
                "a connection was used {lifetime:?} after it was opened"
            );
        }
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn error_responses_do_not_retire_the_connection() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config {
            status: 503,
            ..Config::default()
        })
        .await;
        let fresh = pooled(StandardConnections::new());
        let stack = ServiceBuilder::new().layer(retry(3)).service(fresh.clone());
        for _ in 0..5 {
            let response = stack.clone().oneshot(get(&server)).await.unwrap();
            assert_eq!(response.status(), 503);
        }
        assert_eq!(
            server.connections().len(),
            1,
            "every request reused the one connection"
        );
        assert_eq!(fresh.tracked_connections(), 1);
    })
    .await
    .expect("no hang");
}

/// The stack of DESIGN.md, exactly as written there, over hyper-util's legacy client: the three
/// layers with their `new()` defaults, in this order.
#[tokio::test]
async fn the_documented_stack_compiles_and_recovers_from_a_restart() {
    tokio::time::timeout(LIMIT, async {
        let server = Server::start(Config {
            delay: Duration::from_millis(100),
            ..Config::default()
        })
        .await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let stack = ServiceBuilder::new()
            .layer(ResetRetryLayer::new()) // whether
            .layer(BackoffLayer::new()) // when
            .layer(FreshConnectionLayer::new()) // which connection
            .service(client);
        warm(&stack, &server, 3).await;
        server.restart();
        let response = stack.oneshot(get(&server)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(attempts(&response), 2);
        assert_eq!(server.connections().len(), 4);
    })
    .await
    .expect("no hang");
}
