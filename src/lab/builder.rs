//! The lab's builder.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderName;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::counts::Counts;
use super::fault::{Disconnect, Fault, Idle, Reply};
use super::script::{ConnectionMatch, Match, Script};
use super::{listen, Lab, Shared, State};

/// Builds a [`Lab`]: its protocol, its rules, and how it treats idle connections.
///
/// Rules are tried in the order they are added; the first that matches a request picks its
/// action, and requests no rule matches get the default action.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::Method;
/// use tower_reset::lab::{Fault, ConnectionMatch, Disconnect, Idle, Lab, Match};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let lab = Lab::builder()
///     .http2()
///     // The first connection is reset as soon as it is accepted.
///     .on_accept(ConnectionMatch::nth(1), Disconnect::Reset)
///     // The first POST is executed, then its connection is reset before the response.
///     .on(Match::method(Method::POST).times(1), Fault::ResetAfterRequest)
///     // 5% of the other requests are refused by the protocol.
///     .on(Match::any().probability(0.05), Fault::RefuseStream)
///     .seed(42)
///     // Keep-alive connections idle for 200 ms are closed.
///     .idle_timeout(Duration::from_millis(200), Idle::Fin)
///     .start()
///     .await?;
/// println!("send requests to {}", lab.url("/"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LabBuilder {
    addr: SocketAddr,
    http2: bool,
    rules: Vec<(Match, Fault)>,
    accept_rules: Vec<(ConnectionMatch, Disconnect)>,
    default: Option<Fault>,
    reply: Reply,
    seed: u64,
    request_id: HeaderName,
    echo_request_id: bool,
    idle: Option<(Duration, Idle)>,
}

impl LabBuilder {
    pub(super) fn new() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http2: false,
            rules: Vec::new(),
            accept_rules: Vec::new(),
            default: None,
            reply: Reply::ok(),
            seed: 0,
            request_id: HeaderName::from_static("x-request-id"),
            echo_request_id: true,
            idle: None,
        }
    }

    /// Serves HTTP/1.1. This is the default.
    pub fn http1(mut self) -> Self {
        self.http2 = false;
        self
    }

    /// Serves HTTP/2 with prior knowledge (cleartext `h2c`, no upgrade), instead of HTTP/1.1.
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// Listens on this address. Defaults to `127.0.0.1:0` (a free port, see [`Lab::addr`]).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Adds a rule: requests that `when` matches get `action` (a [`Reply`] converts into
    /// [`Fault::Reply`]).
    pub fn on(mut self, when: Match, action: impl Into<Fault>) -> Self {
        self.rules.push((when, action.into()));
        self
    }

    /// Adds an accept rule: connections that `when` matches are dropped as `disconnect` says
    /// right after they are accepted, before anything is read.
    pub fn on_accept(mut self, when: ConnectionMatch, disconnect: Disconnect) -> Self {
        self.accept_rules.push((when, disconnect));
        self
    }

    /// The action for requests that no rule matches. Defaults to [`Fault::Reply`] with the
    /// lab's reply (see [`reply`](LabBuilder::reply)).
    pub fn default_action(mut self, action: impl Into<Fault>) -> Self {
        self.default = Some(action.into());
        self
    }

    /// The lab's reply: the default action's, and the one that [`Fault::ResetInHead`],
    /// [`Fault::ResetInBody`] and [`Fault::CloseInBody`] cut. Defaults to [`Reply::ok`]
    /// (`200 OK`, body `ok`).
    pub fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    /// Seeds the generator behind [`Match::probability`] and [`ConnectionMatch::probability`]:
    /// the same seed and the same order of requests give the same failures. Defaults to 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The header that identifies a request across its attempts (counted by
    /// [`Counts::arrivals`] and [`Counts::executions`]). Defaults to `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id = name;
        self
    }

    /// Whether replies carry the request's request id header back. Defaults to `true`.
    pub fn echo_request_id(mut self, echo: bool) -> Self {
        self.echo_request_id = echo;
        self
    }

    /// Drops keep-alive connections that stay idle (no request in progress) longer than
    /// `timeout`, as [`Idle`] says. Defaults to never.
    pub fn idle_timeout(mut self, timeout: Duration, idle: Idle) -> Self {
        self.idle = Some((timeout, idle));
        self
    }

    /// Binds the address and starts serving in the background.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, when no tokio runtime is running, or when the script
    /// is wrong: a probability outside `0..=1`, or an HTTP/2 action ([`Fault::RefuseStream`],
    /// [`Fault::GoAway`]) in an HTTP/1.1 lab (kind [`io::ErrorKind::InvalidInput`]).
    pub async fn start(self) -> io::Result<Lab> {
        let default = self
            .default
            .unwrap_or_else(|| Fault::Reply(self.reply.clone()));
        let mut script = Script::new(self.seed, default);
        for (when, action) in self.rules {
            script.push(when, action);
        }
        for (when, disconnect) in self.accept_rules {
            script.push_accept(when, disconnect);
        }
        script
            .check(self.http2)
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        tokio::runtime::Handle::try_current()
            .map_err(|error| io::Error::other(format!("the lab needs a tokio runtime: {error}")))?;

        let listener = listen(self.addr)?;
        let addr = listener.local_addr()?;
        let (kill, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            small_send_buffer: script.cuts_after_bytes(),
            http2: self.http2,
            request_id: self.request_id,
            echo_request_id: self.echo_request_id,
            idle: self.idle,
            reply: self.reply,
            state: Mutex::new(State {
                script,
                counts: Counts::default(),
            }),
            forget_epoch: AtomicU64::new(0),
            kill,
        });
        let lab = Lab {
            shared,
            addr,
            port: tokio::sync::Mutex::new(super::Port::Refusing(None)),
            connections: Arc::new(Mutex::new(JoinSet::new())),
        };
        *lab.port.lock().await = super::Port::Listening(lab.spawn_accept(listener));
        Ok(lab)
    }
}

impl Default for LabBuilder {
    /// [`Lab::builder()`].
    fn default() -> Self {
        Self::new()
    }
}
