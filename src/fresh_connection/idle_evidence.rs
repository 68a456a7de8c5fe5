//! What the idle times of one host's connections say about its idle timeout.
//!
//! A peer (the server, a NAT, a load balancer) that drops connections idle longer than some
//! time `T` resets every reused connection that sat idle past `T`, and none that sat idle less.
//! So a reset after an idle time `r` is evidence that `T < r`, and a reused connection that
//! worked after an idle time `s` is evidence that `T > s`. But connections are also reset for
//! reasons that have nothing to do with idleness (a restart, an overloaded server, a proxy),
//! and a limit learned from one such reset would retire connections for nothing, forever: with
//! the limit in force no connection is ever reused past it, so nothing would show it wrong.
//! Hence three rules:
//!
//! * **repeated evidence**: a limit is learned from at least two resets that no success
//!   contradicts ([`MIN_RESETS`]);
//! * **contradiction**: a success after an idle time `s` cancels the resets after an idle time
//!   up to `s` plus a quarter ([`TOLERANCE`]: idle times are measured from the client, a little
//!   off), and a reset cancels the successes it contradicts in the same way, since the later
//!   observation is the more likely to describe the peer as it is now;
//! * **probing**: once [`PROBE_AFTER`] connections have been retired by the learned limit, one
//!   connection past it is left to be reused, so that the limit is tested: if it works, the
//!   resets it contradicts are cancelled (an isolated reset is forgotten), and if it is reset,
//!   that is one more reset for the evidence.
//!
//! For requests not safe to repeat one reset is evidence enough ([`stale_at`]), for a while
//! ([`STALE_EVIDENCE_LASTS`]).
//!
//! [`stale_at`]: IdleEvidence::stale_at

use std::time::Duration;

use tokio::time::Instant;

/// Resets after less idle time than this are not taken as an idle timeout: a connection reset
/// after a few milliseconds idle was reset for another reason.
const MIN_LEARNED_IDLE: Duration = Duration::from_millis(200);
/// Resets, not contradicted, needed before a limit is learned.
const MIN_RESETS: usize = 2;
/// Resets kept as evidence, the most recent ones.
const MAX_RESETS: usize = 4;
/// An idle time within a quarter of another is "about the same": a success after `s`
/// contradicts a reset after up to `s * (1 + TOLERANCE)`.
const TOLERANCE: f64 = 0.25;
/// Connections retired by the learned limit before one is left past it, to test it.
pub(super) const PROBE_AFTER: u32 = 16;
/// How long a reset after an idle time keeps requests not safe to repeat off the host's
/// connections idle about as long, when nothing renews or contradicts it: long enough to span
/// the gaps of a client that sends a request every few minutes, short enough that an isolated
/// reset does not cost such requests a new connection each for ever.
const STALE_EVIDENCE_LASTS: Duration = Duration::from_secs(600);

/// The evidence about one host's idle timeout.
#[derive(Debug, Default)]
pub(super) struct IdleEvidence {
    /// Idle times after which reused connections were reset, not contradicted since; at most
    /// [`MAX_RESETS`], oldest first.
    resets: Vec<Duration>,
    /// The longest idle time after which a reused connection worked, not contradicted since.
    longest_ok: Duration,
    /// Connections retired by the learned limit since the last reset or probe.
    retired: u32,
    /// When the request started whose reset was the last long enough to be evidence.
    last_reset_started: Option<Instant>,
}

fn about_the_same_or_less(idle: Duration, than: Duration) -> bool {
    idle <= than.mul_f64(1.0 + TOLERANCE)
}

impl IdleEvidence {
    /// A reused connection was reset after sitting idle for `idle`, on a request that started
    /// at `started`.
    pub(super) fn reset_at(&mut self, idle: Duration, started: Instant) {
        if idle >= MIN_LEARNED_IDLE {
            self.last_reset_started = Some(started);
        }
        self.reset_after(idle);
    }

    /// A reused connection was reset after sitting idle for `idle`.
    fn reset_after(&mut self, idle: Duration) {
        if idle < MIN_LEARNED_IDLE {
            return;
        }
        if about_the_same_or_less(idle, self.longest_ok) {
            self.longest_ok = Duration::ZERO;
        }
        if self.resets.len() == MAX_RESETS {
            self.resets.remove(0);
        }
        self.resets.push(idle);
        self.retired = 0;
    }

    /// A reused connection worked after sitting idle for `idle`.
    pub(super) fn worked_after(&mut self, idle: Duration) {
        self.resets
            .retain(|&reset| !about_the_same_or_less(reset, idle));
        self.longest_ok = self.longest_ok.max(idle);
    }

    /// Whether a reset after `idle` looks like an idle timeout: long enough, and no connection
    /// is known to have worked after about as long. Asked before the reset is recorded.
    pub(super) fn suggests_idle_timeout(&self, idle: Duration) -> bool {
        idle >= MIN_LEARNED_IDLE && !about_the_same_or_less(idle, self.longest_ok)
    }

    /// The learned idle limit, once the evidence suffices: between the longest idle time known
    /// to work and the shortest that ended in a reset, half the latter or the former when that
    /// is longer (a later reset below it lowers it again).
    pub(super) fn limit(&self) -> Option<Duration> {
        if self.resets.len() < MIN_RESETS {
            return None;
        }
        self.stale_after()
    }

