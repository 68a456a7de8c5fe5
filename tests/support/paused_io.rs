//! Paused time over real sockets, without the clock jumping while the kernel moves the bytes.
//!
//! With `start_paused = true`, tokio advances the paused clock to the next timer whenever the
//! runtime has nothing to do, and waiting on a socket counts as nothing to do: when loopback
//! data is late (the machine is loaded, the kernel deferred its work), the clock jumps to
//! whatever timer is pending, a test's 600 s bound or a server's idle timeout, and the test
//! fails for no fault of the code under test. Two tools keep that from happening:
//!
//! * [`bounded`]: the test's bound in *real* time, a watchdog thread, not a timer: no jump of
//!   the paused clock can reach it;
//! * [`frozen`]: holds the clock still while a request is on the wire. tokio does not
//!   auto-advance while a `spawn_blocking` task runs (documented on `tokio::time::pause`), so
//!   the runtime waits for the socket in real time. Between frozen sections (the test's own
//!   sleeps, the server's timers) the clock moves as usual. [`until`] waits, frozen, for a
//!   condition.
//!
//! Only freeze IO that needs no timer to finish (no server delay, no backoff inside): a frozen
//! section that waits on a timer waits [`REAL_WAIT`] of real time before the clock is let go.

// Shared by several test binaries, each of which uses only a part.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

/// The longest a frozen section holds the clock, in real time.
pub(crate) const REAL_WAIT: Duration = Duration::from_secs(60);

/// The longest a test may take, in real time.
pub(crate) const REAL_BOUND: Duration = Duration::from_secs(120);

/// Runs `test` to its end, or fails it after [`REAL_BOUND`] of real time, so that a bug fails
/// the test instead of hanging it. The bound is a thread, not a timer: the paused clock cannot
/// jump to it.
pub(crate) async fn bounded<F: Future>(test: F) -> F::Output {
    let (done, watched) = mpsc::channel::<()>();
    let (expired, expiry) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watched.recv_timeout(REAL_BOUND) {
            let _ = expired.send(());
        }
    });
    let mut test = pin!(test);
    let mut expiry = pin!(expiry);
    let output = std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = test.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if let Poll::Ready(Ok(())) = expiry.as_mut().poll(cx) {
            panic!("the test did not finish within {REAL_BOUND:?} of real time");
        }
        Poll::Pending
    })
    .await;
    drop(done);
    output
}

/// Awaits `io` with the paused clock held still (see the module documentation).
pub(crate) async fn frozen<F: Future>(io: F) -> F::Output {
    let (release, held) = mpsc::channel::<()>();
    let hold = tokio::task::spawn_blocking(move || {
        let _ = held.recv_timeout(REAL_WAIT);
    });
    let output = io.await;
    drop(release);
    // Once the blocking task has ended, the clock may move again.
    let _ = hold.await;
    output
}

/// Holds the paused clock still for `real` of real time, so that what the sockets carry now
/// (a server's close, say) reaches the client before time moves on, when nothing tells the
/// test that it has.
pub(crate) async fn settle(real: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(real))
        .await
        .expect("the pause does not panic");
}

/// Waits, with the paused clock held still, until `done` says so (checked every millisecond of
/// real time, for at most [`REAL_WAIT`]): for the sockets to deliver what the test waits for
/// before it lets time move on.
pub(crate) async fn until(mut done: impl FnMut() -> bool) {
    let checks = REAL_WAIT.as_millis();
    for _ in 0..checks {
        if done() {
            return;
        }
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
            .await
            .expect("the pause does not panic");
    }
    panic!("the condition did not hold within {REAL_WAIT:?}");
}
