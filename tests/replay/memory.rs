//! Memory and allocations, counted by `allocation-counter`'s global allocator (this thread
//! only: the runtimes here are current-thread, so every task runs on the measured thread).

use std::future::Future;

use allocation_counter::AllocationInfo;
use bytes::Bytes;
use http_body_util::{Empty, Full};
use tower::{ServiceBuilder, ServiceExt};
use tower_reset::replay::{ReplayBody, ReplayBodyLayer, DEFAULT_CAP};
use tower_reset::ResetRetryLayer;

use crate::frames::upload;
use crate::upstream::{Script, Upstream};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;

fn measure<T>(future: impl Future<Output = T>) -> (AllocationInfo, T) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut output = None;
    let info = allocation_counter::measure(|| output = Some(runtime.block_on(future)));
    (info, output.unwrap())
}

/// Streams 64 MiB in 16 KiB chunks (each freshly allocated, as a network body's are) to an
/// upstream that reads it all, with and without the replay stack, and compares the peaks.
#[test]
fn a_64_mib_upload_through_the_stack_keeps_at_most_the_cap() {
    let chunks = 64 * MIB / CHUNK;

    let (bare, delivered) = measure(async {
        let upstream = Upstream::counting([Script::Answer(200)]);
        let request = http::Request::put("http://upstream/blob")
            .body(upload(chunks, CHUNK))
            .unwrap();
        upstream.clone().oneshot(request).await.unwrap();
        upstream.delivered()[0].len
    });
    assert_eq!(delivered, 64 * MIB);

    let (stacked, delivered) = measure(async {
        let upstream = Upstream::counting([Script::Answer(200)]);
        let service = ServiceBuilder::new()
            .layer(ReplayBodyLayer::new())
            .layer(ResetRetryLayer::new())
            .service(upstream.clone());
        let request = http::Request::put("http://upstream/blob")
            .body(upload(chunks, CHUNK))
            .unwrap();
        service.oneshot(request).await.unwrap();
        upstream.delivered()[0].len
    });
    assert_eq!(delivered, 64 * MIB);

    let extra = stacked.bytes_max.saturating_sub(bare.bytes_max);
    println!(
        "64 MiB upload, peak heap: bare {} B, through the stack {} B, extra {} B (cap {} B)",
        bare.bytes_max, stacked.bytes_max, extra, DEFAULT_CAP
    );
    assert!(
        extra <= (DEFAULT_CAP + 2 * CHUNK + 4096) as u64,
        "the stack kept {extra} bytes more at its peak, more than the cap and a chunk in flight"
    );
}

#[test]
fn a_body_that_is_never_copied_allocates_nothing() {
    let body = Full::new(Bytes::from_static(b"payload"));
    let (info, _) = measure(async {
        let body = ReplayBody::new(body);
        crate::frames::collect(body).await.unwrap()
    });
    // `collect` itself allocates its Vec of chunks: one allocation, nothing from the body.
    assert_eq!(info.count_total, 1, "{info:?}");
}

#[test]
fn copying_an_empty_body_allocates_nothing() {
    let body = ReplayBody::new(Empty::<Bytes>::new());
    let info = allocation_counter::measure(|| {
        let copy = body.try_clone().expect("an empty body can be copied");
        std::hint::black_box(copy);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn copying_a_body_allocates_its_shared_state_once() {
    let body = ReplayBody::new(Full::new(Bytes::from_static(b"payload")));
    let first = allocation_counter::measure(|| {
        std::hint::black_box(body.try_clone().unwrap());
    });
    let second = allocation_counter::measure(|| {
        std::hint::black_box(body.try_clone().unwrap());
    });
    assert_eq!(
        first.count_total, 1,
        "the first copy makes the shared state"
    );
    assert_eq!(second.count_total, 0, "later copies share it");
}
