//! Joining ground truth to predictions.
//!
//! A `feedback` event carries the true value of an earlier request, often
//! minutes or hours after the `inference` it belongs to. [`FeedbackJoiner`]
//! remembers predictions that wait for their label, keyed by (model, request
//! id), and hands back the (prediction, actual) pair when the label comes;
//! the pair then counts towards the version's prediction quality
//! ([`quality`](super::quality)).
//!
//! # Joining
//!
//! * An inference with an id and a prediction is remembered with the time it
//!   arrived. A second inference with the same (model, id) while the first is
//!   still pending replaces it (counted in [`JoinStats::duplicate_inference`]).
//! * A feedback with an id finds the pending inference, which is removed:
//!   [`FeedbackOutcome::Joined`].
//! * A feedback that carries its own `prediction` needs no join:
//!   [`FeedbackOutcome::Carried`]. Its version is that of a pending inference
//!   with the same (model, id) if there is one (which is then consumed, so it
//!   does not expire later), else `""`.
//! * A feedback whose id was joined recently is a [`FeedbackOutcome::Duplicate`]
//!   and is not used again. "Recently" means among the last `capacity / 8`
//!   joins (at least one when `capacity > 0`): a small bounded memory of ids,
//!   not a guarantee — an older duplicate reads as unmatched.
//! * Anything else is [`FeedbackOutcome::Unmatched`]: an id never seen, seen
//!   longer ago than the recent-join memory reaches, evicted, or expired.
//!   Feedback that arrives **before** its inference (out of order) is not
//!   buffered: it is unmatched, and the inference that follows waits until it
//!   expires. Clients that cannot guarantee the order should send the
//!   prediction along with the label.
//!
//! # Bounds
//!
//! * **ttl**: a pending inference older than the ttl is dropped (counted in
//!   [`JoinStats::expired`]). [`FeedbackJoiner::expire`] is called on every
//!   evaluation tick and costs O(entries expired); a label that comes for an
//!   entry past its ttl before the tick drops it the same way, so whether a
//!   late label joins never depends on when the tick ran. An entry whose age
//!   is exactly the ttl still joins.
//! * **capacity**: at most `capacity` pending inferences in total, over all
//!   models (a capacity above [`MAX_CAPACITY`], 2³⁰, is taken as that). A new one when full evicts the oldest (first in, first out;
//!   counted in [`JoinStats::evicted`], or [`JoinStats::expired`] if it was
//!   past its ttl anyway). With `capacity` 0 nothing is remembered: every
//!   inference is counted evicted at once.
//!
//! # Time
//!
//! `now` is passed in, never read. Entries are stamped with the largest finite
//! `now` seen so far, so insertion order is age order even when the clock
//! steps back (entries made during the step live that much longer), and a
//! non-finite `now` is taken as that latest time (0 before any).
//!
//! # Keys
//!
//! The join does not keep request ids: an entry is found by a 128-bit hash
//! of (model, id) ([`key_of`]), so what it holds does not depend on how
//! long the ids are. Two different (model, id) pairs with the same hash
//! would be taken for one: a label would join the other request's
//! prediction, or an inference would replace the other's pending one. With
//! a 128-bit hash and at most `capacity` entries live at once, the chance
//! that any two of them collide is about `capacity² / 2¹²⁹`: 1.5 × 10⁻²⁹
//! at the default 100 000 (docs/feedback.md). The hash is not a secret
//! (fixed seeds, so that snapshots find their entries again after a
//! restart); a client able to craft colliding ids can only do what sending
//! a wrong label already does.
//!
//! # Memory
//!
//! The entries live in a ring in insertion order, found through an index
//! of ring positions (`join/pending.rs`): an insertion writes at the ring's back
//! and an eviction reads its front, so the only table they touch at random
//! is the index, a few bytes an entry. Per pending entry, on a 64-bit
//! target: a ring slot of [`ENTRY_BYTES`] (key hash, time, version handle,
//! prediction), one to two of them as the ring's buffer doubles, and up to
//! 2 × live + 32 while joined or replaced entries leave dead slots behind
//! (it is compacted past that); index slots of [`INDEX_SLOT_BYTES`] at a
//! load between 1/4 and 1/2. A class-label prediction adds its string (cut
//! to `--limits.label-length`), and each (model, version) with entries one
//! group of its two names. Whatever the ids: 100 to 290 bytes an entry,
//! and 100 000 pending entries take 10 to 18 MiB. [`FeedbackJoiner::approx_bytes`] reports the store's own
//! estimate, an upper bound of the heap it holds.

use std::borrow::Borrow;
use std::collections::VecDeque;

use super::hash::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ingest::event::Outcome;

mod pending;
pub(super) use pending::prefetch;

/// Bytes of one pending entry's ring slot (key hash, time, prediction,
/// version handle).
pub const ENTRY_BYTES: usize = pending::slot_bytes::<Pending>();

/// Bytes of one slot of the index that finds a pending entry in the ring.
pub const INDEX_SLOT_BYTES: usize = pending::INDEX_SLOT_BYTES;

/// Bytes of one item of the duplicate-label memory's queue.
const RECENT_ITEM_BYTES: usize = size_of::<(Key, u64)>();

/// Most pending predictions a joiner keeps, whatever its capacity: 2³⁰,
/// which would take more than 100 GiB.
pub const MAX_CAPACITY: usize = pending::MAX_LIVE;

/// How many insertions ahead a full store starts loading the index slot of
/// the entry it will evict then.
const PREFETCH_AHEAD: usize = 4;

/// What an entry is found by: a 128-bit hash of (model, request id).
pub type Key = u128;

/// Names the hash of [`key_of`] in snapshots: keys written under another
/// cannot be found again.
pub const KEY_SCHEME: &str = "foldhash-0.2-quality-2x64";

/// The two fixed seeds of [`key_of`]'s halves.
const KEY_SEEDS: [u64; 2] = [0x6d6f_6465_6c2d_6578, 0x706f_7274_6572_2d6a];

/// The key of (model, request id): two 64-bit foldhash (quality) hashes
/// with fixed seeds of the model's length, the model and the id. Stable
/// within a build of foldhash 0.2 (see [`KEY_SCHEME`]).
pub fn key_of(model: &str, id: &str) -> Key {
    use std::hash::BuildHasher;
    let half = |seed| {
        let mut h = foldhash::quality::FixedState::with_seed(seed).build_hasher();
        h.write(&u32::try_from(model.len()).unwrap_or(u32::MAX).to_le_bytes());
        h.write(model.as_bytes());
        h.write(id.as_bytes());
        h.finish()
    };
    (u128::from(half(KEY_SEEDS[0])) << 64) | u128::from(half(KEY_SEEDS[1]))
}

/// Heap bytes a shared key carries besides its contents (the two reference
/// counts of an [`Arc`]).
pub const KEY_OVERHEAD_BYTES: usize = 2 * size_of::<usize>();

/// One remembered prediction (its key and time are kept beside it, in the
/// ring).
#[derive(Debug, Clone)]
struct Pending {
    /// The (model, version) whose pending count this entry is part of.
    group: Arc<Group>,
    prediction: Outcome,
}

/// The pending count of one (model, version). Shared by its entries, so that
/// forgetting an entry needs no lookup; atomic only to keep the joiner `Send`
/// (it has a single writer).
#[derive(Debug)]
struct Group {
    /// [`make_key`] of (model, version).
    key: Box<[u8]>,
    count: AtomicU64,
}

/// A [`Group`] in the set of groups, found by its key.
#[derive(Debug, Clone)]
struct GroupRef(Arc<Group>);

impl Borrow<[u8]> for GroupRef {
    fn borrow(&self) -> &[u8] {
        &self.0.key
    }
}

impl PartialEq for GroupRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for GroupRef {}

impl Hash for GroupRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that lookups by `&[u8]` find it.
        self.0.key.hash(state)
    }
}

/// Heap bytes of a [`Group`] besides its key bytes.
const GROUP_OVERHEAD_BYTES: usize = KEY_OVERHEAD_BYTES + size_of::<Group>();

/// Cumulative counts of what happened to inferences and labels, for export
/// as Prometheus counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Labels joined to a pending inference ([`FeedbackOutcome::Joined`]).
    pub joined: u64,
    /// Labels that carried their own prediction ([`FeedbackOutcome::Carried`]).
    pub carried: u64,
    /// Labels that found nothing to join ([`FeedbackOutcome::Unmatched`]).
    pub unmatched: u64,
    /// Labels for an id that was joined recently ([`FeedbackOutcome::Duplicate`]).
    pub duplicate_feedback: u64,
    /// Inferences that replaced a pending one with the same (model, id).
    pub duplicate_inference: u64,
    /// Pending inferences dropped because they outlived the ttl.
    pub expired: u64,
    /// Pending inferences dropped to make room (capacity reached).
    pub evicted: u64,
}

