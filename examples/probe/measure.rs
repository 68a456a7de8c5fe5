//! What the probe measures, and how: a server's keep-alive idle timeout, how it closes idle
//! connections, its requests per connection, and whether it speaks HTTP/2 with prior knowledge.

// Shared with the `diagnose` test target, which uses only a part.
#![allow(dead_code)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::wire::{self, Ending, ExchangeError};

/// The idle times the first round tries, all at once on their own connections: 0.3 s growing
/// by half each time (0.3, 0.45, 0.68, 1.0, 1.5, 2.3, 3.4, 5.1, 7.7, 11.5, 17, 26, 39, 58,
/// 88 s), up to `--max-idle`, which is tried last.
fn first_round(max_idle: Duration) -> Vec<Duration> {
    let mut delays: Vec<Duration> =
        std::iter::successors(Some(Duration::from_millis(300)), |d| Some(d.mul_f64(1.5)))
            .take_while(|d| *d < max_idle)
            .collect();
    delays.push(max_idle);
    delays
}

/// Probes tried between the bounds the first round found, when the server forgets idle
/// connections silently (each probe then needs its own request to tell).
const SECOND_ROUND: u32 = 8;

/// What the probe is told to do.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The longest idle time tried.
    pub(crate) max_idle: Duration,
    /// The most requests sent on one connection.
    pub(crate) max_requests: u32,
    /// How long a connect, or a request and its response, may take.
    pub(crate) timeout: Duration,
    /// How long the requests-per-connection count may run.
    pub(crate) requests_budget: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_idle: Duration::from_secs(90),
            max_requests: 1000,
            timeout: Duration::from_secs(5),
            requests_budget: Duration::from_secs(30),
        }
    }
}

impl Options {
    /// The longest the probe runs: the first check (a connect, an exchange, and the HTTP/2
    /// attempt), then the longer of the idle measurement (two rounds, each up to `max_idle`,
    /// each probe a connect and two exchanges) and the request count (its budget).
    pub(crate) fn longest_run(&self) -> Duration {
        let idle = self.max_idle * 2 + self.timeout * 6;
        let requests = self.requests_budget + self.timeout * 2;
        self.timeout * 3 + idle.max(requests)
    }
}

/// Where the probe goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// As given.
    pub(crate) url: String,
    /// The `Host` header: the URL's authority.
    pub(crate) authority: String,
    pub(crate) addr: SocketAddr,
    /// Path and query.
    pub(crate) path: String,
}

/// Why the probe could not run.
#[derive(Debug)]
pub(crate) enum ProbeError {
    /// Not an `http://host[:port]/path` URL.
    Url(String),
    /// The host name does not resolve.
    Resolve(String, io::Error),
    /// No connection.
    Unreachable(SocketAddr, io::Error),
    /// Something answered, but not HTTP/1.1 nor HTTP/2 with prior knowledge.
    NotHttp(SocketAddr, String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(message) => write!(f, "{message}"),
            Self::Resolve(host, error) => write!(f, "cannot resolve {host}: {error}"),
            Self::Unreachable(addr, error) => {
                write!(f, "cannot connect to {addr}: {error}")?;
                if error.kind() == io::ErrorKind::ConnectionRefused {
                    f.write_str(" (is the server running, on this port?)")?;
                }
                Ok(())
            }
            Self::NotHttp(addr, what) => write!(
                f,
                "{addr} does not speak HTTP/1.1, nor HTTP/2 with prior knowledge: {what}"
            ),
        }
    }
}

impl std::error::Error for ProbeError {}

impl Target {
    /// Parses `http://host[:port][/path]` and resolves the host (the first address).
    pub(crate) async fn resolve(url: &str) -> Result<Self, ProbeError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|error| ProbeError::Url(format!("not a URL: {url:?} ({error})")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(ProbeError::Url(
                    "https is not supported: probe the server's plain-HTTP port, or the same \
                     server behind a local TLS-terminating proxy"
                        .to_owned(),
                ))
            }
            _ => {
                return Err(ProbeError::Url(format!(
                    "not an http:// URL: {url:?} (try http://{url})"
                )))
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ProbeError::Url(format!("no host in {url:?}")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| ProbeError::Resolve(host.to_owned(), error))?
            .next()
            .ok_or_else(|| ProbeError::Resolve(host.to_owned(), io::ErrorKind::NotFound.into()))?;
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        Ok(Self {
            url: url.to_owned(),
            authority: authority.to_string(),
            addr,
            path,
        })
    }