    /// The idle time past which a reused connection is likely stale, from a single reset on:
    /// the same bound as [`limit`](Self::limit), which waits for a second reset before it retires
    /// connections for every request. Used to keep requests that are not safe to repeat off
    /// such connections, for which one reset is evidence enough.
    pub(super) fn stale_after(&self) -> Option<Duration> {
        let shortest_reset = self.resets.iter().min()?;
        Some(self.longest_ok.max(*shortest_reset / 2))
    }

    /// [`stale_after`](Self::stale_after) at `now`, while the evidence of the last reset lasts
    /// ([`STALE_EVIDENCE_LASTS`] from the start of its request).
    pub(super) fn stale_at(&self, now: Instant) -> Option<Duration> {
        let reset = self.last_reset_started?;
        if now.saturating_duration_since(reset) >= STALE_EVIDENCE_LASTS {
            return None;
        }
        self.stale_after()
    }

    /// Whether the next connection past the learned limit should be left to be reused, to
    /// test the limit: once per [`PROBE_AFTER`] retirements, until [`probed`](Self::probed).
    pub(super) fn probe_due(&self) -> bool {
        self.retired >= PROBE_AFTER
    }

    /// A connection past the learned limit was left to be reused.
    pub(super) fn probed(&mut self) {
        self.retired = 0;
    }

    /// A connection was retired by the learned limit.
    pub(super) fn retired_by_limit(&mut self) {
        self.retired = self.retired.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn one_reset_is_not_enough() {
        let mut evidence = IdleEvidence::default();
        evidence.reset_after(ms(500));
        assert_eq!(evidence.limit(), None);
        evidence.reset_after(ms(600));
        assert_eq!(evidence.limit(), Some(ms(250)));
    }

    #[test]
    fn one_reset_says_where_connections_are_likely_stale() {
        let mut evidence = IdleEvidence::default();
        assert_eq!(evidence.stale_after(), None);
        evidence.worked_after(ms(300));
        evidence.reset_after(ms(2000));
        assert_eq!(evidence.limit(), None, "one reset is not learned");
        assert_eq!(evidence.stale_after(), Some(ms(1000)), "half the reset");
        evidence.worked_after(ms(1500));
        assert_eq!(
            evidence.stale_after(),
            Some(ms(1500)),
            "1.5 s is known to work"
        );
        evidence.worked_after(ms(1700));
        assert_eq!(evidence.stale_after(), None, "the reset was contradicted");
    }

    #[test]
    fn short_resets_are_no_evidence() {
        let mut evidence = IdleEvidence::default();
        for _ in 0..5 {
            evidence.reset_after(ms(150));
        }
        assert_eq!(evidence.limit(), None);
        assert_eq!(evidence.stale_after(), None);
        assert!(!evidence.suggests_idle_timeout(ms(150)));
    }

    #[test]
    fn a_success_after_as_long_cancels_a_reset() {
        let mut evidence = IdleEvidence::default();
        evidence.reset_after(ms(300));
        // Measured a little shorter, but about the same: the reset was not an idle timeout.
        evidence.worked_after(ms(290));
        evidence.reset_after(ms(300));
        assert_eq!(evidence.limit(), None, "the first reset was contradicted");
    }

    #[test]
    fn a_success_well_below_the_resets_raises_the_limit_but_keeps_them() {
        let mut evidence = IdleEvidence::default();
        evidence.worked_after(ms(50));
        evidence.reset_after(ms(500));
        evidence.reset_after(ms(500));
        assert_eq!(evidence.limit(), Some(ms(250)));
        evidence.worked_after(ms(300));
        assert_eq!(evidence.limit(), Some(ms(300)), "300 ms is known to work");
        assert!(!evidence.suggests_idle_timeout(ms(350)));
        assert!(evidence.suggests_idle_timeout(ms(400)));
    }

    #[test]
    fn a_reset_below_an_old_success_wins_over_it() {
        let mut evidence = IdleEvidence::default();
        evidence.worked_after(ms(10_000));
        assert!(!evidence.suggests_idle_timeout(ms(5000)));
        evidence.reset_after(ms(5000));
        evidence.reset_after(ms(5000));
        assert_eq!(evidence.limit(), Some(ms(2500)));
    }

    #[test]
    fn probes_come_once_per_sixteen_retirements() {
        let mut evidence = IdleEvidence::default();
        evidence.reset_after(ms(500));
        evidence.reset_after(ms(500));
        let mut probes = 0;
        for _ in 0..(PROBE_AFTER * 3) {
            if evidence.probe_due() {
                evidence.probed();
                probes += 1;
            } else {
                evidence.retired_by_limit();
            }
        }
        assert_eq!(probes, 2);
        // A reset starts the count again.
        for _ in 0..PROBE_AFTER {
            evidence.retired_by_limit();
        }
        assert!(evidence.probe_due());
        evidence.reset_after(ms(500));
        assert!(!evidence.probe_due());
    }

    #[test]
    fn only_the_latest_resets_are_kept() {
        let mut evidence = IdleEvidence::default();
        evidence.reset_after(ms(200));
        for _ in 0..MAX_RESETS {
            evidence.reset_after(ms(1000));
        }
        assert_eq!(
            evidence.limit(),
            Some(ms(500)),
            "the 200 ms reset was dropped"
        );
    }
}
