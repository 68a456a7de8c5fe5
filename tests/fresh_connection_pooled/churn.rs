//! Connections opened under isolated random resets: the pooled strategy retires the connection
//! that failed, but must not retire its healthy idle siblings with it (each costs a new
//! connection). Measured against the reset lab in real time, many requests at once, the bare
//! client and the stack side by side: the stack opens at most 10% more connections per fault
//! than the bare client, whose only new connections replace the ones the faults broke.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::lab::{Fault, Lab, Match, Reply};

use super::{client, pooled, retry};

type Stack = BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<hyper::body::Incoming>,
    BoxError,
>;

/// Connections opened and faults met by `requests` GETs, `concurrency` at once, against a lab
/// that resets 5% of the requests after reading them (seeded).
async fn opened_per_fault(stack: Stack, requests: usize, concurrency: usize) -> (usize, u64) {
    let lab = Lab::builder()
        .seed(41)
        .on(Match::any().probability(0.05), Fault::ResetAfterRequest)
        .start()
        .await
        .expect("the lab starts");
    let url = lab.url("/");
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (stack, url, next) = (stack.clone(), url.clone(), next.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let request = http::Request::get(&url)
                    .body(Full::default())
                    .expect("a valid request");
                // A failure (the bare client's faults, a third reset in a row) is expected.
                if let Ok(response) = stack.clone().oneshot(request).await {
                    let _ = response.into_body().collect().await;
                }
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(worker) = workers.join_next().await {
            worker.expect("a worker does not panic");
        }
    })
    .await
    .expect("the run ends");
    let counts = lab.counts();
    (counts.connections(), counts.rule_hits()[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_resets_cost_about_one_connection_each() {
    let (requests, concurrency) = (3000, 16);
    let bare = ServiceBuilder::new()
        .map_err(BoxError::from)
        .service(client());
    let stack = ServiceBuilder::new()
        .map_err(BoxError::from)
        .layer(retry(3))
        .service(pooled(StandardConnections::new()));
    // At the same time, so that both meet the same load on the machine.
    let (bare, layered) = tokio::join!(
        opened_per_fault(BoxCloneSyncService::new(bare), requests, concurrency),
        opened_per_fault(BoxCloneSyncService::new(stack), requests, concurrency),
    );
    let per_fault = |(connections, faults): (usize, u64)| connections as f64 / faults as f64;
    println!(
        "isolated resets, {requests} GETs, {concurrency} at once: bare {} connections for {} \
         faults ({:.2} per fault), stack {} for {} ({:.2} per fault)",
        bare.0,
        bare.1,
        per_fault(bare),
        layered.0,
        layered.1,
        per_fault(layered)
    );
    assert!(bare.1 > 50 && layered.1 > 50, "the faults happened");
    assert!(
        per_fault(layered) <= 1.1 * per_fault(bare),
        "bare: {bare:?}, stack: {layered:?} (connections, faults)"
    );
}

/// Warms 16 connections, lets the lab forget them all (a NAT that dropped its state), then sends
/// 64 GETs, 4 at once; returns how many stale connections they met, and how many GETs failed
/// (after 3 attempts).
async fn stale_met_after_a_forget(policy: StandardConnections) -> (usize, usize) {
    let lab = Lab::builder()
        .on(
            Match::path("/warm"),
            Fault::Reply(Reply::ok().delay(Duration::from_millis(100))),
        )
        .start()
        .await
        .expect("the lab starts");
    let stack = ServiceBuilder::new()
        .map_err(BoxError::from)
        .layer(retry(3))
        .service(pooled(policy));
    let stack = BoxCloneSyncService::new(stack);
    let get = |path: &str| {
        let stack = stack.clone();
        let request = http::Request::get(lab.url(path))
            .body(Full::default())
            .expect("a valid request");
        tokio::spawn(async move {
            let response = stack.oneshot(request).await?;
            assert_eq!(response.status(), 200);
            response.into_body().collect().await?;
            Ok::<_, BoxError>(())
        })
    };
    let warm: Vec<_> = (0..16).map(|_| get("/warm")).collect();
    for call in warm {
        call.await.expect("no panic").expect("the warm-up succeeds");
    }
    assert_eq!(lab.counts().connections(), 16);
    lab.forget_connections();
    let mut failed = 0;
    for _ in 0..16 {
        let burst: Vec<_> = (0..4).map(|_| get("/")).collect();
        for call in burst {
            failed += usize::from(call.await.expect("no panic").is_err());
        }
    }
    (lab.counts().forgotten_resets(), failed)
}

/// The other side of the bar: when the peer did drop every idle connection, the stack notices
/// (failures came one after another, and no old connection has worked since) and retires the
/// rest, so that the requests meet fewer of the 16 stale connections than with no sibling
/// eviction at all, and every GET succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_forgot_every_connection_is_noticed_under_load() {
    let bound = Duration::from_secs(30);
    let (evicting, evicting_failed) =
        tokio::time::timeout(bound, stale_met_after_a_forget(StandardConnections::new()))
            .await
            .expect("the run ends");
    let never = StandardConnections::builder()
        .evict_idle_siblings(false)
        .build()
        .expect("a valid policy");
    let (not_evicting, not_evicting_failed) =
        tokio::time::timeout(bound, stale_met_after_a_forget(never))
            .await
            .expect("the run ends");
    println!(
        "stale connections met: {evicting} evicting idle siblings ({evicting_failed} GETs \
         failed), {not_evicting} not ({not_evicting_failed} failed)"
    );
    assert_eq!(not_evicting, 16, "each stale connection fails once");
    assert!(evicting <= 8, "{evicting} stale connections met");
    assert_eq!(evicting_failed, 0);
}
