//! The collector shared by the layers that feed it, and the per-request watch they hold.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::host::{ConnectionFacts, ConnectionUse, HostStats, Sample};
use super::report::Report;
use crate::classify::FailureClass;
use crate::trace::{self, event};

/// At most this many hosts get statistics of their own; requests to further hosts are counted
/// together, under `(other hosts)`.
pub(crate) const MAX_HOSTS: usize = 64;

/// Collects bounded per-host statistics of connection failures, for a [`Report`].
///
/// Cheap to clone: clones share the statistics, so one collector can be handed to several
/// layers and clients, and read from anywhere with [`report`](Collector::report). Attach it to
/// the pooled strategy with [`FreshConnectionLayer::diagnose`](crate::FreshConnectionLayer::diagnose)
/// (hyper-util), or to any client with [`DiagnoseLayer`](super::DiagnoseLayer).
///
/// Memory is bounded whatever the traffic: at most 64 hosts (further hosts share one entry),
/// and per host a few counters and the 128 most recent failures, about 14 KiB.
///
/// # Examples
///
/// ```
/// use tower_reset::diagnose::Collector;
///
/// let collector = Collector::new();
/// // ... attach `collector.clone()` to a layer, send requests ...
/// let report = collector.report();
/// assert!(report.is_healthy());
/// assert_eq!(report.to_string(), "tower-reset diagnosis: no connection failures (no requests seen)");
/// ```
#[derive(Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: Instant,
    hosts: Mutex<Vec<Arc<HostStats>>>,
    other_hosts: Arc<HostStats>,
}

impl Collector {
    /// A collector with no statistics yet; times in its reports count from now.
    pub fn new() -> Self {
        let epoch = Instant::now();
        Self {
            inner: Arc::new(Inner {
                epoch,
                hosts: Mutex::new(Vec::new()),
                other_hosts: Arc::new(HostStats::new(None, epoch)),
            }),
        }
    }

    /// What the statistics say so far: per host, the failures and their probable causes.
    ///
    /// Takes each host's lock briefly to copy its statistics; the analysis runs on the copy.
    pub fn report(&self) -> Report {
        let mut snapshots: Vec<_> = self.hosts().iter().map(|host| host.snapshot()).collect();
        let mut other = self.inner.other_hosts.snapshot();
        if other.requests.iter().sum::<u64>() > 0 || other.failures > 0 {
            other.host = "(other hosts)".to_owned();
            snapshots.push(other);
        }
        Report::new(self.inner.epoch.elapsed(), snapshots)
    }

    /// The statistics of the host of `uri`, made on first use.
    fn host(&self, uri: &http::Uri) -> Arc<HostStats> {
        let mut hosts = self.hosts();
        if let Some(host) = hosts.iter().find(|host| host.is_for(uri)) {
            return Arc::clone(host);
        }
        if hosts.len() >= MAX_HOSTS {
            return Arc::clone(&self.inner.other_hosts);
        }
        let host = Arc::new(HostStats::new(Some(uri), self.inner.epoch));
        hosts.push(Arc::clone(&host));
        host
    }

    fn hosts(&self) -> MutexGuard<'_, Vec<Arc<HostStats>>> {
        // Only ever pushed to: consistent whatever panicked.
        self.inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("hosts", &self.hosts().len())
            .finish_non_exhaustive()
    }
}

/// A layer's handle on a collector: remembers the last host it saw, so that a client talking
/// to one host (the usual case) never takes the collector's lock on the happy path.
#[derive(Clone)]
pub(crate) struct Recorder {
    collector: Collector,
    last: Option<Arc<HostStats>>,
}

impl Recorder {
    pub(crate) fn new(collector: Collector) -> Self {
        Self {
            collector,
            last: None,
        }
    }

    /// Counts a request that starts; the watch records how it ends.
    pub(crate) fn start(&mut self, uri: &http::Uri, body: Option<u64>) -> Watch {
        let stats = match &self.last {
            Some(last) if last.is_exactly_for(uri) => Arc::clone(last),
            _ => {
                let stats = self.collector.host(uri);
                self.last = Some(Arc::clone(&stats));
                stats
            }
        };
        let in_flight = stats.start();
        Watch {
            stats,
            started: Instant::now(),
            body,
            in_flight,
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("collector", &self.collector)
            .finish_non_exhaustive()
    }
}

/// One request in flight, as the collector sees it; dropping it (whatever the outcome, or when
/// the request is abandoned) ends the request.
pub(crate) struct Watch {
    stats: Arc<HostStats>,
    started: Instant,
    body: Option<u64>,
    in_flight: u32,
}

impl Watch {
    /// The idle limit the pooled strategy has learned for the request's host, if any, as it
    /// stands when the request ends.
    #[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
    pub(crate) fn learned(&self, idle: Option<Duration>) {
        self.stats.learned(idle);
    }

    /// The request got its response.
    pub(crate) fn succeeded(self, facts: Option<ConnectionFacts>) {
        self.stats.succeeded(facts, self.body);
    }

    /// The request failed with a connection failure of this class.
    pub(crate) fn failed(self, class: FailureClass, connection: ConnectionUse) {
        let now = Instant::now();
        let sample = Sample {
            at: now.saturating_duration_since(self.stats.epoch),
            class,
            connection,
            body: self.body,
            in_flight: self.in_flight,
            elapsed: now.saturating_duration_since(self.started),
        };
        let facts = connection.facts();
        event!(
            debug,
            target: trace::DIAGNOSE,
            %class,
            reused = facts.is_some(),
            idle_ms = facts.map(|facts| facts.idle.as_millis()),
            age_ms = facts.map(|facts| facts.age.as_millis()),
            requests_before = facts.map(|facts| facts.requests),
            body = self.body,
            in_flight = self.in_flight,
            "connection failure recorded for diagnosis"
        );
        self.stats.failed(sample);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stats.end();
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// The size of a request body from its `content-length` header, when it has one.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
