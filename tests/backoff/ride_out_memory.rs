//! The memory a long outage holds, counted by a global allocator (`allocation-counter`): the
//! line of waiting requests is bounded by the window, and nothing is kept for a request once it
//! has ended, so the peak after 30 s of outage is that after 3 s (the window is 2 s).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::harness::*;
use crate::scripted_mock::paused_runtime;

/// Refuses every connection, counting the attempts.
#[derive(Clone, Default)]
struct Refuser {
    attempts: Arc<AtomicUsize>,
}

impl Service<Req> for Refuser {
    type Response = Res;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Res, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Req) -> Self::Future {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        std::future::ready(Err(refused.into()))
    }
}

/// `seconds` of total outage at 200 requests a second through the default stack, in paused
/// time; returns the attempts the host saw and how many requests ended with its error.
async fn outage(seconds: u64) -> (usize, usize) {
    let host = Refuser::default();
    let service = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(BackoffLayer::new().seed(42))
        .service(host.clone());
    let refused = Arc::new(AtomicUsize::new(0));
    let mut last = None;
    for _ in 0..seconds * 200 {
        let (service, refused) = (service.clone(), Arc::clone(&refused));
        last = Some(tokio::spawn(async move {
            if service.oneshot(get("http://down.test/")).await.is_err() {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }));
        tokio::time::sleep(ms(5)).await;
    }
    last.expect("some request").await.expect("no panic");
    // Everything else ended before the last one, which started last and waited as long.
    tokio::time::sleep(Duration::from_millis(10)).await;
    (
        host.attempts.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

/// The peak of heap bytes while `seconds` of outage run, and their attempts and failures.
fn peak(seconds: u64) -> (u64, usize, usize) {
    let mut result = (0, 0);
    let info = allocation_counter::measure(|| {
        result = paused_runtime().block_on(outage(seconds));
    });
    (info.bytes_max, result.0, result.1)
}

#[test]
fn memory_stays_flat_through_a_long_outage() {
    let (three, attempts, refused) = peak(3);
    assert_eq!(refused, 600, "every request ended with the refusal");
    assert!(attempts <= 600 * 11 / 10 + 20, "{attempts} attempts");
    let (thirty, _, refused) = peak(30);
    assert_eq!(refused, 6000);
    println!("peak heap: {three} bytes over a 3 s outage, {thirty} bytes over 30 s");
    assert!(
        thirty <= three + three / 10,
        "the peak grew from {three} to {thirty} bytes"
    );
}