    fn request(&self) -> Vec<u8> {
        wire::get(&self.authority, &self.path)
    }
}

/// How far the probe got, for a progress line.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The idle time the running round waits for, in milliseconds.
    pub(crate) idle_round_ms: AtomicU64,
    /// Requests sent on the request-count connection.
    pub(crate) requests: AtomicU64,
}

/// A server's idle timeout, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleTimeout {
    /// The server closed idle connections after this long, itself.
    Closes { after: Duration, how: Ending },
    /// Connections idle up to `worked` took a request; idle `failed`, the request failed (the
    /// connection had been silently dropped, as a NAT or load balancer does).
    Forgets {
        worked: Duration,
        failed: Duration,
        how: Ending,
    },
    /// Every connection took a request after `max_idle`.
    NoneUpTo(Duration),
    /// The server closes every connection after one response: no keep-alive.
    NoKeepAlive,
}

impl IdleTimeout {
    /// The best single figure: the close, or the middle of the bounds.
    pub(crate) fn figure(&self) -> Option<Duration> {
        match *self {
            Self::Closes { after, .. } => Some(after),
            Self::Forgets { worked, failed, .. } => Some((worked + failed) / 2),
            Self::NoneUpTo(_) | Self::NoKeepAlive => None,
        }
    }

    /// The longest idle time known to be safe.
    pub(crate) fn safe(&self) -> Option<Duration> {
        match *self {
            Self::Closes { after, .. } => Some(after),
            Self::Forgets { worked, .. } => Some(worked),
            Self::NoneUpTo(_) | Self::NoKeepAlive => None,
        }
    }
}

/// The requests a connection carried before the server ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestLimit {
    /// `requests` responses, then the server closed, as `how` says.
    After { requests: u32, how: LimitEnd },
    /// No end up to `requests` requests (`--max-requests`, or the time budget).
    NoneUpTo { requests: u32, out_of_time: bool },
}

/// How a connection ended at its request limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitEnd {
    /// The last response said `Connection: close`: the graceful way (nginx).
    ConnectionClose,
    /// The next request met a close or a reset: a client that sent it loses it.
    Cut(Ending),
}

/// HTTP/2 with prior knowledge (`h2c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Http2 {
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, when it sets one.
    pub(crate) max_concurrent_streams: Option<u64>,
}

/// Everything the probe found.
#[derive(Debug, Clone)]
pub(crate) struct Findings {
    pub(crate) url: String,
    /// Whether the server answered HTTP/1.1.
    pub(crate) http1: bool,
    /// `None` when not measured (no HTTP/1.1).
    pub(crate) idle: Option<IdleTimeout>,
    /// `None` when not measured (no HTTP/1.1).
    pub(crate) requests: Option<RequestLimit>,
    /// `None` when the server does not speak HTTP/2 with prior knowledge.
    pub(crate) http2: Option<Http2>,
    pub(crate) elapsed: Duration,
}

/// Probes `target`.
///
/// # Errors
///
/// When no connection can be made, or the server speaks neither HTTP/1.1 nor HTTP/2 with
/// prior knowledge.
pub(crate) async fn probe(
    target: &Target,
    options: &Options,
    progress: &Progress,
) -> Result<Findings, ProbeError> {
    let started = Instant::now();
    let first = first_exchange(target, options).await?;
    let http2 = http2(target, options).await;
    let http1 = match first {
        Ok(response) => Some(response),
        Err(_) if http2.is_some() => None,
        Err(what) => return Err(ProbeError::NotHttp(target.addr, what)),
    };
    let (idle, requests) = match http1 {
        None => (None, None),
        Some(response) if response.closes => (
            Some(IdleTimeout::NoKeepAlive),
            Some(RequestLimit::After {
                requests: 1,
                how: LimitEnd::ConnectionClose,
            }),
        ),
        Some(_) => {
            let (idle, requests) = tokio::join!(
                idle_timeout(target, options, progress),
                request_limit(target, options, progress)
            );
            (Some(idle), Some(requests))
        }
    };
    Ok(Findings {
        url: target.url.clone(),
        http1: http1.is_some(),
        idle,
        requests,
        http2,
        elapsed: started.elapsed(),
    })
}

