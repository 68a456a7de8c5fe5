//! Riding out a restart: requests wait for a host that refuses connections, behind one probe.
//!
//! A deploy, a crash-restart or a replaced pod refuses connections for hundreds of milliseconds
//! to seconds. A refused connection proves the request was never sent, so waiting is safe for
//! every method; but each request retrying on its own timer turns the outage into a storm of
//! connect attempts and, when the server returns, a thundering herd, while the short schedule
//! that suits a stale connection gives up after tens of milliseconds. gRPC's answer is the
//! channel's connectivity state and *wait for ready*: calls wait while the channel reconnects
//! with backoff. This is the same thing as middleware, per host:
//!
//! * **Down**: an attempt that fails with a connection refused (or host or network
//!   unreachable: [`is_host_down`](crate::classify::is_host_down)) marks its host, the request's
//!   scheme and authority, as down. A stale connection (a reset, a connection closed before the
//!   request was written) or an overloaded server (a reset during the handshake, a connect
//!   timeout) does not: the usual backoff handles those.
//! * **Waiting**: while its host is down, an attempt (a new request, or a retry) is held
//!   instead of sent, for at most the [window](RideOutBuilder::window) (2 s by default, counted
//!   over all the attempts of the request) and never past the request's deadline. The wait
//!   takes the place of the backoff delay.
//! * **One probe**: connection attempts to a down host come from one probe at a time, on a
//!   [schedule](RideOutBuilder::probes) of its own (jittered, exponential, capped). The probe is
//!   one of the waiting requests, the one that has waited longest, sent as it is; it has to be
//!   a request that `ResetRetry` can send again (so `Backoff` alone never probes: its requests
//!   wait for the end of their window).
//! * **Not counted**: a retry that the host refuses meanwhile (the probe, or the retry that
//!   found the host down) does not count against `max_attempts` nor spend the retry budget: a
//!   refused connection cost the server nothing, the request goes back to waiting, and the
//!   window bounds how long. That holds for the last attempt that counts too: `ResetRetry`
//!   keeps a copy of the request while it retries, so that a restart that catches a request on
//!   its last attempt does not end it with the refusal. An attempt with no copy left to send
//!   another (a body that cannot be replayed twice) counts.
//! * **Released, spread**: when an attempt sent while the host was down (the probe, or one sent
//!   at the end of its window) gets an answer, the waiting requests are released oldest first,
//!   2 ms apart at most and within the [release spread](RideOutBuilder::release_spread), so
//!   that the returning server is not hit by all of them at once. A released request keeps its
//!   place until its turn: were the host to refuse again meanwhile, it waits again. (An answer
//!   to a request sent before the host was down proves nothing: a server that stops accepting
//!   may still serve the connections it has.)
//! * **At the window's end**, a first attempt that is still waiting goes out once, so that it
//!   fails with its own, real connect error (or succeeds, if the host is back and nobody
//!   noticed yet); a retry goes out only if nothing was refused since the request began to
//!   wait, and otherwise ends at once with the error of the attempt before it. Either way the
//!   request stops with [`StopReason::HostDown`](crate::attempt::StopReason::HostDown): a long
//!   outage costs each request one window and about one connection attempt, not a retry storm.
//!
//! The attempts' [`AttemptSummary::waited`](crate::attempt::AttemptSummary::waited) and
//! [`counted`](crate::attempt::AttemptSummary::counted) say what happened; the
//! `tower_reset::backoff` events say when a host goes down and comes back.
//!
//! # What it costs
//!
//! Nothing when no host is down: each attempt hashes its scheme and authority (a few tens of
//! instructions) and reads one atomic bit; no allocation, no lock, no clock read. While a host
//! is down, requests to it take a lock shared by the layer's services, and the first attempt of
//! a retryable request allocates the channel on which `Backoff` reports its wait (whatever its
//! host: the flag that says "some host is down" is one for the process).
//!
//! # Limits
//!
//! The state is per layer: every service made by one `BackoffLayer` (and its clones) shares it.
//! It is bounded:
//!
//! * at most [`RideOut::MAX_HOSTS`] (64) hosts are tracked at once; a host that goes down past
//!   that is not ridden out (its requests fail as they would without it), and a down host that
//!   nobody asked for in 10 s is forgotten;
//! * at most [`max_waiters`](RideOutBuilder::max_waiters) requests (1,024 by default) wait per
//!   host, each taking under 128 bytes of the line; past that a new request is not held:
//!   a first attempt goes out at once, a retry ends with the error before it
//!   ([`StopReason::HostDown`](crate::attempt::StopReason::HostDown)).
//!
//! No task is spawned: the waiting requests' futures keep their own timers, and the probe's
//! schedule is kept by the request that would be the next probe. Two hosts whose 64-bit keys
//! collide would share their state (a wait that the next probe ends).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tower_reset::backoff::RideOut;
//! use tower_reset::BackoffLayer;
//!
//! # fn main() -> Result<(), tower_reset::ConfigError> {
//! // Wait up to 5 s for a host that restarts slowly.
//! let patient = BackoffLayer::new().ride_out(RideOut::builder().window(Duration::from_secs(5)).build()?);
//! // Fail at once instead.
//! let impatient = BackoffLayer::new().ride_out(RideOut::off());
//! # let _ = (patient, impatient);
//! # Ok(())
//! # }
//! ```

