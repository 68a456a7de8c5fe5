//! What the pooled strategy knows about each connection of the client's pool, and about each
//! host's peer.
//!
//! hyper-util's pool does not say which connections it holds, how old they are or how long they
//! have been idle; it only lets a caller capture the connection a request used and poison it.
//! So the registry learns the connections from the requests that use them: a connection is
//! entered at the end of its first request, and each later request updates its use count and the
//! instant it went idle. Retiring a connection means poisoning it: the pool drops a poisoned
//! connection instead of handing it out, and drops it on return if it was in use.
//!
//! Idle times are measured from the end of a connection's last response *head*: the body may
//! still be streaming then, so idle times are over-estimated, which errs on the side of retiring
//! a connection too early rather than reusing a dead one.
//!
//! # Where it is kept
//!
//! Everything is kept per host ([`HostMap`]): a request finds its host's record by a hash of its
//! scheme and authority, and then touches only that host's connections, kept in the order they
//! went idle (the one idle longest first), so that the connections past an idle limit are the
//! first few, and the connection a request used (hyper-util's pool hands out the one returned
//! last) is among the last. So a request costs the same whatever the number of hosts and of
//! connections the registry tracks.
//!
//! # Forgetting
//!
//! A connection idle for 5 minutes ([`FORGET_AFTER`]), or for the policy's `max_idle` when that is
//! longer, is forgotten: its entry goes, so that the entries of connections the pool has long
//! dropped do not pile up. Forgetting does not retire the connection (unless a limit of the policy
//! says so, or its host's connections are likely stale after as long: see
//! [`IdleEvidence::stale_at`]): with no limit set, a connection idle for an hour is reused as the
//! pool would reuse it without this layer. If a forgotten connection is used again it is tracked
//! afresh, its age and request count starting from that request. A host's connections are
//! looked at when a request to that host starts, before it checks a connection out, so that a
//! connection is forgotten (or retired) before the pool could hand it out again; those of a host
//! that gets no more requests stay until the caps make room: at most [`MAX_HOSTS`] hosts and
//! [`MAX_ENTRIES`] connections, the host used least recently forgotten first, with its
//! connections (forgotten, not retired).
//!
//! # Evidence that the peer dropped idle connections
//!
//! After a reused connection fails, its idle siblings are retired only when the failure looks
//! like the peer dropping idle connections (a restart, a NAT or load balancer that forgot or
//! timed out its connections) rather than one connection breaking (an isolated reset from an
//! overloaded server or a proxy): retiring a healthy connection costs a new one. The evidence is
//! any of:
//!
//! * **a quiet host**: no other request to the host was in flight when the failed connection
//!   went idle, and none started or got its response since, so nothing says the peer still
//!   knows its old connections (one client's requests one after another, or the first request
//!   after a pause);
//! * **one failure after another**: the failed connection was already idle when the host's
//!   previous stale failure happened, and no connection as old has completed a request since
//!   (under isolated resets among concurrent requests, some always has);
//! * **an idle timeout**: the failed connection sat idle at least 200 ms, and no reused
//!   connection is known to have worked after about as long (see [`IdleEvidence`]).
//!
//! The siblings retired are those idle at least as long as the failed one. Under isolated
//! resets among concurrent requests none of these holds, and each reset costs one new
//! connection, as it does without this layer.
//!
//! # Requests not safe to repeat
//!
//! The same resets say where a host's connections are likely stale ([`IdleEvidence::stale_at`]):
//! from one reset on (not two, as for learning), for ten minutes after it. A
//! request not safe to repeat retires, before it checks a connection out, the host's
//! connections idle that long; a request safe to repeat does not, and may test the evidence.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::CaptureConnection;
use tokio::time::Instant;

use crate::diagnose::ConnectionFacts;
use crate::fresh_connection::host_map::{HostId, HostMap};
use crate::fresh_connection::idle_evidence::IdleEvidence;
use crate::fresh_connection::policy::ConnectionPolicy;

/// A connection's identity: its two socket addresses, from hyper-util's `HttpInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionId {
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
}

#[derive(Debug)]
struct Entry {
    id: ConnectionId,
    /// The capture of the request that first used the connection: it keeps the connection's
    /// poison pill reachable (hyper-util's `Connected` cannot be cloned).
    capture: CaptureConnection,
    first_used: Instant,
    idle_since: Instant,
    /// The host's count of requests started and completed ([`HostRecord::activity`]) when the
    /// connection went idle.
    activity_when_idle: u64,
    /// The host's other requests in flight when the connection went idle.
    in_flight_when_idle: u64,
    requests: u32,
}

