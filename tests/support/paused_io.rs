//! Paused time over real sockets, without the clock jumping while the kernel moves the bytes.
//!
//! With `start_paused = true`, tokio advances the paused clock to the next timer whenever the
//! runtime has nothing to do, and waiting on a socket counts as nothing to do: when loopback
//! data is late (the machine is loaded, the kernel deferred its work), the clock jumps to
//! whatever timer is pending, a test's 600 s bound or a server's idle timeout, and the test
//! fails for no fault of the code under test. [`frozen`] holds the clock still while a
//! request is on the wire: tokio does not auto-advance while a `spawn_blocking` task runs
//! (documented on `tokio::time::pause`), so the runtime waits for the socket in real time.
//! Between frozen sections (the test's own sleeps) the clock moves as usual.
//!
//! Only freeze IO that needs no timer to finish (no server delay, no backoff inside): a frozen
//! section that waits on a timer waits [`REAL_WAIT`] of real time, after which the clock is let
//! go, so that the test's own bound in virtual time turns a hang into a failure.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

/// The longest a frozen section holds the clock, in real time.
pub(crate) const REAL_WAIT: Duration = Duration::from_secs(60);

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
