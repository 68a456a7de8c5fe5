//! Memory, counted by `allocation-counter`'s global allocator (per thread): a resumed body holds
//! no more than the frames it is handed, whatever its size; a body that never fails costs no
//! allocation per frame, and its request one copy. Exact counts, not timings.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, ETAG};
use http::Request;
use http_body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt};
use tower_reset::lab::{Fault, Lab, Match};
use tower_reset::ResumeLayer;

use crate::instant_service::{self, read_all, respond, Frames};
use crate::scripted::{counting, get, Answer, Scripted};
use crate::support::{resource, sha256, stack, tagged, Kind, MIB};

/// The allocations made on this thread while `f` runs, and the most bytes held at once.
fn measured<T>(f: impl FnOnce() -> T) -> (allocation_counter::AllocationInfo, T) {
    let mut value = None;
    let info = allocation_counter::measure(|| value = Some(f()));
    (info, value.expect("measure runs the closure"))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `body` to its end, hashing each frame and dropping it: the reader keeps nothing.
async fn hash<B>(mut body: B) -> [u8; 32]
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut hasher = Sha256::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("no body error").into_data() {
            hasher.update(&data);
        }
    }
    hasher.finalize().into()
}

/// The peak bytes held while a body of `len` bytes, in 64 KiB frames, reset three times and
/// resumed each time, is read through the layer over the scripted service.
fn peak_of_resumed(len: usize) -> u64 {
    let body = counting(len);
    let chunk = 64 * 1024;
    let tag = (ETAG, "\"v1\"");
    let total = len.to_string();
    let cuts = [len / 4, len / 2, 3 * len / 4];
    let mut answers = vec![Answer::ok(
        &body.slice(..cuts[0]),
        chunk,
        &[tag.clone(), (CONTENT_LENGTH, &total)],
    )
    .then_reset()];
    for (k, &from) in cuts.iter().enumerate() {
        let to = cuts.get(k + 1).copied().unwrap_or(len);
        let range = format!("bytes {from}-{}/{len}", len - 1);
        let answer = Answer::new(
            http::StatusCode::PARTIAL_CONTENT,
            &body.slice(from..to),
            chunk,
            &[tag.clone(), (http::header::CONTENT_RANGE, &range)],
        );
        answers.push(if to < len {
            answer.then_reset()
        } else {
            answer
        });
    }
    let scripted = Scripted::new(answers);
    let layer = ResumeLayer::new();
    let runtime = current_thread();
    let (info, digest) = measured(|| {
        runtime.block_on(async {
            let response = layer.layer(scripted.clone()).oneshot(get()).await.unwrap();
            hash(response.into_body()).await
        })
    });
    assert_eq!(digest, sha256(&body));
    assert_eq!(scripted.calls(), 4);
    info.bytes_max
}

#[test]
fn a_resumed_body_holds_no_more_for_a_larger_body() {
    let small = peak_of_resumed(4 * MIB);
    let large = peak_of_resumed(16 * MIB);
    println!(
        "peak bytes held while reading a resumed body: 4 MiB body {small}, 16 MiB body {large}"
    );
    assert!(
        small < 64 * 1024,
        "the resume machinery holds {small} bytes"
    );
    // The same, but for the digits of the offsets in the resume requests' `Range` headers.
    assert!(
        large.abs_diff(small) < 64,
        "what the layer holds does not grow with the body"
    );
}

fn request() -> Request<String> {
    instant_service::request(http::Method::GET, 2)
}