/// What is known of one host: its peer, and its connections.
#[derive(Debug, Default)]
struct HostRecord {
    idle: IdleEvidence,
    /// Requests started to the host, plus requests that got their response.
    activity: u64,
    /// Requests to the host started and not yet ended.
    in_flight: u64,
    /// When the last request that failed on a reused connection to the host started.
    last_stale_failure: Option<Instant>,
    /// The host's connections, in the order they went idle: the one idle longest first.
    connections: VecDeque<Entry>,
}

impl HostRecord {
    /// The idle limit learned for the host, where the policy learns and it is below the
    /// policy's own `max_idle`.
    fn learned_limit<P: ConnectionPolicy>(&self, policy: &P) -> Option<Duration> {
        policy
            .learn_idle_timeout()
            .then(|| self.idle.limit())
            .flatten()
            .filter(|learned| policy.max_idle().is_none_or(|max| *learned < max))
    }

    /// Where connection `id` is among the host's connections: looked for from the connection
    /// that went idle last, where the connection a request used usually is.
    fn position(&self, id: ConnectionId) -> Option<usize> {
        self.connections.iter().rposition(|entry| entry.id == id)
    }

    /// Puts `entry` back among the connections, in the order they went idle.
    fn insert(&mut self, entry: Entry) {
        let at = self
            .connections
            .iter()
            .rposition(|other| other.idle_since <= entry.idle_since)
            .map_or(0, |before| before + 1);
        self.connections.insert(at, entry);
    }
}

/// Connections idle this long (or for the policy's `max_idle`, when longer) are forgotten, not
/// retired; hyper-util's default pool idle timeout is 90 s.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// At most this many connections are tracked; past it, the host used least recently is
/// forgotten with its connections (or, when that is the request's own host, its connection idle
/// longest).
const MAX_ENTRIES: usize = 4096;
/// At most this many hosts are remembered (a few hundred bytes each, without their
/// connections); the host used least recently is forgotten first, with its connections.
const MAX_HOSTS: usize = 4096;

/// The connections of one pool; shared by every clone of a layer's service.
#[derive(Debug)]
pub(super) struct Registry {
    hosts: HostMap<HostRecord>,
    /// The connections tracked, over every host.
    entries: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            hosts: HostMap::new(MAX_HOSTS),
            entries: 0,
        }
    }
}

/// What [`Registry::retire_before_checkout`] did for a request that is not safe to repeat.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retired {
    /// The idle time past which the host's connections were taken as likely stale, when the
    /// evidence said so and the request needed the protection.
    pub(super) stale_after: Option<Duration>,
    /// The connections retired for that reason alone.
    pub(super) for_unrepeatable: usize,
}

/// What a request found in the registry before it checked a connection out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checkout {
    /// Where its host's record is; `None` when the registry keeps none for it (a host whose
    /// hash collides with another's).
    pub(super) host: Option<HostId>,
    pub(super) retired: Retired,
}

/// Poisons the connection a capture saw: the pool will not hand it out again.
fn poison(capture: &CaptureConnection) {
    if let Some(connected) = capture.connection_metadata().as_ref() {
        connected.poison();
    }
}

/// What to do with a connection a request finds among its host's before checkout.
enum Verdict {
    Keep,
    /// Poison it, and forget it.
    Retire,
    /// Forget it without retiring it.
    Forget,
}

