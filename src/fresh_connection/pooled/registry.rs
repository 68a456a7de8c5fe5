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
//! # Forgetting
//!
//! A connection idle for 5 minutes ([`FORGET_AFTER`]), or for the policy's `max_idle` when that is
//! longer, is forgotten: its entry goes, so that the entries of connections the pool has long
//! dropped do not pile up. Forgetting does not retire the connection (unless a limit of the policy
//! says so, or its host's connections are likely stale after as long: see [`Peer::stale_after`]):
//! with no limit set, a connection idle for an hour is reused as the pool would reuse it without
//! this layer. If a forgotten connection is used again it is tracked afresh, its age and request
//! count starting from that request.
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
//! The same resets say where a host's connections are likely stale ([`Peer::stale_after`]):
//! from one reset on (not two, as for learning), while it lasts ([`STALE_EVIDENCE_LASTS`]). A
//! request not safe to repeat retires, before it checks a connection out, the host's
//! connections idle that long; a request safe to repeat does not, and may test the evidence.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::client::legacy::connect::CaptureConnection;
use tokio::time::Instant;

use crate::diagnose::ConnectionFacts;
pub(super) use crate::fresh_connection::host::Host;
use crate::fresh_connection::idle_evidence::{IdleEvidence, MIN_LEARNED_IDLE};
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
    host: Host,
    /// The capture of the request that first used the connection: it keeps the connection's
    /// poison pill reachable (hyper-util's `Connected` cannot be cloned).
    capture: CaptureConnection,
    first_used: Instant,
    idle_since: Instant,
    /// The host's count of requests started and completed ([`Peer::activity`]) when the
    /// connection went idle.
    activity_when_idle: u64,
    /// The host's other requests in flight when the connection went idle.
    in_flight_when_idle: u64,
    requests: u32,
}

/// What is known of one host's peer.
#[derive(Debug)]
struct Peer {
    host: Host,
    idle: IdleEvidence,
    /// Requests started to the host, plus requests that got their response.
    activity: u64,
    /// Requests to the host started and not yet ended.
    in_flight: u64,
    /// When the last request that failed on a reused connection to the host started.
    last_stale_failure: Option<Instant>,
    /// When the last request started that failed on a reused connection idle long enough to be
    /// evidence of an idle timeout ([`IdleEvidence::reset_after`]).
    last_idle_reset: Option<Instant>,
}

impl Peer {
    /// The idle limit learned for the host, where the policy learns and it is below the
    /// policy's own `max_idle`.
    fn learned_limit<P: ConnectionPolicy>(&self, policy: &P) -> Option<Duration> {
        policy
            .learn_idle_timeout()
            .then(|| self.idle.limit())
            .flatten()
            .filter(|learned| policy.max_idle().is_none_or(|max| *learned < max))
    }

    /// The idle time past which the host's connections are likely stale, while the evidence of
    /// its last idle reset lasts ([`STALE_EVIDENCE_LASTS`]).
    fn stale_after(&self, now: Instant) -> Option<Duration> {
        let reset = self.last_idle_reset?;
        if now.saturating_duration_since(reset) >= STALE_EVIDENCE_LASTS {
            return None;
        }
        self.idle.stale_after()
    }
}

/// Connections idle this long (or for the policy's `max_idle`, when longer) are forgotten, not
/// retired; hyper-util's default pool idle timeout is 90 s.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// At most this many connections are tracked; the oldest are forgotten first.
const MAX_ENTRIES: usize = 4096;
/// At most this many hosts are remembered; the first remembered are forgotten first.
const MAX_PEERS: usize = 1024;
/// How long a reset after an idle time keeps requests not safe to repeat off the host's
/// connections idle about as long, when nothing renews or contradicts it: long enough to span
/// the gaps of a client that sends a request every few minutes, short enough that an isolated
/// reset does not cost such requests a new connection each for ever.
const STALE_EVIDENCE_LASTS: Duration = Duration::from_secs(600);

