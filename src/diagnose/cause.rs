//! The probable causes a report names.

use std::fmt;
use std::time::Duration;

use super::display::{bytes, code_duration, duration, percent};

/// A probable cause of a host's connection failures, with the evidence and the figures a fix
/// needs: see [`HostReport::causes`](super::HostReport::causes).
///
/// Its `Display` is three lines: what happens, the evidence, and the fix in this crate's and
/// hyper-util's settings. Every variant counts the `failures` it explains (of the failures the
/// collector kept, see [`HostReport::recorded`](super::HostReport::recorded)); a failure is
/// explained by one cause at most.
///
/// # Examples
///
/// ```
/// use tower_reset::diagnose::{Cause, Collector};
///
/// let report = Collector::new().report();
/// for cause in report.hosts().iter().flat_map(|host| host.causes()) {
///     if let Cause::IdleTimeout { suggested_max_idle, .. } = cause {
///         println!("set max_idle to {suggested_max_idle:?}");
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Cause {
    /// Something on the way (the server, a proxy, a NAT, a load balancer) drops connections
    /// that stay idle: failures on reused connections idle `shortest_failed_idle` or more,
    /// while connections idle up to `longest_ok_idle` were reused fine.
    #[non_exhaustive]
    IdleTimeout {
        /// The failures this cause explains.
        failures: u64,
        /// The shortest idle time, above every one that worked, after which a reused connection
        /// failed: the peer's idle timeout is at most this.
        shortest_failed_idle: Duration,
        /// The longest idle time after which a reused connection worked, if any did.
        longest_ok_idle: Option<Duration>,
        /// Four fifths of `shortest_failed_idle`, rounded down: the `max_idle` to set.
        suggested_max_idle: Duration,
        /// The idle limit the pooled strategy learned for the host
        /// ([`learn_idle_timeout`](crate::fresh_connection::policy::ConnectionPolicy::learn_idle_timeout)),
        /// if it learned one: connections idle that long are already retired.
        learned_idle_limit: Option<Duration>,
    },
    /// The server (or a proxy) closes a connection after a fixed number of requests, like
    /// nginx's `keepalive_requests`: the failures were each the request after the `requests`th
    /// on their connection, and no connection carried more.
    #[non_exhaustive]
    RequestLimit {
        /// The failures this cause explains.
        failures: u64,
        /// The requests a connection carries before the next one fails: the `max_requests` to
        /// set.
        requests: u32,
    },
    /// The server (or a proxy) closes connections after a maximum lifetime, like gRPC's
    /// `max_connection_age` or a load balancer's connection lifetime.
    #[non_exhaustive]
    MaxAge {
        /// The failures this cause explains.
        failures: u64,
        /// The youngest age, above every one that worked, at which a reused connection failed.
        shortest_failed_age: Duration,
        /// The oldest age at which a reused connection worked, if any did.
        oldest_ok_age: Option<Duration>,
        /// Four fifths of `shortest_failed_age`, rounded down: the `max_age` to set.
        suggested_max_age: Duration,
    },
    /// The server restarted, or dropped every connection at once: failures in bursts, on
    /// several connections within a second, often with refused connections.
    #[non_exhaustive]
    Restart {
        /// The failures this cause explains.
        failures: u64,
        /// How many bursts there were.
        bursts: u64,
        /// When the largest burst started, since the collector was made.
        at: Duration,
        /// How long the largest burst lasted.
        within: Duration,
        /// The failures of the largest burst.
        largest: u64,
        /// The distinct connections that failed in the bursts.
        connections: u64,
        /// The requests in the bursts that got no connection (refused, or the connect failed).
        refused: u64,
    },
    /// Requests with large bodies fail: a server or proxy limit on the request size (such as
    /// nginx's `client_max_body_size`) that cuts the connection instead of answering `413`.
    #[non_exhaustive]
    SizeLimit {
        /// The failures this cause explains.
        failures: u64,
        /// The smallest body, above every one that went through, whose request failed.
        smallest_failed_body: u64,
        /// The largest body whose request went through, if any had a known size.
        largest_ok_body: Option<u64>,
    },
    /// Failures rise with the number of requests in flight: the server (or a proxy) sheds load.
    #[non_exhaustive]
    Overload {
        /// The failures this cause explains.
        failures: u64,
        /// Up to this many requests in flight, failures were rare.
        calm_up_to: u32,
        /// The share of requests that failed with up to `calm_up_to` in flight.
        calm_rate: f64,
        /// The requests that started with up to `calm_up_to` in flight.
        calm_requests: u64,
        /// From this many requests in flight, failures rose.
        rising_from: u32,
        /// The share of requests that failed with `rising_from` or more in flight.
        rising_rate: f64,
        /// The requests that started with `rising_from` or more in flight.
        rising_requests: u64,
    },
    /// Connections reset or closed with no pattern in idle time, age, request count, body size,
    /// concurrency or time: something on the way (a proxy, a firewall) or the server cuts them.
    #[non_exhaustive]
    ProxyCut {
        /// The failures this cause explains.
        failures: u64,
        /// How many of them were on connections used for the first time.
        on_new_connections: u64,
        /// When at least three of them failed after about the same time in flight (a second or
        /// more): that time, the mark of a request timeout on the way.
        after: Option<Duration>,
    },
    /// Requests that never got a connection: refused, or the connect failed, outside a burst.
    #[non_exhaustive]
    Unreachable {
        /// The failures this cause explains.
        failures: u64,
    },
    /// HTTP/2 streams refused by the server (`REFUSED_STREAM`, or a `GOAWAY` below the
    /// stream), outside the patterns above: a graceful shutdown or a stream limit.
    #[non_exhaustive]
    StreamsRefused {
        /// The failures this cause explains.
        failures: u64,
    },
}

