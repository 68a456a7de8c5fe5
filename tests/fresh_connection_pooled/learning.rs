//! The registry over long runs, against the reset lab in paused time: the idle timeout is
//! learned from repeated evidence only, and unlearned when connections reused past it keep
//! working; connections are never retired for idling unless a limit says so.
//!
//! Paused time is safe with these real sockets: nothing but the test's own sleeps sets a timer
//! (no idle timer in the lab, which checks its `Idle::Forget` timeout when a request arrives,
//! and none in a hyper-util client built without one), each run is bounded in real time, and
//! each request is sent with the clock held still (see `paused_io`), so the clock moves only
//! while the test sleeps, and every idle time is exactly the sleep before the request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::lab::{Fault, Idle, Lab, Match};
use tower_reset::FreshConnectionLayer;

use super::{pooled, retry, HttpClient};
use crate::paused_io::{bounded, frozen};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn learning() -> StandardConnections {
    StandardConnections::builder()
        .learn_idle_timeout(true)
        .build()
        .expect("a valid policy")
}

/// Sends one GET per gap, after sleeping that long, and reads each response to its end; returns
/// the lab's connection count after each request. Bounded in real time; each request is sent
/// frozen.
async fn run<S>(service: S, lab: &Lab, gaps: &[Duration]) -> Vec<usize>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone,
    S::Error: Into<BoxError>,
{
    bounded(async {
        let mut connections = Vec::with_capacity(gaps.len());
        for gap in gaps {
            tokio::time::sleep(*gap).await;
            let request = http::Request::get(lab.url("/"))
                .body(Full::default())
                .expect("a valid request");
            let status = frozen(async {
                let response = service
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(Into::into)
                    .expect("the request succeeds");
                let status = response.status();
                response.into_body().collect().await.expect("the body");
                status
            })
            .await;
            assert_eq!(status, 200);
            connections.push(lab.counts().connections());
        }
        connections
    })
    .await
}

/// `ResetRetry` (3 attempts) over the pooled strategy with `policy`, against a lab that
/// applies `action` to the requests `when` matches, one GET every 300 ms, `requests` of them;
/// returns the lab's connection count after each request.
async fn every_300_ms(
    policy: StandardConnections,
    when: Match,
    action: Fault,
    requests: usize,
) -> Vec<usize> {
    let lab = Lab::builder()
        .on(when, action)
        .start()
        .await
        .expect("the lab starts");
    run(retrying(policy), &lab, &vec![ms(300); requests]).await
}

/// `ResetRetry` with 3 attempts over the pooled strategy with `policy`.
fn retrying(
    policy: StandardConnections,
) -> tower_reset::ResetRetry<tower_reset::FreshConnection<HttpClient, StandardConnections>> {
    ServiceBuilder::new()
        .layer(retry(3))
        .service(pooled(policy))
}

/// The case: a server with no idle timeout resets one request after 300 ms idle, then
/// requests keep coming every 300 ms. One reset is not evidence of an idle timeout: the
/// connection that replaced the reset one is reused from then on, as without learning
/// (before: `[1, 2, 3, …, 14]`, one new connection per request for ever).
#[tokio::test(start_paused = true)]
async fn an_isolated_reset_teaches_nothing() {
    let connections = every_300_ms(learning(), Match::nth(2), Fault::ResetAfterRequest, 14).await;
    assert_eq!(connections, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
}

/// Two resets in a row after 300 ms idle are evidence enough, so a limit is learned and
/// connections idle 300 ms are retired; but after 16 of them one is left to be reused past the
/// limit, it works, and the limit is unlearned: the connection count stops growing.
#[tokio::test(start_paused = true)]
async fn a_learned_limit_that_connections_outlive_is_unlearned() {
    let twice = Match::nth_on_connection(2).times(2);
    let connections = every_300_ms(learning(), twice, Fault::ResetAfterRequest, 40).await;
    // Requests 2 and 3 are reset and retried on new connections; requests 4 to 19 each find
    // their connection retired (16 retirements); request 20 is the probe.
    let mut expected: Vec<usize> = (1..=19).collect();
    expected.resize(40, 19);
    assert_eq!(connections, expected);
}

/// A peer that really drops connections idle over 300 ms is still learned, within two resets:
/// of six long pauses, only the first two meet a reset (six without learning).
#[tokio::test(start_paused = true)]
async fn a_real_idle_timeout_is_learned_within_two_resets() {
    let gaps: Vec<Duration> = [0, 50, 500, 50, 500, 50, 500, 50, 500, 50, 500, 50, 500, 50]
        .into_iter()
        .map(ms)
        .collect();
    for (policy, resets) in [(learning(), 2), (StandardConnections::new(), 6)] {
        let lab = Lab::builder()
            .idle_timeout(ms(300), Idle::Forget)
            .start()
            .await
            .expect("the lab starts");
        run(retrying(policy), &lab, &gaps).await;
        assert_eq!(lab.counts().forgotten_resets(), resets, "{policy:?}");
    }
}

/// No limit set, and hyper-util told to keep idle connections for ever: two requests 301 s
/// apart share one connection, as they do without the layer (before: the registry poisoned
/// connections it had not seen for 300 s).
#[tokio::test(start_paused = true)]
async fn with_no_limit_an_idle_connection_is_kept_for_ever() {
    let keep_idle = || -> HttpClient {
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(None)
            .build_http()
    };
    let gaps = [ms(0), Duration::from_secs(301), Duration::from_secs(3600)];
    let lab = Lab::builder().start().await.expect("the lab starts");
    let bare = run(keep_idle(), &lab, &gaps).await;
    let lab = Lab::builder().start().await.expect("the lab starts");
    let layered = run(FreshConnectionLayer::new().layer(keep_idle()), &lab, &gaps).await;
    assert_eq!(bare, [1, 1, 1]);
    assert_eq!(layered, bare);
}

/// A `max_idle` longer than the registry's 300 s memory is still exact: a connection idle 400 s
/// is reused, one idle 601 s is not.
#[tokio::test(start_paused = true)]
async fn a_max_idle_longer_than_the_registry_memory_is_exact() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_secs(600))
        .build()
        .expect("a valid policy");
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(None)
        .build_http();
    let lab = Lab::builder().start().await.expect("the lab starts");
    let fresh = FreshConnectionLayer::new().policy(policy).layer(client);
    let gaps = [
        ms(0),
        Duration::from_secs(400),
        Duration::from_secs(601),
        ms(10),
    ];
    assert_eq!(run(fresh, &lab, &gaps).await, [1, 1, 2, 2]);
}