/// What became of one feedback event.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackOutcome {
    /// The label was joined to its pending inference, which is forgotten.
    Joined {
        /// Version of the model that made the prediction.
        version: String,
        /// The remembered prediction.
        prediction: Outcome,
        /// The true value.
        actual: Outcome,
        /// Seconds from the inference to its label (0 if the clock stepped back).
        delay_seconds: f64,
    },
    /// The label carried its own prediction; no join was needed.
    Carried {
        /// Version of a pending inference with the same (model, id), else `""`.
        version: String,
        /// The prediction sent with the label.
        prediction: Outcome,
        /// The true value.
        actual: Outcome,
    },
    /// A second label for an id that was joined recently; not used.
    Duplicate,
    /// Nothing to join: never seen, expired, evicted, or not yet arrived.
    Unmatched,
}

impl FeedbackOutcome {
    /// The (version, prediction, actual) to record, if the label is usable.
    pub fn pair(&self) -> Option<(&str, &Outcome, &Outcome)> {
        match self {
            FeedbackOutcome::Joined {
                version,
                prediction,
                actual,
                ..
            }
            | FeedbackOutcome::Carried {
                version,
                prediction,
                actual,
            } => Some((version, prediction, actual)),
            FeedbackOutcome::Duplicate | FeedbackOutcome::Unmatched => None,
        }
    }
}

/// Remembers predictions until their labels come. See the
/// [module documentation](self) for the rules.
#[derive(Debug, Clone)]
pub struct FeedbackJoiner {
    ttl: f64,
    capacity: usize,
    /// Pending entries by (model, id) key, in insertion order, with the
    /// time each was remembered (stamped, see the module docs).
    queue: pending::Store<Pending>,
    /// Recently joined keys, with the sequence number of their queue item.
    recent: HashMap<Key, u64>,
    recent_queue: VecDeque<(Key, u64)>,
    recent_capacity: usize,
    /// Pending count per (model, version) key.
    groups: HashSet<GroupRef>,
    /// The group an inference was last added to (see `group_incr`).
    last_group: Option<Arc<Group>>,
    /// Sequence number of the next item of `recent_queue`.
    next_seq: u64,
    /// Largest finite `now` seen.
    latest: f64,
    /// Heap bytes of groups and class predictions.
    heap_bytes: usize,
    /// Reused buffer for building group keys.
    group_buf: Vec<u8>,
    stats: JoinStats,
}

/// Writes `a` and `b` into `buf` as one unambiguous key: the length of `a`
/// (4 bytes, little endian), `a`, then `b`.
fn make_key(buf: &mut Vec<u8>, a: &str, b: &str) {
    buf.clear();
    let len = u32::try_from(a.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(a.as_bytes());
    buf.extend_from_slice(b.as_bytes());
}

/// Splits a key made by [`make_key`] back into its two strings.
fn split_key(key: &[u8]) -> Option<(&str, &str)> {
    let len_bytes: [u8; 4] = key.get(..4)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let rest = key.get(4..)?;
    let a = rest.get(..len)?;
    let b = rest.get(len..)?;
    Some((std::str::from_utf8(a).ok()?, std::str::from_utf8(b).ok()?))
}

fn outcome_heap(o: &Outcome) -> usize {
    match o {
        Outcome::Number(_) => 0,
        Outcome::Class(s) => s.capacity(),
    }
}

impl FeedbackJoiner {
    /// A joiner keeping predictions up to `ttl` and at most `capacity` of
    /// them (at most [`MAX_CAPACITY`]).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let capacity = capacity.min(MAX_CAPACITY);
        let initial = capacity.min(1024);
        Self {
            ttl: ttl.as_secs_f64(),
            capacity,
            queue: pending::Store::with_capacity(initial),
            recent: HashMap::default(),
            recent_queue: VecDeque::new(),
            recent_capacity: if capacity == 0 {
                0
            } else {
                (capacity / 8).max(1)
            },
            groups: HashSet::default(),
            last_group: None,
            next_seq: 0,
            latest: 0.0,
            heap_bytes: 0,
            group_buf: Vec::new(),
            stats: JoinStats::default(),
        }
    }

    /// How long a prediction waits for its label.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs_f64(self.ttl)
    }

    /// Most pending predictions kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of predictions waiting for their label.
    pub fn len(&self) -> usize {
        self.queue.live()
    }

    /// Whether no prediction is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cumulative counts.
    pub fn stats(&self) -> JoinStats {
        self.stats
    }

    /// How many ids the duplicate-label memory holds at most (`capacity / 8`).
    pub fn recent_capacity(&self) -> usize {
        self.recent_capacity
    }

    /// Pending predictions per model version: `(model, version, count)`, in
    /// no particular order. Versions with none pending are not listed.
    pub fn pending(&self) -> impl Iterator<Item = (&str, &str, u64)> + '_ {
        self.groups.iter().filter_map(|g| {
            let n = g.0.count.load(Ordering::Relaxed);
            split_key(&g.0.key).map(|(m, v)| (m, v, n))
        })
    }

    /// Pending predictions of one model version.
    pub fn pending_count(&self, model: &str, version: &str) -> u64 {
        let mut buf = Vec::with_capacity(4 + model.len() + version.len());
        make_key(&mut buf, model, version);
        self.groups
            .get(buf.as_slice())
            .map_or(0, |g| g.0.count.load(Ordering::Relaxed))
    }

    /// The store's estimate of the heap it holds, in bytes: ring and table
    /// slots at their allocated capacity, keys, class-label predictions.
    pub fn approx_bytes(&self) -> usize {
        // A hash table allocates at least capacity × 8/7 slots, plus a control
        // byte per slot.
        fn table<K, V>(m: &HashMap<K, V>) -> usize {
            m.capacity() * 8 / 7 * (size_of::<(K, V)>() + 1)
        }
        self.queue.bytes()
            + table(&self.recent)
            + self.groups.capacity() * 8 / 7 * (size_of::<GroupRef>() + 1)
            + self.recent_queue.capacity() * RECENT_ITEM_BYTES
            + self.group_buf.capacity()
            + self.heap_bytes
    }

    /// Turns `now` into the stamp used for entries (see the module docs).
    fn stamp(&mut self, now: f64) -> f64 {
        if now.is_finite() && now > self.latest {
            self.latest = now;
        }
        self.latest
    }

    fn expired_at(&self, at: f64, now: f64) -> bool {
        now - at > self.ttl
    }

    /// Decrements the pending count of `group`, forgetting it at zero.
    fn group_decr(&mut self, group: &Group) {
        let before = group.count.fetch_sub(1, Ordering::Relaxed);
        if before <= 1 {
            self.groups.remove(&*group.key);
            self.heap_bytes = self
                .heap_bytes
                .saturating_sub(GROUP_OVERHEAD_BYTES + group.key.len());
        }
    }

    /// The shared (model, version) group, its count incremented.
    fn group_incr(&mut self, model: &str, version: &str) -> Arc<Group> {
        make_key(&mut self.group_buf, model, version);
        // Events come in runs of one version: the last group used is
        // compared before the set is hashed. A group whose count fell to 0
        // has left the set and is not used again.
        if let Some(g) = &self.last_group
            && *g.key == *self.group_buf
            && g.count.load(Ordering::Relaxed) > 0
        {
            g.count.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(g);
        }
        if let Some(g) = self.groups.get(self.group_buf.as_slice()) {
            g.0.count.fetch_add(1, Ordering::Relaxed);
            self.last_group = Some(Arc::clone(&g.0));
            return Arc::clone(&g.0);
        }
        let g = Arc::new(Group {
            key: self.group_buf.as_slice().into(),
            count: AtomicU64::new(1),
        });
        self.heap_bytes += GROUP_OVERHEAD_BYTES + g.key.len();
        self.groups.insert(GroupRef(Arc::clone(&g)));
        self.last_group = Some(Arc::clone(&g));
        g
    }

    /// Forgets a pending entry's bookkeeping.
    fn release(&mut self, p: &Pending) {
        self.group_decr(&p.group);
        self.heap_bytes = self.heap_bytes.saturating_sub(outcome_heap(&p.prediction));
    }

    /// Remembers a prediction awaiting its label. See the
    /// [module documentation](self).
    pub fn on_inference(
        &mut self,
        model: &str,
        version: &str,
        id: &str,
        prediction: &Outcome,
        now: f64,
    ) {
        self.insert(key_of(model, id), model, version, prediction, now);
    }

    /// Starts loading what remembering the prediction of the entry `key`
    /// ([`key_of`]`(model, id)`) will look at; called for an event a few
    /// ahead of the one being applied, it changes nothing but the time the
    /// later [`on_inference_keyed`](Self::on_inference_keyed) takes. The
    /// caller makes the key once and hands it to both.
    pub fn prefetch_key(&self, key: Key) {
        if self.capacity > 0 {
            self.queue.prefetch(key);
        }
    }

    /// [`on_inference`](Self::on_inference) with the entry's key already
    /// made: `key` must be [`key_of`]`(model, id)`.
    pub fn on_inference_keyed(
        &mut self,
        key: Key,
        model: &str,
        version: &str,
        prediction: &Outcome,
        now: f64,
    ) {
        self.insert(key, model, version, prediction, now);
    }

    /// Remembers the prediction of the entry `key` of `model`.
    fn insert(&mut self, key: Key, model: &str, version: &str, prediction: &Outcome, now: f64) {
        let at = self.stamp(now);
        if self.capacity == 0 {
            self.stats.evicted += 1;
            return;
        }
        // A re-used id that was joined before is no longer a duplicate label.
        if !self.recent.is_empty() {
            self.recent.remove(&key);
        }

        let group = self.group_incr(model, version);
        let p = Pending {
            group,
            prediction: prediction.clone(),
        };
        self.heap_bytes += outcome_heap(&p.prediction);
        // One lookup: the insertion finds a pending entry of the same key.
        if let Some(old) = self.queue.push(key, at, p) {
            // Replaced; the new one is a new insertion, at the back.
            self.stats.duplicate_inference += 1;
            self.release(&old);
            self.queue.maybe_compact();
            return;
        }

        // Make room: drop the oldest entries. The new one is at the back of
        // the ring, the newest, so never the one dropped.
        if self.queue.live() > self.capacity {
            // The entry evicted a few insertions from now.
            self.queue.prefetch_oldest(PREFETCH_AHEAD);
        }
        while self.queue.live() > self.capacity {
            let Some((_, old_at, p)) = self.queue.pop_oldest() else {
                break;
            };
            self.release(&p);
            if self.expired_at(old_at, at) {
                self.stats.expired += 1;
            } else {
                self.stats.evicted += 1;
            }
        }
        self.queue.maybe_compact();
    }

    /// Remembers that `key` was just joined, for telling duplicates apart.
    fn remember_joined(&mut self, key: Key, seq: u64) {
        if self.recent_capacity == 0 {
            return;
        }
        while self.recent_queue.len() >= self.recent_capacity {
            let Some((old, old_seq)) = self.recent_queue.pop_front() else {
                break;
            };
            if self.recent.get(&old) == Some(&old_seq) {
                self.recent.remove(&old);
            }
        }
        self.recent.insert(key, seq);
        self.recent_queue.push_back((key, seq));
    }

    /// Joins a label to its prediction. See the [module documentation](self).
    pub fn on_feedback(
        &mut self,
        model: &str,
        id: Option<&str>,
        actual: &Outcome,
        prediction: Option<&Outcome>,
        now: f64,
    ) -> FeedbackOutcome {
        let at = self.stamp(now);
        let key = id.map(|id| key_of(model, id));
        let found = key.and_then(|k| self.queue.take(k).map(|(p_at, p)| (k, p_at, p)));
        if found.is_some() {
            self.queue.maybe_compact();
        }
        // An entry past its ttl is gone, whether or not expire() ran yet.
        let found = match found {
            Some((_, p_at, p)) if self.expired_at(p_at, at) => {
                self.release(&p);
                self.stats.expired += 1;
                None
            }
            other => other,
        };

        if let Some(prediction) = prediction {
            let version = match found {
                Some((_, _, p)) => {
                    self.release(&p);
                    split_key(&p.group.key)
                        .map(|(_, v)| v.to_owned())
                        .unwrap_or_default()
                }
                None => String::new(),
            };
            self.stats.carried += 1;
            return FeedbackOutcome::Carried {
                version,
                prediction: prediction.clone(),
                actual: actual.clone(),
            };
        }

        match found {
            Some((key, p_at, p)) => {
                self.release(&p);
                self.stats.joined += 1;
                let version = split_key(&p.group.key)
                    .map(|(_, v)| v.to_owned())
                    .unwrap_or_default();
                let seq = self.next_seq;
                self.next_seq = self.next_seq.wrapping_add(1);
                self.remember_joined(key, seq);
                FeedbackOutcome::Joined {
                    version,
                    prediction: p.prediction,
                    actual: actual.clone(),
                    delay_seconds: (at - p_at).max(0.0),
                }
            }
            None if key.is_some_and(|k| self.recent.contains_key(&k)) => {
                self.stats.duplicate_feedback += 1;
                FeedbackOutcome::Duplicate
            }
            None => {
                self.stats.unmatched += 1;
                FeedbackOutcome::Unmatched
            }
        }
    }

    /// Drops pending predictions older than the ttl at `now`, returning how
    /// many. Costs O(dropped).
    pub fn expire(&mut self, now: f64) -> u64 {
        let now = self.stamp(now);
        let mut dropped = 0;
        while self
            .queue
            .oldest_at()
            .is_some_and(|at| self.expired_at(at, now))
        {
            let Some((_, _, p)) = self.queue.pop_oldest() else {
                break;
            };
            self.release(&p);
            dropped += 1;
        }
        self.stats.expired += dropped;
        dropped
    }
}

