//! A reset lab: an in-process loopback HTTP server whose failures are scripted, for testing
//! clients against "connection reset by peer" and its relatives (feature `lab`).
//!
//! # Why
//!
//! What a client must do after a failure depends on how far the request got (see the crate
//! docs), and the only way to know that a client gets it right is to make a real server fail
//! at each of those points, over real sockets, and to count on the server side what was
//! actually *executed*. A mock service cannot produce an `ECONNRESET` from the kernel, a
//! hyper `IncompleteMessage`, or an h2 `GOAWAY`, and a real server cannot be told to fail
//! exactly at the third request. The lab can:
//!
//! * **scripted failures**, per request ([`Fault`], chosen by the first matching rule
//!   [`Match`]: the nth request, the nth on each connection, a method, a path, a header, a
//!   seeded probability, a closure), per connection at accept ([`ConnectionMatch`],
//!   [`Disconnect`]), and per idle connection ([`Idle`]): TCP resets and closes before the
//!   request was read, after it was executed, in the middle of the response head or body;
//!   HTTP/2 `RST_STREAM(REFUSED_STREAM)` and `GOAWAY`; slow and sliced replies;
//! * **server events**: [`restart`](Lab::restart) (every live connection reset, the same port
//!   bound again, optionally after a window during which connections are refused),
//!   [`stop`](Lab::stop) and [`resume`](Lab::resume), [`forget_connections`](Lab::forget_connections)
//!   (the stale keep-alive connections of a NAT that forgot them);
//! * **server-side counts** ([`Counts`]): connections, requests per connection, requests
//!   received and executed per method and per request id, and the ids executed twice, the
//!   number that proves a client never repeated a `POST`.
//!
//! HTTP/1.1 is written by hand over the socket, so that every reset lands exactly where the
//! script says; HTTP/2 uses the `h2` crate's server, with a thin layer on its output that
//! knows where each frame starts (to cut a frame in half, to know when a `DATA` frame has
//! reached the kernel, and to give a `GOAWAY` the last-stream-id the script asks for). A lab
//! speaks one protocol: HTTP/1.1 by default, or HTTP/2 with prior knowledge (`h2c`, as
//! hyper-util's `http2_only` client and tonic speak it).
//!
//! # What clients see
//!
//! Measured by this crate's `tests/lab` with hyper 1.12, hyper-util 0.1.21 (legacy client) and
//! h2 0.4.20, and classified by [`StandardClassifier`](crate::classify::StandardClassifier):
//!
//! | lab | HTTP/1.1 client | HTTP/2 client |
//! |---|---|---|
//! | reset at accept | `Canceled` wrapping `ConnectionReset`: never sent | `BrokenPipe` ("stream closed because of a broken pipe"): unknown outcome |
//! | close at accept | `Canceled` wrapping `IncompleteMessage`: never sent | `BrokenPipe`: unknown outcome |
//! | [`ResetAfterHead`](Fault::ResetAfterHead), [`ResetAfterRequest`](Fault::ResetAfterRequest), [`ResetInHead`](Fault::ResetInHead) | `ConnectionReset` | `ConnectionReset` (inside the `h2::Error`) |
//! | [`CloseAfterHead`](Fault::CloseAfterHead), [`CloseAfterRequest`](Fault::CloseAfterRequest) | `IncompleteMessage` | `BrokenPipe` |
//! | [`ResetInBody`](Fault::ResetInBody) | response, then a body error with `ConnectionReset` | the same |
//! | [`CloseInBody`](Fault::CloseInBody) | response, then a body error with `UnexpectedEof` (not `IncompleteMessage`) | response, then `BrokenPipe` |
//! | [`RefuseStream`](Fault::RefuseStream) | — | remote `RST_STREAM(REFUSED_STREAM)`: refused |
//! | [`GoAway`](Fault::GoAway) | — | remote `GOAWAY(NO_ERROR)`: refused |
//!
//! h2 reports an end of file under an open stream as a `BrokenPipe` of its own making, and
//! sends its connection preface without waiting for the server, so an HTTP/2 client cannot tell
//! a connection reset at accept from one reset after the request.
//!
//! The two "at accept" rows are what a client sees on a current-thread runtime, where the lab
//! accepts and drops the connection before the client writes. On a multi-thread runtime the
//! client's first write races the lab's `RST` or `FIN`, and every client sees either outcome:
//! never sent (hyper's `Canceled`, or a connect error when the reset arrives during the
//! connect) or unknown (the request was written). The
//! [fault matrix](crate::guide::fault_matrix) shows what each client's stack then does.
//!
//! Every task of the lab ends when the [`Lab`] is dropped, and nothing a client sends can make
//! it panic or buffer without bound: heads are limited to 64 KiB, bodies to 16 MiB.
//!
//! # Examples
//!
//! The second request is reset after its head was read, and a `POST` is never executed twice:
//!
//! ```
//! use tower_reset::lab::{Fault, Lab, Match};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let lab = Lab::builder()
//!     .on(Match::nth(2), Fault::ResetAfterHead)
//!     .start()
//!     .await?;
//!
//! // Any client will do; here, a raw socket.
//! let mut socket = tokio::net::TcpStream::connect(lab.addr()).await?;
//! socket
//!     .write_all(b"POST /charges HTTP/1.1\r\nhost: lab\r\nx-request-id: a1\r\ncontent-length: 2\r\n\r\nhi")
//!     .await?;
//! let mut response = [0; 17];
//! socket.read_exact(&mut response).await?;
//! assert_eq!(&response, b"HTTP/1.1 200 OK\r\n");
//!
//! socket.write_all(b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n").await?;
//! let mut rest = Vec::new();
//! let error = loop {
//!     match socket.read_buf(&mut rest).await {
//!         Ok(0) => panic!("expected a reset"),
//!         Ok(_) => continue, // the end of the first response
//!         Err(error) => break error,
//!     }
//! };
//! assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
//!
//! let counts = lab.counts();
//! assert_eq!(counts.received(), 2);
//! assert_eq!(counts.executed(), 1); // the reset GET was never executed
//! assert_eq!(counts.executions("a1"), 1);
//! assert!(counts.duplicates().is_empty());
//! # Ok(())
//! # }
//! ```