mod host_key;
mod registry;
mod watch;

pub(crate) use self::host_key::HostKey;
pub(crate) use self::registry::{Admission, Arrival, Registry, Sent, WaitPoll};
pub(crate) use self::watch::{Ticket, Watch};

use std::time::Duration;

use super::policy::{Exponential, Jitter};
use crate::ConfigError;

/// How [`BackoffLayer`](crate::BackoffLayer) rides out a host that refuses connections; see
/// the [module documentation](self).
///
/// `RideOut::new()` (the default of `BackoffLayer::new()`): a 2 s window, probes after 25 ms
/// doubling to 500 ms (equal jitter), 1,024 waiting requests per host, released within 100 ms.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::backoff::RideOut;
///
/// let ride_out = RideOut::new();
/// assert_eq!(ride_out.window(), Duration::from_secs(2));
/// assert!(RideOut::off().is_off());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RideOut {
    window: Duration,
    probes: Exponential,
    max_waiters: usize,
    release_spread: Duration,
}

impl RideOut {
    /// Default window: 2 s.
    ///
    /// Long enough to bridge a restart of about 1.5 s (the window must also cover the time
    /// from the return of the server to the next probe, up to 500 ms, and the release, up to
    /// 100 ms), the common case of a process restart or a rolling deploy on one address; short
    /// enough that a request to a host that stays down fails within the time an interactive
    /// caller would wait, and no later than the longest default backoff delay (2 s). 1 s would
    /// miss restarts of 600 ms to 1 s whenever the probe falls late.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(2);
    /// Default number of requests that may wait per host: 1,024.
    pub const DEFAULT_MAX_WAITERS: usize = 1024;
    /// Default longest spread of the release: 100 ms.
    pub const DEFAULT_RELEASE_SPREAD: Duration = Duration::from_millis(100);
    /// The most hosts tracked at once by one layer: 64.
    pub const MAX_HOSTS: usize = 64;
    /// The largest window accepted: 10 minutes.
    pub const MAX_WINDOW: Duration = Duration::from_secs(600);
    /// The largest `max_waiters` accepted: 65,536.
    pub const MAX_MAX_WAITERS: usize = 65_536;

    /// The standard settings; see the type's documentation.
    pub fn new() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
            probes: Self::default_probes(),
            max_waiters: Self::DEFAULT_MAX_WAITERS,
            release_spread: Self::DEFAULT_RELEASE_SPREAD,
        }
    }

    /// No riding out: requests to a host that refuses connections are not held (a window of
    /// zero).
    pub fn off() -> Self {
        Self {
            window: Duration::ZERO,
            ..Self::new()
        }
    }

    /// A builder that starts from the standard settings.
    pub fn builder() -> RideOutBuilder {
        RideOutBuilder {
            config: Self::new(),
        }
    }

    /// The default probe schedule: 25 ms, doubling to 500 ms, each drawn from its upper half
    /// ([`Jitter::Equal`]): the probes go after 12 to 25 ms, then 25 to 50 ms more, and so on,
    /// about 6 in the first second of an outage and 2 to 4 a second after that. A restart is
    /// noticed at most 500 ms after its end (sooner for a short one), at a cost to the host well
    /// under 10 connection attempts a second.
    pub fn default_probes() -> Exponential {
        Exponential::builder()
            .base(Duration::from_millis(25))
            .max(Duration::from_millis(500))
            .jitter(Jitter::Equal)
            .build()
            .expect("the default probe schedule is valid")
    }

    /// The longest a request waits for its host, over all its attempts.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The schedule of the probes.
    pub fn probes(&self) -> Exponential {
        self.probes
    }

    /// The most requests that wait for one host.
    pub fn max_waiters(&self) -> usize {
        self.max_waiters
    }

    /// The longest time over which the waiting requests are released.
    pub fn release_spread(&self) -> Duration {
        self.release_spread
    }

    /// Whether riding out is off (a window of zero).
    pub fn is_off(&self) -> bool {
        self.window.is_zero()
    }
}