/// A prediction awaiting its label, as written to a snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingState {
    /// Model name.
    pub model: String,
    /// Version that made the prediction.
    pub version: String,
    /// Request id, as snapshots written before keys were hashed hold it;
    /// not written any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The entry's key ([`key_of`] of model and id), 32 hexadecimal
    /// digits, under the snapshot's [`JoinerState::key_scheme`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When it was remembered: its ttl runs from here.
    pub at: f64,
    /// The prediction.
    pub prediction: OutcomeState,
}

/// A prediction: a number or a class label.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum OutcomeState {
    /// A number (always finite).
    Number(f64),
    /// A class label.
    Class(String),
}

/// The join's memory as written to a snapshot: the pending predictions,
/// oldest first, and the keys joined recently. The cumulative counts are not
/// kept: they are exported as counters, which start at zero in a new
/// process.
///
/// Snapshots hold the entries' keys (hashes of model and id), named by
/// `key_scheme`; those written before held the ids themselves (no
/// `key_scheme`, `id` in each pending entry, `recent` as pairs), and still
/// load: their ids are hashed as they are read.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JoinerState {
    /// The hash the keys were made with ([`KEY_SCHEME`]); absent in
    /// snapshots that hold ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_scheme: Option<String>,
    /// Largest time seen.
    pub latest: f64,
    /// Pending predictions, oldest first.
    pub pending: Vec<PendingState>,
    /// `(model, id)` of the labels joined recently, oldest first (older
    /// snapshots only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<(String, String)>,
    /// Keys of the labels joined recently, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_keys: Vec<String>,
}

/// What restoring the join's state brought back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinRestore {
    /// Predictions pending afterwards.
    pub pending: usize,
    /// Entries left out: their key was made by another hash, or is not one.
    pub dropped: usize,
}

/// A key as a snapshot writes it.
fn key_text(key: Key) -> String {
    format!("{key:032x}")
}

