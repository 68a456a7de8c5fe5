//! [`Waiting`]: the copies of a [`ReplayBody`](super::ReplayBody) waiting for the original body
//! to yield, and the one waker the original is polled with, which wakes them all.
//!
//! Whichever copy has caught up polls the original body itself, so a copy never waits for
//! another copy to be polled or dropped. But a body keeps only the waker of its last poll: if it
//! kept the waker of the copy that polled it last, a copy that polled it before would never
//! hear that it moved on. So the original is polled with a waker of its own, which wakes every
//! copy waiting for it; each copy is listed once, whatever the number of polls (its waker
//! replaced when it changes), and leaves the list when it is dropped.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

/// Made on the first wait; shared by every copy.
#[derive(Debug)]
pub(super) struct Waiting {
    copies: Arc<Copies>,
    /// Wakes `copies`: the waker the original body is polled with.
    waker: Waker,
}

#[derive(Debug, Default)]
struct Copies {
    list: Mutex<List>,
}

#[derive(Debug, Default)]
struct List {
    /// Each waiting copy (by its number) and its waker.
    wakers: Vec<(u64, Waker)>,
    /// The number the next copy to wait is given.
    next: u64,
}

impl Waiting {
    pub(super) fn new() -> Self {
        let copies = Arc::new(Copies::default());
        let waker = Waker::from(Arc::clone(&copies));
        Self { copies, waker }
    }

    /// The waker to poll the original body with: it wakes every copy in the list.
    pub(super) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Lists the copy numbered `id` (numbering it on its first wait) with `waker`, replacing
    /// the waker it was listed with.
    pub(super) fn add(&self, id: &mut Option<u64>, waker: &Waker) {
        let mut list = self.copies.lock();
        let id = *id.get_or_insert_with(|| {
            list.next += 1;
            list.next
        });
        match list.wakers.iter_mut().find(|(listed, _)| *listed == id) {
            Some((_, listed)) => {
                if !listed.will_wake(waker) {
                    *listed = waker.clone();
                }
            }
            None => list.wakers.push((id, waker.clone())),
        }
    }

    /// Takes the copy numbered `id` off the list (it is being dropped).
    pub(super) fn remove(&self, id: u64) {
        self.copies
            .lock()
            .wakers
            .retain(|(listed, _)| *listed != id);
    }
}

impl Copies {
    /// The list; a panic elsewhere while it was held leaves it usable (nothing here panics).
    fn lock(&self) -> MutexGuard<'_, List> {
        self.list
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Wake for Copies {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Wake outside the lock (a waker runs foreign code), then give the emptied list its
        // allocation back for the next wait.
        let mut wakers = std::mem::take(&mut self.lock().wakers);
        for (_, waker) in wakers.drain(..) {
            waker.wake();
        }
        let mut list = self.lock();
        if list.wakers.is_empty() {
            list.wakers = wakers;
        }
    }
}
