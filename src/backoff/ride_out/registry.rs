//! The hosts that refuse connections, the requests waiting for them, and their probes.
//!
//! One registry per `BackoffLayer`, shared by every service it makes. Everything is under one
//! lock, taken only by requests to a host that may be down (the bit of its key is set in
//! `down`) and by attempts that failed with the host down: the happy path reads one atomic.
//!
//! A host's line of waiting requests is kept in arrival order, each request with its waker and
//! the instant its wait ends. The request that would be the next probe (the oldest waiting
//! request that may be one: it came through `ResetRetry`, which can send it again, and it is not
//! the request's last attempt) keeps the probe's timer: when it fires, that request goes out as
//! the probe. Whoever changes the line or the probe wakes that request, so that the timer is
//! always kept by exactly one future, and no task is spawned.

use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::{HostKey, RideOut, RideOutStatus};
use crate::attempt::{self, StopReason};
use crate::backoff::policy::{Rng, Schedule};
use crate::trace::{self, event};

/// A down host that nobody asked for this long is forgotten: the next request to it goes out.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// The widest gap between two released requests.
const RELEASE_GAP: Duration = Duration::from_millis(2);

/// The hosts of one layer that refuse connections, and the requests waiting for them.
pub(crate) struct Registry {
    config: RideOut,
    /// The seed of the host keys.
    seed: u64,
    /// The bits of the keys of the hosts that are down.
    down: AtomicU64,
    hosts: Mutex<Hosts>,
}

struct Hosts {
    list: Vec<Host>,
    next_id: u64,
    rng: Rng,
}

struct Host {
    key: HostKey,
    /// `scheme://authority`, for the events; learnt from the first request held.
    name: Option<String>,
    down: Option<Down>,
    /// In arrival order (their ids increase).
    waiters: VecDeque<Waiter>,
    /// The last arrival or refusal.
    touched: Instant,
}

/// A host that refuses connections.
struct Down {
    since: Instant,
    /// The last attempt it refused.
    last_refusal: Instant,
    /// Probes that ended without an answer: the step of the probe schedule.
    failed_probes: u32,
    next_probe: Instant,
    probe_out: bool,
    /// The jitter of this outage's probe schedule.
    seed: u64,
    /// The event that says requests are held for it was emitted.
    announced: bool,
}

struct Waiter {
    id: u64,
    /// When the request began to wait for the host, its earlier attempts' waits included.
    began: Instant,
    /// When its wait ends: the end of its window, or its deadline.
    ends: Instant,
    /// Whether `ends` is the request's deadline.
    at_deadline: bool,
    /// A first attempt: it goes out at the end of its wait.
    first: bool,
    /// It may be sent as the probe.
    may_probe: bool,
    /// Set when the host answered: the instant it goes. Until then it keeps its place, and a
    /// refusal in the meantime takes the release back.
    released: Option<Instant>,
    waker: Option<Waker>,
}

/// What the attempt arriving at a host knows of itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) first: bool,
    /// It came through `ResetRetry` (which can send it again after a refused probe), and is
    /// not the request's last attempt.
    pub(crate) may_probe: bool,
    /// How long the request waited for its host in its earlier attempts.
    pub(crate) waited: Duration,
    pub(crate) deadline: Option<Instant>,
}

/// What an attempt to a host may do.
#[derive(Debug)]
pub(crate) enum Admission {
    /// The host is not known to be down.
    Go,
    /// Go at once, as the host's probe.
    Probe,
    /// Wait, with this place in the line.
    Wait(u64),
    /// The host is down and the request may not wait (no window left, or the line is full).
    NoRoom,
}

/// How an attempt was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// As usual: its host not known to be down.
    Normal,
    /// As the probe of a down host.
    Probe,
    /// Released: the host seemed to answer again. Refused at once, it was a probe too.
    Released,
    /// To a down host, at the end of its wait (or with no room to wait): a refusal ends the
    /// request.
    LastLook,
}

impl Sent {
    /// A short name for the events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sent::Normal => "normal",
            Sent::Probe => "probe",
            Sent::Released => "released",
            Sent::LastLook => "window_end",
        }
    }
}

/// What became of a waiting request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WaitPoll {
    /// Still waiting: poll again when woken, or at this instant.
    Pending(Instant),
    /// Go now.
    Go(Sent),
    /// Do not send it.
    Abandon(StopReason),
}

/// How a sent attempt ended, as far as its host is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Something answered: the host is up.
    Answered,
    /// A connection refused (or unreachable).
    HostDown,
    /// Any other error.
    OtherError,
    /// The caller dropped the request before it ended.
    Dropped,
}

