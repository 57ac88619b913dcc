//! Sliding windows built from fixed-width time slices.
//!
//! # Model
//!
//! Time is cut into slices of a fixed width `w` (e.g. 10 s), aligned to
//! multiples of `w` since the Unix epoch: slice `j` covers `[j·w, (j+1)·w)`.
//! Because the alignment depends on nothing but `w`, the windows of different
//! models (and of different sidecars) line up.
//!
//! A [`SlidingWindow<T>`] is a ring of `n` slices of some [`Slice`] type `T`
//! (counts, moments, a [`Sketch`]). The single writer records into the slice
//! of the current time with [`SlidingWindow::current_mut`]; moving into a new
//! slice clears the slices that fell out of the ring. Readers ask for a window
//! with [`SlidingWindow::merged`], which merges the slices covering
//! `(now − window, now]` into one `T`:
//!
//! * the slices merged are `⌊(now − window)/w⌋ ..= ⌊now/w⌋`, i.e. **the partial
//!   current slice counts**, and so does the whole oldest slice that the
//!   window starts in. Every event of `(now − window, now]` is included;
//!   events up to one slice width older may be included too.
//! * [`SlidingWindow::merged`] returns the seconds actually covered
//!   (`now − ⌊(now − window)/w⌋·w`, between `window` and `window + w`, and
//!   shorter while the ring has not been running that long), which is the
//!   right denominator for rates.
//! * a window longer than [`SlidingWindow::span`] is clamped to the span.
//!
//! # Time going wrong
//!
//! `now` comes from an injected clock and is never trusted to be monotonic:
//!
//! * forward by more than the whole span: every slice is cleared, nothing
//!   panics and nothing stale survives.
//! * backwards by less than the span (clock adjustment, out-of-order batch):
//!   events go into the newest slice, and readers treat `now` as no earlier
//!   than the start of the newest slice.
//! * backwards by more than the span: treated as a restart; everything is
//!   cleared and recording resumes at the new time.
//! * `NaN` or infinite `now`: recorded into the newest slice (or, before
//!   anything was recorded, the slice at the epoch).
//!
//! # Memory
//!
//! A ring that must answer windows up to `S` seconds with slices of `w`
//! seconds holds `n = ⌈S/w⌉ + 1` slices. Memory is `n × size of T`, and
//! merging a window costs one `merge_from` per slice it spans. The width
//! trades memory and merge cost against how much the window over-covers (up
//! to one `w`) and how coarsely it slides:
//!
//! | `T`              | per slice         | 1 h of 10 s (361) | 1 h of 60 s (61) | 5 m of 10 s (31) |
//! |------------------|-------------------|-------------------|------------------|------------------|
//! | `Counts<8>`      | 64 B              | 23 KiB            | 3.9 KiB          | 2 KiB            |
//! | [`Moments`]      | 40 B              | 14 KiB            | 2.4 KiB          | 1.2 KiB          |
//! | [`Sketch`] (1 ms .. 10 s) | 80 B + 5.3–8 KiB | 1.9–2.9 MiB  | 330–490 KiB      | 165–250 KiB      |
//!
//! For latency sketches it pays to keep a separate, shorter ring (for the
//! longest window a *latency* rule uses), or wider slices. A [`Sketch`] slice
//! allocates nothing until it first receives a value, and keeps its array when
//! cleared, so a warm ring records without allocating.

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::float::F64;
use super::sketch::Sketch;

/// Something that summarises the events of one slice of time and can be
/// merged with others of its kind.
///
/// `Default` must be the empty summary, and merging must be associative and
/// commutative (up to floating-point rounding) with `Default` as identity.
pub trait Slice: Default {
    /// Adds the events summarised by `other` to `self`.
    fn merge_from(&mut self, other: &Self);

    /// Forgets everything, returning to the empty summary (keeping
    /// allocations where that helps).
    fn clear(&mut self);
}

/// Narrowest slice accepted; narrower widths are raised to it.
pub const MIN_SLICE_WIDTH: Duration = Duration::from_millis(1);

/// Most slices a ring holds; a longer span is cut to fit.
pub const MAX_SLICES: usize = 100_000;

/// Slice indices are kept within ±2^52 so that index arithmetic never
/// overflows and stays exact in `f64`.
const INDEX_LIMIT: f64 = (1u64 << 52) as f64;

/// A ring of time slices answering sliding-window queries. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct SlidingWindow<T: Slice> {
    slices: Box<[T]>,
    /// Slice width in seconds.
    width: f64,
    /// Absolute index of the newest slice (valid once `started`).
    head: i64,
    /// Absolute index of the slice in which recording (re)started.
    first: i64,
    started: bool,
    /// Position of `head` in `slices`.
    head_slot: usize,
    /// `[head·w, (head+1)·w)`, cached for the hot path; empty before start.
    head_start: f64,
    head_end: f64,
}

