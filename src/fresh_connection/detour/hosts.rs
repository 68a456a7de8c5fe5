//! What the detour strategy knows of each host: when its last request through the primary
//! ended, and what the idle times before its requests say about its idle timeout.
//!
//! The primary's pool is out of reach: the strategy does not see its connections, only the
//! requests that go through it. But every connection in that pool has been idle at least since
//! the host's last request got its response, so the time since then (the host's *quiet time*)
//! is a lower bound of every pooled connection's idle time. When no other request to the host is in
//! flight, it is also about the idle time of the connection the next request gets (hyper-util's
//! pool hands out the connection returned last), so such a request's outcome is evidence about
//! the peer's idle timeout, as a reused connection's is for the pooled strategy
//! ([`IdleEvidence`]).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::Uri;
use tokio::time::Instant;

use crate::fresh_connection::host_map::{HostId, HostMap};
use crate::fresh_connection::idle_evidence::IdleEvidence;

/// At most this many hosts are remembered; the host used least recently is forgotten first.
const MAX_HOSTS: usize = 4096;

/// One host's record.
#[derive(Debug, Default)]
struct Quiet {
    /// When the host's last request through the primary got its response.
    last_end: Option<Instant>,
    /// Requests to the host in flight through the primary.
    in_flight: u32,
    /// Whether the primary's pool likely holds a connection to the host: its last request
    /// through the primary that ended got its response (a failure discards its connection).
    holds_connection: bool,
    idle: IdleEvidence,
}

/// The hosts a detour strategy has sent requests to; shared by the clones of one service.
#[derive(Debug)]
pub(super) struct Hosts {
    hosts: Mutex<HostMap<Quiet>>,
}

impl Default for Hosts {
    fn default() -> Self {
        Self {
            hosts: Mutex::new(HostMap::new(MAX_HOSTS)),
        }
    }
}

/// What a request through the primary found when it started, for the evidence it gives when it
/// ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    /// Where the host's record is (`None`: none is kept, for a host whose hash collides with
    /// another's).
    host: Option<HostId>,
    started: Instant,
    /// The host's quiet time, when the request was the only one in flight to it and the pool
    /// likely held a connection for it: about the idle time of the connection it gets.
    alone_after: Option<Duration>,
}

/// How a request through the primary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// With a response.
    Worked,
    /// With a failure the policy condemns: its connection was likely stale.
    Condemned,
    /// With another failure, or dropped before it ended.
    Other,
}

impl Hosts {
    fn lock(&self) -> MutexGuard<'_, HostMap<Quiet>> {
        // Every update is a single step on plain data: consistent whatever panicked.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides where a request to `uri`'s host goes at `now`: `None` when it must take a new
    /// connection (it is not safe to repeat, and every pooled connection to the host has been
    /// idle past where the evidence says they are likely stale), else `Some` with what it
    /// found, and the request is counted in flight through the primary.
    pub(super) fn start(&self, uri: &Uri, now: Instant, repeatable: bool) -> Option<Start> {
        let mut hosts = self.lock();
        let Some(found) = hosts.touch(uri) else {
            return Some(Start {
                host: None,
                started: now,
                alone_after: None,
            });
        };
        let quiet = found.record;
        let quiet_for = quiet.last_end.map(|end| now.saturating_duration_since(end));
        if !repeatable {
            if let (Some(stale_after), Some(quiet_for)) = (quiet.idle.stale_at(now), quiet_for) {
                if quiet_for >= stale_after {
                    return None;
                }
            }
        }
        let alone = quiet.in_flight == 0 && quiet.holds_connection;
        quiet.in_flight += 1;
        Some(Start {
            host: Some(found.id),
            started: now,
            alone_after: quiet_for.filter(|_| alone),
        })
    }

