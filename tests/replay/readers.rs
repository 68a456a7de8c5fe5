//! Several copies of one body alive at once: none waits for another, each waiting copy keeps
//! one waker, and copies read in turns see the same bytes.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http_body::Body;
use http_body_util::BodyExt;
use tower_reset::replay::ReplayBody;

use crate::frames::{chunks, collect, gate, joined, Gate};

const LIMIT: Duration = Duration::from_secs(5);

/// A waker that counts its wakes; its live clones are `Arc::strong_count - 1`.
#[derive(Default)]
struct Counting {
    wakes: AtomicUsize,
}

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let counter = Arc::new(Counting::default());
    let waker = Waker::from(Arc::clone(&counter));
    (counter, waker)
}

/// Clones of `counter`'s waker kept by someone else than the test's own `Waker`.
fn kept(counter: &Arc<Counting>) -> usize {
    Arc::strong_count(counter) - 2
}

fn poll(body: &mut ReplayBody<Gate>, waker: &Waker) -> Poll<Option<bytes::Bytes>> {
    let mut cx = Context::from_waker(waker);
    Pin::new(body)
        .poll_frame(&mut cx)
        .map(|frame| frame.map(|frame| frame.unwrap().into_data().expect("a data frame")))
}

#[tokio::test(start_paused = true)]
async fn a_copy_reads_on_while_the_copy_before_it_is_alive() {
    let mut original = ReplayBody::new(chunks(&["a", "b"]));
    let copy = original.try_clone().unwrap();
    let _ = original.frame().await.unwrap().unwrap();

    // The first attempt's body is still alive (a connection that has not dropped it yet).
    let replayed = tokio::time::timeout(LIMIT, collect(copy))
        .await
        .expect("the copy does not wait for the first attempt to let go of the body")
        .unwrap();
    assert_eq!(joined(&replayed), "ab");
    drop(original);
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_is_never_polled_does_not_hold_up_the_next() {
    // An error that gives the unsent request back keeps its body, which nobody polls.
    let original = ReplayBody::new(chunks(&["un", "sent"]));
    let copy = original.try_clone().unwrap();
    let kept_in_an_error = vec![original];

    let replayed = tokio::time::timeout(LIMIT, collect(copy))
        .await
        .expect("the copy reads the original body itself")
        .unwrap();
    assert_eq!(joined(&replayed), "unsent");
    drop(kept_in_an_error);
}

#[test]
fn a_waiting_copy_keeps_one_waker_over_10_000_polls() {
    let (body, handle) = gate();
    let mut original = ReplayBody::new(body);
    let mut copy = original.try_clone().unwrap();
    assert!(poll(&mut original, Waker::noop()).is_pending());

    let (counter, waker) = counting();
    for _ in 0..10_000 {
        assert!(poll(&mut copy, &waker).is_pending());
    }
    assert!(
        kept(&counter) <= 1,
        "{} wakers kept for one waiting copy",
        kept(&counter)
    );

    handle.push("x");
    drop(original);
    assert_eq!(
        counter.wakes.load(Ordering::SeqCst),
        1,
        "one wake for the chunk, not one per poll"
    );
    assert_eq!(poll(&mut copy, &waker), Poll::Ready(Some("x".into())));
}

#[test]
fn a_copy_polled_with_a_new_waker_each_time_keeps_only_the_last() {
    let (body, _handle) = gate();
    let mut copy = ReplayBody::new(body).try_clone().unwrap();
    let counters: Vec<_> = (0..1_000)
        .map(|_| {
            let (counter, waker) = counting();
            assert!(poll(&mut copy, &waker).is_pending());
            counter
        })
        .collect();
    let kept: usize = counters
        .iter()
        .map(|counter| Arc::strong_count(counter) - 1)
        .sum();
    assert!(kept <= 1, "{kept} wakers kept for one waiting copy");
}

#[test]
fn every_waiting_copy_is_woken_when_the_original_moves_on() {
    let (body, handle) = gate();
    let original = ReplayBody::new(body);
    let mut first = original.try_clone().unwrap();
    let mut second = original.try_clone().unwrap();
    let (first_counter, first_waker) = counting();
    let (second_counter, second_waker) = counting();
    assert!(poll(&mut first, &first_waker).is_pending());
    assert!(poll(&mut second, &second_waker).is_pending());

    handle.push("x");
    assert_eq!(first_counter.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(
        second_counter.wakes.load(Ordering::SeqCst),
        1,
        "the copy that polled the original first is woken too"
    );
    // The first reads the chunk from the original, the second replays it.
    assert_eq!(
        poll(&mut first, &first_waker),
        Poll::Ready(Some("x".into()))
    );
    assert_eq!(
        poll(&mut second, &second_waker),
        Poll::Ready(Some("x".into()))
    );
    drop(original);
}

#[test]
fn a_dropped_waiting_copy_leaves_no_waker_behind() {
    let (body, handle) = gate();
    let original = ReplayBody::new(body);
    let mut copy = original.try_clone().unwrap();
    let (counter, waker) = counting();
    assert!(poll(&mut copy, &waker).is_pending());
    drop(copy);
    assert_eq!(kept(&counter), 0, "the dropped copy's waker is released");
    handle.push("x");
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
    drop(original);
}

#[tokio::test(start_paused = true)]
async fn copies_read_in_turns_yield_the_same_bytes() {
    let (body, handle) = gate();
    let original = ReplayBody::new(body);
    let mut copies = [original.try_clone().unwrap(), original.try_clone().unwrap()];
    let mut sent = [Vec::new(), Vec::new()];
    let reading = async {
        for (n, chunk) in ["one ", "two ", "three ", "four"].into_iter().enumerate() {
            handle.push(chunk);
            // Whichever copy is polled first reads the original; the other replays.
            for turn in [n % 2, 1 - n % 2] {
                let frame = copies[turn].frame().await.unwrap().unwrap();
                sent[turn].extend_from_slice(&frame.into_data().unwrap());
            }
        }
        handle.end();
        for copy in &mut copies {
            assert!(copy.frame().await.is_none());
        }
    };
    tokio::time::timeout(LIMIT, reading)
        .await
        .expect("no copy waits for the other");
    assert_eq!(sent[0], b"one two three four");
    assert_eq!(sent[1], b"one two three four");
    assert!(original.is_complete());
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_lags_across_kept_blocks_replays_every_byte_in_order() {
    // Short chunks are copied into blocks that fill and are frozen while the lagging copy is in
    // the middle of one.
    let (body, handle) = gate();
    let original = ReplayBody::new(body);
    let mut leader = original.try_clone().unwrap();
    let mut lagging = original.try_clone().unwrap();
    let (mut led, mut lagged) = (Vec::new(), Vec::new());
    let mut expected = Vec::new();
    let reading = async {
        for n in 0..3_000 {
            let chunk = format!("{n:05},");
            expected.extend_from_slice(chunk.as_bytes());
            handle.push(chunk);
            let frame = leader.frame().await.unwrap().unwrap();
            led.extend_from_slice(&frame.into_data().unwrap());
            if n % 7 == 0 {
                // Replays what was kept since its last turn, in one piece or a few.
                while lagged.len() < led.len() {
                    let frame = lagging.frame().await.unwrap().unwrap();
                    lagged.extend_from_slice(&frame.into_data().unwrap());
                }
            }
        }
        handle.end();
        while let Some(frame) = lagging.frame().await {
            lagged.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
    };
    tokio::time::timeout(LIMIT, reading)
        .await
        .expect("the lagging copy catches up");
    assert_eq!(led, expected);
    assert_eq!(lagged, expected, "the lagging copy sends the same bytes");
    assert!(original.is_complete());
}