async fn connect(target: &Target, options: &Options) -> Result<TcpStream, ProbeError> {
    match tokio::time::timeout(options.timeout, TcpStream::connect(target.addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => Err(ProbeError::Unreachable(target.addr, error)),
        Err(_) => Err(ProbeError::Unreachable(
            target.addr,
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer to the connect in {:?}", options.timeout),
            ),
        )),
    }
}

/// Connects and sends one request: the outer error when there is no connection, the inner
/// one (what came back, in words) when the answer is not HTTP/1.1.
async fn first_exchange(
    target: &Target,
    options: &Options,
) -> Result<Result<wire::Response, String>, ProbeError> {
    let mut stream = connect(target, options).await?;
    Ok(
        match wire::exchange(&mut stream, &target.request(), options.timeout).await {
            Ok(response) => Ok(response),
            Err(ExchangeError::NotHttp(what)) => Err(format!("it answered {what}")),
            Err(ExchangeError::Ended(Ending::Fin)) => {
                Err("it closed the connection without answering".to_owned())
            }
            Err(ExchangeError::Ended(Ending::Reset)) => {
                Err("it reset the connection without answering".to_owned())
            }
            Err(ExchangeError::TimedOut) => Err(format!(
                "it sent no whole response in {:?}",
                options.timeout
            )),
            Err(ExchangeError::Io(error)) => Err(format!("the connection failed: {error}")),
        },
    )
}

/// What one idle probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The request after `delay` idle got its response.
    Worked(Duration),
    /// The server ended the idle connection after this long.
    Closed(Duration, Ending),
    /// The request after `delay` idle failed.
    Failed(Duration, Ending),
    /// The probe itself could not run (no connection, no first response).
    Broken,
}

/// One connection: a request, then idle for `delay` (or until the server ends it), then a
/// request.
async fn idle_probe(target: Target, options: Options, delay: Duration) -> Seen {
    let Ok(mut stream) = connect(&target, &options).await else {
        return Seen::Broken;
    };
    let request = target.request();
    if wire::exchange(&mut stream, &request, options.timeout)
        .await
        .is_err()
    {
        return Seen::Broken;
    }
    let idle_since = Instant::now();
    if let Some(how) = wire::wait_for_close(&mut stream, idle_since + delay).await {
        return Seen::Closed(idle_since.elapsed(), how);
    }
    match wire::exchange(&mut stream, &request, options.timeout).await {
        Ok(_) => Seen::Worked(delay),
        Err(ExchangeError::Ended(how)) => Seen::Failed(delay, how),
        Err(_) => Seen::Broken,
    }
}

/// Runs idle probes for `delays` at once; stops at the first close or failure, since every
/// longer probe would see the same. Returns what each probe that finished saw.
async fn round(
    target: &Target,
    options: &Options,
    delays: &[Duration],
    progress: &Progress,
) -> Vec<Seen> {
    let longest = delays.iter().max().copied().unwrap_or_default();
    progress
        .idle_round_ms
        .store(longest.as_millis() as u64, Ordering::Relaxed);
    let mut probes = JoinSet::new();
    for delay in delays {
        probes.spawn(idle_probe(target.clone(), options.clone(), *delay));
    }
    let mut seen = Vec::new();
    while let Some(result) = probes.join_next().await {
        let Ok(result) = result else { continue };
        seen.push(result);
        if matches!(result, Seen::Closed(..) | Seen::Failed(..)) {
            // Every probe still running waits longer than this one did.
            probes.abort_all();
            while probes.join_next().await.is_some() {}
            break;
        }
    }
    seen
}