impl Registry {
    pub(crate) fn new(config: RideOut, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| RandomState::new().hash_one(0x7269_6465_u64));
        Self {
            config,
            seed,
            down: AtomicU64::new(0),
            hosts: Mutex::new(Hosts {
                list: Vec::new(),
                next_id: 0,
                rng: Rng::new(seed),
            }),
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> RideOut {
        self.config
    }

    /// The key of `request`'s host.
    #[inline]
    pub(crate) fn key<R: attempt::AttemptRequest + ?Sized>(&self, request: &R) -> HostKey {
        HostKey::of(request, self.seed)
    }

    /// Whether the host of `key` may be down: one relaxed load, the whole cost of the happy
    /// path.
    #[inline]
    pub(crate) fn may_be_down(&self, key: HostKey) -> bool {
        self.down.load(Ordering::Relaxed) & key.bit() != 0
    }

    fn lock(&self) -> MutexGuard<'_, Hosts> {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An attempt to the host of `key` (called when [`may_be_down`](Self::may_be_down)).
    pub(crate) fn admit(
        &self,
        key: HostKey,
        name: impl FnOnce() -> String,
        arrival: Arrival,
    ) -> Admission {
        let now = Instant::now();
        let mut hosts = self.lock();
        self.prune(&mut hosts, now);
        let Hosts { list, next_id, .. } = &mut *hosts;
        let Some(host) = list.iter_mut().find(|host| host.key == key) else {
            return Admission::Go;
        };
        let Some(down) = &mut host.down else {
            return Admission::Go;
        };
        host.touched = now;
        let name = host.name.get_or_insert_with(name);
        let Some(remaining) = self
            .config
            .window
            .checked_sub(arrival.waited)
            .filter(|left| !left.is_zero())
        else {
            return Admission::NoRoom;
        };
        if arrival.may_probe && !down.probe_out && now >= down.next_probe {
            down.probe_out = true;
            event!(
                debug,
                target: trace::BACKOFF,
                host = %name,
                "sending a request as the probe of a host that refuses connections"
            );
            return Admission::Probe;
        }
        if host.waiters.len() >= self.config.max_waiters {
            return Admission::NoRoom;
        }
        let window_end = now.checked_add(remaining);
        let (ends, at_deadline) = match (window_end, arrival.deadline) {
            (Some(end), Some(deadline)) if deadline < end => (deadline, true),
            (Some(end), _) => (end, false),
            (None, Some(deadline)) => (deadline, true),
            (None, None) => return Admission::NoRoom,
        };
        if ends <= now {
            return Admission::NoRoom;
        }
        if !down.announced {
            down.announced = true;
            event!(
                info,
                target: trace::BACKOFF,
                host = %name,
                down_for = ?now.saturating_duration_since(down.since),
                "holding requests: the host refuses connections"
            );
        }
        let id = *next_id;
        *next_id += 1;
        host.waiters.push_back(Waiter {
            id,
            began: now.checked_sub(arrival.waited).unwrap_or(now),
            ends,
            at_deadline,
            first: arrival.first,
            may_probe: arrival.may_probe,
            released: None,
            waker: None,
        });
        Admission::Wait(id)
    }

    /// Polls the waiting request `id` at `now`; registers `waker` while it waits.
    pub(crate) fn poll_wait(&self, key: HostKey, id: u64, now: Instant, waker: &Waker) -> WaitPoll {
        let mut hosts = self.lock();
        let Some(host) = hosts.list.iter_mut().find(|host| host.key == key) else {
            return WaitPoll::Go(Sent::Normal);
        };
        let Some(index) = host.position(id) else {
            return WaitPoll::Go(Sent::Normal);
        };
        let waiter = &mut host.waiters[index];
        match waiter.released {
            Some(at) if at <= now => {
                host.waiters.remove(index);
                return WaitPoll::Go(Sent::Released);
            }
            Some(at) => {
                register(&mut waiter.waker, waker);
                return WaitPoll::Pending(at);
            }
            None => {}
        }
        let waiter = &host.waiters[index];
        let Some(down) = &mut host.down else {
            host.waiters.remove(index);
            return WaitPoll::Go(Sent::Released);
        };
        let is_candidate = host
            .waiters
            .iter()
            .position(Waiter::is_candidate)
            .is_some_and(|candidate| candidate == index);
        if now >= waiter.ends {
            let verdict = if waiter.first {
                WaitPoll::Go(Sent::LastLook)
            } else if waiter.at_deadline {
                WaitPoll::Abandon(StopReason::Deadline)
            } else if down.last_refusal > waiter.began {
                WaitPoll::Abandon(StopReason::HostDown)
            } else {
                // Nothing was refused since it began to wait (no probe could go): it looks
                // itself.
                WaitPoll::Go(Sent::LastLook)
            };
            host.waiters.remove(index);
            if is_candidate {
                host.wake_candidate();
            }
            return verdict;
        }
        if is_candidate && !down.probe_out && now >= down.next_probe {
            down.probe_out = true;
            host.waiters.remove(index);
            return WaitPoll::Go(Sent::Probe);
        }
        let until = if is_candidate && !down.probe_out {
            waiter.ends.min(down.next_probe)
        } else {
            waiter.ends
        };
        register(&mut host.waiters[index].waker, waker);
        WaitPoll::Pending(until)
    }

    /// The waiting request `id` is gone (its future was dropped).
    pub(crate) fn leave(&self, key: HostKey, id: u64) {
        let mut hosts = self.lock();
        let Some(host) = hosts.list.iter_mut().find(|host| host.key == key) else {
            return;
        };
        let Some(index) = host.position(id) else {
            return;
        };
        let was_candidate = host.waiters[index].is_candidate()
            && host.waiters.iter().position(Waiter::is_candidate) == Some(index);
        host.waiters.remove(index);
        if was_candidate {
            host.wake_candidate();
        }
    }

    /// An attempt sent to the host of `key` ended. Returns whether the host is tracked as down
    /// now (when it is, requests to it wait).
    pub(crate) fn ended(&self, key: HostKey, sent: Sent, outcome: Outcome) -> bool {
        let now = Instant::now();
        let mut hosts = self.lock();
        match outcome {
            Outcome::HostDown => {
                let Some(index) = self.down_host(&mut hosts, key, now) else {
                    return false;
                };
                let host = &mut hosts.list[index];
                host.touched = now;
                let Some(down) = &mut host.down else {
                    return false;
                };
                down.last_refusal = now;
                if sent == Sent::Probe {
                    self.probe_failed(down, now);
                    host.wake_candidate();
                }
                true
            }
            Outcome::Answered => {
                // An attempt sent before the host was known to be down may have gone out on a
                // connection made before (a server that stops accepting may still serve the
                // connections it has): only one sent since says the host accepts again.
                if sent == Sent::Normal {
                    return false;
                }
                let Some(index) = hosts.list.iter().position(|host| host.key == key) else {
                    return false;
                };
                let Hosts { list, rng, .. } = &mut *hosts;
                let host = &mut list[index];
                if let Some(down) = host.down.take() {
                    self.release(host, &down, rng, now);
                    self.update_down_bits(list);
                }
                false
            }
            Outcome::OtherError | Outcome::Dropped => {
                if sent != Sent::Probe {
                    return false;
                }
                let Some(host) = hosts.list.iter_mut().find(|host| host.key == key) else {
                    return false;
                };
                let Some(down) = &mut host.down else {
                    return false;
                };
                if outcome == Outcome::OtherError {
                    self.probe_failed(down, now);
                } else {
                    down.probe_out = false;
                }
                host.wake_candidate();
                true
            }
        }
    }

    /// The index of the host of `key`, marked down (tracked from now on if it was not);
    /// `None` when no room is left for it.
    fn down_host(&self, hosts: &mut Hosts, key: HostKey, now: Instant) -> Option<usize> {
        let index = match hosts.list.iter().position(|host| host.key == key) {
            Some(index) => index,
            None => {
                self.prune(hosts, now);
                if hosts.list.len() >= RideOut::MAX_HOSTS {
                    return None;
                }
                hosts.list.push(Host {
                    key,
                    name: None,
                    down: None,
                    waiters: VecDeque::new(),
                    touched: now,
                });
                hosts.list.len() - 1
            }
        };
        let Hosts { list, rng, .. } = hosts;
        let host = &mut list[index];
        if host.down.is_none() {
            let seed = rng.next_u64();
            let first = self.probe_delay(seed, 0);
            host.down = Some(Down {
                since: now,
                last_refusal: now,
                failed_probes: 0,
                next_probe: now.checked_add(first).unwrap_or(now),
                probe_out: false,
                seed,
                announced: false,
            });
            attempt::host_went_down();
            // It refuses again: the requests released that have not gone yet wait again.
            for waiter in &mut host.waiters {
                if waiter.released.is_some_and(|at| at > now) {
                    waiter.released = None;
                    if let Some(waker) = &waiter.waker {
                        waker.wake_by_ref();
                    }
                }
            }
            self.update_down_bits(list);
        }
        Some(index)
    }

    /// The probe of `down` ended without an answer: the next one follows the schedule.
    fn probe_failed(&self, down: &mut Down, now: Instant) {
        down.probe_out = false;
        down.failed_probes = down.failed_probes.saturating_add(1);
        let delay = self.probe_delay(down.seed, down.failed_probes);
        down.next_probe = now.checked_add(delay).unwrap_or(now);
    }

    fn probe_delay(&self, seed: u64, step: u32) -> Duration {
        // The schedule's delays never end; the cap keeps `nth` short on a long outage.
        let step = usize::try_from(step.min(64)).unwrap_or(64);
        self.config
            .probes
            .delays(seed)
            .nth(step)
            .unwrap_or(self.config.probes.max())
    }

    /// The host answers again: its waiting requests go, oldest first, spread.
    fn release(&self, host: &mut Host, down: &Down, rng: &mut Rng, now: Instant) {
        attempt::host_came_back();
        let waiting = host
            .waiters
            .iter()
            .filter(|waiter| waiter.released.is_none())
            .count();
        let spread = self.config.release_spread;
        let gap = RELEASE_GAP.min(spread / u32::try_from(waiting.max(1)).unwrap_or(u32::MAX));
        event!(
            info,
            target: trace::BACKOFF,
            host = %host.name.as_deref().unwrap_or("-"),
            down_for = ?now.saturating_duration_since(down.since),
            waiters = waiting,
            spread = ?gap * u32::try_from(waiting).unwrap_or(u32::MAX),
            "the host answers again: releasing the requests held"
        );
        let mut slot = Duration::ZERO;
        for waiter in host.waiters.iter_mut().filter(|w| w.released.is_none()) {
            let jitter = gap.mul_f64(rng.next_f64());
            let at = now.checked_add(slot + jitter).unwrap_or(now);
            waiter.released = Some(at.min(waiter.ends));
            slot += gap;
            if let Some(waker) = waiter.waker.take() {
                waker.wake();
            }
        }
    }

    /// Forgets the hosts that need no tracking: up with nobody waiting, or down with nobody
    /// waiting or probing and untouched for [`FORGET_AFTER`].
    fn prune(&self, hosts: &mut Hosts, now: Instant) {
        let before = hosts.list.len();
        let mut forgotten_down = 0;
        hosts.list.retain(|host| {
            if !host.waiters.is_empty() {
                return true;
            }
            match &host.down {
                None => false,
                Some(down) if down.probe_out => true,
                Some(_) => {
                    let keep = now.saturating_duration_since(host.touched) < FORGET_AFTER;
                    if !keep {
                        forgotten_down += 1;
                    }
                    keep
                }
            }
        });
        for _ in 0..forgotten_down {
            attempt::host_came_back();
        }
        if hosts.list.len() != before {
            self.update_down_bits(&hosts.list);
        }
    }

    fn update_down_bits(&self, list: &[Host]) {
        let bits = list
            .iter()
            .filter(|host| host.down.is_some())
            .fold(0, |bits, host| bits | host.key.bit());
        self.down.store(bits, Ordering::Relaxed);
    }

    /// How many hosts are down and how many requests wait.
    pub(crate) fn status(&self) -> RideOutStatus {
        let hosts = self.lock();
        RideOutStatus {
            hosts_down: hosts.list.iter().filter(|host| host.down.is_some()).count(),
            waiting: hosts.list.iter().map(|host| host.waiters.len()).sum(),
        }
    }
}

/// Keeps `waker` in `slot` (unless the one there wakes the same task).
fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(known) if known.will_wake(waker) => {}
        slot => *slot = Some(waker.clone()),
    }
}

impl Host {
    fn position(&self, id: u64) -> Option<usize> {
        self.waiters
            .binary_search_by_key(&id, |waiter| waiter.id)
            .ok()
    }

    /// Wakes the request that keeps the probe's timer, so that it sets it again.
    fn wake_candidate(&mut self) {
        if let Some(candidate) = self.waiters.iter_mut().find(|w| w.is_candidate()) {
            if let Some(waker) = &candidate.waker {
                waker.wake_by_ref();
            }
        }
    }
}

impl Waiter {
    /// Whether it may be the probe: still waiting, and allowed to.
    fn is_candidate(&self) -> bool {
        self.may_probe && self.released.is_none()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let hosts = self.hosts.get_mut().unwrap_or_else(PoisonError::into_inner);
        for _ in hosts.list.iter().filter(|host| host.down.is_some()) {
            attempt::host_came_back();
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct("Registry")
            .field("config", &self.config)
            .field("hosts_down", &status.hosts_down)
            .field("waiting", &status.waiting)
            .finish()
    }
}