mod builder;
mod connection;
mod counts;
mod fault;
mod http1;
mod http2;
mod range;
mod script;
mod tap;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method, Uri, Version};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use self::fault::{Disconnect, Fault, Idle, Reply};

/// The old name of [`Fault`]: what the lab does with one request (renamed so that it no longer
/// shares its name with the retry policies' [`Action`](crate::reset_retry::policy::Action)).
#[deprecated(since = "0.1.0", note = "renamed `Fault`")]
pub type Action = Fault;
pub use self::builder::LabBuilder;
pub use self::counts::{Counts, RequestRecord};
use self::script::Script;
pub use self::script::{ConnectionMatch, Match, RequestInfo};

/// How long [`Lab::stop`] and friends wait for the connections they reset to be gone.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// A running reset lab: a loopback HTTP server that fails as scripted and counts what it saw.
///
/// Made by [`Lab::builder`]. Every method takes `&self`, so a `Lab` can be shared (in an `Arc`)
/// between the test and the tasks that drive clients. Dropping it stops everything: the
/// listener closes and every connection task is aborted.
///
/// # Examples
///
/// A restart with a refused window; the port stays the same:
///
/// ```
/// use std::time::Duration;
/// use tower_reset::lab::Lab;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let lab = Lab::builder().start().await?;
/// let addr = lab.addr();
///
/// lab.stop().await; // live connections reset, new ones refused
/// let refused = tokio::net::TcpStream::connect(addr).await.unwrap_err();
/// assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
///
/// lab.resume().await?; // listening again, on the same port
/// tokio::net::TcpStream::connect(addr).await?;
/// assert_eq!(lab.addr(), addr);
///
/// lab.restart_after(Duration::from_millis(20)).await?; // the same in one call
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Lab {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Listening or not; the lock also orders the lab's control methods.
    port: tokio::sync::Mutex<Port>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

/// What the accept task, the connection tasks and the [`Lab`] share.
#[derive(Debug)]
struct Shared {
    http2: bool,
    request_id: HeaderName,
    echo_request_id: bool,
    idle: Option<(Duration, Idle)>,
    /// Whether connections get a small send buffer (the script cuts bodies after a number of
    /// bytes: see [`Fault::ResetAfterBodyBytes`]).
    small_send_buffer: bool,
    /// The reply cut by the `…In…` actions.
    reply: Reply,
    state: Mutex<State>,
    /// Bumped by [`Lab::forget_connections`]: connections accepted before are forgotten.
    forget_epoch: AtomicU64,
    /// Bumped to reset every live connection.
    kill: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    script: Script,
    counts: Counts,
}

impl Lab {
    /// A builder for a lab: HTTP/1.1 on `127.0.0.1`, a free port, `200 OK` to every request.
    pub fn builder() -> LabBuilder {
        LabBuilder::new()
    }

    /// The address the lab listens on (the port is kept across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`, with a `/` put in front of `path` when it has none.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// A snapshot of the server-side counts.
    pub fn counts(&self) -> Counts {
        let state = self.shared.lock();
        let mut counts = state.counts.clone();
        counts.rule_hits = state.script.hits();
        counts.accept_hits = state.script.accept_hits();
        counts
    }

    /// The request ids executed more than once, with their counts (see [`Counts::duplicates`]).
    pub fn duplicates(&self) -> Vec<(String, usize)> {
        self.shared.lock().counts.duplicates()
    }

    /// Whether the lab accepts connections now (false between [`stop`](Lab::stop) or
    /// [`refuse`](Lab::refuse) and [`resume`](Lab::resume)).
    pub async fn is_listening(&self) -> bool {
        matches!(*self.port.lock().await, Port::Listening(_))
    }

    /// Closes the listener: new connections are refused (`ECONNREFUSED`), including those that
    /// were waiting in the accept queue, while live connections go on. The port is kept for
    /// [`resume`](Lab::resume): on Unix a socket stays bound to it (without listening, so that
    /// connections are refused), so that no other socket can take it meanwhile.
    pub async fn refuse(&self) {
        let mut port = self.port.lock().await;
        if let Port::Listening(task) = &*port {
            // Bound before the listener goes, so that the port is never free.
            let reserve = reserve(self.addr).ok();
            task.abort();
            let Port::Listening(task) = std::mem::replace(&mut *port, Port::Refusing(reserve))
            else {
                return;
            };
            // Wait until the task, and so the listener, is gone.
            let _ = task.await;
        }
    }

    /// Resets every live connection (TCP `RST`), and returns once their tasks are gone. The
    /// lab goes on listening.
    pub async fn reset_connections(&self) {
        let _order = self.port.lock().await;
        self.reset_all().await;
    }

    /// Stops the server: [`refuse`](Lab::refuse), then
    /// [`reset_connections`](Lab::reset_connections). Clients see resets on the connections they
    /// hold and `ECONNREFUSED` on new ones, until [`resume`](Lab::resume).
    pub async fn stop(&self) {
        self.refuse().await;
        self.reset_connections().await;
    }

    /// Listens again on the same address after [`stop`](Lab::stop) or [`refuse`](Lab::refuse);
    /// does nothing when the lab is listening.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound again (another process took it meanwhile).
    pub async fn resume(&self) -> io::Result<()> {
        let mut port = self.port.lock().await;
        if let Port::Refusing(reserve) = &mut *port {
            let listener = match reserve.take() {
                Some(socket) => socket.listen(BACKLOG)?,
                None => listen(self.addr)?,
            };
            *port = Port::Listening(self.spawn_accept(listener));
        }
        Ok(())
    }

    /// Restarts the server: [`stop`](Lab::stop), then [`resume`](Lab::resume) on the same port.
    /// Every connection live before is reset; the counts and the script go on.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound again.
    pub async fn restart(&self) -> io::Result<()> {
        self.restart_after(Duration::ZERO).await
    }

    /// Like [`restart`](Lab::restart), with `refused` between the stop and the resume, during
    /// which connections are refused.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound again.
    pub async fn restart_after(&self, refused: Duration) -> io::Result<()> {
        self.stop().await;
        if !refused.is_zero() {
            tokio::time::sleep(refused).await;
        }
        self.resume().await
    }

    /// Forgets every connection open now, as a NAT or load balancer that dropped their state:
    /// each one stays open and silent, and is reset when its next request starts to arrive,
    /// without that request being read or counted (see [`Counts::forgotten_resets`]). This is
    /// how a client's pool fills with stale keep-alive connections; connections accepted later
    /// are not affected.
    pub fn forget_connections(&self) {
        self.shared.forget_epoch.fetch_add(1, Ordering::SeqCst);
    }

    async fn reset_all(&self) {
        self.shared.kill.send_modify(|generation| *generation += 1);
        // Connections accepted from now on go into a fresh set; wait for the old ones, which
        // all saw the new generation (they subscribed before they were spawned).
        let mut old = std::mem::take(&mut *lock(&self.connections));
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
            while old.join_next().await.is_some() {}
        })
        .await;
        // Whatever did not end in time is aborted when `old` is dropped.
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        tokio::spawn(connection::accept_loop(
            listener,
            Arc::clone(&self.shared),
            Arc::clone(&self.connections),
        ))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Port::Listening(task) = self.port.get_mut() {
            task.abort();
        }
        lock(&self.connections).abort_all();
    }
}

