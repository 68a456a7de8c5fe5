//! The body on its own: what a copy yields, when it waits, when it gives up.

use std::time::Duration;

use http_body::Body;
use http_body_util::BodyExt;
use tower_reset::replay::ReplayBody;

use crate::frames::{chunks, collect, frames, joined, Step};

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_copy_replays_the_exact_frames_and_trailers() {
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

    let second = collect(copy).await.unwrap();
    assert_eq!(second, first, "same chunks, same boundaries, same trailers");
    assert_eq!(collect(third).await.unwrap(), first);
}

#[tokio::test]
async fn replayed_chunks_share_the_original_buffers() {
    let original = ReplayBody::new(chunks(&["shared"]));
    let copy = original.try_clone().unwrap();
    let first = collect(original).await.unwrap();
    let second = collect(copy).await.unwrap();
    assert_eq!(
        first.data[0].as_ptr(),
        second.data[0].as_ptr(),
        "the replay hands out the same bytes, not a copy"
    );
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
async fn a_copy_waits_while_another_copy_holds_the_original() {
    let mut original = ReplayBody::new(chunks(&["a", "b"]));
    let copy = original.try_clone().unwrap();
    let _ = original.frame().await.unwrap().unwrap();

    let reader = tokio::spawn(collect(copy));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !reader.is_finished(),
        "the copy cannot read on while the first attempt still holds the body"
    );
    drop(original);
    let replayed = tokio::time::timeout(LIMIT, reader)
        .await
        .expect("dropping the original wakes the copy")
        .unwrap()
        .unwrap();
    assert_eq!(joined(&replayed), "ab");
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
    assert!(
        !original.is_capped() && !original.is_complete(),
        "no shared state was made for it"
    );
    assert!(collect(copy).await.unwrap().data.is_empty());
    assert!(collect(original).await.unwrap().data.is_empty());
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

/// A copy of an empty body has nothing left to wait for: it can be sent again even after a
/// response (a `503` to a proxied `GET`, a `ResumeLayer` resuming one). It used to say "not
/// complete", so that such requests were never sent again.
#[tokio::test]
async fn a_copy_of_an_empty_body_is_complete() {
    use tower_reset::reset_retry::policy::{CloneBody, CloneRequest};
    let original = ReplayBody::new(http_body_util::Empty::<bytes::Bytes>::new());
    let copy = original.try_clone().unwrap();
    assert!(copy.is_complete());
    let request = http::Request::get("http://example.com/")
        .body(original)
        .unwrap();
    let copy = CloneBody.clone_request(&request).unwrap();
    assert!(CloneBody.can_replay(&copy, true));
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
fn bodies_are_send_and_sync_when_the_original_is() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ReplayBody<http_body_util::Full<bytes::Bytes>>>();
}
