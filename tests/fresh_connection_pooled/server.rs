//! A loopback HTTP/1.1 keep-alive server that can play a restart or an idle-timeout NAT, and
//! counts connections and requests per connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the server knows about one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLog {
    pub(crate) requests: usize,
    pub(crate) accepted: Instant,
    pub(crate) last_request: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// Connections accepted before this epoch are reset on their next request.
    epoch: AtomicU64,
    connections: Mutex<Vec<ConnectionLog>>,
    resets: AtomicUsize,
    responses: AtomicUsize,
}

/// How the server behaves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// Wait this long before each response (to make a client open parallel connections).
    pub(crate) delay: Duration,
    /// A request that arrives on a connection idle longer than this is answered with an RST,
    /// as if a NAT or load balancer had silently dropped the connection.
    pub(crate) idle_timeout: Option<Duration>,
    /// The status of every response.
    pub(crate) status: u16,
    /// Where set, only requests whose `Host` header starts with this keep their connection
    /// open; the others are answered with `connection: close` and their connection closed (so
    /// that a client can talk to thousands of hosts without holding thousands of sockets).
    pub(crate) keep_alive_for: Option<&'static str>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            idle_timeout: None,
            status: 200,
            keep_alive_for: None,
        }
    }
}

pub(crate) struct Server {
    addr: std::net::SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                stream.set_nodelay(true).unwrap();
                let index = {
                    let mut connections = accept_state.connections.lock().unwrap();
                    connections.push(ConnectionLog {
                        requests: 0,
                        accepted: Instant::now(),
                        last_request: None,
                    });
                    connections.len() - 1
                };
                let epoch = accept_state.epoch.load(Ordering::SeqCst);
                tokio::spawn(serve(stream, accept_state.clone(), index, epoch, config));
            }
        });
        Self {
            addr,
            state,
            accept,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every connection open now is reset on its next request, as after a server restart.
    pub(crate) fn restart(&self) {
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn connections(&self) -> Vec<ConnectionLog> {
        self.state.connections.lock().unwrap().clone()
    }

    pub(crate) fn resets(&self) -> usize {
        self.state.resets.load(Ordering::SeqCst)
    }

    pub(crate) fn responses(&self) -> usize {
        self.state.responses.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>, index: usize, epoch: u64, config: Config) {
    let mut buffer = Vec::with_capacity(1024);
    let mut idle_since = Instant::now();
    let mut first = true;
    // Bounded: a connection serves at most 10,000 requests.
    for _ in 0..10_000 {
        // Read one request head (GETs only: no body).
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let keep_alive = config
            .keep_alive_for
            .is_none_or(|prefix| host_starts_with(&buffer[..head_end], prefix));
        buffer.drain(..head_end);
        let now = Instant::now();
        {
            let mut connections = state.connections.lock().unwrap();
            let log = &mut connections[index];
            log.requests += 1;
            log.last_request = Some(now);
        }
        let restarted = state.epoch.load(Ordering::SeqCst) > epoch;
        let idled_out = !first
            && config
                .idle_timeout
                .is_some_and(|timeout| now.duration_since(idle_since) > timeout);
        if restarted || idled_out {
            state.resets.fetch_add(1, Ordering::SeqCst);
            // SO_LINGER 0 then close: an RST, with the request unanswered.
            let _ = stream.set_zero_linger();
            return;
        }
        first = false;
        if !config.delay.is_zero() {
            tokio::time::sleep(config.delay).await;
        }
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: 2\r\n{}\r\nok",
            config.status,
            if keep_alive {
                ""
            } else {
                "connection: close\r\n"
            }
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        state.responses.fetch_add(1, Ordering::SeqCst);
        if !keep_alive {
            return;
        }
        idle_since = Instant::now();
    }
}

/// Whether the `Host` header of request head `head` starts with `prefix`, in any case.
fn host_starts_with(head: &[u8], prefix: &str) -> bool {
    String::from_utf8_lossy(head).lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            let value = value.trim_start().as_bytes();
            name.eq_ignore_ascii_case("host")
                && value.len() >= prefix.len()
                && value[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
    })
}