/// The connections of one pool; shared by every clone of a layer's service.
#[derive(Debug, Default)]
pub(super) struct Registry {
    entries: Vec<Entry>,
    peers: Vec<Peer>,
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

/// Poisons the connection a capture saw: the pool will not hand it out again.
fn poison(capture: &CaptureConnection) {
    if let Some(connected) = capture.connection_metadata().as_ref() {
        connected.poison();
    }
}

impl Registry {
    /// Retires the idle connections to `host` that the policy says must not be reused, and
    /// forgets the connections of any host that have been idle for [`FORGET_AFTER`]: called
    /// before each request, so that the pool cannot hand them out. `repeatable` says whether the
    /// request is safe to repeat ([`ConnectionPolicy::is_safe_to_repeat`]): one that is not is
    /// kept off connections likely to be stale, and is never the one that tests a learned limit.
    /// Returns what was retired for such a request alone.
    pub(super) fn retire_before_checkout<P: ConnectionPolicy>(
        &mut self,
        host: &Host,
        now: Instant,
        policy: &P,
        repeatable: bool,
    ) -> Retired {
        let (max_idle, max_age, max_requests) =
            (policy.max_idle(), policy.max_age(), policy.max_requests());
        let forget_after = max_idle.map_or(FORGET_AFTER, |max| max.max(FORGET_AFTER));
        let peer = peer_of(&mut self.peers, host);
        peer.activity += 1;
        peer.in_flight += 1;
        let learned = peer.learned_limit(policy);
        // Only a request safe to repeat may test the learned limit: if the connection is stale
        // after all, the request is retried.
        let probe_due = repeatable && learned.is_some() && peer.idle.probe_due();
        let mut probe = probe_due;
        // Where the host's connections are likely stale, for a request that cannot be retried.
        let protected = (!repeatable && policy.protect_unrepeatable())
            .then(|| peer.stale_after(now))
            .flatten();
        let mut retired = Retired {
            stale_after: protected,
            ..Retired::default()
        };
        let mut retired_by_learned = 0;
        let peers = &self.peers;
        self.entries.retain(|entry| {
            let idle = now.saturating_duration_since(entry.idle_since);
            let aged =
                max_age.is_some_and(|max| now.saturating_duration_since(entry.first_used) >= max);
            if entry.host == *host {
                let used_up = max_idle.is_some_and(|max| idle >= max)
                    || aged
                    || max_requests.is_some_and(|max| entry.requests >= max);
                if used_up {
                    poison(&entry.capture);
                    return false;
                }
                if learned.is_some_and(|learned| idle >= learned) {
                    if std::mem::take(&mut probe) {
                        // Left to be reused past the learned limit, to test it.
                        return true;
                    }
                    retired_by_learned += 1;
                    poison(&entry.capture);
                    return false;
                }
                if protected.is_some_and(|stale_after| idle >= stale_after) {
                    retired.for_unrepeatable += 1;
                    poison(&entry.capture);
                    return false;
                }
            }
            if idle < forget_after {
                return true;
            }
            // Forgotten. Retired too only when a limit of the policy says so (with `max_idle`
            // set, it was idle longer than that), or when its host's connections are likely
            // stale after this long: once forgotten, it could not be kept from a request that
            // cannot be retried.
            let likely_stale = || {
                peers
                    .iter()
                    .find(|peer| peer.host == entry.host)
                    .and_then(|peer| peer.stale_after(now))
                    .is_some_and(|stale_after| idle >= stale_after)
            };
            if max_idle.is_some() || aged || likely_stale() {
                poison(&entry.capture);
            }
            false
        });
        let peer = peer_of(&mut self.peers, host);
        for _ in 0..retired_by_learned {
            peer.idle.retired_by_limit();
        }
        if probe_due && !probe {
            peer.idle.probed();
        }
        retired
    }