impl Cause {
    /// A short, stable, lower-case name for logs and metrics, such as `"idle_timeout"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_reset::diagnose::Collector;
    ///
    /// let report = Collector::new().report();
    /// let names: Vec<&str> = report.causes().map(|cause| cause.name()).collect();
    /// assert!(names.is_empty());
    /// ```
    pub const fn name(&self) -> &'static str {
        match self {
            Self::IdleTimeout { .. } => "idle_timeout",
            Self::RequestLimit { .. } => "request_limit",
            Self::MaxAge { .. } => "max_age",
            Self::Restart { .. } => "restart",
            Self::SizeLimit { .. } => "size_limit",
            Self::Overload { .. } => "overload",
            Self::ProxyCut { .. } => "proxy_cut",
            Self::Unreachable { .. } => "unreachable",
            Self::StreamsRefused { .. } => "streams_refused",
        }
    }

    /// The failures this cause explains.
    pub const fn failures(&self) -> u64 {
        match self {
            Self::IdleTimeout { failures, .. }
            | Self::RequestLimit { failures, .. }
            | Self::MaxAge { failures, .. }
            | Self::Restart { failures, .. }
            | Self::SizeLimit { failures, .. }
            | Self::Overload { failures, .. }
            | Self::ProxyCut { failures, .. }
            | Self::Unreachable { failures }
            | Self::StreamsRefused { failures } => *failures,
        }
    }

    /// What happens, in one line.
    fn what(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout {
                shortest_failed_idle,
                longest_ok_idle,
                ..
            } => {
                write!(
                    f,
                    "idle timeout: something on the way (the server, a proxy, a NAT or a load \
                     balancer) drops connections idle for "
                )?;
                match longest_ok_idle {
                    Some(ok) if *ok * 2 >= *shortest_failed_idle => write!(
                        f,
                        "between {} and {}",
                        duration(*ok),
                        duration(*shortest_failed_idle)
                    ),
                    _ => write!(f, "{} or less", duration(*shortest_failed_idle)),
                }
            }
            Self::RequestLimit { requests, .. } => write!(
                f,
                "request limit: the server (or a proxy) closes a connection after {requests} \
                 requests, like nginx's keepalive_requests"
            ),
            Self::MaxAge {
                shortest_failed_age,
                ..
            } => write!(
                f,
                "connection age limit: the server (or a proxy) closes connections about {} after \
                 they open, like gRPC's max_connection_age or a load balancer's connection \
                 lifetime",
                duration(*shortest_failed_age)
            ),
            Self::Restart { .. } => f.write_str(
                "restart: the server restarted, or something dropped every connection at once",
            ),
            Self::SizeLimit {
                smallest_failed_body,
                ..
            } => write!(
                f,
                "request size limit: requests with bodies of {} or more are cut, by a server or \
                 proxy limit such as nginx's client_max_body_size",
                bytes(*smallest_failed_body)
            ),
            Self::Overload { .. } => f.write_str(
                "overload: failures rise with the requests in flight: the server (or a proxy) \
                 sheds load",
            ),
            Self::ProxyCut { .. } => f.write_str(
                "connections cut: something on the way (a proxy, a firewall) or the server \
                 resets connections, with no pattern in idle time, age, request count, body size \
                 or concurrency",
            ),
            Self::Unreachable { .. } => f.write_str(
                "unreachable: connections were refused or could not be made (the server was \
                 down or restarting, or a firewall rejects them)",
            ),
            Self::StreamsRefused { .. } => f.write_str(
                "refused streams: the server refused HTTP/2 streams (REFUSED_STREAM or GOAWAY): \
                 it is closing connections gracefully or is at its stream limit",
            ),
        }
    }

    /// The evidence, in one line.
    fn evidence(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout {
                failures,
                shortest_failed_idle,
                longest_ok_idle,
                ..
            } => {
                write!(
                    f,
                    "{failures} failures on connections idle {} or more; ",
                    duration(*shortest_failed_idle)
                )?;
                match longest_ok_idle {
                    Some(ok) => write!(
                        f,
                        "reused connections worked after up to {} idle",
                        duration(*ok)
                    ),
                    None => f.write_str("no reused connection has worked yet"),
                }
            }
            Self::RequestLimit { failures, requests } => write!(
                f,
                "{failures} failures, each on request {} of its connection; no connection \
                 carried more than {requests}",
                u64::from(*requests) + 1
            ),
            Self::MaxAge {
                failures,
                shortest_failed_age,
                oldest_ok_age,
                ..
            } => {
                write!(
                    f,
                    "{failures} failures on connections {} old or older; ",
                    duration(*shortest_failed_age)
                )?;
                match oldest_ok_age {
                    Some(ok) => write!(f, "connections up to {} old worked", duration(*ok)),
                    None => f.write_str("no reused connection has worked yet"),
                }
            }
            Self::Restart {
                failures,
                bursts,
                at,
                within,
                largest,
                connections,
                refused,
            } => {
                let plural = if *bursts == 1 { "" } else { "s" };
                write!(
                    f,
                    "{failures} failures in {bursts} burst{plural}; the largest: {largest} within \
                     {} at {} after the start, on {connections} connections",
                    duration(*within),
                    duration(*at)
                )?;
                if *refused > 0 {
                    write!(f, ", {refused} requests refused a connection")?;
                }
                Ok(())
            }
            Self::SizeLimit {
                failures,
                smallest_failed_body,
                largest_ok_body,
            } => {
                write!(
                    f,
                    "{failures} failures on bodies of {} or more; ",
                    bytes(*smallest_failed_body)
                )?;
                match largest_ok_body {
                    Some(ok) => write!(f, "bodies up to {} went through", bytes(*ok)),
                    None => f.write_str("no body of known size has gone through yet"),
                }
            }
            Self::Overload {
                calm_up_to,
                calm_rate,
                calm_requests,
                rising_from,
                rising_rate,
                rising_requests,
                ..
            } => write!(
                f,
                "{} of {calm_requests} requests failed with up to {calm_up_to} in flight, {} of \
                 {rising_requests} with {rising_from} or more",
                percent(*calm_rate),
                percent(*rising_rate)
            ),
            Self::ProxyCut {
                failures,
                on_new_connections,
                after,
            } => {
                write!(
                    f,
                    "{failures} failures, {on_new_connections} of them on new connections"
                )?;
                if let Some(after) = after {
                    write!(
                        f,
                        "; they failed after about {} in flight, the mark of a timeout",
                        duration(*after)
                    )?;
                }
                Ok(())
            }
            Self::Unreachable { failures } => {
                write!(f, "{failures} requests never got a connection")
            }
            Self::StreamsRefused { failures } => {
                write!(
                    f,
                    "{failures} requests refused by the protocol (not processed)"
                )
            }
        }
    }

    /// The fix, in one line.
    fn fix(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout {
                suggested_max_idle,
                learned_idle_limit,
                ..
            } => {
                let code = code_duration(*suggested_max_idle);
                write!(
                    f,
                    "keep idle connections below {}: \
                     `fresh_connection::policy::StandardConnections::builder().max_idle({code})`, or \
                     hyper-util's `Client::builder(..).pool_idle_timeout({code})`",
                    duration(*suggested_max_idle)
                )?;
                match learned_idle_limit {
                    Some(learned) => write!(f, "; learned: {}", duration(*learned)),
                    None => Ok(()),
                }
            }
            Self::RequestLimit { requests, .. } => write!(
                f,
                "retire connections after {requests} requests: \
                 `fresh_connection::policy::StandardConnections::builder().max_requests({requests})` \
                 (hyper-util has no such setting)"
            ),
            Self::MaxAge {
                suggested_max_age, ..
            } => write!(
                f,
                "retire connections before {}: \
                 `fresh_connection::policy::StandardConnections::builder().max_age({})` (hyper-util has no \
                 such setting)",
                duration(*suggested_max_age),
                code_duration(*suggested_max_age)
            ),
            Self::Restart { .. } => f.write_str(
                "nothing to tune: retry idempotent requests on fresh connections \
                 (`ResetRetryLayer` over `FreshConnectionLayer`, which evicts the idle siblings \
                 of a reset connection), give POSTs an `Idempotency-Key` so that they can be \
                 retried, and let `BackoffLayer` space the attempts while connections are refused",
            ),
            Self::SizeLimit { .. } => f.write_str(
                "send smaller bodies (split the upload) or raise the limit of the server or \
                 proxy; retrying does not help",
            ),
            Self::Overload {
                calm_up_to,
                rising_from,
                ..
            } => write!(
                f,
                "keep fewer than {rising_from} requests in flight to this host \
                 (`tower::limit::ConcurrencyLimitLayer::new({calm_up_to})` above the stack); the \
                 retry budget of `ResetRetryLayer` keeps retries from adding to the load"
            ),
            Self::ProxyCut { after, .. } => {
                f.write_str("read the logs and timeouts of the proxies and of the server")?;
                if let Some(after) = after {
                    write!(f, " (a timeout of about {})", duration(*after))?;
                }
                f.write_str(
                    "; idempotent requests are retried, and a POST can be if it carries an \
                     `Idempotency-Key`",
                )
            }
            Self::Unreachable { .. } => f.write_str(
                "nothing to tune in the pool: these requests were never sent, so they are \
                 retried whatever their method, with `BackoffLayer` spacing the attempts",
            ),
            Self::StreamsRefused { .. } => f.write_str(
                "nothing to tune: refused streams are retried whatever their method; if they \
                 persist, send fewer requests at once",
            ),
        }
    }

    /// Writes the three lines, each after `indent`.
    pub(crate) fn write_indented(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        write!(f, "{indent}probable cause: ")?;
        self.what(f)?;
        write!(f, "\n{indent}  evidence: ")?;
        self.evidence(f)?;
        write!(f, "\n{indent}  fix: ")?;
        self.fix(f)
    }
}

impl fmt::Display for Cause {
    /// Three lines: `probable cause: …`, `  evidence: …`, `  fix: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_indented(f, "")
    }
}