/// The lab's port: listening (the accept task owns the listener), or refusing connections.
#[derive(Debug)]
enum Port {
    Listening(JoinHandle<()>),
    /// A socket bound to the port without listening, when the platform allows it: it keeps the
    /// port from being given to another socket until the lab listens again.
    Refusing(Option<TcpSocket>),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One accepted connection's view of the lab.
#[derive(Debug, Clone)]
struct Conn {
    shared: Arc<Shared>,
    /// Its rank among accepted connections, from 1.
    nth: u64,
    /// The forget epoch when it was accepted.
    epoch: u64,
    /// When it was accepted.
    accepted: Instant,
}

/// A request the lab received: its rank, and what to do with it.
#[derive(Debug)]
struct Received {
    nth: u64,
    action: Fault,
}

impl Conn {
    /// Counts a request whose head arrived and picks its action; `choose: false` counts it
    /// without consulting the rules (a stream refused by an earlier `GOAWAY`).
    fn receive(
        &self,
        method: &Method,
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
        choose: bool,
    ) -> Received {
        let request_id = headers
            .get(&self.shared.request_id)
            .and_then(|value| value.to_str().ok());
        let mut state = self.shared.lock();
        let state = &mut *state;
        let (nth, nth_on_connection) = state.counts.receive(self.nth, method, request_id);
        let (rule, action) = if choose {
            state.script.choose(&RequestInfo {
                method,
                uri,
                version,
                headers,
                request_id,
                nth,
                nth_on_connection,
                connection: self.nth,
                connection_age: self.accepted.elapsed(),
            })
        } else {
            (None, Fault::RefuseStream)
        };
        state.counts.requests.push(RequestRecord {
            nth,
            connection: self.nth,
            nth_on_connection,
            method: method.clone(),
            uri: uri.clone(),
            request_id: request_id.map(str::to_owned),
            arrived: Instant::now(),
            rule,
            executed: false,
        });
        Received { nth, action }
    }

