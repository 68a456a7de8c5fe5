//! What the collector keeps for one host: a few counters the happy path bumps, and a bounded
//! ring of the most recent failures.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use tokio::time::Instant;

use crate::classify::FailureClass;

/// At most this many failures are kept per host (the most recent); the counts stay exact.
pub(crate) const MAX_SAMPLES: usize = 128;

/// Requests are counted by how many were in flight to their host when they started, in these
/// buckets: 1, 2, 3–4, 5–8, 9–16, 17–32, 33 and more.
pub(crate) const BUCKETS: usize = 7;

/// The bucket of a request that started with `in_flight` requests in flight (itself included).
pub(crate) const fn bucket(in_flight: u32) -> usize {
    match in_flight {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        9..=16 => 4,
        17..=32 => 5,
        _ => 6,
    }
}

/// The in-flight counts a bucket holds, as `(lowest, highest)`; `u32::MAX` for no upper end.
pub(crate) const fn bucket_bounds(bucket: usize) -> (u32, u32) {
    match bucket {
        0 => (1, 1),
        1 => (2, 2),
        2 => (3, 4),
        3 => (5, 8),
        4 => (9, 16),
        5 => (17, 32),
        _ => (33, u32::MAX),
    }
}

/// What a connection had done when a request went out on it: the facts the pooled strategy's
/// registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionFacts {
    /// How long it had been idle in the pool.
    pub(crate) idle: Duration,
    /// How long since its first request started.
    pub(crate) age: Duration,
    /// How many requests it had carried before this one.
    pub(crate) requests: u32,
}

/// Which connection a failed request was on, as far as the layer that saw it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
pub(crate) enum ConnectionUse {
    /// The layer does not see connections (the generic [`DiagnoseLayer`](super::DiagnoseLayer)).
    Unknown,
    /// The request got no connection: it was refused, or the connect failed.
    NoConnection,
    /// A new connection, on its first request; `port` is its local port, when known.
    New { port: Option<u16> },
    /// A connection that had carried requests before.
    Reused {
        port: Option<u16>,
        facts: ConnectionFacts,
    },
}

impl ConnectionUse {
    pub(crate) fn facts(&self) -> Option<&ConnectionFacts> {
        match self {
            Self::Reused { facts, .. } => Some(facts),
            _ => None,
        }
    }

    pub(crate) fn port(&self) -> Option<u16> {
        match self {
            Self::New { port } | Self::Reused { port, .. } => *port,
            _ => None,
        }
    }
}

/// One recorded failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// When it happened, since the collector was made.
    pub(crate) at: Duration,
    pub(crate) class: FailureClass,
    pub(crate) connection: ConnectionUse,
    /// The request body's size, when known.
    pub(crate) body: Option<u64>,
    /// Requests in flight to the host when this one started, itself included.
    pub(crate) in_flight: u32,
    /// How long the request had been in flight when it failed.
    pub(crate) elapsed: Duration,
}

/// The largest values seen on requests that succeeded, kept as `value + 1` so that 0 means
/// "none yet". Raised with a load first, so that once the maximum is reached the happy path
/// only reads.
#[derive(Debug, Default)]
struct Highest(AtomicU64);

impl Highest {
    fn raise(&self, value: u64) {
        let value = value.saturating_add(1);
        if value > self.0.load(Ordering::Relaxed) {
            self.0.fetch_max(value, Ordering::Relaxed);
        }
    }

    fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }
}

/// The per-host statistics.
#[derive(Debug)]
pub(crate) struct HostStats {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
    /// When the collector was made: sample times count from it.
    pub(crate) epoch: Instant,
    pub(crate) in_flight: AtomicU32,
    requests: [AtomicU64; BUCKETS],
    longest_ok_idle: Highest,
    oldest_ok_age: Highest,
    most_ok_requests: Highest,
    largest_ok_body: Highest,
    /// The idle limit the pooled strategy learned for the host, as `micros + 1` (0: none).
    learned_idle: AtomicU64,
    failures: Mutex<Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    total: u64,
    by_class: [u64; CLASSES.len()],
    by_bucket: [u64; BUCKETS],
    recent: VecDeque<Sample>,
}

impl HostStats {
    pub(crate) fn new(uri: Option<&http::Uri>, epoch: Instant) -> Self {
        Self {
            scheme: uri.and_then(|uri| uri.scheme().cloned()),
            authority: uri.and_then(|uri| uri.authority().cloned()),
            epoch,
            in_flight: AtomicU32::new(0),
            requests: Default::default(),
            longest_ok_idle: Highest::default(),
            oldest_ok_age: Highest::default(),
            most_ok_requests: Highest::default(),
            largest_ok_body: Highest::default(),
            learned_idle: AtomicU64::new(0),
            failures: Mutex::new(Failures::default()),
        }
    }

    /// Whether requests to `uri` belong here (by scheme and authority, as hyper-util pools).
    pub(crate) fn is_for(&self, uri: &http::Uri) -> bool {
        self.scheme.as_ref() == uri.scheme() && self.authority.as_ref() == uri.authority()
    }