    /// Records a request that got its response on connection `id`; retires the connection at
    /// once if that request used up its age or request limit.
    pub(super) fn completed<P: ConnectionPolicy>(
        &mut self,
        id: ConnectionId,
        host: &Host,
        capture: &CaptureConnection,
        started: Instant,
        now: Instant,
        policy: &P,
    ) {
        let peer = peer_of(&mut self.peers, host);
        peer.in_flight = peer.in_flight.saturating_sub(1);
        peer.activity += 1;
        let (activity, in_flight) = (peer.activity, peer.in_flight);
        let index = match self.entries.iter().position(|entry| entry.id == id) {
            Some(index) => {
                // A reused connection: it worked after sitting idle this long.
                let idle = started.saturating_duration_since(self.entries[index].idle_since);
                peer.idle.worked_after(idle);
                index
            }
            None => {
                if capture.connection_metadata().is_none() {
                    return;
                }
                if self.entries.len() >= MAX_ENTRIES {
                    // Forgotten, not retired, like any connection the registry lets go of.
                    self.entries.remove(0);
                }
                self.entries.push(Entry {
                    id,
                    host: host.clone(),
                    capture: capture.clone(),
                    first_used: started,
                    idle_since: now,
                    activity_when_idle: activity,
                    in_flight_when_idle: in_flight,
                    requests: 0,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        entry.requests = entry.requests.saturating_add(1);
        entry.idle_since = now;
        entry.activity_when_idle = activity;
        entry.in_flight_when_idle = in_flight;
        let used_up = policy
            .max_requests()
            .is_some_and(|max| entry.requests >= max)
            || policy
                .max_age()
                .is_some_and(|max| now.saturating_duration_since(entry.first_used) >= max);
        if used_up {
            poison(&entry.capture);
            self.entries.swap_remove(index);
        }
    }

    /// Records a failure the policy condemns on connection `id` (already poisoned by the
    /// caller), as evidence about the host's peer. When the connection had been idle in the
    /// pool before this request and the evidence says the peer dropped idle connections (see
    /// the [module documentation](self)), retires the connections to the same host that have
    /// been idle at least as long. Returns how many siblings were retired.
    pub(super) fn condemned<P: ConnectionPolicy>(
        &mut self,
        id: Option<ConnectionId>,
        host: &Host,
        started: Instant,
        policy: &P,
    ) -> usize {
        self.ended(host);
        let Some(index) = id.and_then(|id| self.entries.iter().position(|entry| entry.id == id))
        else {
            // A connection seen for the first time: it was new, not stale, so it says nothing
            // about its siblings.
            return 0;
        };
        let failed = self.entries.swap_remove(index);
        let idle = started.saturating_duration_since(failed.idle_since);
        let peer = peer_of(&mut self.peers, host);
        let idle_timeout = peer.idle.suggests_idle_timeout(idle);
        // No other request to the host was in flight when the connection went idle, and none
        // started or got its response since: only this one started.
        let quiet = failed.in_flight_when_idle == 0
            && peer.activity.saturating_sub(failed.activity_when_idle) <= 1;
        let previous = peer.last_stale_failure.replace(started);
        peer.idle.reset_after(idle);
        if idle >= MIN_LEARNED_IDLE {
            peer.last_idle_reset = Some(started);
        }
        if !policy.evict_idle_siblings() {
            return 0;
        }
        // The connection sat idle through the host's previous stale failure, and no connection
        // as old has completed a request since: one failure after another.
        let repeated = previous.is_some_and(|previous| {
            failed.idle_since <= previous
                && !self.entries.iter().any(|entry| {
                    entry.host == *host
                        && entry.first_used <= previous
                        && entry.idle_since > previous
                })
        });
        if !(quiet || repeated || idle_timeout) {
            // One connection broke: its siblings are fine.
            return 0;
        }
        let before = self.entries.len();
        self.entries.retain(|entry| {
            // Idle at least as long as the failed one: went idle no later than it did.
            let suspect = entry.host == *host && entry.idle_since <= failed.idle_since;
            if suspect {
                poison(&entry.capture);
            }
            !suspect
        });
        before - self.entries.len()
    }

    /// Records the end of a request to `host` that neither [`completed`](Self::completed) nor
    /// was [`condemned`](Self::condemned).
    pub(super) fn ended(&mut self, host: &Host) {
        let peer = peer_of(&mut self.peers, host);
        peer.in_flight = peer.in_flight.saturating_sub(1);
    }

    /// The number of connections tracked (for tests and debugging).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The idle limit learned for `host` ([`ConnectionPolicy::learn_idle_timeout`]), if any, for
    /// the diagnosis.
    pub(super) fn learned_idle<P: ConnectionPolicy>(
        &self,
        host: &Host,
        policy: &P,
    ) -> Option<Duration> {
        self.peers
            .iter()
            .find(|peer| peer.host == *host)?
            .learned_limit(policy)
    }

    /// What connection `id` had done when a request started on it at `started`, for the
    /// diagnosis; `None` when it is not tracked (new, or forgotten).
    pub(super) fn facts(&self, id: ConnectionId, started: Instant) -> Option<ConnectionFacts> {
        let entry = self.entries.iter().find(|entry| entry.id == id)?;
        Some(ConnectionFacts {
            idle: started.saturating_duration_since(entry.idle_since),
            age: started.saturating_duration_since(entry.first_used),
            requests: entry.requests,
        })
    }
}

/// What is known of `host`'s peer, remembered from now on if it was not.
fn peer_of<'a>(peers: &'a mut Vec<Peer>, host: &Host) -> &'a mut Peer {
    let index = match peers.iter().position(|peer| peer.host == *host) {
        Some(index) => index,
        None => {
            if peers.len() >= MAX_PEERS {
                peers.remove(0);
            }
            peers.push(Peer {
                host: host.clone(),
                idle: IdleEvidence::default(),
                activity: 0,
                in_flight: 0,
                last_stale_failure: None,
                last_idle_reset: None,
            });
            peers.len() - 1
        }
    };
    &mut peers[index]
}
