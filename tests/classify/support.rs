//! Helpers shared by the classifier tests: hand-built error chains, chain inspection, and small
//! loopback servers that misbehave in one precise way each.

use std::error::Error;
use std::fmt;
use std::io;

use tower::BoxError;

/// A custom error that only wraps another one, the way application and library errors do.
#[derive(Debug)]
pub(crate) struct Wrapper {
    level: usize,
    inner: BoxError,
}

impl Wrapper {
    pub(crate) fn new(level: usize, inner: impl Into<BoxError>) -> Self {
        Self {
            level,
            inner: inner.into(),
        }
    }
}

impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrapper level {}", self.level)
    }
}

impl Error for Wrapper {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.inner)
    }
}

/// A custom error with no source at all, whose message looks like a reset: the classifier must
/// not read messages.
#[derive(Debug)]
pub(crate) struct Leaf;

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by peer (os error 104)")
    }
}

impl Error for Leaf {}

/// A broken error whose `source()` is itself: a cycle of length one.
#[derive(Debug)]
pub(crate) struct SelfCycle;

impl fmt::Display for SelfCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("I am my own cause")
    }
}

impl Error for SelfCycle {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

/// `err` inside `n` [`Wrapper`]s: `err` ends up at index `n` of the chain (the outermost error
/// is index 0).
pub(crate) fn wrap_n(err: impl Into<BoxError>, n: usize) -> BoxError {
    let mut err = err.into();
    for level in (0..n).rev() {
        err = Box::new(Wrapper::new(level, err));
    }
    err
}

/// The links of `err`'s chain as the classifier walks it, outermost first, at most 256 of them
/// (cycles stay finite): `source()`, except that an `io::Error` is followed into the error it
/// wraps (`get_ref()`), which its `source()` skips.
pub(crate) fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => e.source(),
    })
    .take(256)
    .collect()
}

/// The kinds of every `io::Error` that `source()` reaches from `err`.
pub(crate) fn io_kinds(err: &(dyn Error + 'static)) -> Vec<io::ErrorKind> {
    chain(err)
        .into_iter()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .map(io::Error::kind)
        .collect()
}

/// Every link of `err`'s chain of type `T`.
#[cfg(any(feature = "hyper", feature = "h2"))]
pub(crate) fn links<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Vec<&'a T> {
    chain(err)
        .into_iter()
        .filter_map(|e| e.downcast_ref::<T>())
        .collect()
}

#[cfg(any(feature = "hyper", feature = "h2", feature = "reqwest"))]
pub(crate) use self::net::*;

#[cfg(any(feature = "hyper", feature = "h2", feature = "reqwest"))]
// Each helper is used by the tests of some feature; only the full set uses them all.
#[cfg_attr(not(all(feature = "hyper-util", feature = "h2")), allow(dead_code))]
mod net {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    /// Every socket test runs under this bound, so a misbehaving peer fails the test instead of
    /// hanging it.
    pub(crate) const BOUND: Duration = Duration::from_secs(5);

    /// Awaits `fut`, failing the test if it takes longer than [`BOUND`].
    pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
        match tokio::time::timeout(BOUND, fut).await {
            Ok(out) => out,
            Err(_) => panic!("{what}: no answer within {BOUND:?}"),
        }
    }

    /// A loopback address on which nothing listens: bound, read, and released at once.
    pub(crate) fn closed_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        drop(listener);
        addr
    }

    /// A loopback listener on an ephemeral port.
    pub(crate) async fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        (listener, addr)
    }

    /// Accepts one connection, with `TCP_NODELAY` set.
    pub(crate) async fn accept(listener: &TcpListener) -> TcpStream {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("set_nodelay");
        stream
    }

    /// Reads an HTTP/1 request head: everything up to and including the first `\r\n\r\n`.
    pub(crate) async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read request head");
            assert!(n > 0, "client closed before sending a whole request head");
            head.extend_from_slice(&buf[..n]);
        }
        head
    }

    /// What a one-shot HTTP/1 server does once it has read the request head.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum AfterHead {
        /// Abortive close: `SO_LINGER` 0, so the close sends a TCP RST.
        Reset,
        /// Graceful close: FIN, no response at all.
        Fin,
    }

    /// Serves one connection: reads the request head, then resets or closes it. The task returns
    /// the head it read, as proof the request reached the server.
    pub(crate) async fn h1_server(after: AfterHead) -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let (listener, addr) = listener().await;
        let task = tokio::spawn(async move {
            let mut stream = accept(&listener).await;
            let head = read_head(&mut stream).await;
            match after {
                AfterHead::Reset => {
                    stream.set_zero_linger().expect("SO_LINGER 0");
                    drop(stream);
                }
                AfterHead::Fin => {
                    stream.shutdown().await.expect("shutdown (FIN)");
                    // Read until the client closes its side, so nothing unread is left to turn
                    // our close into a reset.
                    let mut sink = [0u8; 1024];
                    let _ = tokio::time::timeout(BOUND / 2, async {
                        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    })
                    .await;
                }
            }
            head
        });
        (addr, task)
    }

    /// A hyper-util legacy client speaking HTTP/1.1 only.
    pub(crate) fn http1_client() -> Client<HttpConnector, Empty<Bytes>> {
        Client::builder(TokioExecutor::new()).build_http()
    }

    /// A hyper-util legacy client speaking HTTP/2 with prior knowledge.
    #[cfg(feature = "h2")]
    pub(crate) fn http2_client() -> Client<HttpConnector, Empty<Bytes>> {
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http()
    }

    /// A `GET` to `path` on `addr`.
    pub(crate) fn get(addr: SocketAddr, path: &str) -> http::Request<Empty<Bytes>> {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .expect("valid request")
    }
}