    /// Counts the execution of the request received `nth`.
    fn execute(&self, nth: u64) {
        self.shared.lock().counts.execute(nth);
    }

    /// Whether [`Lab::forget_connections`] was called since this connection was accepted.
    fn forgotten(&self) -> bool {
        self.shared.forget_epoch.load(Ordering::SeqCst) > self.epoch
    }

    /// Counts a connection reset because it was forgotten.
    fn count_forgotten(&self) {
        self.shared.lock().counts.forgotten_resets += 1;
    }

    /// Counts response body bytes sent.
    fn count_body(&self, bytes: usize) {
        if bytes > 0 {
            self.shared.lock().counts.body_bytes += bytes as u64;
        }
    }

    /// Counts a connection dropped by the idle timeout.
    fn count_idle(&self) {
        self.shared.lock().counts.idle_disconnects += 1;
    }

    /// The request id header to echo in a reply, if any.
    fn echo(&self, headers: &HeaderMap) -> Option<(HeaderName, http::HeaderValue)> {
        if !self.shared.echo_request_id {
            return None;
        }
        let value = headers.get(&self.shared.request_id)?;
        Some((self.shared.request_id.clone(), value.clone()))
    }
}

/// The listen backlog.
const BACKLOG: u32 = 1024;

/// A listening socket on `addr`.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    socket(addr)?.listen(BACKLOG)
}

/// A socket bound to `addr` but not listening, taken while the listener on that address still
/// exists: possible with `SO_REUSEPORT` (Unix); elsewhere the bind fails.
fn reserve(addr: SocketAddr) -> io::Result<TcpSocket> {
    socket(addr)
}

/// A socket bound to `addr`, with `SO_REUSEADDR` so that a restart can take the same port back
/// while old connections linger in `TIME_WAIT`, and on Unix `SO_REUSEPORT`, so that a second
/// socket (see [`reserve`]) can hold the port while the listener closes. A bound socket that
/// does not listen refuses connections; and no port that has one is given to a socket that
/// binds port 0.
fn socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    share_port(&socket)?;
    socket.bind(addr)?;
    Ok(socket)
}

#[cfg(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx"
    ))
))]
fn share_port(socket: &TcpSocket) -> io::Result<()> {
    socket.set_reuseport(true)
}

#[cfg(not(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx"
    ))
)))]
fn share_port(_: &TcpSocket) -> io::Result<()> {
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
