//! A keep-alive HTTP/1.1 server over real loopback sockets that can turn its open connections
//! stale, as a server restart or an idle timeout behind a load balancer would.
//!
//! Every request is answered `200` with body `conn=<n>` (the connection's number, from 0 in
//! accept order) and `content-length`, and the connection stays open. After
//! [`Server::make_connections_stale`], the next request to arrive on any connection that was
//! open at that moment is read and then reset (`SO_LINGER` zero, then close: the client reads
//! `ECONNRESET`), exactly what a client meets when it reuses a pooled connection the server
//! already gave up on. Connections accepted afterwards are served normally.
//!
//! A request for `/wait-for-connections/<n>` is answered only once `n` connections were accepted,
//! so that concurrent requests make a client open that many connections.
//!
//! The server records every request it read, with its connection, its rank on that
//! connection, and its `x-client` header, so a test can tell which connection and which client
//! carried each attempt.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One request the server read (head and body: a real server would have acted on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The connection it arrived on, numbered from 0 in accept order.
    pub(crate) connection: usize,
    /// Its rank on that connection, from 1.
    pub(crate) rank: usize,
    pub(crate) method: String,
    pub(crate) path: String,
    /// The `x-client` header, empty when absent.
    pub(crate) client: String,
    /// Whether the server reset the connection instead of answering.
    pub(crate) reset: bool,
}

#[derive(Debug, Default)]
struct State {
    seen: Vec<Seen>,
    /// Per connection: whether its next request is to be reset.
    stale: Vec<bool>,
}

/// A running server; dropping it aborts every task it started.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accepted: watch::Receiver<usize>,
    accept: JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (accepted_tx, accepted) = watch::channel(0);
        let accept = tokio::spawn(accept_loop(listener, state.clone(), accepted_tx));
        Self {
            addr,
            state,
            accepted,
            accept,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every connection open now resets the next request it receives.
    pub(crate) fn make_connections_stale(&self) {
        let mut state = lock(&self.state);
        for stale in &mut state.stale {
            *stale = true;
        }
    }

    /// The number of connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        *self.accepted.borrow()
    }

    /// Waits until at least `n` connections were accepted.
    pub(crate) async fn wait_for_connections(&self, n: usize) {
        let mut accepted = self.accepted.clone();
        accepted
            .wait_for(|count| *count >= n)
            .await
            .expect("accept loop alive");
    }

    /// Every request read so far, in arrival order.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The requests read so far for `path`, in arrival order.
    pub(crate) fn seen_for(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// How many requests each connection carried, indexed by connection number.
    pub(crate) fn requests_per_connection(&self) -> Vec<usize> {
        let mut counts = vec![0; self.connections()];
        for seen in self.seen() {
            counts[seen.connection] += 1;
        }
        counts
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    accepted: watch::Sender<usize>,
) {
    // Dropped (and with it every connection task) when the accept task is aborted.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let id = {
            let mut state = lock(&state);
            state.stale.push(false);
            state.stale.len() - 1
        };
        accepted.send_modify(|count| *count += 1);
        connections.spawn(serve(stream, id, state.clone(), accepted.subscribe()));
    }
}

async fn serve(
    mut stream: TcpStream,
    connection: usize,
    state: Arc<Mutex<State>>,
    mut accepted: watch::Receiver<usize>,
) {
    let mut buf = Vec::new();
    let mut rank = 0;
    loop {
        let Some((head, body_len)) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        // The body, by content-length (all this server's clients send).
        while buf.len() < body_len {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        buf.drain(..body_len);
        rank += 1;

        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let client = header(&head, "x-client").unwrap_or_default().to_owned();

        let reset = {
            let mut state = lock(&state);
            let reset = std::mem::take(&mut state.stale[connection]);
            state.seen.push(Seen {
                connection,
                rank,
                method,
                path: path.clone(),
                client,
                reset,
            });
            reset
        };
        if reset {
            // RST instead of FIN: the client reads ECONNRESET.
            stream.set_zero_linger().expect("SO_LINGER");
            drop(stream);
            return;
        }
        if let Some(n) = path
            .strip_prefix("/wait-for-connections/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            if accepted.wait_for(|count| *count >= n).await.is_err() {
                return;
            }
        }
        let body = format!("conn={connection}");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads until the end of a request head; returns the head and its content-length, leaving
/// what follows the head in `buf`. `None` at end of stream or on a head too long.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let body_len = header(&head, "content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            return (body_len <= MAX_BODY).then_some((head, body_len));
        }
        if buf.len() > MAX_HEAD || !read_more(stream, buf).await {
            return None;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