impl<T: Slice> SlidingWindow<T> {
    /// A ring of slices `slice_width` wide, able to answer windows up to at
    /// least `max_span`. Widths below [`MIN_SLICE_WIDTH`] are raised to it,
    /// and the number of slices is kept within `2 ..= MAX_SLICES`.
    pub fn new(slice_width: Duration, max_span: Duration) -> Self {
        let width = slice_width.max(MIN_SLICE_WIDTH).as_secs_f64();
        let wanted = (max_span.as_secs_f64() / width).ceil() + 1.0;
        let n = if wanted.is_finite() {
            (wanted as usize).clamp(2, MAX_SLICES)
        } else {
            MAX_SLICES
        };
        Self {
            slices: (0..n).map(|_| T::default()).collect(),
            width,
            head: 0,
            first: 0,
            started: false,
            head_slot: 0,
            head_start: f64::INFINITY,
            head_end: f64::NEG_INFINITY,
        }
    }

    /// Width of one slice.
    pub fn slice_width(&self) -> Duration {
        Duration::from_secs_f64(self.width)
    }

    /// Number of slices in the ring (the current one included).
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// Longest window answered in full: `(slice_count − 1) × slice_width`.
    /// Longer windows are clamped to it.
    pub fn span(&self) -> Duration {
        Duration::from_secs_f64(self.span_secs())
    }

    fn span_secs(&self) -> f64 {
        (self.slices.len() - 1) as f64 * self.width
    }

    /// Index of the slice holding `now`, if `now` is finite.
    fn index_of(&self, now: f64) -> Option<i64> {
        now.is_finite()
            .then(|| (now / self.width).floor().clamp(-INDEX_LIMIT, INDEX_LIMIT) as i64)
    }

    fn slot_of(&self, index: i64) -> usize {
        index.rem_euclid(self.slices.len() as i64) as usize
    }

    /// The slice to record an event at time `now` into, rotating the ring if
    /// `now` has moved into a new slice. O(1) while `now` stays in the
    /// current slice; otherwise O(slices cleared).
    #[inline]
    pub fn current_mut(&mut self, now: f64) -> &mut T {
        // NaN fails both comparisons and takes the slow path.
        if !(now >= self.head_start && now < self.head_end) {
            self.rotate(now);
        }
        &mut self.slices[self.head_slot]
    }

    /// Slow path of [`Self::current_mut`].
    #[cold]
    #[inline(never)]
    fn rotate(&mut self, now: f64) {
        let n = self.slices.len() as i64;
        let index = match self.index_of(now) {
            Some(i) => i,
            None if self.started => return,
            None => 0,
        };
        if !self.started {
            self.started = true;
            self.first = index;
        } else if index > self.head {
            if index - self.head >= n {
                self.slices.iter_mut().for_each(T::clear);
            } else {
                for j in self.head + 1..=index {
                    let s = self.slot_of(j);
                    self.slices[s].clear();
                }
            }
        } else if self.head - index < n {
            // A little back in time (or a float hair off the cached bounds):
            // keep recording into the newest slice.
            return;
        } else {
            // Far back: start over.
            self.slices.iter_mut().for_each(T::clear);
            self.first = index;
        }
        self.head = index;
        self.head_slot = self.slot_of(index);
        self.head_start = index as f64 * self.width;
        self.head_end = (index + 1) as f64 * self.width;
    }

    /// Clears `into`, then merges into it the slices covering
    /// `(now − window, now]` (the partial current slice included; `window`
    /// clamped to [`Self::span`]). Returns the seconds those slices cover up
    /// to `now`, counted from when recording started if that is later: the
    /// denominator for rates. Returns `0` when nothing was ever recorded.
    ///
    /// Does not rotate the ring: slices the writer has not reached yet are
    /// simply empty, and a `now` behind the newest slice is taken as the start
    /// of that slice.
    pub fn merged(&self, now: f64, window: Duration, into: &mut T) -> f64 {
        into.clear();
        if !self.started {
            return 0.0;
        }
        let n = self.slices.len() as i64;
        let now = if now.is_finite() {
            now.max(self.head_start)
        } else {
            self.head_end
        };
        let window = window.as_secs_f64().min(self.span_secs());
        let Some(last) = self.index_of(now) else {
            return 0.0;
        };
        let from = self
            .index_of(now - window)
            .unwrap_or(last)
            .max(last - (n - 1))
            .max(self.first);
        // Slices after `head` were never written; slices before
        // `head − n + 1` were overwritten.
        for j in from.max(self.head - (n - 1))..=last.min(self.head) {
            into.merge_from(&self.slices[self.slot_of(j)]);
        }
        (now - from as f64 * self.width).max(0.0)
    }
}

/// A [`Slice`] that can be written to a snapshot and read back
/// (`--storage.path`, see docs/storage.md).
pub trait SliceState: Slice + Sized {
    /// The serialisable form of a non-empty slice.
    type State: Serialize + DeserializeOwned;

    /// The slice's state, or `None` when it is empty (empty slices are not
    /// written).
    fn to_state(&self) -> Option<Self::State>;

    /// The slice back from its state; the error says what is wrong with it.
    fn from_state(state: Self::State) -> Result<Self, StateError>;
}

