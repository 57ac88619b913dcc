//! The join's pending entries: a ring in insertion order, found through a
//! compact hash index of ring positions.
//!
//! With a distinct request id in every event, each inference inserts one
//! entry and, once the store is full, evicts the oldest. A hash map holding
//! the entries themselves touches a random slot for each of the two, in a
//! table far larger than the caches. Here the entries live in a ring
//! ([`VecDeque`]) in insertion order, so insertion writes at its back and
//! eviction reads its front, both sequential; the index that finds an entry
//! by key holds 8 bytes a slot (32 bits of the key's hash and the entry's
//! ring position) and is the only table touched at random by an insertion
//! or an eviction. An entry that leaves out of order (joined, replaced)
//! becomes a dead slot in the ring, dropped when it reaches either end or
//! when more than half of the ring is dead (compaction).
//!
//! Positions are absolute (the front's position grows by one with every
//! slot popped from it) and kept modulo 2³² in the index: a position is
//! `base + i` for the ring's `i`-th slot, which stays true when the front
//! moves, so popping needs no index update. The ring holds fewer than 2³²
//! slots (see [`MAX_LIVE`]), so the position modulo 2³² names one slot.

use std::collections::VecDeque;
use std::mem::size_of;

use super::Key;

/// Most live entries a store holds: the ring (at most twice as many slots,
/// plus 33) then stays below 2³² slots and the index below 2³¹.
pub(super) const MAX_LIVE: usize = 1 << 30;

/// Bytes of one index slot.
pub(super) const INDEX_SLOT_BYTES: usize = size_of::<u64>();

/// Fewest slots of an index that holds anything.
const MIN_INDEX_SLOTS: usize = 8;

/// One slot of the ring: an entry, dead once it has left.
#[derive(Debug, Clone)]
struct Slot<V> {
    key: Key,
    /// When the entry was remembered.
    at: f64,
    /// `None` once the entry has left (taken or replaced).
    value: Option<V>,
}

/// Bytes of one ring slot holding a `V`.
pub(super) const fn slot_bytes<V>() -> usize {
    size_of::<Slot<V>>()
}

/// An empty index slot. Occupied slots are never 0: their tag is odd.
const EMPTY: u64 = 0;

/// The 32 bits of `key` an index slot keeps (the top ones, made odd).
/// The table's home slot for a key is the top bits of its tag.
fn tag(key: Key) -> u32 {
    ((key >> 96) as u32) | 1
}

/// Open addressing with linear probing over slots of `tag << 32 | position`,
/// at most half full. Removal shifts the slots after it back (no
/// tombstones), which the tag makes possible without reading the ring: the
/// tag holds the bits that choose the home slot.
#[derive(Debug, Clone, Default)]
struct Index {
    /// A power of two in length, or empty.
    slots: Vec<u64>,
    /// Occupied slots.
    len: usize,
    /// `32 - log2(slots.len())`: a tag shifted right by it is its home slot.
    shift: u32,
}

