//! The body on its own: what a copy yields, when it waits, when it gives up.

use std::time::Duration;

use http_body::Body;
use http_body_util::BodyExt;
use tower_reset::replay::ReplayBody;

use crate::frames::{chunks, collect, frames, joined, upload, Step, Unannounced};

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_copy_replays_the_same_bytes_and_trailers() {
    let original = ReplayBody::new(frames([
        Step::Data("he"),
        Step::Pause,
        Step::Data("llo"),
        Step::Trailers("grpc-status", "0"),
    ]));
    let copy = original.try_clone().expect("nothing was read yet");
    let third = copy.try_clone().expect("a copy can be copied");

    let first = collect(original).await.unwrap();
    assert_eq!(joined(&first), "hello");
    assert_eq!(
        first.data.len(),
        2,
        "the original's frames pass through as they are"
    );
    assert_eq!(first.trailers.as_ref().unwrap()["grpc-status"], "0");

    for copy in [copy, third] {
        let replayed = collect(copy).await.unwrap();
        assert_eq!(joined(&replayed), "hello");
        assert_eq!(replayed.trailers, first.trailers);
    }
}

#[tokio::test]
async fn replayed_long_chunks_share_the_original_buffers() {
    // 64 KiB and longer: kept as they came, not copied.
    let original = ReplayBody::with_cap(upload(3, 64 * 1024), 192 * 1024);
    let copy = original.try_clone().unwrap();
    let first = collect(original).await.unwrap();
    let second = collect(copy).await.unwrap();
    assert_eq!(
        second.data.len(),
        3,
        "long chunks are replayed as they came"
    );
    for (sent, replayed) in first.data.iter().zip(&second.data) {
        assert_eq!(
            sent.as_ptr(),
            replayed.as_ptr(),
            "the replay hands out the same bytes, not a copy"
        );
    }
}

#[tokio::test]
async fn short_chunks_are_kept_copied_together() {
    // A shorter chunk may be a window on a larger buffer: it is copied, so that the buffer can
    // go.
    let original = ReplayBody::new(upload(3, 100));
    let copy = original.try_clone().unwrap();
    let first = collect(original).await.unwrap();
    assert_eq!(
        first.data.len(),
        3,
        "the original's chunks pass through as they are"
    );
    let second = collect(copy).await.unwrap();
    assert_eq!(second.data.len(), 1, "the replay sends them as one");
    assert_eq!(second.data[0].len(), 300);
    assert_ne!(second.data[0].as_ptr(), first.data[0].as_ptr());
}

#[tokio::test]
async fn a_copy_replays_what_was_sent_then_reads_on_from_the_original() {
    let mut original = ReplayBody::new(chunks(&["a", "b", "c"]));
    let copy = original.try_clone().unwrap();
    // The first attempt sent one chunk, then its connection failed and hyper dropped the body.
    let sent = original.frame().await.unwrap().unwrap();
    assert_eq!(sent.into_data().unwrap(), "a");
    drop(original);

    let replayed = collect(copy).await.unwrap();
    assert_eq!(joined(&replayed), "abc");
    assert_eq!(replayed.data.len(), 3);
}

#[tokio::test]
async fn one_chunk_over_the_cap_is_not_replayable() {
    let original = ReplayBody::with_cap(chunks(&["0123456789"]), 4);
    let copy = original.try_clone().unwrap();
    assert!(original.is_replayable());

    let mut reader = original;
    let sent = collect(&mut reader).await.unwrap();
    assert_eq!(joined(&sent), "0123456789", "the original is sent in full");
    assert!(reader.is_capped());
    assert!(!reader.is_replayable());
    assert!(reader.try_clone().is_none(), "no new copy once capped");
    drop(reader);

    let error = collect(copy).await.unwrap_err();
    assert!(
        error.to_string().contains("cannot be replayed"),
        "a copy made before the cap was passed refuses to send half a body: {error}"
    );
}

#[tokio::test]
async fn several_chunks_over_the_cap_drop_what_was_kept() {
    let mut original = ReplayBody::with_cap(chunks(&["abcd", "efgh", "ijkl", "mnop"]), 10);
    let copy = original.try_clone().unwrap();
    for _ in 0..2 {
        let _ = original.frame().await.unwrap().unwrap();
    }
    assert!(!original.is_capped(), "8 bytes fit in 10");
    assert!(copy.is_replayable());
    let _ = original.frame().await.unwrap().unwrap();
    assert!(original.is_capped(), "12 bytes do not");
    assert!(!copy.is_replayable(), "every copy sees it");
    let rest = original.frame().await.unwrap().unwrap();
    assert_eq!(rest.into_data().unwrap(), "mnop", "the original goes on");
}

#[tokio::test]
async fn a_body_exactly_at_the_cap_is_replayable() {
    let original = ReplayBody::with_cap(chunks(&["abcd", "efgh"]), 8);
    let copy = original.try_clone().unwrap();
    collect(original).await.unwrap();
    assert!(copy.is_replayable());
    assert_eq!(joined(&collect(copy).await.unwrap()), "abcdefgh");
}

#[tokio::test]
async fn an_empty_body_needs_no_buffering() {
    let original = ReplayBody::new(http_body_util::Empty::<bytes::Bytes>::new());
    let copy = original.try_clone().unwrap();
    assert!(copy.is_end_stream());
    assert_eq!(copy.size_hint().exact(), Some(0));
    assert!(!original.is_capped());
    assert!(collect(copy).await.unwrap().data.is_empty());
    assert!(collect(original).await.unwrap().data.is_empty());
}