/// Why a slice's state in a snapshot is not a slice.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// More bins than a slice holds.
    #[error("{found} bins, at most {max}")]
    Bins {
        /// Bins in the state.
        found: usize,
        /// Most bins a slice holds.
        max: usize,
    },
    /// Not the number of counters the slice has.
    #[error("{found} counters, expected {expected}")]
    Counters {
        /// Counters in the state.
        found: usize,
        /// Counters of the slice.
        expected: usize,
    },
    /// Counts that do not add up to the total they come with.
    #[error("bins add up to {total}, count says {count}")]
    Total {
        /// The sum of the counts.
        total: u64,
        /// The total given.
        count: u64,
    },
    /// Parts that exceed the whole they are part of.
    #[error("counts exceed the {total} {what}")]
    Exceeds {
        /// The whole.
        total: u64,
        /// What the whole counts.
        what: &'static str,
    },
    /// A minimum and a maximum that cannot both hold.
    #[error("min {min} and max {max} do not fit")]
    Bounds {
        /// The minimum.
        min: f64,
        /// The maximum.
        max: f64,
    },
    /// A minimum above the maximum.
    #[error("min {min} above max {max}")]
    MinAboveMax {
        /// The minimum.
        min: f64,
        /// The maximum.
        max: f64,
    },
    /// A bin key out of the range keys take.
    #[error("key {0} out of range")]
    Key(i64),
}

/// Why a ring could not be restored from a snapshot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestoreError {
    /// The ring recorded events before the restore.
    #[error("the window has already recorded events")]
    Started,
    /// The slices have another width than the ring's.
    #[error("slice width {snapshot}s in the snapshot, {now}s now")]
    Width {
        /// In the snapshot, in seconds.
        snapshot: f64,
        /// Of the ring, in seconds.
        now: f64,
    },
    /// The newest slice's index is out of range.
    #[error("slice index {0} out of range")]
    Index(i64),
    /// A slice's state is invalid.
    #[error("slice {index}: {error}")]
    Slice {
        /// Its absolute index.
        index: i64,
        /// What is wrong with it.
        error: StateError,
    },
}

/// A [`SlidingWindow`] as written to a snapshot: its slice width, the
/// absolute (epoch-aligned) indices of its newest slice and of the slice
/// recording started in, and its non-empty slices by absolute index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingState<S> {
    /// Slice width in seconds.
    pub width: f64,
    /// Absolute index of the newest slice.
    pub head: i64,
    /// Absolute index of the slice in which recording started.
    pub first: i64,
    /// `(absolute index, state)` of every non-empty slice, oldest first.
    pub slices: Vec<(i64, S)>,
}

impl<T: SliceState> SlidingWindow<T> {
    /// The ring as written to a snapshot; `None` if nothing was ever
    /// recorded.
    pub fn to_state(&self) -> Option<RingState<T::State>> {
        if !self.started {
            return None;
        }
        let n = self.slices.len() as i64;
        let slices = (self.head - (n - 1)).max(self.first)..=self.head;
        Some(RingState {
            width: self.width,
            head: self.head,
            first: self.first,
            slices: slices
                .filter_map(|j| Some((j, self.slices[self.slot_of(j)].to_state()?)))
                .collect(),
        })
    }

    /// Fills a ring that has recorded nothing yet from `state`, as it stood
    /// at `now`: slices that have left the ring by `now` (older than its span
    /// before `now`, or before the snapshot's own newest slice) are dropped,
    /// and if every slice has, nothing is restored. Returns the number of
    /// slices restored.
    ///
    /// Fails, leaving the ring empty, when the slice width differs from this
    /// ring's (slices of another width do not line up), when the ring has
    /// already recorded something, or when a slice's state is invalid.
    pub fn restore(&mut self, state: RingState<T::State>, now: f64) -> Result<usize, RestoreError> {
        if self.started {
            return Err(RestoreError::Started);
        }
        if state.width != self.width {
            return Err(RestoreError::Width {
                snapshot: state.width,
                now: self.width,
            });
        }
        let limit = INDEX_LIMIT as i64;
        if !(-limit..=limit).contains(&state.head) {
            return Err(RestoreError::Index(state.head));
        }
        let n = self.slices.len() as i64;
        let newest = self.index_of(now).map_or(state.head, |i| i.max(state.head));
        let oldest = newest - (n - 1);
        if state.head < oldest {
            // Every slice has left the ring since.
            return Ok(0);
        }
        let mut restored = 0;
        for (j, s) in state.slices {
            if j < oldest || j > state.head {
                continue;
            }
            let slice = match T::from_state(s) {
                Ok(slice) => slice,
                Err(error) => {
                    self.slices.iter_mut().for_each(T::clear);
                    return Err(RestoreError::Slice { index: j, error });
                }
            };
            let slot = self.slot_of(j);
            self.slices[slot] = slice;
            restored += 1;
        }
        self.started = true;
        self.head = state.head;
        self.first = state.first.clamp(-limit, state.head);
        self.head_slot = self.slot_of(state.head);
        self.head_start = state.head as f64 * self.width;
        self.head_end = (state.head + 1) as f64 * self.width;
        Ok(restored)
    }
}

impl Slice for Sketch {
    fn merge_from(&mut self, other: &Self) {
        self.merge(other);
    }

    fn clear(&mut self) {
        Sketch::clear(self);
    }
}

/// A plain event counter.
impl Slice for u64 {
    fn merge_from(&mut self, other: &Self) {
        *self = self.saturating_add(*other);
    }

    fn clear(&mut self) {
        *self = 0;
    }
}