async fn idle_timeout(target: &Target, options: &Options, progress: &Progress) -> IdleTimeout {
    let seen = round(target, options, &first_round(options.max_idle), progress).await;
    let worked = |seen: &[Seen]| {
        seen.iter()
            .filter_map(|seen| match seen {
                Seen::Worked(delay) => Some(*delay),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    };
    match end_of(&seen) {
        None => IdleTimeout::NoneUpTo(options.max_idle),
        Some(Seen::Closed(after, how)) => IdleTimeout::Closes { after, how },
        Some(Seen::Failed(failed, how)) => {
            let low = worked(&seen);
            // Between the longest that worked and the failure: the second round.
            let step = (failed - low) / (SECOND_ROUND + 1);
            let delays: Vec<Duration> = (1..=SECOND_ROUND).map(|k| low + step * k).collect();
            let second = round(target, options, &delays, progress).await;
            let low = low.max(worked(&second));
            match end_of(&second) {
                Some(Seen::Closed(after, how)) => IdleTimeout::Closes { after, how },
                Some(Seen::Failed(earlier, how)) if earlier < failed => IdleTimeout::Forgets {
                    worked: low,
                    failed: earlier,
                    how,
                },
                _ => IdleTimeout::Forgets {
                    worked: low,
                    failed,
                    how,
                },
            }
        }
        Some(_) => IdleTimeout::NoneUpTo(options.max_idle),
    }
}

/// The close or failure that ended a round, if any.
fn end_of(seen: &[Seen]) -> Option<Seen> {
    seen.iter()
        .copied()
        .find(|seen| matches!(seen, Seen::Closed(..) | Seen::Failed(..)))
}

/// Requests one after the other on one connection until the server ends it.
async fn request_limit(target: &Target, options: &Options, progress: &Progress) -> RequestLimit {
    let deadline = Instant::now() + options.requests_budget;
    let none = |requests, out_of_time| RequestLimit::NoneUpTo {
        requests,
        out_of_time,
    };
    let Ok(mut stream) = connect(target, options).await else {
        return none(0, false);
    };
    let request = target.request();
    for sent in 0..options.max_requests {
        if Instant::now() >= deadline {
            return none(sent, true);
        }
        progress
            .requests
            .store(u64::from(sent) + 1, Ordering::Relaxed);
        match wire::exchange(&mut stream, &request, options.timeout).await {
            Ok(response) if response.closes => {
                return RequestLimit::After {
                    requests: sent + 1,
                    how: LimitEnd::ConnectionClose,
                }
            }
            Ok(_) => {}
            Err(ExchangeError::Ended(how)) => {
                return RequestLimit::After {
                    requests: sent,
                    how: LimitEnd::Cut(how),
                }
            }
            Err(_) => return none(sent, false),
        }
    }
    none(options.max_requests, false)
}

/// Whether the server speaks HTTP/2 with prior knowledge: a `GET` over `h2c`.
async fn http2(target: &Target, options: &Options) -> Option<Http2> {
    let stream = connect(target, options).await.ok()?;
    let attempt = async {
        let (mut client, mut connection) = h2::client::handshake(stream).await.ok()?;
        let uri = format!("http://{}{}", target.authority, target.path);
        let request = http::Request::get(uri).body(()).ok()?;
        let (response, _) = client.send_request(request, true).ok()?;
        let mut response = std::pin::pin!(response);
        tokio::select! {
            response = &mut response => response.ok()?,
            // The connection ended before the response.
            _ = &mut connection => return None,
        };
        let streams = connection.max_concurrent_send_streams();
        Some(Http2 {
            max_concurrent_streams: (streams != usize::MAX).then_some(streams as u64),
        })
    };
    tokio::time::timeout(options.timeout, attempt)
        .await
        .ok()
        .flatten()
}

/// `--max-idle 90s`, `1500ms`, `2m`, or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}