impl Default for RideOut {
    fn default() -> Self {
        Self::new()
    }
}

/// How many hosts are down and how many requests wait for them now, in one layer: see
/// [`BackoffLayer::ride_out_status`](crate::BackoffLayer::ride_out_status). For metrics and
/// health checks.
///
/// # Examples
///
/// ```
/// use tower_reset::BackoffLayer;
///
/// let layer = BackoffLayer::new();
/// let status = layer.ride_out_status();
/// assert_eq!((status.hosts_down(), status.waiting()), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RideOutStatus {
    pub(crate) hosts_down: usize,
    pub(crate) waiting: usize,
}

impl RideOutStatus {
    /// Hosts known to refuse connections.
    pub fn hosts_down(&self) -> usize {
        self.hosts_down
    }

    /// Requests held for them.
    pub fn waiting(&self) -> usize {
        self.waiting
    }
}

/// Builds a [`RideOut`], checking its settings; see [`RideOut::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::backoff::policy::Exponential;
/// use tower_reset::backoff::RideOut;
///
/// let ride_out = RideOut::builder()
///     .window(Duration::from_secs(5))
///     .probes(Exponential::builder().base(Duration::from_millis(50)).max(Duration::from_secs(1)).build()?)
///     .max_waiters(4096)
///     .release_spread(Duration::from_millis(250))
///     .build()?;
/// assert_eq!(ride_out.max_waiters(), 4096);
///
/// let error = RideOut::builder().max_waiters(0).build().unwrap_err();
/// assert_eq!(error.setting(), "ride_out max_waiters");
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RideOutBuilder {
    config: RideOut,
}

impl RideOutBuilder {
    /// The longest a request waits for a host that refuses connections, over all its
    /// attempts; zero turns riding out off. At most [`RideOut::MAX_WINDOW`]. The request's
    /// deadline, if it has one, ends the wait earlier.
    ///
    /// Defaults to [`RideOut::DEFAULT_WINDOW`] (2 s).
    pub const fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// The schedule of the probes of a down host: the first probe goes out after the first
    /// delay, and each refused probe moves on to the next.
    ///
    /// Defaults to [`RideOut::default_probes`]: 25 ms doubling to 500 ms, equal jitter.
    pub const fn probes(mut self, probes: Exponential) -> Self {
        self.config.probes = probes;
        self
    }

    /// The most requests that wait for one host, from 1 to [`RideOut::MAX_MAX_WAITERS`].
    /// Past it a new request is not held.
    ///
    /// Defaults to [`RideOut::DEFAULT_MAX_WAITERS`] (1,024).
    pub const fn max_waiters(mut self, max_waiters: usize) -> Self {
        self.config.max_waiters = max_waiters;
        self
    }

    /// The longest time over which the requests that waited are released once the host
    /// answers: they go oldest first, 2 ms apart, closer together when there are more than fit
    /// in the spread. Zero releases them all at once. At most the window.
    ///
    /// Defaults to [`RideOut::DEFAULT_RELEASE_SPREAD`] (100 ms).
    pub const fn release_spread(mut self, spread: Duration) -> Self {
        self.config.release_spread = spread;
        self
    }

    /// Checks the settings and builds the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the window is above [`RideOut::MAX_WINDOW`], `max_waiters` is 0
    /// or above [`RideOut::MAX_MAX_WAITERS`], or the release spread is longer than the window.
    pub fn build(self) -> Result<RideOut, ConfigError> {
        let config = self.config;
        if config.window > RideOut::MAX_WINDOW {
            return Err(ConfigError::new(
                "ride_out window",
                format!(
                    "must be at most {:?}, got {:?}",
                    RideOut::MAX_WINDOW,
                    config.window
                ),
            ));
        }
        if config.max_waiters == 0 || config.max_waiters > RideOut::MAX_MAX_WAITERS {
            return Err(ConfigError::new(
                "ride_out max_waiters",
                format!(
                    "must be from 1 to {}, got {}",
                    RideOut::MAX_MAX_WAITERS,
                    config.max_waiters
                ),
            ));
        }
        if config.release_spread > config.window && !config.window.is_zero() {
            return Err(ConfigError::new(
                "ride_out release_spread",
                format!(
                    "must be at most the window ({:?}), got {:?}",
                    config.window, config.release_spread
                ),
            ));
        }
        Ok(config)
    }
}
