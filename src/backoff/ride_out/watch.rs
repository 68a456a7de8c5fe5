//! What a response future of `Backoff` keeps of the ride-out: its place in a host's line while
//! it waits, and, once its attempt is sent, what to tell the registry when the attempt ends.

use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;
use tower::BoxError;

use super::registry::Outcome;
use super::{HostKey, Registry, Sent, WaitPoll};
use crate::attempt::{AttemptRecord, Notes};
use crate::classify::is_host_down;

/// A waiting request's place in its host's line; leaves the line when dropped.
pub(crate) struct Ticket {
    registry: Arc<Registry>,
    key: HostKey,
    id: u64,
    since: Instant,
    /// The registry let it go (or abandoned it): nothing to leave.
    done: bool,
}

impl Ticket {
    pub(crate) fn new(registry: Arc<Registry>, key: HostKey, id: u64, since: Instant) -> Self {
        Self {
            registry,
            key,
            id,
            since,
            done: false,
        }
    }

    /// Where the request stands at `now`.
    pub(crate) fn poll(&mut self, now: Instant, waker: &Waker) -> WaitPoll {
        let poll = self.registry.poll_wait(self.key, self.id, now, waker);
        if !matches!(poll, WaitPoll::Pending(_)) {
            self.done = true;
        }
        poll
    }

    /// How long it has waited by `now`.
    pub(crate) fn waited(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.registry.leave(self.key, self.id);
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("id", &self.id)
            .field("since", &self.since)
            .finish()
    }
}

/// What an attempt tells the registry of its host when it ends: a refused connection means the
/// host is down, and an answer to an attempt sent while it was down that it is up again. On the
/// happy path it holds the registry and the key, and its end costs a comparison.
pub(crate) struct Watch {
    registry: Option<Arc<Registry>>,
    key: HostKey,
    sent: Sent,
    /// The request's notes, for an attempt sent to a down host.
    notes: Option<Arc<Notes>>,
    /// The attempt is the request's last: no copy is left to send another, so its refusal
    /// counts.
    last: bool,
}

impl Watch {
    /// No ride-out.
    pub(crate) fn none() -> Self {
        Self {
            registry: None,
            key: HostKey::UNKNOWN,
            sent: Sent::Normal,
            notes: None,
            last: false,
        }
    }

    /// An attempt to the host of `key`, sent as usual unless told otherwise.
    pub(crate) fn new(registry: Arc<Registry>, key: HostKey) -> Self {
        Self {
            registry: Some(registry),
            key,
            sent: Sent::Normal,
            notes: None,
            last: false,
        }
    }

    /// The registry and the key, for a request that waits.
    pub(crate) fn registry(&self) -> Option<(&Arc<Registry>, HostKey)> {
        self.registry.as_ref().map(|registry| (registry, self.key))
    }

    /// With the notes of the request (a retry's) that `record` is of: a refusal by a
    /// ridden-out host is reported there.
    pub(crate) fn with_record(mut self, record: &AttemptRecord) -> Self {
        self.notes = record.notes().cloned();
        self.last = record.is_last();
        self
    }

    /// The attempt of `record` will be sent this way.
    pub(crate) fn sending(&mut self, sent: Sent, record: &AttemptRecord) {
        self.sent = sent;
        self.notes = record.notes().cloned();
        self.last = record.is_last();
    }

    /// The attempt ended with `result`.
    pub(crate) fn ended<T>(&mut self, result: &Result<T, BoxError>) {
        // Told once: dropped after this, it has nothing more to say.
        let sent = std::mem::replace(&mut self.sent, Sent::Normal);
        let Some(registry) = &self.registry else {
            return;
        };
        let outcome = match result {
            // Sent before its host was known down: its answer says nothing of new connections.
            Ok(_) if sent == Sent::Normal => return,
            Ok(_) => Outcome::Answered,
            Err(error) if is_host_down(&**error) => Outcome::HostDown,
            Err(_) if sent == Sent::Normal => return,
            Err(_) => Outcome::OtherError,
        };
        let tracked = registry.ended(self.key, sent, outcome);
        if let (Outcome::HostDown, Some(notes)) = (outcome, &self.notes) {
            match sent {
                // The end of the window: the request stops with this refusal.
                Sent::LastLook => notes.ride_out_over(),
                // The host is ridden out: the next attempt waits for it, and this one does not
                // count (were the host not tracked, nothing would bound the retries; were it the
                // last attempt, there would be no copy to send another).
                Sent::Probe | Sent::Released | Sent::Normal if tracked && !self.last => {
                    notes.not_counted();
                }
                Sent::Probe | Sent::Released | Sent::Normal => {}
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let (Sent::Probe, Some(registry)) = (self.sent, &self.registry) {
            // The probe's caller gave up (before or after it was sent): another waiting request
            // takes its place.
            registry.ended(self.key, Sent::Probe, Outcome::Dropped);
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("sent", &self.sent).finish()
    }
}
