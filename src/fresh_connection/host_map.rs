//! The hosts a strategy keeps a record of: found by a hash of the request's scheme and
//! authority, at most a fixed number, the least recently used forgotten first.
//!
//! A request finds its host's record in a few dozen instructions whatever the number of hosts:
//! the scheme and authority are hashed once ([`host_hash`], ASCII case folded), the hash
//! finds the record in a table, and one comparison (byte for byte, without regard to case only
//! when that fails) checks that it is the request's host. The record is then the most recently
//! used; when a new host would make one too many, the least recently used is forgotten (a
//! doubly linked list through the records: no scan). A request keeps its host's [`HostId`],
//! not a copy of the host, to find the record again when it ends: the id says whether the
//! record was forgotten (and its place given to another host) meanwhile.
//!
//! Two hosts whose 64-bit hashes collide (the seed is chosen at random per map: about one in
//! 10¹³ for a thousand hosts) cannot both have a record: the second is not kept, and its
//! requests are served as for a host the map has just forgotten.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use http::Uri;

use super::host::Host;
use crate::host_hash::host_hash;

/// No slot: the end of the list.
const NONE: u32 = u32::MAX;

/// The records of at most `capacity` hosts, by host.
pub(super) struct HostMap<T> {
    seed: u64,
    capacity: usize,
    /// The slot of each host, by the hash of the host.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    slots: Vec<Slot<T>>,
    /// Slots whose host was forgotten, to be given to the next new hosts.
    free: Vec<u32>,
    /// The most and the least recently used slots.
    newest: u32,
    oldest: u32,
}

struct Slot<T> {
    host: Host,
    hash: u64,
    /// Changes when the slot's host is forgotten: a [`HostId`] of an earlier host finds
    /// nothing.
    generation: u32,
    newer: u32,
    older: u32,
    record: T,
}

/// Where a host's record is, while it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HostId {
    slot: u32,
    generation: u32,
}

/// A host's record found (or made) for a request.
pub(super) struct Found<'a, T> {
    pub(super) id: HostId,
    pub(super) record: &'a mut T,
    /// The record of the host forgotten to make room for this one.
    // Read by the pooled strategy (hyper-util) only.
    #[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
    pub(super) forgotten: Option<T>,
}

impl<T: Default> HostMap<T> {
    /// A map that keeps the records of `capacity` hosts at most.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            seed: RandomState::new().hash_one(0x686f_7374_u64),
            capacity: capacity.clamp(1, NONE as usize - 1),
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NONE,
            oldest: NONE,
        }
    }

    /// The record of `uri`'s host, now the most recently used, made (with `T::default()`) if
    /// there was none; `None` for a host whose hash collides with another host's.
    pub(super) fn touch(&mut self, uri: &Uri) -> Option<Found<'_, T>> {
        let hash = host_hash(self.seed, uri);
        let mut forgotten = None;
        let slot = match self.index.get(&hash) {
            Some(&slot) if self.slots[slot as usize].host.is(uri) => {
                self.unlink(slot);
                slot
            }
            Some(_) => return None,
            None => {
                if self.index.len() >= self.capacity {
                    forgotten = self.forget_oldest();
                }
                let slot = self.vacant(Host::of(uri), hash);
                self.index.insert(hash, slot);
                slot
            }
        };
        self.link_newest(slot);
        let slot_ref = &mut self.slots[slot as usize];
        Some(Found {
            id: HostId {
                slot,
                generation: slot_ref.generation,
            },
            record: &mut slot_ref.record,
            forgotten,
        })
    }

    /// The record of the host of `id`, unless it was forgotten since.
    #[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
    pub(super) fn get(&self, id: HostId) -> Option<&T> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.generation == id.generation).then_some(&slot.record)
    }

    /// The record of the host of `id`, mutably, unless it was forgotten since.
    pub(super) fn get_mut(&mut self, id: HostId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        (slot.generation == id.generation).then_some(&mut slot.record)
    }

    /// The least recently used host.
    #[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
    pub(super) fn oldest(&self) -> Option<HostId> {
        let slot = self.slots.get(self.oldest as usize)?;
        Some(HostId {
            slot: self.oldest,
            generation: slot.generation,
        })
    }

    /// Forgets the least recently used host; returns its record.
    pub(super) fn forget_oldest(&mut self) -> Option<T> {
        let oldest = self.oldest;
        let slot = self.slots.get_mut(oldest as usize)?;
        slot.generation = slot.generation.wrapping_add(1);
        let record = std::mem::take(&mut slot.record);
        let hash = slot.hash;
        slot.host = Host::default();
        self.index.remove(&hash);
        self.unlink(oldest);
        self.free.push(oldest);
        Some(record)
    }

    /// The number of hosts kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }

    /// A slot for a new host, not linked yet.
    fn vacant(&mut self, host: Host, hash: u64) -> u32 {
        if let Some(slot) = self.free.pop() {
            let held = &mut self.slots[slot as usize];
            held.host = host;
            held.hash = hash;
            return slot;
        }
        self.slots.push(Slot {
            host,
            hash,
            generation: 0,
            newer: NONE,
            older: NONE,
            record: T::default(),
        });
        (self.slots.len() - 1) as u32
    }

    fn unlink(&mut self, slot: u32) {
        let (newer, older) = {
            let held = &self.slots[slot as usize];
            (held.newer, held.older)
        };
        match self.slots.get_mut(newer as usize) {
            Some(newer) => newer.older = older,
            None => self.newest = older,
        }
        match self.slots.get_mut(older as usize) {
            Some(older) => older.newer = newer,
            None => self.oldest = newer,
        }
        let held = &mut self.slots[slot as usize];
        held.newer = NONE;
        held.older = NONE;
    }

    fn link_newest(&mut self, slot: u32) {
        let newest = self.newest;
        if let Some(previous) = self.slots.get_mut(newest as usize) {
            previous.newer = slot;
        }
        let held = &mut self.slots[slot as usize];
        held.older = newest;
        held.newer = NONE;
        self.newest = slot;
        if self.oldest == NONE {
            self.oldest = slot;
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for HostMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.index.values().map(|&slot| {
                let held = &self.slots[slot as usize];
                (&held.host, &held.record)
            }))
            .finish()
    }
}

