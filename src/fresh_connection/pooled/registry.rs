//! What the pooled strategy knows about each connection of the client's pool.
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

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use hyper_util::client::legacy::connect::CaptureConnection;
use tokio::time::Instant;

use crate::diagnose::ConnectionFacts;
use crate::fresh_connection::policy::Policy;

/// The pool a connection belongs to: hyper-util keys its pool by scheme and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Host {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
}

impl Host {
    pub(super) fn of(uri: &http::Uri) -> Self {
        Self {
            scheme: uri.scheme().cloned(),
            authority: uri.authority().cloned(),
        }
    }
}

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
    requests: u32,
}

/// What was learned of one host's idle timeout.
#[derive(Debug)]
struct Learned {
    host: Host,
    /// The shortest idle time after which a connection was found reset.
    shortest_reset: Duration,
    /// The longest idle time after which a connection was reused successfully, below
    /// `shortest_reset`.
    longest_ok: Duration,
}

/// Resets after less idle time than this are not taken as an idle timeout: a connection
/// reset after a few milliseconds idle was reset for another reason.
const MIN_LEARNED_IDLE: Duration = Duration::from_millis(200);
/// Connections not seen for this long are forgotten (and poisoned, since they can no longer be
/// held to the limits); hyper-util's default pool idle timeout is 90 s.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// At most this many connections are tracked; the oldest are forgotten first.
const MAX_ENTRIES: usize = 4096;

/// The connections of one pool; shared by every clone of a layer's service.
#[derive(Debug, Default)]
pub(super) struct Registry {
    entries: Vec<Entry>,
    learned: Vec<Learned>,
}

/// Poisons the connection a capture saw: the pool will not hand it out again.
fn poison(capture: &CaptureConnection) {
    if let Some(connected) = capture.connection_metadata().as_ref() {
        connected.poison();
    }
}

impl Registry {
    /// Retires the idle connections to `host` that the policy says must not be reused:
    /// called before each request, so that the pool cannot hand them out.
    pub(super) fn retire_before_checkout<P: Policy>(
        &mut self,
        host: &Host,
        now: Instant,
        policy: &P,
    ) {
        let max_idle = self.max_idle(host, policy);
        let (max_age, max_requests) = (policy.max_age(), policy.max_requests());
        self.entries.retain(|entry| {
            let idle = now.saturating_duration_since(entry.idle_since);
            let expired = idle >= FORGET_AFTER
                || (entry.host == *host
                    && (max_idle.is_some_and(|max| idle >= max)
                        || max_age.is_some_and(|max| {
                            now.saturating_duration_since(entry.first_used) >= max
                        })
                        || max_requests.is_some_and(|max| entry.requests >= max)));
            if expired {
                poison(&entry.capture);
            }
            !expired
        });
    }

    /// Records a request that got its response on connection `id`; retires the connection at
    /// once if that request used up its age or request limit.
    pub(super) fn completed<P: Policy>(
        &mut self,
        id: ConnectionId,
        host: &Host,
        capture: &CaptureConnection,
        started: Instant,
        now: Instant,
        policy: &P,
    ) {
        let index = match self.entries.iter().position(|entry| entry.id == id) {
            Some(index) => {
                let entry = &self.entries[index];
                if entry.requests > 0 {
                    let idle = started.saturating_duration_since(entry.idle_since);
                    self.learn_success(host, idle);
                }
                index
            }
            None => {
                if capture.connection_metadata().is_none() {
                    return;
                }
                if self.entries.len() >= MAX_ENTRIES {
                    let oldest = self.entries.remove(0);
                    poison(&oldest.capture);
                }
                self.entries.push(Entry {
                    id,
                    host: host.clone(),
                    capture: capture.clone(),
                    first_used: started,
                    idle_since: now,
                    requests: 0,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        entry.requests = entry.requests.saturating_add(1);
        entry.idle_since = now;
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
    /// caller): when the connection had been idle in the pool before this request, retires the
    /// connections to the same host that have been idle at least as long. Returns how many
    /// siblings were retired.
    pub(super) fn condemned<P: Policy>(
        &mut self,
        id: Option<ConnectionId>,
        host: &Host,
        started: Instant,
        policy: &P,
    ) -> usize {
        let Some(index) = id.and_then(|id| self.entries.iter().position(|entry| entry.id == id))
        else {
            // A connection seen for the first time: it was new, not stale, so its siblings are
            // not suspect.
            return 0;
        };
        let failed = self.entries.swap_remove(index);
        let idle = started.saturating_duration_since(failed.idle_since);
        if policy.learn_idle_timeout() {
            self.learn_reset(host, idle);
        }
        if !policy.evict_idle_siblings() {
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

    /// The idle limit for `host`: the policy's, lowered to what was learned.
    fn max_idle<P: Policy>(&self, host: &Host, policy: &P) -> Option<Duration> {
        let learned = policy
            .learn_idle_timeout()
            .then(|| self.learned.iter().find(|learned| learned.host == *host))
            .flatten()
            .map(|learned| {
                // The peer's timeout lies between the longest idle time known to work and the
                // shortest one that ended in a reset. Stay at the proven one, or at half the
                // reset one when that is longer: a later reset below it lowers it again.
                learned.longest_ok.max(learned.shortest_reset / 2)
            });
        match (policy.max_idle(), learned) {
            (Some(max), Some(learned)) => Some(max.min(learned)),
            (max, learned) => max.or(learned),
        }
    }

    fn learn_reset(&mut self, host: &Host, idle: Duration) {
        if idle < MIN_LEARNED_IDLE {
            return;
        }
        match self
            .learned
            .iter_mut()
            .find(|learned| learned.host == *host)
        {
            Some(learned) => {
                if idle < learned.shortest_reset {
                    learned.shortest_reset = idle;
                    if learned.longest_ok >= idle {
                        learned.longest_ok = Duration::ZERO;
                    }
                }
            }
            None => self.learned.push(Learned {
                host: host.clone(),
                shortest_reset: idle,
                longest_ok: Duration::ZERO,
            }),
        }
    }

    fn learn_success(&mut self, host: &Host, idle: Duration) {
        if let Some(learned) = self
            .learned
            .iter_mut()
            .find(|learned| learned.host == *host)
        {
            if idle < learned.shortest_reset && idle > learned.longest_ok {
                learned.longest_ok = idle;
            }
        }
    }

    /// The number of connections tracked (for tests and debugging).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
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
