//! Accepting connections, and ending them with a reset or a clean close.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::fault::Disconnect;
use super::{http1, http2, lock, Conn, Shared};

/// After a `FIN`, the rest of the input is read and thrown away for at most this long, or up to
/// [`DRAIN_LIMIT`] bytes: closing a socket with unread input would send a reset instead.
const DRAIN_TIME: Duration = Duration::from_secs(1);
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// The send buffer of a lab whose script cuts bodies after a number of bytes (Linux doubles
/// it).
const SMALL_SEND_BUFFER: usize = 8 * 1024;

/// How a connection task ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// As scripted: reset or clean close.
    Disconnect(Disconnect),
    /// The client left, or broke the protocol: just close the socket.
    Drop,
}

impl End {
    pub(super) const RESET: Self = Self::Disconnect(Disconnect::Reset);
    pub(super) const FIN: Self = Self::Disconnect(Disconnect::Fin);
}

/// Accepts until aborted. Each connection task subscribes to the kill channel before it is
/// spawned, so a [`Lab::reset_connections`](super::Lab::reset_connections) that follows reaches
/// every connection accepted before it.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        if shared.small_send_buffer {
            // The kernel throws away what a reset leaves in the send buffer: keep it small, so
            // that a body cut after n bytes delivers about n bytes.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SMALL_SEND_BUFFER);
        }
        let (nth, at_accept) = {
            let mut state = shared.lock();
            let nth = state.counts.accept();
            (nth, state.script.at_accept(nth))
        };
        let kill = shared.kill.subscribe();
        let conn = Conn {
            shared: Arc::clone(&shared),
            nth,
            epoch: shared.forget_epoch.load(Ordering::SeqCst),
            accepted: tokio::time::Instant::now(),
        };
        let mut connections = lock(&connections);
        while connections.try_join_next().is_some() {}
        match at_accept {
            Some(disconnect) => connections.spawn(end(stream, End::Disconnect(disconnect), kill)),
            None => connections.spawn(serve(stream, conn, kill)),
        };
    }
}

/// Serves one connection until it ends, or until the lab resets every connection.
async fn serve(mut stream: TcpStream, conn: Conn, mut kill: watch::Receiver<u64>) {
    let how = if conn.shared.http2 {
        // The h2 connection owns its I/O; the stream goes back into this slot when the h2
        // connection is dropped, so that it can still be reset rather than merely closed.
        let slot = Arc::new(Mutex::new(Some(stream)));
        let how = tokio::select! {
            how = http2::serve(Arc::clone(&slot), &conn) => how,
            _ = kill.changed() => End::RESET,
        };
        let Some(taken) = lock(&slot).take() else {
            return;
        };
        stream = taken;
        how
    } else {
        tokio::select! {
            how = http1::serve(&mut stream, &conn) => how,
            _ = kill.changed() => End::RESET,
        }
    };
    end(stream, how, kill).await;
}

/// Ends a connection: a reset, or a `FIN` followed by a bounded drain of the input (stopped
/// early by a kill), or a plain close.
async fn end(stream: TcpStream, how: End, mut kill: watch::Receiver<u64>) {
    match how {
        End::Disconnect(Disconnect::Reset) => reset(stream),
        End::Disconnect(Disconnect::Fin) => {
            tokio::select! {
                () = fin(stream) => {}
                _ = kill.changed() => {}
            }
        }
        End::Drop => drop(stream),
    }
}

/// Closes with a TCP `RST`: `SO_LINGER` zero, then close. The client reads `ECONNRESET`.
pub(super) fn reset(stream: TcpStream) {
    // Deprecated because a *non-zero* linger blocks the thread on close; a zero linger does
    // not, and this is the one way to send an RST that every tokio 1.x has
    // (`set_zero_linger` arrived in 1.50).
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Closes with a TCP `FIN`, then reads and discards the input until the client closes (bounded
/// in time and size), so that unread bytes do not turn the close into a reset.
async fn fin(mut stream: TcpStream) {
    // An error here (the client is gone, or the socket was already shut down) leaves nothing
    // to drain but is harmless: the reads below end at once.
    let _ = stream.shutdown().await;
    let mut buf = vec![0; 8 * 1024];
    let mut drained = 0;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while drained < DRAIN_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
