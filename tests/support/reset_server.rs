//! A scripted HTTP/1.1 server over real loopback sockets, for tests and examples.
//!
//! [`ResetServer`] accepts connections on `127.0.0.1` and answers each request it receives with
//! the next [`Behaviour`] of its script: a response, a TCP reset (`RST`) or a graceful close
//! (`FIN`) after reading the request. The script is shared by all connections and consumed in
//! the order the requests arrive; once it is exhausted every request gets the default behaviour.
//!
//! The server counts what it saw, so a test can tell how many times a request reached it:
//!
//! * **received**: the request head was read;
//! * **executed**: the whole request (head and body) was read. This is the moment a real server
//!   would act on it, so a request that is then reset or closed *still counts as executed*: the
//!   client cannot know whether it was processed, and that is exactly the case a retry of a
//!   non-idempotent request must not repeat. Executions are counted by method and by the value
//!   of the `x-request-id` header, which stays the same across the attempts of one request.
//!
//! It also records when each request head arrived ([`ResetServer::arrivals`], in
//! `tokio::time::Instant`), so a test can measure the gaps between attempts as the server saw them.
//!
//! Only `Content-Length` bodies are supported (no chunked encoding), which is what hyper sends
//! for `Full<Bytes>` bodies. Dropping the server aborts the accept task, and with it every
//! connection task, so nothing outlives the test.

// Each user of this shared module (socket tests, the axum_proxy example) needs only part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Request heads longer than this end the connection: the server never buffers without bound.
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies longer than this end the connection.
const MAX_BODY: usize = 1024 * 1024;

/// What the server does with one request, after reading all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Answers with this status and body (`content-length` set) and keeps the connection open.
    Respond(u16, &'static str),
    /// Resets the connection: `SO_LINGER` set to zero, then the socket is dropped, so the kernel
    /// sends `RST` and the client reads `ECONNRESET`.
    ResetAfterHead,
    /// Closes the connection gracefully (`FIN`) without answering: the client reads end-of-file
    /// where the response should be.
    CloseAfterHead,
}

/// The default behaviour once the script is exhausted: `200 OK` with body `ok`.
pub(crate) const OK: Behaviour = Behaviour::Respond(200, "ok");

/// A running scripted server; dropping it shuts it down.
#[derive(Debug)]
pub(crate) struct ResetServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    script: VecDeque<Behaviour>,
    default: Behaviour,
    connections: usize,
    received: HashMap<String, usize>,
    executed: HashMap<String, usize>,
    executed_ids: HashMap<String, usize>,
    /// When each request head was read, in arrival order.
    arrivals: Vec<Instant>,
}

impl ResetServer {
    /// Starts a server on `127.0.0.1:0` that follows `script`, then answers [`OK`].
    ///
    /// Must be called from within a tokio runtime.
    pub(crate) fn start(script: Vec<Behaviour>) -> Self {
        Self::start_with_default(script, OK)
    }

    /// Starts a server on `127.0.0.1:0` that follows `script`, then behaves as `default`.
    pub(crate) fn start_with_default(script: Vec<Behaviour>, default: Behaviour) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let listener = TcpListener::from_std(listener).expect("register the listener");
        Self::serve(listener, script, default)
    }

    /// Serves on a listener the caller made, for example from a `TcpSocket` that was bound
    /// (refusing connections) before it started listening.
    pub(crate) fn serve(listener: TcpListener, script: Vec<Behaviour>, default: Behaviour) -> Self {
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            default,
            connections: 0,
            received: HashMap::new(),
            executed: HashMap::new(),
            executed_ids: HashMap::new(),
            arrivals: Vec::new(),
        }));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Self {
            addr,
            state,
            accept,
        }
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Requests with this method whose head was read.
    pub(crate) fn received(&self, method: &str) -> usize {
        self.lock().received.get(method).copied().unwrap_or(0)
    }

    /// Requests of any method whose head was read.
    pub(crate) fn received_total(&self) -> usize {
        self.lock().received.values().sum()
    }

    /// Requests with this method that were read in full (whatever the server did next).
    pub(crate) fn executed(&self, method: &str) -> usize {
        self.lock().executed.get(method).copied().unwrap_or(0)
    }

    /// Requests carrying `x-request-id: <id>` that were read in full (whatever happened next).
    pub(crate) fn executed_id(&self, id: &str) -> usize {
        self.lock().executed_ids.get(id).copied().unwrap_or(0)
    }

    /// When each request head (of any method) was read, in arrival order.
    pub(crate) fn arrivals(&self) -> Vec<Instant> {
        self.lock().arrivals.clone()
    }

    /// Script entries not used yet.
    pub(crate) fn script_left(&self) -> usize {
        self.lock().script.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ResetServer {
    fn drop(&mut self) {
        // Dropping the accept task drops its `JoinSet`, which aborts every connection task.
        self.accept.abort();
    }
}

/// Accepts until aborted. Connection tasks live in a `JoinSet` owned by this task, so aborting
/// it ends them too; finished ones are reaped after each accept.
async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        lock(&state).connections += 1;
        connections.spawn(serve_connection(stream, Arc::clone(&state)));
        while connections.try_join_next().is_some() {}
    }
}

/// Serves requests on one connection until the peer closes it, an error occurs, or a behaviour
/// ends it. Every iteration reads a request, so the loop ends with the connection.
async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let arrived = Instant::now();
        let head = Head::parse(&buf[..head_len]);
        {
            let mut state = lock(&state);
            *state.received.entry(head.method.clone()).or_default() += 1;
            state.arrivals.push(arrived);
        }
        let Some(body_len) = head.content_length.filter(|len| *len <= MAX_BODY) else {
            return;
        };
        if !read_to(&mut stream, &mut buf, head_len + body_len).await {
            return;
        }
        buf.drain(..head_len + body_len);

        let behaviour = {
            let mut state = lock(&state);
            *state.executed.entry(head.method.clone()).or_default() += 1;
            if let Some(id) = head.request_id {
                *state.executed_ids.entry(id).or_default() += 1;
            }
            let default = state.default;
            state.script.pop_front().unwrap_or(default)
        };
        match behaviour {
            Behaviour::Respond(status, body) => {
                let reason = http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                    .unwrap_or("");
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
            Behaviour::ResetAfterHead => {
                // SO_LINGER 0, then close: the kernel sends an RST instead of a FIN.
                let _ = stream.set_zero_linger();
                drop(stream);
                return;
            }
            Behaviour::CloseAfterHead => {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Reads until `buf` holds a whole request head; returns its length, `\r\n\r\n` included.
/// `None` on end-of-file, error, or a head longer than [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end + 4);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until `buf` holds at least `len` bytes; `false` on end-of-file or error.
async fn read_to(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> bool {
    while buf.len() < len {
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    true
}

/// The parts of a request head the server looks at.
struct Head {
    method: String,
    /// `Some(0)` without the header; `None` when it is not a number or the body is chunked
    /// (not supported: the connection is then closed).
    content_length: Option<usize>,
    request_id: Option<String>,
}

impl Head {
    fn parse(head: &[u8]) -> Self {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let method = lines
            .next()
            .and_then(|line| line.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        let mut parsed = Self {
            method,
            content_length: Some(0),
            request_id: None,
        };
        let mut chunked = false;
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                parsed.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            } else if name.eq_ignore_ascii_case("x-request-id") {
                parsed.request_id = Some(value.to_owned());
            }
        }
        if chunked {
            parsed.content_length = None;
        }
        parsed
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