/// The hasher of the index, whose keys are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else is mixed in, not lost.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(host: usize) -> Uri {
        format!("http://host-{host}.example/").parse().unwrap()
    }

    /// Touches `host` and adds one to its count; returns the count.
    fn count(map: &mut HostMap<u32>, host: usize) -> u32 {
        let found = map.touch(&uri(host)).expect("no collision");
        *found.record += 1;
        *found.record
    }

    #[test]
    fn a_host_finds_its_record_again() {
        let mut map = HostMap::new(4);
        assert_eq!(count(&mut map, 1), 1);
        assert_eq!(count(&mut map, 2), 1);
        assert_eq!(count(&mut map, 1), 2);
        let upper: Uri = "http://HOST-1.example/other".parse().unwrap();
        assert_eq!(
            *map.touch(&upper).unwrap().record,
            2,
            "case does not matter"
        );
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn the_least_recently_used_host_is_forgotten_first() {
        let mut map = HostMap::new(3);
        for host in [1, 2, 3] {
            count(&mut map, host);
        }
        count(&mut map, 1);
        // 2 is the least recently used.
        let found = map.touch(&uri(4)).unwrap();
        assert_eq!(found.forgotten, Some(1));
        assert_eq!(map.len(), 3);
        assert_eq!(count(&mut map, 1), 3, "1 was kept");
        assert_eq!(count(&mut map, 3), 2, "3 was kept");
        assert_eq!(count(&mut map, 2), 1, "2 was forgotten");
    }

    #[test]
    fn an_id_finds_nothing_once_its_host_is_forgotten() {
        let mut map = HostMap::new(2);
        let first = map.touch(&uri(1)).unwrap().id;
        count(&mut map, 2);
        assert!(map.get(first).is_some());
        count(&mut map, 3);
        assert!(map.get(first).is_none(), "1 was forgotten");
        assert!(map.get_mut(first).is_none());
        // Its slot now holds another host, under another id.
        let again = map.touch(&uri(1)).unwrap().id;
        assert_ne!(again, first);
        assert_eq!(map.get(again), Some(&0));
    }

    #[test]
    fn forgetting_the_oldest_by_hand_frees_its_slot() {
        let mut map = HostMap::new(8);
        for host in 0..5 {
            count(&mut map, host);
        }
        let oldest = map.oldest().unwrap();
        assert_eq!(map.forget_oldest(), Some(1));
        assert!(map.get(oldest).is_none());
        assert_eq!(map.len(), 4);
        for host in 0..100 {
            count(&mut map, host);
        }
        assert_eq!(map.len(), 8);
        // The last eight touched are kept: 92 to 99.
        assert_eq!(count(&mut map, 92), 2);
        assert_eq!(count(&mut map, 91), 1);
    }
}
