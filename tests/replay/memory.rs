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

/// Runs `future` on a current-thread runtime (made outside the count) and counts what it
/// allocates.
pub(crate) fn measure<T>(future: impl Future<Output = T>) -> (AllocationInfo, T) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
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

/// Reads `original` to its end while `copy` waits to replay it, and returns the heap the kept
/// state still holds once it is read (and the peak while reading).
fn held_after_reading<B>(original: ReplayBody<B>) -> AllocationInfo
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<tower::BoxError>,
{
    let copy = original.try_clone().expect("nothing was read yet");
    let mut original = Some(original);
    let info = allocation_counter::measure(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut original = original.take().unwrap();
        runtime.block_on(async {
            use http_body_util::BodyExt;
            while let Some(frame) = original.frame().await {
                drop(frame.unwrap());
            }
        });
        drop(original);
        drop(runtime);
    });
    assert!(copy.is_replayable());
    info
}

#[test]
fn a_million_empty_chunks_keep_nothing() {
    let info = held_after_reading(ReplayBody::new(upload(1_000_000, 0)));
    println!(
        "1 M empty chunks: {} B held by the copy",
        info.bytes_current
    );
    assert!(
        info.bytes_current <= 1024,
        "empty chunks carry nothing to replay, yet {} B are held",
        info.bytes_current
    );
}

#[test]
fn one_byte_chunks_up_to_the_cap_keep_about_the_cap() {
    // Each chunk a buffer of its own, as a network body hands out one per read.
    let info = held_after_reading(ReplayBody::new(upload(DEFAULT_CAP, 1)));
    println!(
        "{DEFAULT_CAP} one-byte chunks: {} B held by the copy (cap {DEFAULT_CAP} B)",
        info.bytes_current
    );
    assert!(
        info.bytes_current <= (DEFAULT_CAP + 16 * 1024) as i64,
        "{} B held to replay {DEFAULT_CAP} B",
        info.bytes_current
    );
}

#[test]
fn the_copy_of_a_proxied_request_holds_none_of_the_read_buffer() {
    use tower_reset::reset_retry::policy::{CloneBody, CloneRequest};
    // hyper's server cuts header values and the path out of the buffer it read the head into.
    let mut head = b"/items/7?full=1 203.0.113.7".to_vec();
    head.resize(8 * 1024, 0);
    let read_buffer = Bytes::from(head);
    let within = |bytes: &[u8]| read_buffer.as_ptr_range().contains(&bytes.as_ptr());
    let path = http::uri::PathAndQuery::from_maybe_shared(read_buffer.slice(0..15)).unwrap();
    let value = http::HeaderValue::from_maybe_shared(read_buffer.slice(16..27)).unwrap();
    let mut uri = http::uri::Parts::default();
    uri.path_and_query = Some(path);
    let request = http::Request::put(http::Uri::from_parts(uri).unwrap())
        .header("x-forwarded-for", value)
        .header("accept", "*/*")
        .body(ReplayBody::new(Full::new(Bytes::from_static(b"payload"))))
        .unwrap();
    assert!(within(request.headers()["x-forwarded-for"].as_bytes()));

    let copy = CloneBody
        .clone_request(&request)
        .expect("a fresh body can be copied");
    assert_eq!(copy.headers(), request.headers());
    assert_eq!(copy.uri(), request.uri());
    assert_eq!(copy.method(), request.method());
    assert!(
        !within(copy.headers()["x-forwarded-for"].as_bytes()),
        "the copy's header value has memory of its own"
    );
    assert!(!within(copy.uri().path().as_bytes()), "so has its path");
}

#[test]
fn a_body_longer_than_it_announced_keeps_about_the_cap() {
    // It says 10 bytes, and sends the cap in one-byte chunks.
    struct Understated(crate::frames::Upload);
    impl http_body::Body for Understated {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::pin::Pin::new(&mut self.0).poll_frame(cx)
        }
        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(10)
        }
    }
    let info = held_after_reading(ReplayBody::new(Understated(upload(DEFAULT_CAP, 1))));
    assert!(
        info.bytes_current <= (DEFAULT_CAP + 16 * 1024) as i64,
        "{} B held to replay {DEFAULT_CAP} B",
        info.bytes_current
    );
}