/// `N` counters in one slice (e.g. requests, errors, positives,
/// low-confidence predictions, …), addressed by index constants chosen by the
/// caller. Out-of-range indices are ignored on write and read as `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts<const N: usize> {
    /// The counters.
    pub counts: [u64; N],
}

impl<const N: usize> Default for Counts<N> {
    fn default() -> Self {
        Self { counts: [0; N] }
    }
}

impl<const N: usize> Counts<N> {
    /// Adds `n` to counter `i` (saturating).
    #[inline]
    pub fn add(&mut self, i: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(n);
        }
    }

    /// Adds one to counter `i`.
    #[inline]
    pub fn incr(&mut self, i: usize) {
        self.add(i, 1);
    }

    /// Value of counter `i` (`0` when out of range).
    pub fn get(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// `counter a / counter b`, `None` when `b` is zero.
    pub fn ratio(&self, a: usize, b: usize) -> Option<f64> {
        let b = self.get(b);
        (b > 0).then(|| self.get(a) as f64 / b as f64)
    }
}

impl<const N: usize> Slice for Counts<N> {
    fn merge_from(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
    }

    fn clear(&mut self) {
        self.counts = [0; N];
    }
}

/// Count, mean, variance, min and max of a stream of numbers.
///
/// Uses Welford's update on insert and Chan et al.'s pairwise combination on
/// merge, both of which work on deviations from the running mean. Unlike
/// running sums of `x` and `x²`, they do not lose the variance to cancellation
/// when values are large relative to their spread (incomes around 50 000 that
/// vary by a few units, timestamps, …). Non-finite values are rejected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// Empty moments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `x`. Returns `false`, leaving `self` unchanged, for `NaN` and
    /// infinities.
    #[inline]
    pub fn insert(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        true
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of the values (`mean × count`).
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }

    /// Mean of the values.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Population variance (divided by `n`).
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2 / self.count as f64).max(0.0))
    }

    /// Population standard deviation (divided by `n`).
    pub fn stddev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Sample variance (divided by `n − 1`); `None` below two values.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).max(0.0))
    }

    /// Sample standard deviation (divided by `n − 1`); `None` below two values.
    pub fn sample_stddev(&self) -> Option<f64> {
        self.sample_variance().map(f64::sqrt)
    }

    /// Smallest value recorded.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value recorded.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
}

impl Slice for Moments {
    fn merge_from(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let count = self.count.saturating_add(other.count);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / n);
        self.m2 += other.m2 + delta * delta * (na * nb / n);
        self.count = count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl SliceState for u64 {
    type State = u64;

    fn to_state(&self) -> Option<u64> {
        (*self != 0).then_some(*self)
    }

    fn from_state(state: u64) -> Result<Self, StateError> {
        Ok(state)
    }
}

impl<const N: usize> SliceState for Counts<N> {
    type State = Vec<u64>;

    fn to_state(&self) -> Option<Vec<u64>> {
        self.counts
            .iter()
            .any(|&c| c != 0)
            .then(|| self.counts.to_vec())
    }

    fn from_state(state: Vec<u64>) -> Result<Self, StateError> {
        let counts = state
            .try_into()
            .map_err(|v: Vec<u64>| StateError::Counters {
                found: v.len(),
                expected: N,
            })?;
        Ok(Counts { counts })
    }
}

/// `[count, mean, m2, min, max]`.
pub type MomentsState = (u64, F64, F64, F64, F64);

impl SliceState for Moments {
    type State = MomentsState;

    fn to_state(&self) -> Option<MomentsState> {
        (self.count > 0).then_some((
            self.count,
            F64(self.mean),
            F64(self.m2),
            F64(self.min),
            F64(self.max),
        ))
    }

    fn from_state((count, mean, m2, min, max): MomentsState) -> Result<Self, StateError> {
        if count == 0 {
            return Ok(Moments::default());
        }
        if min.0 > max.0 {
            return Err(StateError::MinAboveMax {
                min: min.0,
                max: max.0,
            });
        }
        Ok(Moments {
            count,
            mean: mean.0,
            m2: m2.0,
            min: min.0,
            max: max.0,
        })
    }
}

/// The bin indices of a stream's newest values, at most `capacity` of
/// them: what a drift rule with `max_samples` reads. Recording is one store
/// into a ring; [`RecentBins::newest`] counts the newest `n` of them.
///
/// Next to a [`SlidingWindow<BinCounts>`](crate::stats::drift::BinCounts)
/// fed the same values, the values that window holds are always the newest
/// ones recorded (every value goes into its newest slice, and a window is
/// the newest slices), so the newest `min(N, n)` of the ring, `n` being the
/// window's total, are the newest `N` values inside the window, as long as
/// the ring has received that many since it started.
#[derive(Debug, Clone, Default)]
pub struct RecentBins {
    /// The values held: in order until it is full, then a ring whose
    /// oldest value is at `head`. Allocated (to the capacity) at the first
    /// value, so a feature without values in bins costs nothing.
    bins: Vec<u16>,
    /// How many values it keeps.
    capacity: usize,
    /// Where the next value goes once it is full.
    head: usize,
}

impl RecentBins {
    /// An empty ring of `capacity` values.
    pub fn new(capacity: usize) -> Self {
        RecentBins {
            bins: Vec::new(),
            capacity,
            head: 0,
        }
    }

