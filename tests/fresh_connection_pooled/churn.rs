//! Connections opened under isolated random resets: the pooled strategy retires the connection
//! that failed, but must not retire its healthy idle siblings with it (each costs a new
//! connection). Measured against the reset lab in real time, many requests at once: the stack
//! opens at most 10% more connections per fault than the bare client, whose only new
//! connections replace the ones the faults broke.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::fresh_connection::policy::Standard;
use tower_reset::lab::{Action, Lab, Match};

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
        .on(Match::any().probability(0.05), Action::ResetAfterRequest)
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
    let bare = opened_per_fault(BoxCloneSyncService::new(bare), requests, concurrency).await;
    let stack = ServiceBuilder::new()
        .map_err(BoxError::from)
        .layer(retry(3))
        .service(pooled(Standard::new()));
    let layered = opened_per_fault(BoxCloneSyncService::new(stack), requests, concurrency).await;
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