#[test]
fn a_body_that_never_fails_allocates_nothing_and_its_request_one_copy() {
    let frames = 64;
    let mut bare = Frames { frames };
    let mut resume = ResumeLayer::new().layer(Frames { frames });
    // Warm up lazy statics outside the count.
    read_all(&mut respond(&mut bare, request()).into_body());
    read_all(&mut respond(&mut resume, request()).into_body());

    let template = request();
    let (copy, clone) = measured(|| template.clone());
    drop(clone);

    let get = request();
    let (bare_call, response) = measured(|| respond(&mut bare, get));
    let mut body = response.into_body();
    let (bare_frames, read) = measured(|| read_all(&mut body));
    assert_eq!(read, frames);

    let get = request();
    let (resume_call, response) = measured(|| respond(&mut resume, get));
    let mut body = response.into_body();
    let (resume_frames, read) = measured(|| read_all(&mut body));
    assert_eq!(read, frames);
    assert_eq!(body.history().gave_up(), None, "a resumable body");

    println!(
        "allocations: request copy {}, bare call {}, resume call {}, frames bare {} resume {}",
        copy.count_total,
        bare_call.count_total,
        resume_call.count_total,
        bare_frames.count_total,
        resume_frames.count_total
    );
    assert_eq!(
        resume_frames.count_total, 0,
        "no allocation while reading the frames"
    );
    assert_eq!(
        resume_call.count_total,
        bare_call.count_total + copy.count_total,
        "the call costs one copy of the request and nothing more"
    );
    assert_eq!(
        resume_call.bytes_total,
        bare_call.bytes_total + copy.bytes_total
    );

    // A request that cannot be resumed costs nothing at all.
    let mut post = request();
    *post.method_mut() = http::Method::POST;
    let mut bare_post = request();
    *bare_post.method_mut() = http::Method::POST;
    let (bare_call, _) = measured(|| respond(&mut bare, bare_post));
    let (resume_call, _) = measured(|| respond(&mut resume, post));
    assert_eq!(resume_call.count_total, bare_call.count_total);
}

/// Over sockets: the lab runs on a thread and a runtime of its own, so that only the client's
/// allocations are counted, on this thread. A 4 MiB download reset three times and resumed
/// holds at its peak no more than the same download without a fault, give or take what one more
/// connection's buffers weigh.
#[test]
fn over_sockets_a_resumed_download_holds_what_a_plain_one_does() {
    let body = resource(4 * MIB, 30);
    let expected = sha256(&body);
    let (addresses, receive) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_body = body.clone();
    let server = std::thread::spawn(move || {
        current_thread().block_on(async move {
            let plain = Lab::builder()
                .reply(tagged(server_body.clone(), "\"v1\""))
                .start()
                .await
                .unwrap();
            let faulty = Lab::builder()
                .reply(tagged(server_body, "\"v1\""))
                .on(Match::any().times(3), Fault::ResetAfterBodyBytes(MIB))
                .start()
                .await
                .unwrap();
            addresses
                .send((plain.url("/file"), faulty.url("/file")))
                .unwrap();
            let _ = stopped.await;
            faulty.counts().received()
        })
    });
    let (plain, faulty) = receive.recv().unwrap();

    let download = |url: String| {
        let runtime = current_thread();
        let (info, digest) = measured(|| {
            runtime.block_on(async {
                let stack = stack(Kind::HyperUtilH1, ResumeLayer::new());
                let request = Request::get(url).body(Bytes::new()).unwrap();
                let response =
                    tokio::time::timeout(Duration::from_secs(30), stack.oneshot(request))
                        .await
                        .unwrap()
                        .unwrap();
                hash(response.into_body()).await
            })
        });
        assert_eq!(digest, expected);
        info.bytes_max
    };
    let without_faults = download(plain);
    let resumed = download(faulty);
    stop.send(()).unwrap();
    assert_eq!(server.join().unwrap(), 4, "three resumes");
    println!("peak bytes held by the client: no fault {without_faults}, three resumes {resumed}");
    assert!(
        resumed <= without_faults + 512 * 1024,
        "resuming held {resumed} bytes at its peak, a plain download {without_faults}"
    );
    assert!(
        resumed < 2 * MIB as u64,
        "no buffering of the 4 MiB body: {resumed}"
    );
}