impl Registry {
    /// Retires the idle connections to `uri`'s host that the policy says must not be reused,
    /// and forgets those that have been idle for [`FORGET_AFTER`]: called before each request,
    /// so that the pool cannot hand them out. `repeatable` says whether the request is safe to
    /// repeat ([`ConnectionPolicy::is_safe_to_repeat`]): one that is not is kept off
    /// connections likely to be stale, and is never the one that tests a learned limit.
    /// Returns where the host's record is, and what was retired for such a request alone.
    pub(super) fn retire_before_checkout<P: ConnectionPolicy>(
        &mut self,
        uri: &Uri,
        now: Instant,
        policy: &P,
        repeatable: bool,
    ) -> Checkout {
        let Some(found) = self.hosts.touch(uri) else {
            return Checkout {
                host: None,
                retired: Retired::default(),
            };
        };
        if let Some(forgotten) = found.forgotten {
            self.entries -= forgotten.connections.len();
        }
        let host = found.record;
        host.activity += 1;
        host.in_flight += 1;
        let (max_idle, max_age, max_requests) =
            (policy.max_idle(), policy.max_age(), policy.max_requests());
        let forget_after = max_idle.map_or(FORGET_AFTER, |max| max.max(FORGET_AFTER));
        let learned = host.learned_limit(policy);
        // Only a request safe to repeat may test the learned limit: if the connection is stale
        // after all, the request is retried.
        let probe_due = repeatable && learned.is_some() && host.idle.probe_due();
        let mut probe = probe_due;
        let likely_stale = host.idle.stale_at(now);
        // Where the host's connections are likely stale, for a request that cannot be retried.
        let protected = likely_stale.filter(|_| !repeatable && policy.protect_unrepeatable());
        let mut retired = Retired {
            stale_after: protected,
            ..Retired::default()
        };
        let mut retired_by_learned = 0;
        // The connections are in the order they went idle: past the shortest idle limit, none
        // is. An age or a request count can be past its limit anywhere.
        let shortest = [max_idle, learned, protected, Some(forget_after)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(forget_after);
        let everywhere = max_age.is_some() || max_requests.is_some();
        let mut at = 0;
        while let Some(entry) = host.connections.get(at) {
            let idle = now.saturating_duration_since(entry.idle_since);
            if idle < shortest && !everywhere {
                break;
            }
            let aged =
                max_age.is_some_and(|max| now.saturating_duration_since(entry.first_used) >= max);
            let used_up = max_idle.is_some_and(|max| idle >= max)
                || aged
                || max_requests.is_some_and(|max| entry.requests >= max);
            let verdict = if used_up {
                Verdict::Retire
            } else if learned.is_some_and(|learned| idle >= learned) {
                if std::mem::take(&mut probe) {
                    // Left to be reused past the learned limit, to test it.
                    Verdict::Keep
                } else {
                    retired_by_learned += 1;
                    Verdict::Retire
                }
            } else if protected.is_some_and(|stale_after| idle >= stale_after) {
                retired.for_unrepeatable += 1;
                Verdict::Retire
            } else if idle < forget_after {
                Verdict::Keep
            } else if max_idle.is_some()
                || likely_stale.is_some_and(|stale_after| idle >= stale_after)
            {
                // Forgotten, and retired too: with `max_idle` set, it was idle longer than
                // that; or its host's connections are likely stale after this long, and once
                // forgotten it could not be kept from a request that cannot be retried.
                Verdict::Retire
            } else {
                Verdict::Forget
            };
            match verdict {
                Verdict::Keep => at += 1,
                Verdict::Retire | Verdict::Forget => {
                    if let Some(entry) = host.connections.remove(at) {
                        if matches!(verdict, Verdict::Retire) {
                            poison(&entry.capture);
                        }
                        self.entries -= 1;
                    }
                }
            }
        }
        for _ in 0..retired_by_learned {
            host.idle.retired_by_limit();
        }
        if probe_due && !probe {
            host.idle.probed();
        }
        Checkout {
            host: Some(found.id),
            retired,
        }
    }

    /// Records a request to the host of `host` that got its response on connection `id`;
    /// retires the connection at once if that request used up its age or request limit.
    pub(super) fn completed<P: ConnectionPolicy>(
        &mut self,
        host: HostId,
        id: ConnectionId,
        capture: &CaptureConnection,
        started: Instant,
        now: Instant,
        policy: &P,
    ) {
        let Some(record) = self.hosts.get_mut(host) else {
            // Forgotten while the request was under way.
            return;
        };
        record.in_flight = record.in_flight.saturating_sub(1);
        record.activity += 1;
        let mut entry = match record.position(id) {
            Some(index) => {
                let Some(entry) = record.connections.remove(index) else {
                    return;
                };
                // A reused connection: it worked after sitting idle this long.
                record
                    .idle
                    .worked_after(started.saturating_duration_since(entry.idle_since));
                entry
            }
            None => {
                if capture.connection_metadata().is_none() {
                    return;
                }
                self.entries += 1;
                Entry {
                    id,
                    capture: capture.clone(),
                    first_used: started,
                    idle_since: now,
                    activity_when_idle: 0,
                    in_flight_when_idle: 0,
                    requests: 0,
                }
            }
        };
        entry.requests = entry.requests.saturating_add(1);
        entry.idle_since = now;
        entry.activity_when_idle = record.activity;
        entry.in_flight_when_idle = record.in_flight;
        let used_up = policy
            .max_requests()
            .is_some_and(|max| entry.requests >= max)
            || policy
                .max_age()
                .is_some_and(|max| now.saturating_duration_since(entry.first_used) >= max);
        if used_up {
            poison(&entry.capture);
            self.entries -= 1;
            return;
        }
        record.insert(entry);
        if self.entries > MAX_ENTRIES {
            self.make_room(host);
        }
    }

    /// Forgets connections (not retiring them) until no more than [`MAX_ENTRIES`] are
    /// tracked: those of the host used least recently, or, when that is `current`, its
    /// connection idle longest.
    fn make_room(&mut self, current: HostId) {
        while self.entries > MAX_ENTRIES {
            if self.hosts.oldest() == Some(current) {
                let Some(record) = self.hosts.get_mut(current) else {
                    return;
                };
                if record.connections.pop_front().is_none() {
                    return;
                }
                self.entries -= 1;
            } else {
                match self.hosts.forget_oldest() {
                    Some(forgotten) => self.entries -= forgotten.connections.len(),
                    None => return,
                }
            }
        }
    }

    /// Records a failure the policy condemns on connection `id` (already poisoned by the
    /// caller) of the host of `host`, as evidence about the host's peer. When the connection
    /// had been idle in the pool before this request and the evidence says the peer dropped
    /// idle connections (see the [module documentation](self)), retires the connections to the
    /// same host that have been idle at least as long. Returns how many siblings were retired.
    pub(super) fn condemned<P: ConnectionPolicy>(
        &mut self,
        id: Option<ConnectionId>,
        host: HostId,
        started: Instant,
        policy: &P,
    ) -> usize {
        let Some(record) = self.hosts.get_mut(host) else {
            return 0;
        };
        record.in_flight = record.in_flight.saturating_sub(1);
        let Some(failed) = id
            .and_then(|id| record.position(id))
            .and_then(|index| record.connections.remove(index))
        else {
            // A connection seen for the first time: it was new, not stale, so it says nothing
            // about its siblings.
            return 0;
        };
        self.entries -= 1;
        let idle = started.saturating_duration_since(failed.idle_since);
        let idle_timeout = record.idle.suggests_idle_timeout(idle);
        // No other request to the host was in flight when the connection went idle, and none
        // started or got its response since: only this one started.
        let quiet = failed.in_flight_when_idle == 0
            && record.activity.saturating_sub(failed.activity_when_idle) <= 1;
        let previous = record.last_stale_failure.replace(started);
        record.idle.reset_at(idle, started);
        if !policy.evict_idle_siblings() {
            return 0;
        }
        // The connection sat idle through the host's previous stale failure, and no connection
        // as old has completed a request since: one failure after another.
        let repeated = previous.is_some_and(|previous| {
            failed.idle_since <= previous
                && !record
                    .connections
                    .iter()
                    .any(|entry| entry.first_used <= previous && entry.idle_since > previous)
        });
        if !(quiet || repeated || idle_timeout) {
            // One connection broke: its siblings are fine.
            return 0;
        }
        // Idle at least as long as the failed one: went idle no later than it did, the first
        // ones in the order they went idle.
        let mut retired = 0;
        while record
            .connections
            .front()
            .is_some_and(|entry| entry.idle_since <= failed.idle_since)
        {
            if let Some(entry) = record.connections.pop_front() {
                poison(&entry.capture);
                retired += 1;
            }
        }
        self.entries -= retired;
        retired
    }

    /// Records the end of a request to the host of `host` that neither
    /// [`completed`](Self::completed) nor was [`condemned`](Self::condemned).
    pub(super) fn ended(&mut self, host: HostId) {
        if let Some(record) = self.hosts.get_mut(host) {
            record.in_flight = record.in_flight.saturating_sub(1);
        }
    }

    /// The number of connections tracked (for tests and debugging).
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// The idle limit learned for the host of `host` ([`ConnectionPolicy::learn_idle_timeout`]),
    /// if any, for the diagnosis.
    pub(super) fn learned_idle<P: ConnectionPolicy>(
        &self,
        host: HostId,
        policy: &P,
    ) -> Option<Duration> {
        self.hosts.get(host)?.learned_limit(policy)
    }

    /// What connection `id` of the host of `host` had done when a request started on it at
    /// `started`, for the diagnosis; `None` when it is not tracked (new, or forgotten).
    pub(super) fn facts(
        &self,
        host: HostId,
        id: ConnectionId,
        started: Instant,
    ) -> Option<ConnectionFacts> {
        let record = self.hosts.get(host)?;
        let entry = &record.connections[record.position(id)?];
        Some(ConnectionFacts {
            idle: started.saturating_duration_since(entry.idle_since),
            age: started.saturating_duration_since(entry.first_used),
            requests: entry.requests,
        })
    }
}