    /// Records the end at `now` of a request that went through the primary. A
    /// response ends the host's quiet time; a failure does not (the other pooled connections
    /// stay as idle as they were).
    pub(super) fn ended(&self, start: Start, now: Instant, ended: Ended) {
        let mut hosts = self.lock();
        // A host forgotten while the request was in flight is known afresh from its next one.
        let Some(quiet) = start.host.and_then(|host| hosts.get_mut(host)) else {
            return;
        };
        quiet.in_flight = quiet.in_flight.saturating_sub(1);
        match (ended, start.alone_after) {
            // The connection that carried it is back in the pool, fresh. A failure leaves the
            // other pooled connections as idle as they were: the quiet time goes on.
            (Ended::Worked, alone_after) => {
                quiet.last_end = Some(now);
                quiet.holds_connection = true;
                if let Some(idle) = alone_after {
                    quiet.idle.worked_after(idle);
                }
            }
            (Ended::Condemned, alone_after) => {
                quiet.holds_connection = false;
                if let Some(idle) = alone_after {
                    quiet.idle.reset_at(idle, start.started);
                }
            }
            (Ended::Other, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Uri {
        "http://example.com/".parse().unwrap()
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// A request through the primary that started at `at` and ended at once as `ended`.
    fn request(hosts: &Hosts, at: Instant, ended: Ended) {
        let start = hosts.start(&host(), at, true).expect("through the primary");
        hosts.ended(start, at, ended);
    }

    /// Whether a request not safe to repeat goes through the primary at `at` (it then stays in
    /// flight).
    fn post_goes_to_the_primary(hosts: &Hosts, at: Instant) -> bool {
        hosts.start(&host(), at, false).is_some()
    }

    /// A host whose first request worked at `t0`, and whose second, alone after 2 s, was reset.
    fn reset_after_two_seconds() -> (Hosts, Instant) {
        let (hosts, t0) = (Hosts::default(), Instant::now());
        request(&hosts, t0, Ended::Worked);
        request(&hosts, t0 + s(2), Ended::Condemned);
        (hosts, t0)
    }

    #[test]
    fn a_request_not_safe_to_repeat_is_detoured_after_a_stale_quiet_time() {
        let (hosts, t0) = reset_after_two_seconds();
        // Likely stale from 1 s on; the failure did not end the quiet time.
        assert!(!post_goes_to_the_primary(&hosts, t0 + s(3)));
        // A request safe to repeat goes through the primary whatever the quiet time.
        request(&hosts, t0 + s(3), Ended::Worked);
        let quick = t0 + s(3) + Duration::from_millis(500);
        assert!(
            post_goes_to_the_primary(&hosts, quick),
            "500 ms quiet is below the bound"
        );
    }

    #[test]
    fn only_requests_alone_in_flight_give_evidence() {
        let (hosts, t0) = (Hosts::default(), Instant::now());
        request(&hosts, t0, Ended::Worked);
        let a = hosts.start(&host(), t0 + s(2), true).unwrap();
        let b = hosts.start(&host(), t0 + s(2), true).unwrap();
        // `a` was alone when it started, `b` was not.
        hosts.ended(b, t0 + s(2), Ended::Condemned);
        assert!(post_goes_to_the_primary(&hosts, t0 + s(4)), "no evidence");
        hosts.ended(a, t0 + s(2), Ended::Condemned);
        assert!(!post_goes_to_the_primary(&hosts, t0 + s(5)));
    }

    #[test]
    fn a_success_after_a_failure_is_on_a_new_connection_and_no_evidence() {
        let (hosts, t0) = reset_after_two_seconds();
        // The failed connection was discarded: this one is new, and says nothing of idle times.
        request(&hosts, t0 + s(4), Ended::Worked);
        assert!(
            !post_goes_to_the_primary(&hosts, t0 + s(6)),
            "the reset after 2 s still counts"
        );
        // A connection reused after 3 s that works contradicts it.
        request(&hosts, t0 + s(7), Ended::Worked);
        assert!(post_goes_to_the_primary(&hosts, t0 + s(10)));
    }

    #[test]
    fn the_evidence_lasts_ten_minutes() {
        let (hosts, t0) = reset_after_two_seconds();
        assert!(!post_goes_to_the_primary(&hosts, t0 + s(601)));
        assert!(post_goes_to_the_primary(&hosts, t0 + s(603)));
    }

    /// A request safe to repeat to `uri` at `at` that ends without evidence: the host is used,
    /// nothing is learned.
    fn touch(hosts: &Hosts, uri: &Uri, at: Instant) {
        let start = hosts.start(uri, at, true).expect("through the primary");
        hosts.ended(start, at, Ended::Other);
    }

    fn other(n: usize) -> Uri {
        format!("http://host-{n}.test/").parse().unwrap()
    }

    #[test]
    fn a_host_in_steady_use_keeps_its_evidence_while_thousands_of_others_come_and_go() {
        let (hosts, t0) = reset_after_two_seconds();
        for n in 0..MAX_HOSTS + 100 {
            touch(&hosts, &other(n), t0 + s(3));
            if n % 1000 == 0 {
                touch(&hosts, &host(), t0 + s(3));
            }
        }
        assert!(
            !post_goes_to_the_primary(&hosts, t0 + s(4)),
            "the evidence of the host in use was kept"
        );
    }

    #[test]
    fn a_host_pushed_out_by_others_is_known_afresh() {
        let (hosts, t0) = reset_after_two_seconds();
        for n in 0..MAX_HOSTS {
            touch(&hosts, &other(n), t0 + s(3));
        }
        assert!(
            post_goes_to_the_primary(&hosts, t0 + s(4)),
            "forgotten, with its evidence"
        );
        let upper: Uri = "http://EXAMPLE.com/".parse().unwrap();
        let (hosts, t0) = reset_after_two_seconds();
        assert!(
            hosts.start(&upper, t0 + s(4), false).is_none(),
            "names that differ in case are one host"
        );
    }
}