    /// Whether `uri` has exactly this scheme and authority, byte for byte: the quick test of
    /// the happy path (a host spelled with other letter cases takes the slow one).
    pub(crate) fn is_exactly_for(&self, uri: &http::Uri) -> bool {
        self.scheme.as_ref() == uri.scheme()
            && self.authority.as_ref().map(Authority::as_str)
                == uri.authority().map(Authority::as_str)
    }

    /// `scheme://authority`, as far as known.
    pub(crate) fn name(&self) -> String {
        match (&self.scheme, &self.authority) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            (None, Some(authority)) => authority.to_string(),
            _ => "(no host)".to_owned(),
        }
    }

    /// Counts a request that starts; returns how many are in flight, itself included.
    pub(crate) fn start(&self) -> u32 {
        let in_flight = self
            .in_flight
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        self.requests[bucket(in_flight)].fetch_add(1, Ordering::Relaxed);
        in_flight
    }

    /// Counts the end of a request, whatever its outcome.
    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records what a successful request shows: how far reuse, age, use and body size went.
    pub(crate) fn succeeded(&self, facts: Option<ConnectionFacts>, body: Option<u64>) {
        if let Some(facts) = facts {
            self.longest_ok_idle.raise(micros(facts.idle));
            self.oldest_ok_age.raise(micros(facts.age));
            self.most_ok_requests.raise(u64::from(facts.requests));
        }
        if let Some(body) = body {
            self.largest_ok_body.raise(body);
        }
    }

    /// Records the idle limit the pooled strategy has learned for the host, or that it has
    /// none (any more).
    pub(crate) fn learned(&self, idle: Option<Duration>) {
        let value = idle.map_or(0, |idle| micros(idle).saturating_add(1));
        self.learned_idle.store(value, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, sample: Sample) {
        let mut failures = self.lock();
        failures.total += 1;
        failures.by_class[class_index(sample.class)] += 1;
        failures.by_bucket[bucket(sample.in_flight)] += 1;
        if failures.recent.len() == MAX_SAMPLES {
            failures.recent.pop_front();
        }
        failures.recent.push_back(sample);
    }

    fn lock(&self) -> MutexGuard<'_, Failures> {
        // Every update is a few additions and a push: consistent whatever panicked.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> HostSnapshot {
        let failures = self.lock();
        HostSnapshot {
            host: self.name(),
            requests: std::array::from_fn(|index| self.requests[index].load(Ordering::Relaxed)),
            failures: failures.total,
            by_class: failures.by_class,
            failures_by_bucket: failures.by_bucket,
            ok: OkBounds {
                longest_idle: self.longest_ok_idle.get().map(Duration::from_micros),
                oldest_age: self.oldest_ok_age.get().map(Duration::from_micros),
                most_requests: self
                    .most_ok_requests
                    .get()
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                largest_body: self.largest_ok_body.get(),
            },
            learned_idle: self
                .learned_idle
                .load(Ordering::Relaxed)
                .checked_sub(1)
                .map(Duration::from_micros),
            samples: failures.recent.iter().copied().collect(),
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The classes in the order of [`HostSnapshot::by_class`].
pub(crate) const CLASSES: [FailureClass; 5] = [
    FailureClass::NeverSent,
    FailureClass::Refused,
    FailureClass::UnknownOutcome,
    FailureClass::Unavailable,
    FailureClass::Rejected,
];

pub(crate) fn class_index(class: FailureClass) -> usize {
    CLASSES.iter().position(|c| *c == class).unwrap_or(2)
}

/// The largest values that requests which *succeeded* showed; `None` when no such request was
/// seen (for the connection facts: no successful request on a reused connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OkBounds {
    pub(crate) longest_idle: Option<Duration>,
    pub(crate) oldest_age: Option<Duration>,
    /// Requests a connection had carried before one that succeeded.
    pub(crate) most_requests: Option<u32>,
    pub(crate) largest_body: Option<u64>,
}

/// A copy of one host's statistics, taken for a report.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostSnapshot {
    pub(crate) host: String,
    pub(crate) requests: [u64; BUCKETS],
    pub(crate) failures: u64,
    pub(crate) by_class: [u64; CLASSES.len()],
    pub(crate) failures_by_bucket: [u64; BUCKETS],
    pub(crate) ok: OkBounds,
    /// The idle limit the pooled strategy learned for the host, if it learned one.
    pub(crate) learned_idle: Option<Duration>,
    /// The most recent failures, oldest first.
    pub(crate) samples: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the docs promise: about 14 KiB per host with its ring of failures full, so that
    /// 65 hosts (64 and the others) stay under 1 MiB.
    #[test]
    fn a_full_host_stays_within_its_bound() {
        let full = std::mem::size_of::<HostStats>() + MAX_SAMPLES * std::mem::size_of::<Sample>();
        assert!(full <= 15 * 1024, "{full} bytes");
        assert!(65 * full < 1024 * 1024);
    }

    #[test]
    fn buckets_cover_every_concurrency_in_order() {
        for in_flight in 1..100 {
            let (low, high) = bucket_bounds(bucket(in_flight));
            assert!((low..=high).contains(&in_flight), "{in_flight}");
        }
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }
}