/// A key as a snapshot wrote it.
fn parse_key(s: &str) -> Option<Key> {
    (s.len() == 32)
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

impl FeedbackJoiner {
    /// The pending predictions and recent joins, for a snapshot.
    pub fn to_state(&self) -> JoinerState {
        let pending = self
            .queue
            .iter()
            .filter_map(|(key, at, p)| {
                let (model, version) = split_key(&p.group.key)?;
                let prediction = match &p.prediction {
                    Outcome::Number(x) if x.is_finite() => OutcomeState::Number(*x),
                    Outcome::Number(_) => return None,
                    Outcome::Class(c) => OutcomeState::Class(c.clone()),
                };
                Some(PendingState {
                    model: model.to_owned(),
                    version: version.to_owned(),
                    id: None,
                    key: Some(key_text(key)),
                    at,
                    prediction,
                })
            })
            .collect();
        let recent_keys = self
            .recent_queue
            .iter()
            .filter(|(key, seq)| self.recent.get(key) == Some(seq))
            .map(|(key, _)| key_text(*key))
            .collect();
        JoinerState {
            key_scheme: Some(KEY_SCHEME.to_owned()),
            latest: self.latest,
            pending,
            recent: Vec::new(),
            recent_keys,
        }
    }

    /// Takes back the pending predictions and recent joins of a snapshot,
    /// with their original times, so their ttl runs on. Within this
    /// joiner's capacity: past it the oldest are evicted (and counted), as
    /// when they arrive. Ids of older snapshots are hashed; keys made by
    /// another hash than this build's ([`KEY_SCHEME`]) cannot be found
    /// again and are left out.
    pub fn restore(&mut self, state: JoinerState) -> JoinRestore {
        let same_scheme = state.key_scheme.as_deref().is_none_or(|s| s == KEY_SCHEME);
        let key_of_state = |key: Option<&str>| key.filter(|_| same_scheme).and_then(parse_key);
        let mut dropped = 0;
        let recent = state
            .recent
            .iter()
            .map(|(model, id)| Some(key_of(model, id)))
            .chain(state.recent_keys.iter().map(|k| key_of_state(Some(k))));
        for key in recent {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            match key {
                Some(key) => self.remember_joined(key, seq),
                None => dropped += 1,
            }
        }
        for p in &state.pending {
            let prediction = match &p.prediction {
                OutcomeState::Number(x) => Outcome::Number(*x),
                OutcomeState::Class(c) => Outcome::Class(c.clone()),
            };
            let key = match (&p.id, &p.key) {
                (Some(id), _) => Some(key_of(&p.model, id)),
                (None, key) => key_of_state(key.as_deref()),
            };
            match key {
                Some(key) if p.at.is_finite() => {
                    self.insert(key, &p.model, &p.version, &prediction, p.at);
                }
                Some(_) => {}
                None => dropped += 1,
            }
        }
        if state.latest.is_finite() && state.latest > self.latest {
            self.latest = state.latest;
        }
        JoinRestore {
            pending: self.len(),
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const HOUR: f64 = 3600.0;

    fn num(x: f64) -> Outcome {
        Outcome::Number(x)
    }

    fn class(s: &str) -> Outcome {
        Outcome::Class(s.to_owned())
    }

    #[test]
    fn a_label_joins_its_prediction_hours_later() {
        let mut j = FeedbackJoiner::new(DAY, 100);
        j.on_inference("fraud", "v3", "r-17", &num(0.91), 1000.0);
        j.on_inference("fraud", "v3", "r-18", &num(0.2), 1001.0);
        // Same id, other model: a different request.
        j.on_inference("churn", "v1", "r-17", &class("stay"), 1002.0);
        assert_eq!(j.len(), 3);
        let out = j.on_feedback("fraud", Some("r-17"), &num(0.0), None, 1000.0 + 5.0 * HOUR);
        assert_eq!(
            out,
            FeedbackOutcome::Joined {
                version: "v3".into(),
                prediction: num(0.91),
                actual: num(0.0),
                delay_seconds: 5.0 * HOUR,
            }
        );
        assert_eq!(out.pair(), Some(("v3", &num(0.91), &num(0.0))));
        let out = j.on_feedback("churn", Some("r-17"), &class("leave"), None, 9000.0);
        assert_eq!(out.pair(), Some(("v1", &class("stay"), &class("leave"))));
        assert_eq!(j.len(), 1);
        assert_eq!(j.stats().joined, 2);
        assert_eq!(j.stats().unmatched, 0);
    }

    #[test]
    fn a_label_after_the_ttl_is_unmatched_and_the_inference_expired() {
        let ttl = Duration::from_secs(600);
        let mut j = FeedbackJoiner::new(ttl, 100);
        j.on_inference("m", "v", "a", &num(1.0), 1000.0);
        j.on_inference("m", "v", "b", &num(1.0), 1000.0);
        // Exactly at the ttl it still joins.
        let out = j.on_feedback("m", Some("a"), &num(1.0), None, 1600.0);
        assert!(matches!(out, FeedbackOutcome::Joined { .. }), "{out:?}");
        // Past it, without an expire tick in between: the same as expired.
        let out = j.on_feedback("m", Some("b"), &num(1.0), None, 1600.5);
        assert_eq!(out, FeedbackOutcome::Unmatched);
        let s = j.stats();
        assert_eq!((s.joined, s.unmatched, s.expired), (1, 1, 1));
        assert!(j.is_empty());
        assert_eq!(j.pending_count("m", "v"), 0);
        // After an expire tick: unmatched too, expired counted once.
        j.on_inference("m", "v", "c", &num(1.0), 2000.0);
        assert_eq!(j.expire(2600.0), 0);
        assert_eq!(j.expire(2601.0), 1);
        let out = j.on_feedback("m", Some("c"), &num(1.0), None, 2602.0);
        assert_eq!(out, FeedbackOutcome::Unmatched);
        let s = j.stats();
        assert_eq!((s.joined, s.unmatched, s.expired), (1, 2, 2));
    }

    #[test]
    fn a_label_before_its_inference_is_not_buffered() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(60), 100);
        let out = j.on_feedback("m", Some("x"), &num(1.0), None, 100.0);
        assert_eq!(out, FeedbackOutcome::Unmatched);
        j.on_inference("m", "v", "x", &num(1.0), 101.0);
        assert_eq!(j.pending_count("m", "v"), 1);
        assert_eq!(j.expire(162.0), 1);
        let s = j.stats();
        assert_eq!((s.joined, s.unmatched, s.expired), (0, 1, 1));
    }

    #[test]
    fn a_second_label_is_a_duplicate() {
        let mut j = FeedbackJoiner::new(DAY, 100);
        j.on_inference("m", "v", "x", &num(1.0), 100.0);
        assert!(
            j.on_feedback("m", Some("x"), &num(1.0), None, 110.0)
                .pair()
                .is_some()
        );
        assert_eq!(
            j.on_feedback("m", Some("x"), &num(0.0), None, 120.0),
            FeedbackOutcome::Duplicate
        );
        assert_eq!(
            j.on_feedback("m", Some("x"), &num(0.0), None, 130.0),
            FeedbackOutcome::Duplicate
        );
        // Another model's "x" was never seen.
        assert_eq!(
            j.on_feedback("n", Some("x"), &num(0.0), None, 130.0),
            FeedbackOutcome::Unmatched
        );
        let s = j.stats();
        assert_eq!((s.joined, s.duplicate_feedback, s.unmatched), (1, 2, 1));
        // The id used again for a new request joins again.
        j.on_inference("m", "v", "x", &num(0.0), 200.0);
        assert!(matches!(
            j.on_feedback("m", Some("x"), &num(0.0), None, 210.0),
            FeedbackOutcome::Joined { .. }
        ));
        assert_eq!(j.stats().duplicate_inference, 0);
    }

    #[test]
    fn the_duplicate_memory_is_bounded() {
        // capacity 16: the last 2 joined ids are remembered.
        let mut j = FeedbackJoiner::new(DAY, 16);
        assert_eq!(j.recent_capacity(), 2);
        for id in ["a", "b", "c"] {
            j.on_inference("m", "v", id, &num(1.0), 1.0);
            assert!(
                j.on_feedback("m", Some(id), &num(1.0), None, 2.0)
                    .pair()
                    .is_some()
            );
        }
        let again = |j: &mut FeedbackJoiner, id| j.on_feedback("m", Some(id), &num(1.0), None, 3.0);
        assert_eq!(again(&mut j, "a"), FeedbackOutcome::Unmatched);
        assert_eq!(again(&mut j, "b"), FeedbackOutcome::Duplicate);
        assert_eq!(again(&mut j, "c"), FeedbackOutcome::Duplicate);
    }

    #[test]
    fn labels_that_never_come_expire_oldest_first() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(100), 1000);
        for i in 0..10 {
            j.on_inference(
                "m",
                "v",
                &format!("r{i}"),
                &num(0.5),
                1000.0 + i as f64 * 10.0,
            );
        }
        // Joined entries leave stale queue items; expire skips them.
        j.on_feedback("m", Some("r0"), &num(1.0), None, 1001.0);
        j.on_feedback("m", Some("r4"), &num(1.0), None, 1041.0);
        assert_eq!(j.expire(1100.0), 0);
        // r1 (1010), r2 (1020), r3 (1030) are older than 100 s at 1130.5.
        assert_eq!(j.expire(1130.5), 3);
        assert_eq!(j.len(), 5);
        assert_eq!(j.expire(1130.5), 0);
        // A clock stepping back expires nothing and panics on nothing.
        assert_eq!(j.expire(0.0), 0);
        assert_eq!(j.expire(f64::NAN), 0);
        assert_eq!(j.expire(1e9), 5);
        assert_eq!(j.stats().expired, 8);
        assert!(j.is_empty());
        assert_eq!(j.pending().count(), 0);
    }

    #[test]
    fn when_full_the_oldest_is_evicted() {
        let mut j = FeedbackJoiner::new(DAY, 3);
        for id in ["a", "b", "c"] {
            j.on_inference("m", "v", id, &num(1.0), 10.0);
        }
        // Re-sending "a" replaces it and makes it the newest.
        j.on_inference("m", "v2", "a", &num(0.0), 11.0);
        assert_eq!(j.stats().duplicate_inference, 1);
        assert_eq!(j.len(), 3);
        j.on_inference("m", "v", "d", &num(1.0), 12.0); // evicts b
        j.on_inference("m", "v", "e", &num(1.0), 13.0); // evicts c
        assert_eq!(j.stats().evicted, 2);
        assert_eq!(j.len(), 3);
        let fb = |j: &mut FeedbackJoiner, id| j.on_feedback("m", Some(id), &num(1.0), None, 20.0);
        assert_eq!(fb(&mut j, "b"), FeedbackOutcome::Unmatched);
        assert_eq!(fb(&mut j, "c"), FeedbackOutcome::Unmatched);
        assert_eq!(
            fb(&mut j, "a"),
            FeedbackOutcome::Joined {
                version: "v2".into(),
                prediction: num(0.0),
                actual: num(1.0),
                delay_seconds: 9.0,
            }
        );
        assert!(fb(&mut j, "d").pair().is_some());
        assert!(fb(&mut j, "e").pair().is_some());
        // An entry past its ttl that makes room counts as expired.
        let mut j = FeedbackJoiner::new(Duration::from_secs(5), 1);
        j.on_inference("m", "v", "a", &num(1.0), 0.0);
        j.on_inference("m", "v", "b", &num(1.0), 1.0);
        j.on_inference("m", "v", "c", &num(1.0), 100.0);
        let s = j.stats();
        assert_eq!((s.evicted, s.expired), (1, 1));
        // Capacity 0 keeps nothing.
        let mut j = FeedbackJoiner::new(DAY, 0);
        j.on_inference("m", "v", "a", &num(1.0), 0.0);
        assert!(j.is_empty());
        assert_eq!(j.stats().evicted, 1);
        assert_eq!(
            j.on_feedback("m", Some("a"), &num(1.0), None, 1.0),
            FeedbackOutcome::Unmatched
        );
    }

    #[test]
    fn pending_counts_per_version() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(100), 100);
        for i in 0..5 {
            j.on_inference("fraud", "v1", &format!("a{i}"), &num(0.1), 0.0);
        }
        for i in 0..3 {
            j.on_inference("fraud", "v2", &format!("b{i}"), &num(0.1), 50.0);
        }
        j.on_inference("churn", "v1", "a0", &num(0.1), 50.0);
        // A duplicate moves a0 from v1 to v2.
        j.on_inference("fraud", "v2", "a0", &num(0.1), 50.0);
        let mut all: Vec<_> = j.pending().collect();
        all.sort();
        assert_eq!(
            all,
            [("churn", "v1", 1), ("fraud", "v1", 4), ("fraud", "v2", 4)]
        );
        j.on_feedback("fraud", Some("b1"), &num(0.0), None, 60.0);
        assert_eq!(j.pending_count("fraud", "v2"), 3);
        assert_eq!(j.expire(120.0), 4);
        assert_eq!(j.pending_count("fraud", "v1"), 0);
        assert_eq!(j.pending_count("fraud", "v2"), 3);
        assert_eq!(j.pending_count("nope", ""), 0);
        assert_eq!(j.pending().count(), 2);
        // Model and version are kept apart even when they could run together.
        j.on_inference("ab", "c", "x", &num(0.1), 60.0);
        j.on_inference("a", "bc", "y", &num(0.1), 60.0);
        assert_eq!(j.pending_count("ab", "c"), 1);
        assert_eq!(j.pending_count("a", "bc"), 1);
    }

    #[test]
    fn a_version_whose_pending_count_fell_to_zero_counts_again() {
        let mut j = FeedbackJoiner::new(DAY, 100);
        for round in 0..3 {
            j.on_inference("m", "v", "a", &num(1.0), 1.0);
            assert_eq!(j.pending_count("m", "v"), 1, "round {round}");
            assert_eq!(j.pending().collect::<Vec<_>>(), [("m", "v", 1)]);
            assert!(
                j.on_feedback("m", Some("a"), &num(1.0), None, 2.0)
                    .pair()
                    .is_some()
            );
            assert_eq!(j.pending().count(), 0);
        }
        // Another version in between, then the first again.
        j.on_inference("m", "v", "b", &num(1.0), 3.0);
        j.on_inference("m", "w", "c", &num(1.0), 3.0);
        j.on_inference("m", "v", "d", &num(1.0), 3.0);
        assert_eq!(j.pending_count("m", "v"), 2);
        assert_eq!(j.pending_count("m", "w"), 1);
    }

    #[test]
    fn a_label_with_its_own_prediction_needs_no_join() {
        let mut j = FeedbackJoiner::new(DAY, 100);
        assert_eq!(
            j.on_feedback("m", None, &num(1.0), Some(&num(0.7)), 5.0),
            FeedbackOutcome::Carried {
                version: String::new(),
                prediction: num(0.7),
                actual: num(1.0),
            }
        );
        // A pending inference lends its version and is consumed.
        j.on_inference("m", "v9", "x", &num(0.1), 6.0);
        let out = j.on_feedback("m", Some("x"), &num(1.0), Some(&num(0.7)), 7.0);
        assert_eq!(out.pair(), Some(("v9", &num(0.7), &num(1.0))));
        assert!(j.is_empty());
        assert_eq!(j.pending_count("m", "v9"), 0);
        // No id and no prediction: nothing to do.
        assert_eq!(
            j.on_feedback("m", None, &num(1.0), None, 8.0),
            FeedbackOutcome::Unmatched
        );
        let s = j.stats();
        assert_eq!((s.carried, s.joined, s.unmatched), (2, 0, 1));
    }

    #[test]
    fn odd_times_do_not_break_the_order() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(10), 100);
        j.on_inference("m", "v", "a", &num(1.0), 100.0);
        // Clock steps back: stamped at the latest time seen, 100.
        j.on_inference("m", "v", "b", &num(1.0), 50.0);
        j.on_inference("m", "v", "c", &num(1.0), f64::NAN);
        j.on_inference("m", "v", "d", &num(1.0), f64::INFINITY);
        let out = j.on_feedback("m", Some("b"), &num(1.0), None, 40.0);
        assert!(
            matches!(out, FeedbackOutcome::Joined { delay_seconds, .. } if delay_seconds == 0.0),
            "{out:?}"
        );
        assert_eq!(j.expire(110.0), 0);
        assert_eq!(j.expire(110.5), 3);
    }

    #[test]
    fn the_queue_stays_compact_when_labels_come_fast() {
        let mut j = FeedbackJoiner::new(DAY, 1000);
        // One label that never comes sits at the front of the queue.
        j.on_inference("m", "v", "old", &num(1.0), 0.0);
        let base = j.approx_bytes();
        for i in 0..100_000 {
            let id = format!("r{i}");
            j.on_inference("m", "v", &id, &num(1.0), 1.0);
            j.on_feedback("m", Some(&id), &num(1.0), None, 2.0);
        }
        assert_eq!(j.len(), 1);
        assert!(j.queue.len() <= 2 * j.len() + 33, "{}", j.queue.len());
        // Bounded by the duplicate memory (125 ids), not by the 100 000 joins.
        assert!(j.approx_bytes() < base + 64 * 1024, "{}", j.approx_bytes());
        assert_eq!(j.stats().joined, 100_000);
    }

    #[test]
    fn a_million_inferences_through_a_store_of_100_000() {
        const CAP: usize = 100_000;
        let mut j = FeedbackJoiner::new(DAY, CAP);
        for i in 0..1_000_000u64 {
            let id = format!("{i:036}"); // as long as a UUID
            let p = if i % 2 == 0 { num(0.5) } else { class("cat") };
            j.on_inference("fraud", "v3", &id, &p, 1000.0 + i as f64 * 0.01);
            assert!(j.len() <= CAP);
        }
        assert_eq!(j.len(), CAP);
        assert_eq!(j.pending_count("fraud", "v3"), CAP as u64);
        assert_eq!(j.stats().evicted, 900_000);
        assert_eq!(j.stats().expired, 0);
        let bytes = j.approx_bytes();
        let per_entry = bytes / CAP;
        assert!(
            (100..=220).contains(&per_entry),
            "{bytes} B, {per_entry} B an entry"
        );
        // The newest 100 000 are the ones kept.
        let fb = |j: &mut FeedbackJoiner, i: u64| {
            j.on_feedback(
                "fraud",
                Some(&format!("{i:036}")),
                &num(1.0),
                None,
                20_000.0,
            )
        };
        assert_eq!(fb(&mut j, 899_999), FeedbackOutcome::Unmatched);
        assert!(fb(&mut j, 900_000).pair().is_some());
        assert!(fb(&mut j, 999_999).pair().is_some());
    }

    /// A joiner through its snapshot state and JSON, into a fresh joiner.
    fn reborn(j: &FeedbackJoiner, ttl: Duration, capacity: usize) -> FeedbackJoiner {
        let text = serde_json::to_string(&j.to_state()).unwrap();
        let mut fresh = FeedbackJoiner::new(ttl, capacity);
        fresh.restore(serde_json::from_str(&text).unwrap());
        fresh
    }

    #[test]
    fn pending_predictions_join_after_a_restore() {
        let mut j = FeedbackJoiner::new(DAY, 100);
        j.on_inference("fraud", "v3", "a", &num(0.9), 1000.0);
        j.on_inference("fraud", "v3", "b", &class("cat"), 2000.0);
        j.on_inference("churn", "v1", "a", &num(0.1), 3000.0);
        // Replaced, joined: only the live entries are kept.
        j.on_inference("churn", "v1", "a", &num(0.2), 3500.0);
        j.on_inference("fraud", "v4", "c", &num(0.5), 3600.0);
        assert!(matches!(
            j.on_feedback("fraud", Some("c"), &num(1.0), None, 3700.0),
            FeedbackOutcome::Joined { .. }
        ));
        let state = j.to_state();
        // Keys, not ids, are written.
        let keys: Vec<(&str, Option<String>, f64)> = state
            .pending
            .iter()
            .map(|p| (p.model.as_str(), p.key.clone(), p.at))
            .collect();
        let k = |m: &str, id: &str| Some(key_text(key_of(m, id)));
        assert_eq!(
            keys,
            [
                ("fraud", k("fraud", "a"), 1000.0),
                ("fraud", k("fraud", "b"), 2000.0),
                ("churn", k("churn", "a"), 3500.0)
            ]
        );
        assert!(state.pending.iter().all(|p| p.id.is_none()));
        assert_eq!(state.recent_keys, [key_text(key_of("fraud", "c"))]);
        assert_eq!(state.key_scheme.as_deref(), Some(KEY_SCHEME));
        let text = serde_json::to_string(&state).unwrap();
        assert!(!text.contains(r#""id""#), "{text}");

        let mut r = reborn(&j, DAY, 100);
        assert_eq!(r.len(), 3);
        assert_eq!(r.pending_count("fraud", "v3"), 2);
        assert_eq!(r.pending_count("churn", "v1"), 1);
        assert_eq!(r.stats(), JoinStats::default(), "counters start afresh");
        // Hours later, the labels join with their delay since the original
        // inference.
        let out = r.on_feedback("fraud", Some("a"), &num(1.0), None, 1000.0 + 5.0 * HOUR);
        assert_eq!(
            out,
            FeedbackOutcome::Joined {
                version: "v3".into(),
                prediction: num(0.9),
                actual: num(1.0),
                delay_seconds: 5.0 * HOUR,
            }
        );
        let out = r.on_feedback("fraud", Some("b"), &class("dog"), None, 30_000.0);
        assert_eq!(out.pair(), Some(("v3", &class("cat"), &class("dog"))));
        let out = r.on_feedback("churn", Some("a"), &num(0.0), None, 30_000.0);
        assert_eq!(out.pair(), Some(("v1", &num(0.2), &num(0.0))));
        // The recent join is remembered: a second label is a duplicate.
        assert_eq!(
            r.on_feedback("fraud", Some("c"), &num(1.0), None, 30_000.0),
            FeedbackOutcome::Duplicate
        );
    }

    #[test]
    fn restored_predictions_keep_their_ttl_and_the_capacity() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(100), 10);
        for (i, t) in [1000.0, 1050.0, 1090.0].iter().enumerate() {
            j.on_inference("m", "v", &i.to_string(), &num(1.0), *t);
        }
        let mut r = reborn(&j, Duration::from_secs(100), 10);
        // The ttl runs from the original times, not from the restore.
        assert_eq!(r.expire(1140.0), 1);
        assert_eq!(
            r.on_feedback("m", Some("1"), &num(1.0), None, 1160.0),
            FeedbackOutcome::Unmatched,
            "expired at 1150"
        );
        assert!(matches!(
            r.on_feedback("m", Some("2"), &num(1.0), None, 1160.0),
            FeedbackOutcome::Joined { .. }
        ));
        // A smaller capacity keeps the newest, the others count as evicted.
        let r = reborn(&j, Duration::from_secs(100), 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.stats().evicted, 1);
        // Time never runs back behind the snapshot.
        let mut r = reborn(&j, Duration::from_secs(100), 10);
        r.on_inference("m", "v", "late", &num(1.0), 5.0);
        assert_eq!(r.to_state().pending.last().unwrap().at, 1090.0);
    }

    /// Request id number `i`, `len` bytes long (at least 10).
    fn long_id(i: usize, len: usize) -> String {
        format!("{}{i:010}", "x".repeat(len - 10))
    }

    #[test]
    fn ids_of_64_kib_take_no_more_memory_than_short_ones() {
        const CAP: usize = 200;
        let fill = |len: usize| {
            let mut j = FeedbackJoiner::new(DAY, CAP);
            for i in 0..10 * CAP {
                let id = long_id(i, len);
                j.on_inference("fraud", "v3", &id, &num(0.5), 1000.0 + i as f64);
            }
            assert_eq!(j.len(), CAP);
            // The newest ones still join, found by their long ids.
            let last = long_id(10 * CAP - 1, len);
            assert!(
                j.on_feedback("fraud", Some(&last), &num(1.0), None, 5000.0)
                    .pair()
                    .is_some()
            );
            j.approx_bytes()
        };
        // The tables' sizes depend on where the (randomly seeded) hashes
        // fell, not on the ids: both stay within the same bound, 512 bytes
        // an entry at this small capacity (the queue keeps room for 1,024),
        // where ids of 64 KiB each held would take 64 KiB an entry.
        for len in [36, 64 * 1024] {
            let bytes = fill(len);
            assert!(bytes <= 512 * CAP, "ids of {len} B: {bytes} B");
        }
    }

    #[test]
    fn snapshots_that_hold_ids_still_load_and_other_hashes_are_left_out() {
        // A snapshot written before keys were hashed.
        let old = r#"{"latest":2000.0,"pending":[
            {"model":"fraud","version":"v3","id":"a","at":1000.0,"prediction":0.9},
            {"model":"fraud","version":"v3","id":"b","at":1500.0,"prediction":"cat"}],
            "recent":[["fraud","c"]]}"#;
        let mut j = FeedbackJoiner::new(DAY, 100);
        let r = j.restore(serde_json::from_str(old).unwrap());
        assert_eq!(
            r,
            JoinRestore {
                pending: 2,
                dropped: 0
            }
        );
        assert_eq!(
            j.on_feedback("fraud", Some("b"), &class("dog"), None, 3000.0)
                .pair(),
            Some(("v3", &class("cat"), &class("dog")))
        );
        assert_eq!(
            j.on_feedback("fraud", Some("c"), &num(1.0), None, 3000.0),
            FeedbackOutcome::Duplicate
        );
        // Keys of another hash cannot be found again: left out, counted.
        let mut state = j.to_state();
        state.key_scheme = Some("another-hash".into());
        let mut k = FeedbackJoiner::new(DAY, 100);
        // One pending prediction, two recent joins.
        assert_eq!(
            k.restore(state.clone()),
            JoinRestore {
                pending: 0,
                dropped: 3
            }
        );
        // Nor can keys that are not 32 hexadecimal digits.
        state.key_scheme = None;
        state.pending[0].key = Some("xyz".into());
        let mut k = FeedbackJoiner::new(DAY, 100);
        assert_eq!(
            k.restore(state),
            JoinRestore {
                pending: 0,
                dropped: 1
            }
        );
    }

    #[test]
    fn keys_tell_models_and_ids_apart() {
        assert_ne!(key_of("ab", "c"), key_of("a", "bc"));
        assert_ne!(key_of("m", "1"), key_of("m", "2"));
        assert_eq!(key_of("m", "1"), key_of("m", "1"));
        assert_eq!(
            parse_key(&key_text(key_of("m", "1"))),
            Some(key_of("m", "1"))
        );
    }

    #[test]
    fn eviction_takes_the_oldest_across_dead_slots_and_compaction() {
        // Eleven live entries: k0..k9 and the newest x (twelve for a moment,
        // within the capacity). Each new x is followed by the label of the
        // one before it, which leaves a dead slot in the middle of the
        // ring, until compaction drops them.
        let mut j = FeedbackJoiner::new(DAY, 12);
        for i in 0..10 {
            j.on_inference("m", "v", &format!("k{i}"), &num(1.0), f64::from(i));
        }
        let mut most = 0;
        for i in 0..100 {
            j.on_inference("m", "v", &format!("x{i}"), &num(2.0), 10.0 + f64::from(i));
            if i > 0 {
                let out = j.on_feedback("m", Some(&format!("x{}", i - 1)), &num(1.0), None, 200.0);
                assert!(matches!(out, FeedbackOutcome::Joined { .. }), "{out:?}");
            }
            assert_eq!(j.len(), 11);
            assert!(j.queue.len() <= 2 * j.len() + 33, "{}", j.queue.len());
            most = most.max(j.queue.len());
        }
        // Dead slots piled up, and were dropped: 10 + 100 slots without
        // compaction.
        assert!(most > 40, "{most}");
        assert!(j.queue.len() < 60, "{}", j.queue.len());
        assert_eq!(j.stats().evicted, 0);
        // Full at the second: each new entry evicts the oldest live one, k0
        // first.
        for i in 0..6 {
            j.on_inference("m", "v", &format!("n{i}"), &num(3.0), 300.0);
        }
        assert_eq!(j.stats().evicted, 5);
        let keys: Vec<String> = j
            .to_state()
            .pending
            .into_iter()
            .filter_map(|p| p.key)
            .collect();
        let want: Vec<String> = [
            "k5", "k6", "k7", "k8", "k9", "x99", "n0", "n1", "n2", "n3", "n4", "n5",
        ]
        .iter()
        .map(|id| key_text(key_of("m", id)))
        .collect();
        assert_eq!(keys, want);
        let fb =
            |j: &mut FeedbackJoiner, id: &str| j.on_feedback("m", Some(id), &num(1.0), None, 400.0);
        for id in ["k0", "k4"] {
            assert_eq!(fb(&mut j, id), FeedbackOutcome::Unmatched, "{id}");
        }
        for id in ["k5", "x99", "n5"] {
            assert!(fb(&mut j, id).pair().is_some(), "{id}");
        }
        // Nine more: the first three fill the store, the others evict k6 to
        // k9, then n0 and n1.
        for i in 0..9 {
            j.on_inference("m", "w", &format!("z{i}"), &num(3.0), 500.0);
        }
        assert_eq!(j.len(), 12);
        assert_eq!(j.pending_count("m", "v"), 3);
        assert_eq!(j.stats().evicted, 5 + 6);
        assert!(fb(&mut j, "n2").pair().is_some());
        assert_eq!(fb(&mut j, "n1"), FeedbackOutcome::Unmatched);
    }

    #[test]
    fn a_resent_id_is_a_new_insertion_at_the_back() {
        let mut j = FeedbackJoiner::new(DAY, 3);
        for id in ["a", "b", "c"] {
            j.on_inference("m", "v", id, &num(1.0), 1.0);
        }
        // Order b, c, a; then b, a, c.
        j.on_inference("m", "v", "a", &num(2.0), 2.0);
        j.on_inference("m", "v", "c", &num(2.0), 3.0);
        // The newest re-sent again and again takes no more room: the ring
        // holds one dead slot, where c was.
        for _ in 0..100 {
            j.on_inference("m", "v", "c", &num(3.0), 4.0);
        }
        assert_eq!(j.queue.len(), 4);
        assert_eq!(j.stats().duplicate_inference, 102);
        j.on_inference("m", "v", "d", &num(1.0), 5.0); // evicts b
        j.on_inference("m", "v", "e", &num(1.0), 6.0); // evicts a
        assert_eq!(j.stats().evicted, 2);
        let fb = |j: &mut FeedbackJoiner, id| j.on_feedback("m", Some(id), &num(1.0), None, 7.0);
        assert_eq!(fb(&mut j, "b"), FeedbackOutcome::Unmatched);
        assert_eq!(fb(&mut j, "a"), FeedbackOutcome::Unmatched);
        assert_eq!(
            fb(&mut j, "c"),
            FeedbackOutcome::Joined {
                version: "v".into(),
                prediction: num(3.0),
                actual: num(1.0),
                delay_seconds: 3.0,
            }
        );
        assert!(fb(&mut j, "d").pair().is_some());
        assert!(fb(&mut j, "e").pair().is_some());
        assert!(j.is_empty());
        assert_eq!(j.queue.len(), 0);
    }

    #[test]
    fn expiry_takes_the_oldest_first_past_dead_slots() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(100), 1000);
        for i in 0..10 {
            j.on_inference("m", "v", &format!("r{i}"), &num(0.5), 10.0 * f64::from(i));
        }
        // Dead slots: r1, r3 and r7 joined, r5 re-sent (now the newest, at
        // 95).
        for id in ["r1", "r3", "r7"] {
            assert!(
                j.on_feedback("m", Some(id), &num(1.0), None, 94.0)
                    .pair()
                    .is_some()
            );
        }
        j.on_inference("m", "v2", "r5", &num(0.7), 95.0);
        assert_eq!(j.len(), 7);
        // r0 (0) and r2 (20) are past 100 s at 125.5; r4 (40) is not.
        assert_eq!(j.expire(125.5), 2);
        assert_eq!(j.expire(125.5), 0);
        // r4, r6, r8 and r9 at 194.5; the re-sent r5 (95) stays.
        assert_eq!(j.expire(194.5), 4);
        let state = j.to_state();
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.pending[0].key, Some(key_text(key_of("m", "r5"))));
        assert_eq!(
            (state.pending[0].version.as_str(), state.pending[0].at),
            ("v2", 95.0)
        );
        assert_eq!(j.stats().expired, 6);
        assert_eq!(j.pending_count("m", "v"), 0);
        assert_eq!(j.expire(195.0 + 1e9), 1);
        assert_eq!((j.len(), j.queue.len()), (0, 0));
    }

    #[test]
    fn a_store_of_one() {
        let mut j = FeedbackJoiner::new(Duration::from_secs(60), 1);
        let fb = |j: &mut FeedbackJoiner, id, t| j.on_feedback("m", Some(id), &num(1.0), None, t);
        j.on_inference("m", "v", "a", &num(1.0), 0.0);
        j.on_inference("m", "v", "b", &num(1.0), 1.0); // evicts a
        j.on_inference("m", "v", "b", &num(2.0), 2.0); // replaces b
        assert_eq!((j.len(), j.queue.len()), (1, 1));
        let s = j.stats();
        assert_eq!((s.evicted, s.duplicate_inference), (1, 1));
        assert_eq!(fb(&mut j, "a", 3.0), FeedbackOutcome::Unmatched);
        assert_eq!(
            fb(&mut j, "b", 3.0).pair(),
            Some(("v", &num(2.0), &num(1.0)))
        );
        assert_eq!(fb(&mut j, "b", 3.0), FeedbackOutcome::Duplicate);
        assert!(j.is_empty());
        j.on_inference("m", "v", "c", &num(1.0), 10.0);
        // c expires; d then finds the store empty and evicts nothing.
        assert_eq!(j.expire(70.5), 1);
        j.on_inference("m", "v", "d", &num(1.0), 71.0);
        j.on_inference("m", "v", "e", &num(1.0), 200.0); // d, past its ttl
        let s = j.stats();
        assert_eq!((s.evicted, s.expired), (1, 2));
        assert_eq!(
            j.to_state().pending[0].key,
            Some(key_text(key_of("m", "e")))
        );
    }

    /// The join's rules restated over plain collections: pending entries in
    /// a list in insertion order, found by scanning, and the last joins.
    mod model {
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::RngSeed;

        #[derive(Debug, Clone, Copy)]
        enum When {
            Later(u8),
            Earlier(u8),
            NotANumber,
            Infinite,
        }

        #[derive(Debug, Clone)]
        enum Op {
            Inference {
                model: u8,
                version: u8,
                id: u8,
                class: bool,
                when: When,
            },
            Feedback {
                model: u8,
                id: Option<u8>,
                carried: bool,
                when: When,
            },
            Expire(When),
            /// Through a snapshot into a fresh joiner.
            Restore,
        }

        struct Entry {
            model: String,
            id: String,
            version: String,
            at: f64,
            prediction: Outcome,
        }

        struct Model {
            ttl: f64,
            capacity: usize,
            latest: f64,
            pending: VecDeque<Entry>,
            /// The last joins, oldest first, and whether each still counts
            /// (an inference of its key since makes it not count).
            recent: VecDeque<(Key, bool)>,
            stats: JoinStats,
        }

        impl Model {
            fn stamp(&mut self, now: f64) -> f64 {
                if now.is_finite() && now > self.latest {
                    self.latest = now;
                }
                self.latest
            }

            fn expired(&self, at: f64, now: f64) -> bool {
                now - at > self.ttl
            }

            fn position(&self, model: &str, id: &str) -> Option<usize> {
                self.pending
                    .iter()
                    .position(|e| e.model == model && e.id == id)
            }

            fn inference(&mut self, model: &str, version: &str, id: &str, p: &Outcome, now: f64) {
                let at = self.stamp(now);
                if self.capacity == 0 {
                    self.stats.evicted += 1;
                    return;
                }
                let key = key_of(model, id);
                for r in self.recent.iter_mut().filter(|r| r.0 == key) {
                    r.1 = false;
                }
                let entry = Entry {
                    model: model.into(),
                    id: id.into(),
                    version: version.into(),
                    at,
                    prediction: p.clone(),
                };
                if let Some(i) = self.position(model, id) {
                    self.pending.remove(i);
                    self.pending.push_back(entry);
                    self.stats.duplicate_inference += 1;
                    return;
                }
                self.pending.push_back(entry);
                while self.pending.len() > self.capacity {
                    let old = self.pending.pop_front().unwrap();
                    if self.expired(old.at, at) {
                        self.stats.expired += 1;
                    } else {
                        self.stats.evicted += 1;
                    }
                }
            }

            fn feedback(
                &mut self,
                model: &str,
                id: Option<&str>,
                actual: &Outcome,
                prediction: Option<&Outcome>,
                now: f64,
            ) -> FeedbackOutcome {
                let at = self.stamp(now);
                let mut found = id
                    .and_then(|id| self.position(model, id))
                    .and_then(|i| self.pending.remove(i));
                if found.as_ref().is_some_and(|e| self.expired(e.at, at)) {
                    self.stats.expired += 1;
                    found = None;
                }
                if let Some(prediction) = prediction {
                    self.stats.carried += 1;
                    return FeedbackOutcome::Carried {
                        version: found.map(|e| e.version).unwrap_or_default(),
                        prediction: prediction.clone(),
                        actual: actual.clone(),
                    };
                }
                let key = id.map(|id| key_of(model, id));
                match found {
                    Some(e) => {
                        self.stats.joined += 1;
                        let recent_capacity = if self.capacity == 0 {
                            0
                        } else {
                            (self.capacity / 8).max(1)
                        };
                        if recent_capacity > 0 {
                            self.recent.push_back((key.unwrap(), true));
                            while self.recent.len() > recent_capacity {
                                self.recent.pop_front();
                            }
                        }
                        FeedbackOutcome::Joined {
                            version: e.version,
                            prediction: e.prediction,
                            actual: actual.clone(),
                            delay_seconds: (at - e.at).max(0.0),
                        }
                    }
                    None if key.is_some_and(|k| self.recent.contains(&(k, true))) => {
                        self.stats.duplicate_feedback += 1;
                        FeedbackOutcome::Duplicate
                    }
                    None => {
                        self.stats.unmatched += 1;
                        FeedbackOutcome::Unmatched
                    }
                }
            }

            fn expire(&mut self, now: f64) -> u64 {
                let now = self.stamp(now);
                let mut n = 0;
                while self
                    .pending
                    .front()
                    .is_some_and(|e| self.expired(e.at, now))
                {
                    self.pending.pop_front();
                    n += 1;
                }
                self.stats.expired += n;
                n
            }

            fn state(&self) -> JoinerState {
                JoinerState {
                    key_scheme: Some(KEY_SCHEME.into()),
                    latest: self.latest,
                    pending: self
                        .pending
                        .iter()
                        .map(|e| PendingState {
                            model: e.model.clone(),
                            version: e.version.clone(),
                            id: None,
                            key: Some(key_text(key_of(&e.model, &e.id))),
                            at: e.at,
                            prediction: match &e.prediction {
                                Outcome::Number(x) => OutcomeState::Number(*x),
                                Outcome::Class(c) => OutcomeState::Class(c.clone()),
                            },
                        })
                        .collect(),
                    recent: Vec::new(),
                    recent_keys: self
                        .recent
                        .iter()
                        .filter(|r| r.1)
                        .map(|r| key_text(r.0))
                        .collect(),
                }
            }
        }

        fn when() -> impl Strategy<Value = When> {
            prop_oneof![
                12 => (0u8..4).prop_map(When::Later),
                2 => (0u8..200).prop_map(When::Later),
                1 => (0u8..50).prop_map(When::Earlier),
                1 => Just(When::NotANumber),
                1 => Just(When::Infinite),
            ]
        }

        fn op(ids: u8) -> impl Strategy<Value = Op> {
            prop_oneof![
                30 => (0u8..2, 0u8..3, 0..ids, any::<bool>(), when()).prop_map(
                    |(model, version, id, class, when)| Op::Inference { model, version, id, class, when }
                ),
                25 => (0u8..2, prop::option::weighted(0.95, 0..ids), prop::bool::weighted(0.1), when())
                    .prop_map(|(model, id, carried, when)| Op::Feedback { model, id, carried, when }),
                4 => when().prop_map(Op::Expire),
                1 => Just(Op::Restore),
            ]
        }

        /// (capacity, ttl, whether positions start just below 2³², ops)
        fn case() -> impl Strategy<Value = (usize, u16, bool, Vec<Op>)> {
            (
                prop_oneof![3 => 0usize..6, 2 => 6usize..40],
                // Long enough for dead slots to pile up before their
                // entries expire, or short.
                prop_oneof![10u16..200, Just(60_000)],
                any::<bool>(),
                prop_oneof![(4u8..12), (12u8..100)],
            )
                .prop_flat_map(|(capacity, ttl, high, ids)| {
                    (
                        Just(capacity),
                        Just(ttl),
                        Just(high),
                        prop::collection::vec(op(ids), 1..400),
                    )
                })
        }

        fn time(now: &mut f64, when: When) -> f64 {
            match when {
                When::Later(d) => {
                    *now += f64::from(d);
                    *now
                }
                When::Earlier(d) => *now - f64::from(d),
                When::NotANumber => f64::NAN,
                When::Infinite => f64::INFINITY,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                rng_seed: RngSeed::Fixed(0x6a6f_696e_2d72_696e),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn the_store_does_what_the_plain_model_does((capacity, ttl, high, ops) in case()) {
                let ttl_d = Duration::from_secs(ttl.into());
                let mut j = FeedbackJoiner::new(ttl_d, capacity);
                if high {
                    j.queue = pending::Store::starting_at(u64::from(u32::MAX) - 20);
                }
                let mut m = Model {
                    ttl: f64::from(ttl),
                    capacity,
                    latest: 0.0,
                    pending: VecDeque::new(),
                    recent: VecDeque::new(),
                    stats: JoinStats::default(),
                };
                let models = ["m0", "m1"];
                let versions = ["v0", "v1", "v2"];
                let mut now = 1000.0;
                for (n, op) in ops.iter().enumerate() {
                    match *op {
                        Op::Inference { model, version, id, class, when } => {
                            let p = if class {
                                Outcome::Class(format!("c{id}"))
                            } else {
                                Outcome::Number(f64::from(id) * 0.5 + f64::from(version))
                            };
                            let t = time(&mut now, when);
                            let (model, version, id) =
                                (models[usize::from(model)], versions[usize::from(version)], id.to_string());
                            j.on_inference(model, version, &id, &p, t);
                            m.inference(model, version, &id, &p, t);
                        }
                        Op::Feedback { model, id, carried, when } => {
                            let t = time(&mut now, when);
                            let model = models[usize::from(model)];
                            let id = id.map(|i| i.to_string());
                            let carried = carried.then_some(Outcome::Number(0.25));
                            let actual = Outcome::Number(1.0);
                            let got = j.on_feedback(model, id.as_deref(), &actual, carried.as_ref(), t);
                            let want = m.feedback(model, id.as_deref(), &actual, carried.as_ref(), t);
                            prop_assert_eq!(got, want, "op {}", n);
                        }
                        Op::Expire(when) => {
                            let t = time(&mut now, when);
                            prop_assert_eq!(j.expire(t), m.expire(t), "op {}", n);
                        }
                        Op::Restore => {
                            let mut fresh = FeedbackJoiner::new(ttl_d, capacity);
                            let text = serde_json::to_string(&j.to_state()).unwrap();
                            let r = fresh.restore(serde_json::from_str(&text).unwrap());
                            prop_assert_eq!(r, JoinRestore { pending: m.pending.len(), dropped: 0 });
                            j = fresh;
                            m.stats = JoinStats::default();
                            m.recent.retain(|r| r.1);
                        }
                    }
                    prop_assert_eq!(j.stats(), m.stats, "op {}", n);
                    prop_assert_eq!(j.len(), m.pending.len(), "op {}", n);
                    prop_assert!(j.queue.len() <= 2 * j.len() + 33, "op {}: {} slots", n, j.queue.len());
                    prop_assert_eq!(j.to_state(), m.state(), "op {}", n);
                    for model in models {
                        for version in versions {
                            let want = m
                                .pending
                                .iter()
                                .filter(|e| e.model == model && e.version == version)
                                .count();
                            prop_assert_eq!(j.pending_count(model, version), want as u64);
                        }
                    }
                }
            }
        }
    }
}