#[test]
fn the_copy_of_an_empty_body_is_complete() {
    // `ResetRetry` replays a copy after a response (a 503) only if the body was read to its
    // end: an empty body is, before anyone reads it.
    let original = ReplayBody::new(http_body_util::Empty::<bytes::Bytes>::new());
    let copy = original.try_clone().unwrap();
    assert!(copy.is_complete(), "the copy has nothing left to read");
    assert!(copy.is_replayable());
    assert!(original.is_complete());
    let third = copy.try_clone().unwrap();
    assert!(third.is_complete(), "nor has a copy of the copy");

    // So the retry layer may send it again after a response: a 503 to a proxied GET, or a
    // `ResumeLayer` resuming one.
    use tower_reset::reset_retry::policy::{CloneBody, CloneRequest};
    let request = http::Request::get("http://example.com/")
        .body(original)
        .unwrap();
    let copy = CloneBody.clone_request(&request).unwrap();
    assert!(CloneBody.can_replay(&copy, true));
}

#[tokio::test]
async fn a_copy_replays_the_trailers_of_an_original_dropped_after_them() {
    // hyper stops polling a body once it has its trailers (they are the last frame), and drops
    // it; a body whose end is not announced is never asked again.
    let mut original = ReplayBody::new(Unannounced(frames([
        Step::Data("checked"),
        Step::Trailers("x-checksum", "abc"),
    ])));
    let copy = original.try_clone().unwrap();
    let _ = original.frame().await.unwrap().unwrap();
    let trailers = original.frame().await.unwrap().unwrap();
    assert!(trailers.is_trailers());
    drop(original);
    assert!(copy.is_complete(), "the trailers end the body");

    let replayed = tokio::time::timeout(LIMIT, copy.collect())
        .await
        .expect("the copy ends")
        .unwrap();
    assert_eq!(
        replayed.trailers().map(|trailers| &trailers["x-checksum"]),
        Some(&"abc".parse().unwrap()),
        "the copy sends the trailers again"
    );
    assert_eq!(replayed.to_bytes(), "checked");
}

#[tokio::test]
async fn a_body_read_before_any_copy_cannot_be_replayed() {
    let mut original = ReplayBody::new(chunks(&["a", "b"]));
    let _ = original.frame().await.unwrap().unwrap();
    assert!(
        original.try_clone().is_none(),
        "the first chunk was not kept, so a copy would be short"
    );
    assert!(!original.is_replayable());
}

#[tokio::test]
async fn a_failed_body_is_not_replayable() {
    let original = ReplayBody::new(frames([Step::Data("a"), Step::Fail]));
    let copy = original.try_clone().unwrap();
    let error = collect(original).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the upload broke",
        "the body's own error passes through"
    );
    assert!(!copy.is_replayable());
}

#[tokio::test]
async fn copies_report_the_original_size_and_end() {
    let original = ReplayBody::new(http_body_util::Full::new(bytes::Bytes::from_static(
        b"12345",
    )));
    assert_eq!(original.size_hint().exact(), Some(5));
    let copy = original.try_clone().unwrap();
    assert_eq!(
        copy.size_hint().exact(),
        Some(5),
        "hyper frames the retry with the same content-length"
    );
    assert!(!copy.is_end_stream());
    collect(original).await.unwrap();
    assert!(copy.is_replayable());
    let mut copy = copy;
    let chunk = copy.frame().await.unwrap().unwrap();
    assert_eq!(chunk.into_data().unwrap(), "12345");
    assert_eq!(copy.size_hint().exact(), Some(0));
    assert!(copy.is_end_stream());
}

#[tokio::test]
async fn is_complete_tells_whether_the_original_was_read_to_its_end() {
    let mut original = ReplayBody::new(chunks(&["a", "b"]));
    let copy = original.try_clone().unwrap();
    let _ = original.frame().await.unwrap().unwrap();
    assert!(!copy.is_complete());
    let _ = original.frame().await.unwrap().unwrap();
    assert!(
        copy.is_complete(),
        "the last chunk ends the stream (is_end_stream), no extra poll needed"
    );
}

#[test]
fn debug_output_names_the_state() {
    let body = ReplayBody::new(chunks(&["a"]));
    let text = format!("{body:?}");
    assert!(
        text.contains("ReplayBody") && text.contains("cap: 65536"),
        "{text}"
    );
}

#[test]
fn bodies_are_send_and_sync_when_the_original_is_send() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ReplayBody<http_body_util::Full<bytes::Bytes>>>();
    // Only `Send`, like axum's body: the copy is `Sync` all the same (reqwest's `Body::wrap`
    // needs it).
    type SendOnly = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, tower::BoxError>;
    send_sync::<ReplayBody<SendOnly>>();
}

#[tokio::test]
async fn a_copy_replays_short_and_long_chunks_in_order() {
    use bytes::Bytes;
    let long = Bytes::from(vec![b'L'; 64 * 1024]);
    let parts = [
        Bytes::from_static(b"short "),
        Bytes::from_static(b"and "),
        long.clone(),
        Bytes::new(),
        Bytes::from_static(b" short again"),
    ];
    let frames = parts
        .clone()
        .map(|part| Ok::<_, std::io::Error>(http_body::Frame::data(part)));
    let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
    let original = ReplayBody::with_cap(body, 128 * 1024);
    let copy = original.try_clone().unwrap();
    let sent = collect(original).await.unwrap();
    assert_eq!(
        sent.data, parts,
        "the original's chunks pass through as they are"
    );

    let replayed = collect(copy).await.unwrap();
    assert_eq!(replayed.data.concat(), parts.concat());
    assert!(
        replayed
            .data
            .iter()
            .any(|chunk| chunk.as_ptr() == long.as_ptr()),
        "the long chunk is shared: {:?}",
        replayed
            .data
            .iter()
            .map(|chunk| chunk.len())
            .collect::<Vec<_>>()
    );
}