    /// How many values it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.bins.len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// Records the bin of one value; the oldest value is forgotten when it
    /// is full. Bins past `u16::MAX` (more than
    /// [`MAX_BINS`](crate::stats::drift::MAX_BINS)) are not recorded.
    #[inline]
    pub fn push(&mut self, bin: usize) {
        let Ok(bin) = u16::try_from(bin) else { return };
        if self.bins.len() < self.capacity {
            if self.bins.capacity() == 0 {
                self.bins.reserve_exact(self.capacity);
            }
            self.bins.push(bin);
            return;
        }
        if let Some(slot) = self.bins.get_mut(self.head) {
            *slot = bin;
            self.head = if self.head + 1 == self.capacity {
                0
            } else {
                self.head + 1
            };
        }
    }

    /// Counts the newest `n` values into `into` (cleared first), bin by
    /// bin; `None` when it holds fewer than `n`.
    pub fn newest(&self, n: usize, into: &mut crate::stats::drift::BinCounts) -> Option<()> {
        let len = self.bins.len();
        if n > len {
            return None;
        }
        into.clear();
        // The newest values end just before `head` (the end, until full),
        // possibly wrapping around.
        let head = if len < self.capacity { len } else { self.head };
        let (tail, wrapped) = if n <= head {
            (&self.bins[head - n..head], &[][..])
        } else {
            (&self.bins[..head], &self.bins[len - (n - head)..])
        };
        for &b in tail.iter().chain(wrapped) {
            into.add(usize::from(b), 1);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest `n` values of a ring, against the sequence pushed, for
    /// every `n` as it fills and wraps; bins beyond `u16` are not kept.
    #[test]
    fn recent_bins_count_the_newest_values() {
        use crate::stats::drift::BinCounts;
        let mut r = RecentBins::new(7);
        assert_eq!((r.capacity(), r.len()), (7, 0));
        let mut pushed = Vec::new();
        let mut into = BinCounts::with_bins(5);
        for k in 0..40usize {
            let bin = (k * 7 + k / 3) % 5;
            r.push(bin);
            pushed.push(bin);
            assert_eq!(r.len(), pushed.len().min(7));
            for n in 0..=8 {
                let got = r.newest(n, &mut into).map(|()| into.counts().to_vec());
                let want = (n <= pushed.len().min(7)).then(|| {
                    let mut c = vec![0u64; 5];
                    for b in &pushed[pushed.len() - n..] {
                        c[*b] += 1;
                    }
                    c
                });
                assert_eq!(got, want, "{n} newest after {k}");
            }
        }
        r.push(70_000);
        assert_eq!(r.len(), 7);
        assert!(RecentBins::new(0).is_empty());
        let mut none = RecentBins::new(0);
        none.push(1);
        assert!(none.is_empty() && none.newest(1, &mut into).is_none());
    }

    const S10: Duration = Duration::from_secs(10);
    const M1: Duration = Duration::from_secs(60);

    /// Count of events in the window ending at `now`.
    fn count_in(w: &SlidingWindow<u64>, now: f64, window: Duration) -> u64 {
        let mut out = 0;
        w.merged(now, window, &mut out);
        out
    }

    #[test]
    fn geometry() {
        let w = SlidingWindow::<u64>::new(S10, Duration::from_secs(3600));
        assert_eq!(w.slice_count(), 361);
        assert_eq!(w.span(), Duration::from_secs(3600));
        assert_eq!(w.slice_width(), S10);
        // Spans that are not a multiple of the width round up.
        let w = SlidingWindow::<u64>::new(S10, Duration::from_secs(65));
        assert_eq!(w.span(), Duration::from_secs(70));
        // Degenerate arguments are clamped, not panicked on.
        let w = SlidingWindow::<u64>::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(w.slice_count(), 2);
        assert_eq!(w.slice_width(), MIN_SLICE_WIDTH);
        let w = SlidingWindow::<u64>::new(MIN_SLICE_WIDTH, Duration::MAX);
        assert_eq!(w.slice_count(), MAX_SLICES);
    }

    #[test]
    fn nothing_recorded_means_empty_windows() {
        let w = SlidingWindow::<u64>::new(S10, M1);
        let mut out = 5;
        assert_eq!(w.merged(1000.0, M1, &mut out), 0.0);
        assert_eq!(out, 0, "into is cleared");
    }

    #[test]
    fn a_value_stays_while_its_window_covers_it_and_then_goes() {
        let mut w = SlidingWindow::<u64>::new(S10, M1);
        *w.current_mut(1000.5) += 1;
        // Windows covering t = 1000.5.
        assert_eq!(count_in(&w, 1000.5, S10), 1);
        assert_eq!(count_in(&w, 1009.9, S10), 1);
        assert_eq!(count_in(&w, 1010.4, S10), 1);
        assert_eq!(count_in(&w, 1059.0, M1), 1);
        // The whole slice [1000, 1010) is in the window while now − window
        // is inside it: up to one width of over-coverage.
        assert_eq!(count_in(&w, 1019.9, S10), 1);
        // Gone once now − window has passed the slice.
        assert_eq!(count_in(&w, 1020.0, S10), 0);
        assert_eq!(count_in(&w, 1069.9, M1), 1);
        assert_eq!(count_in(&w, 1070.0, M1), 0);
        // The writer moving on clears it for good.
        *w.current_mut(1070.0) += 0;
        assert_eq!(count_in(&w, 1070.0, M1), 0);
        assert_eq!(count_in(&w, 1069.0, M1), 0);
    }

    #[test]
    fn slice_boundaries_are_aligned_to_the_epoch() {
        let mut w = SlidingWindow::<u64>::new(S10, M1);
        *w.current_mut(1009.999) += 1;
        *w.current_mut(1010.0) += 10;
        // A zero window is the current slice alone.
        assert_eq!(count_in(&w, 1010.0, Duration::ZERO), 10);
        // A reader behind the writer is taken to the start of its slice.
        assert_eq!(count_in(&w, 1009.999, Duration::ZERO), 10);
        *w.current_mut(1019.999) += 100;
        assert_eq!(count_in(&w, 1019.999, Duration::ZERO), 110);
        *w.current_mut(1020.0) += 1000;
        assert_eq!(count_in(&w, 1020.0, Duration::ZERO), 1000);
        assert_eq!(count_in(&w, 1025.0, S10), 1110);
        assert_eq!(count_in(&w, 1030.0, S10), 1000);
        assert_eq!(count_in(&w, 1030.0, Duration::from_secs(30)), 1111);
        // Two rings with different start times line up.
        let mut a = SlidingWindow::<u64>::new(S10, M1);
        let mut b = SlidingWindow::<u64>::new(S10, M1);
        *a.current_mut(1001.0) += 1;
        *b.current_mut(1008.0) += 1;
        assert_eq!(count_in(&a, 1019.0, S10), count_in(&b, 1019.0, S10));
        assert_eq!(count_in(&a, 1020.0, S10), count_in(&b, 1020.0, S10));
    }

    #[test]
    fn covered_seconds_are_the_rate_denominator() {
        let mut w = SlidingWindow::<u64>::new(S10, Duration::from_secs(300));
        let mut n = 0;
        // Warm-up: recording started in the slice at 1000.
        *w.current_mut(1000.5) += 1;
        assert_eq!(w.merged(1003.0, Duration::from_secs(300), &mut n), 3.0);
        assert_eq!(n, 1);
        // One event a second: the rate comes out right wherever now is.
        let mut checked = 0;
        for t in 1..1000 {
            *w.current_mut(1000.0 + t as f64) += 1;
            if t >= 400 && t % 37 == 0 {
                let now = 1000.0 + t as f64 + 0.5;
                let covered = w.merged(now, Duration::from_secs(300), &mut n);
                assert!((300.0..310.0).contains(&covered), "{covered}");
                assert!((n as f64 / covered - 1.0).abs() < 0.01, "{n} / {covered}");
                checked += 1;
            }
        }
        assert!(checked > 10);
    }

    #[test]
    fn windows_longer_than_the_span_are_clamped() {
        let mut w = SlidingWindow::<u64>::new(S10, M1);
        for t in (0..200).map(|t| 1000.0 + t as f64) {
            *w.current_mut(t) += 1;
        }
        let mut a = 0;
        let mut b = 0;
        let ca = w.merged(1199.0, Duration::from_secs(3600), &mut a);
        let cb = w.merged(1199.0, M1, &mut b);
        assert_eq!((a, ca), (b, cb));
        // Slices 113..=119: the events at 1130, 1131, …, 1199.
        assert_eq!(a, 70);
        assert_eq!(ca, 69.0);
    }

    #[test]
    fn time_jumping_forward_clears_what_fell_out() {
        let mut w = SlidingWindow::<u64>::new(S10, M1);
        *w.current_mut(1000.0) += 1;
        *w.current_mut(1030.0) += 2;
        // Forward by less than the span: the older value leaves, the newer stays.
        *w.current_mut(1075.0) += 4;
        assert_eq!(count_in(&w, 1075.0, M1), 6);
        // Far beyond the span (and a huge timestamp): nothing stale survives.
        *w.current_mut(1e12) += 8;
        assert_eq!(count_in(&w, 1e12, M1), 8);
        *w.current_mut(f64::MAX) += 16;
        assert_eq!(count_in(&w, f64::MAX, M1), 16);
    }

    #[test]
    fn time_going_backwards_never_panics() {
        let mut w = SlidingWindow::<u64>::new(S10, M1);
        *w.current_mut(1035.0) += 1;
        // A little back: recorded into the newest slice.
        *w.current_mut(1012.0) += 2;
        assert_eq!(count_in(&w, 1035.0, Duration::ZERO), 3);
        assert_eq!(count_in(&w, 1012.0, Duration::ZERO), 3);
        // Forward again: ordinary rotation.
        *w.current_mut(1041.0) += 4;
        assert_eq!(count_in(&w, 1041.0, Duration::ZERO), 4);
        assert_eq!(count_in(&w, 1041.0, S10), 7);
        // Far back: a restart.
        *w.current_mut(500.0) += 8;
        assert_eq!(count_in(&w, 500.0, M1), 8);
        // Before the epoch, and garbage times.
        *w.current_mut(-1e9) += 16;
        assert_eq!(count_in(&w, -1e9, M1), 16);
        *w.current_mut(f64::NAN) += 32;
        *w.current_mut(f64::NEG_INFINITY) += 64;
        assert_eq!(count_in(&w, -1e9, M1), 112);
        assert_eq!(count_in(&w, f64::NAN, M1), 112);
        // NaN before anything was recorded is taken as the epoch.
        let mut fresh = SlidingWindow::<u64>::new(S10, M1);
        *fresh.current_mut(f64::NAN) += 1;
        assert_eq!(count_in(&fresh, 5.0, M1), 1);
    }

    /// Exact moments by two passes.
    fn exact_moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var)
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    fn unit(i: u64) -> f64 {
        let x = (i.wrapping_add(1))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn merged_moments_equal_moments_of_all_data() {
        // Income-like: around 50 000, spread of a few units.
        let xs: Vec<f64> = (0..50_000u64)
            .map(|i| 50_000.0 + 3.0 * (unit(i) - 0.5))
            .collect();
        let mut w = SlidingWindow::<Moments>::new(S10, Duration::from_secs(300));
        for (i, &x) in xs.iter().enumerate() {
            // 50 000 events over 300 s.
            assert!(w.current_mut(2000.0 + i as f64 * 0.006).insert(x));
        }
        let mut m = Moments::new();
        w.merged(2299.9, Duration::from_secs(300), &mut m);
        let (mean, var) = exact_moments(&xs);
        assert_eq!(m.count(), xs.len() as u64);
        assert!((m.mean().unwrap() - mean).abs() < 1e-9 * mean);
        assert!(
            (m.variance().unwrap() - var).abs() < 1e-9 * var,
            "{} vs {var}",
            m.variance().unwrap()
        );
        assert_eq!(m.min(), xs.iter().copied().reduce(f64::min));
        assert_eq!(m.max(), xs.iter().copied().reduce(f64::max));
        // Running sums of x and x² lose most of the digits on the same data,
        // which is why Moments does not use them.
        let n = xs.len() as f64;
        let s1: f64 = xs.iter().sum();
        let s2: f64 = xs.iter().map(|x| x * x).sum();
        let naive = s2 / n - (s1 / n) * (s1 / n);
        assert!((naive - var).abs() > 1e-6 * var);
    }

    #[test]
    fn moments_basics_and_rejects() {
        assert_eq!(std::mem::size_of::<Moments>(), 40);
        assert_eq!(std::mem::size_of::<Counts<8>>(), 64);
        let mut m = Moments::new();
        assert!(m.is_empty());
        assert_eq!(m.mean(), None);
        assert_eq!(m.variance(), None);
        assert!(!m.insert(f64::NAN));
        assert!(!m.insert(f64::INFINITY));
        assert!(m.is_empty());
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            assert!(m.insert(x));
        }
        assert_eq!(m.mean(), Some(5.0));
        assert_eq!(m.stddev(), Some(2.0));
        assert_eq!(m.sample_variance(), Some(32.0 / 7.0));
        assert_eq!(m.sum(), 40.0);
        // Merging with empty on either side changes nothing.
        let mut e = Moments::new();
        e.merge_from(&m);
        assert_eq!(e, m);
        e.merge_from(&Moments::new());
        assert_eq!(e, m);
        e.clear();
        assert!(e.is_empty());
    }

    #[test]
    fn merged_sketch_quantiles_match_the_sketch_of_all_data() {
        let mut w = SlidingWindow::<Sketch>::new(S10, Duration::from_secs(300));
        let mut all = Sketch::new();
        for i in 0..30_000u64 {
            let v = 0.005 * (1.0 + 200.0 * unit(i).powi(4));
            assert!(w.current_mut(3000.0 + i as f64 * 0.01).insert(v));
            all.insert(v);
        }
        let mut m = Sketch::new();
        w.merged(3299.99, Duration::from_secs(300), &mut m);
        assert_eq!(m.count(), all.count());
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(m.quantile(q), all.quantile(q), "q={q}");
        }
        // A shorter window sees only its part.
        w.merged(3299.99, Duration::from_secs(60), &mut m);
        assert_eq!(m.count(), 7000); // slices 323..=329: [3230, 3300)
    }