impl Index {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, tag: u32) -> usize {
        (tag >> self.shift) as usize
    }

    fn slot_tag(s: u64) -> u32 {
        (s >> 32) as u32
    }

    /// Asks the processor to load the cache line of `key`'s home slot, so
    /// that a lookup of `key` a little later need not wait for memory.
    fn prefetch(&self, key: Key) {
        if let Some(slot) = self.slots.get(self.home(tag(key))) {
            prefetch(slot);
        }
    }

    /// The ring position kept in slot `i`.
    fn pos(&self, i: usize) -> u32 {
        self.slots[i] as u32
    }

    /// Makes room for one more slot while keeping the table at most half
    /// full.
    fn reserve_one(&mut self) {
        if (self.len + 1) * 2 > self.slots.len() {
            let new_len = (self.slots.len() * 2).max(MIN_INDEX_SLOTS);
            let old = std::mem::replace(&mut self.slots, vec![EMPTY; new_len]);
            self.shift = 32 - new_len.trailing_zeros();
            for s in old.into_iter().filter(|&s| s != EMPTY) {
                let mut i = self.home(Self::slot_tag(s));
                while self.slots[i] != EMPTY {
                    i = (i + 1) & self.mask();
                }
                self.slots[i] = s;
            }
        }
    }

    /// The slot holding `key`, as confirmed by `is_key` for a candidate's
    /// position (called only when the tags agree), or else the empty slot
    /// where it would go (0 for an empty table).
    fn find(&self, key: Key, is_key: impl Fn(u32) -> bool) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let t = tag(key);
        let mut i = self.home(t);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return Err(i);
            }
            if Self::slot_tag(s) == t && is_key(s as u32) {
                return Ok(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// The slot of `key` at position `pos`, found without reading the ring.
    fn find_pos(&self, key: Key, pos: u32) -> Option<usize> {
        let want = (u64::from(tag(key)) << 32) | u64::from(pos);
        self.find(key, |p| p == pos)
            .ok()
            .filter(|&i| self.slots[i] == want)
    }

    /// Fills the empty slot `i` (from [`Self::find`], after
    /// [`Self::reserve_one`]).
    fn fill(&mut self, i: usize, key: Key, pos: u32) {
        debug_assert_eq!(self.slots[i], EMPTY);
        self.slots[i] = (u64::from(tag(key)) << 32) | u64::from(pos);
        self.len += 1;
    }

    /// Points the occupied slot `i` at another position.
    fn set_pos(&mut self, i: usize, pos: u32) {
        self.slots[i] = (self.slots[i] & !u64::from(u32::MAX)) | u64::from(pos);
    }

    /// Empties slot `i`, moving back the slots of its run that may not sit
    /// after the gap.
    fn remove(&mut self, mut i: usize) {
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            // `s` stays where it is if its home is cyclically in (i, j].
            let home = self.home(Self::slot_tag(s));
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = EMPTY;
        self.len -= 1;
    }
}

/// Starts loading the cache line that holds `*p` into the first-level
/// cache, without waiting for it (a hint: no effect on what the program
/// computes; nothing on processors other than x86-64).
#[inline(always)]
pub(in crate::aggregate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and does not access memory in the
    // program's sense; `p` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Entries of type `V` by key, in insertion order. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub(super) struct Store<V> {
    ring: VecDeque<Slot<V>>,
    /// Absolute position of the ring's front.
    base: u64,
    index: Index,
}

impl<V> Store<V> {
    /// An empty store with room for `initial` ring slots.
    pub(super) fn with_capacity(initial: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(initial),
            base: 0,
            index: Index::default(),
        }
    }

    /// An empty store whose first position is `base` (for testing the
    /// positions' wrap-around).
    #[cfg(test)]
    pub(super) fn starting_at(base: u64) -> Self {
        Self {
            base,
            ..Self::with_capacity(0)
        }
    }

    /// Ring slots, live and dead.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Live entries.
    pub(super) fn live(&self) -> usize {
        self.index.len
    }

    /// Heap bytes held: the ring's and the index's slots at their allocated
    /// capacity (a `V`'s own heap is not counted).
    pub(super) fn bytes(&self) -> usize {
        self.ring.capacity() * size_of::<Slot<V>>() + self.index.slots.capacity() * INDEX_SLOT_BYTES
    }

    /// The ring index of position `pos`.
    fn at_pos(&self, pos: u32) -> usize {
        pos.wrapping_sub(self.base as u32) as usize
    }

    /// The position of the ring's `i`-th slot.
    fn pos_of(&self, i: usize) -> u32 {
        (self.base as u32).wrapping_add(i as u32)
    }

    /// Pops dead slots off both ends.
    fn trim(&mut self) {
        while self.ring.back().is_some_and(|s| s.value.is_none()) {
            self.ring.pop_back();
        }
        while self.ring.front().is_some_and(|s| s.value.is_none()) {
            self.ring.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// Remembers `value` under `key` as the newest entry. An entry already
    /// under `key` leaves (its value is returned): the new one is a new
    /// insertion, at the back.
    pub(super) fn push(&mut self, key: Key, at: f64, value: V) -> Option<V> {
        self.index.reserve_one();
        let (ring, base) = (&self.ring, self.base as u32);
        let found = self
            .index
            .find(key, |pos| ring[pos.wrapping_sub(base) as usize].key == key);
        let slot = Slot {
            key,
            at,
            value: Some(value),
        };
        match found {
            Ok(i) => {
                let r = self.at_pos(self.index.pos(i));
                let old = self.ring[r].value.take();
                self.trim();
                self.ring.push_back(slot);
                self.index.set_pos(i, self.pos_of(self.ring.len() - 1));
                old
            }
            Err(i) => {
                self.ring.push_back(slot);
                self.index.fill(i, key, self.pos_of(self.ring.len() - 1));
                None
            }
        }
    }

    /// Takes the entry under `key` out: its time and value.
    pub(super) fn take(&mut self, key: Key) -> Option<(f64, V)> {
        let (ring, base) = (&self.ring, self.base as u32);
        let i = self
            .index
            .find(key, |pos| ring[pos.wrapping_sub(base) as usize].key == key)
            .ok()?;
        let r = self.at_pos(self.index.pos(i));
        self.index.remove(i);
        let slot = &mut self.ring[r];
        let taken = slot.value.take().map(|v| (slot.at, v));
        self.trim();
        taken
    }

    /// Starts loading the index slot where `key` would be looked up (see
    /// [`prefetch`]): called for the keys of the next few insertions, whose
    /// random slots in an index larger than the caches would each cost a
    /// wait for memory, it lets those waits overlap.
    pub(super) fn prefetch(&self, key: Key) {
        self.index.prefetch(key);
    }

    /// Starts loading the index slot of the entry `ahead` slots behind the
    /// front of the ring, which a full store evicts `ahead` insertions
    /// later (dead slots make it sooner; either way only a hint).
    pub(super) fn prefetch_oldest(&self, ahead: usize) {
        if let Some(s) = self.ring.get(ahead) {
            self.index.prefetch(s.key);
        }
    }

    /// The time of the oldest entry.
    pub(super) fn oldest_at(&self) -> Option<f64> {
        // Both ends are live after every change (see `trim`).
        self.ring.front().map(|s| s.at)
    }

    /// Takes the oldest entry out: its key, time and value.
    pub(super) fn pop_oldest(&mut self) -> Option<(Key, f64, V)> {
        loop {
            let slot = self.ring.pop_front()?;
            let pos = self.base as u32;
            self.base = self.base.wrapping_add(1);
            if let Some(value) = slot.value {
                if let Some(i) = self.index.find_pos(slot.key, pos) {
                    self.index.remove(i);
                }
                self.trim();
                return Some((slot.key, slot.at, value));
            }
        }
    }

    /// The live entries, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Key, f64, &V)> + '_ {
        self.ring
            .iter()
            .filter_map(|s| s.value.as_ref().map(|v| (s.key, s.at, v)))
    }

    /// Drops the dead slots once they are more than half of the ring (and
    /// more than 32), which keeps it within `2 × live + 32` slots at
    /// amortised O(1) an operation. The live ones keep their order; their
    /// index slots are pointed at their new positions.
    pub(super) fn maybe_compact(&mut self) {
        if self.ring.len() <= 2 * self.index.len + 32 {
            return;
        }
        let mut w = 0;
        for r in 0..self.ring.len() {
            if self.ring[r].value.is_none() {
                continue;
            }
            if w != r {
                let key = self.ring[r].key;
                if let Some(i) = self.index.find_pos(key, self.pos_of(r)) {
                    self.index.set_pos(i, self.pos_of(w));
                }
                self.ring.swap(w, r);
            }
            w += 1;
        }
        self.ring.truncate(w);
        if self.ring.capacity() > 4 * self.ring.len().max(1024) {
            self.ring.shrink_to(2 * self.ring.len().max(1024));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key whose index tag is `t` (made odd) and whose low bits are `n`.
    fn key(t: u32, n: u64) -> Key {
        (Key::from(t) << 96) | Key::from(n)
    }

    /// The store's live (key, value) pairs, oldest first.
    fn live(s: &Store<u32>) -> Vec<(Key, u32)> {
        s.iter().map(|(k, _, v)| (k, *v)).collect()
    }

    #[test]
    fn keys_with_one_home_slot_are_found_removed_and_shifted_back() {
        // Eight keys with the same tag: one run of probes, each found by its
        // full key, and removal in any order keeps the others found.
        let mut s = Store::with_capacity(0);
        let keys: Vec<Key> = (0..8).map(|n| key(0xdead_beef, n)).collect();
        for (v, &k) in keys.iter().enumerate() {
            assert!(s.push(k, 0.0, v as u32).is_none());
        }
        for &n in &[3usize, 0, 7, 4] {
            assert_eq!(s.take(keys[n]).map(|(_, v)| v), Some(n as u32));
            assert_eq!(s.take(keys[n]), None);
        }
        for &n in &[1usize, 2, 5, 6] {
            assert_eq!(s.take(keys[n]).map(|(_, v)| v), Some(n as u32));
        }
        assert_eq!(s.live(), 0);
        assert_eq!(s.len(), 0, "dead slots at the ends are dropped");
    }

    #[test]
    fn runs_that_wrap_around_the_table_end_keep_their_keys() {
        // Homes in the last slot of the table: the run wraps to slot 0.
        let mut s = Store::with_capacity(0);
        let last = key(u32::MAX, 1);
        let early = key(0, 2);
        for (v, k) in [key(u32::MAX, 0), last, key(u32::MAX, 3), early]
            .into_iter()
            .enumerate()
        {
            s.push(k, 0.0, v as u32);
        }
        assert_eq!(s.take(key(u32::MAX, 0)).map(|(_, v)| v), Some(0));
        assert_eq!(s.take(early).map(|(_, v)| v), Some(3));
        assert_eq!(s.take(last).map(|(_, v)| v), Some(1));
        assert_eq!(live(&s), [(key(u32::MAX, 3), 2)]);
    }

    #[test]
    fn positions_wrap_around_2_to_the_32() {
        let mut s = Store::starting_at(u64::from(u32::MAX) - 3);
        for n in 0..10u32 {
            s.push(key(n.wrapping_mul(0x9e37_79b9), n.into()), f64::from(n), n);
        }
        // Dead slots in the middle, then compaction moves everything across
        // the wrap.
        for n in (1..9u32).step_by(2) {
            assert!(s.take(key(n.wrapping_mul(0x9e37_79b9), n.into())).is_some());
        }
        // Each new entry kills the one before it: dead slots pile up in
        // the middle until compaction moves the live ones across the wrap.
        let k = |n: u32| key(n.wrapping_mul(0x9e37_79b9), n.into());
        for n in 10..80u32 {
            s.push(k(n), f64::from(n), n);
            if n > 10 {
                assert!(s.take(k(n - 1)).is_some());
            }
            s.maybe_compact();
            assert!(s.len() <= 2 * s.live() + 33, "{}", s.len());
        }
        assert!(s.take(k(79)).is_some());
        assert_eq!(
            live(&s).iter().map(|&(_, v)| v).collect::<Vec<_>>(),
            [0, 2, 4, 6, 8, 9]
        );
        let oldest: Vec<u32> = std::iter::from_fn(|| s.pop_oldest().map(|(_, _, v)| v)).collect();
        assert_eq!(oldest, [0, 2, 4, 6, 8, 9]);
        assert_eq!((s.live(), s.len()), (0, 0));
    }
}