    #[test]
    fn counts_slice() {
        const REQ: usize = 0;
        const ERR: usize = 1;
        let mut w = SlidingWindow::<Counts<2>>::new(S10, M1);
        for t in 0..100 {
            let c = w.current_mut(100.0 + t as f64);
            c.incr(REQ);
            if t % 10 == 0 {
                c.incr(ERR);
            }
            c.add(7, 1); // out of range: ignored
        }
        let mut c = Counts::default();
        w.merged(199.0, M1, &mut c);
        assert_eq!(c.get(REQ), 70);
        assert_eq!(c.get(ERR), 7);
        assert_eq!(c.get(7), 0);
        assert_eq!(c.ratio(ERR, REQ), Some(0.1));
        assert_eq!(Counts::<2>::default().ratio(ERR, REQ), None);
    }

    /// A ring through JSON, as a snapshot carries it.
    fn through_json<T: SliceState>(w: &SlidingWindow<T>) -> RingState<T::State> {
        let text = serde_json::to_string(&w.to_state().unwrap()).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_restored_ring_reads_as_the_original() {
        let mut w = SlidingWindow::<Moments>::new(S10, M1);
        let mut c = SlidingWindow::<Counts<2>>::new(S10, M1);
        let mut n = SlidingWindow::<u64>::new(S10, M1);
        for i in 0..500u64 {
            let t = 1000.0 + i as f64 * 0.2;
            w.current_mut(t).insert(50_000.0 + unit(i));
            c.current_mut(t).incr((i % 2) as usize);
            *n.current_mut(t) += 1;
        }
        let now = 1099.5;
        let mut w2 = SlidingWindow::<Moments>::new(S10, M1);
        let mut c2 = SlidingWindow::<Counts<2>>::new(S10, M1);
        let mut n2 = SlidingWindow::<u64>::new(S10, M1);
        assert_eq!(w2.restore(through_json(&w), now).unwrap(), 7);
        c2.restore(through_json(&c), now).unwrap();
        n2.restore(through_json(&n), now).unwrap();
        for later in [now, 1105.0, 1130.0, 1158.0, 1170.0] {
            for win in [Duration::ZERO, S10, Duration::from_secs(30), M1] {
                let (mut a, mut b) = (Moments::new(), Moments::new());
                assert_eq!(w.merged(later, win, &mut a), w2.merged(later, win, &mut b));
                assert_eq!(a, b, "{later} {win:?}");
                let (mut a, mut b) = (Counts::default(), Counts::default());
                assert_eq!(c.merged(later, win, &mut a), c2.merged(later, win, &mut b));
                assert_eq!(a, b);
                assert_eq!(count_in(&n, later, win), count_in(&n2, later, win));
            }
        }
        // Recording goes on where it left off, in the same slices.
        *n.current_mut(1101.0) += 5;
        *n2.current_mut(1101.0) += 5;
        assert_eq!(count_in(&n, 1101.0, M1), count_in(&n2, 1101.0, M1));
        assert_eq!(count_in(&n2, 1101.0, Duration::ZERO), 5);
    }

    #[test]
    fn slices_older_than_the_span_are_not_restored() {
        let mut n = SlidingWindow::<u64>::new(S10, M1);
        for t in 0..60 {
            *n.current_mut(1000.0 + t as f64) += 1;
        }
        let state = n.to_state().unwrap();
        assert_eq!(state.head, 105);
        assert_eq!(state.slices.len(), 6);
        // Restored 30 s later: the slices before 1030 have left the ring.
        let mut r = SlidingWindow::<u64>::new(S10, M1);
        assert_eq!(r.restore(state.clone(), 1090.0).unwrap(), 3);
        assert_eq!(count_in(&r, 1090.0, M1), 30);
        let mut all = 0;
        r.merged(1059.0, M1, &mut all);
        assert_eq!(all, 30, "older slices are gone, not hidden");
        // Restored after more than the span: nothing.
        let mut r = SlidingWindow::<u64>::new(S10, M1);
        assert_eq!(r.restore(state.clone(), 1200.0).unwrap(), 0);
        assert_eq!(r.to_state(), None);
        assert_eq!(r.merged(1200.0, M1, &mut all), 0.0);
        // Restored into a shorter ring: only what it spans.
        let mut r = SlidingWindow::<u64>::new(S10, Duration::from_secs(20));
        assert_eq!(r.restore(state, 1059.0).unwrap(), 3);
        assert_eq!(count_in(&r, 1059.0, Duration::from_secs(20)), 30);
    }

    #[test]
    fn a_ring_of_another_width_or_a_bad_slice_is_refused() {
        let mut n = SlidingWindow::<Counts<2>>::new(S10, M1);
        n.current_mut(1000.0).incr(0);
        let state = n.to_state().unwrap();
        let mut r = SlidingWindow::<Counts<2>>::new(Duration::from_secs(5), M1);
        let e = r.restore(state.clone(), 1000.0).unwrap_err();
        assert_eq!(e.to_string(), "slice width 10s in the snapshot, 5s now");
        assert_eq!(r.to_state(), None);
        let mut bad = state.clone();
        bad.slices[0].1 = vec![1, 2, 3];
        let mut r = SlidingWindow::<Counts<2>>::new(S10, M1);
        let e = r.restore(bad, 1000.0).unwrap_err();
        assert_eq!(e.to_string(), "slice 100: 3 counters, expected 2");
        assert_eq!(r.to_state(), None);
        // Only into a ring that has recorded nothing.
        let mut used = SlidingWindow::<Counts<2>>::new(S10, M1);
        used.current_mut(1000.0).incr(1);
        assert!(used.restore(state, 1000.0).is_err());
        // Moments that cannot be.
        assert!(Moments::from_state((2, F64(1.0), F64(0.0), F64(3.0), F64(1.0))).is_err());
        let mut m = Moments::new();
        m.insert(1e308);
        m.insert(-1e308);
        // Overflowed to infinities, which JSON numbers cannot carry.
        let text = serde_json::to_string(&m.to_state().unwrap()).unwrap();
        assert!(text.contains("-Inf"), "{text}");
        let back = Moments::from_state(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(
            (back.count(), back.min(), back.max()),
            (2, m.min(), m.max())
        );
        assert_eq!(back.mean(), m.mean());
    }
}
