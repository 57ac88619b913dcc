//! A mergeable, relative-error quantile sketch for latencies (seconds).
//!
//! # The math
//!
//! Positive values are mapped to logarithmic buckets. With the relative
//! accuracy [`RELATIVE_ACCURACY`] `α` and `γ = (1 + α) / (1 − α)`, the value
//! `v` goes to the bucket with key
//!
//! ```text
//! k(v) = ⌈ ln(v) / ln(γ) ⌉        bucket k holds the values in (γ^(k−1), γ^k]
//! ```
//!
//! and a bucket is represented by `x̂(k) = 2·γ^k / (γ + 1) = (1 − α)·γ^k`. For
//! every `v` in the bucket, `|x̂(k) − v| / v ≤ α`: at the lower edge the error is
//! `2γ/(γ+1) − 1 = α`, at the upper edge `1 − 2/(γ+1) = α`, and it is smaller
//! in between.
//!
//! [`Sketch::quantile`] looks for the value of rank `r = ⌊q·(n − 1)⌋` (0-based,
//! the lower nearest rank) by walking the cumulative counts. Because `k(v)` is
//! monotone, the bucket reached holds the `r`-th smallest value itself, so the
//! answer is within `α` of a value of the true rank. The answer is finally
//! clamped to the exact `[min, max]`, which can only move it closer. With
//! `α = 0.75 %` there is a wide margin below the 1 % promised to rules; the
//! tests check both bounds on lognormal and bimodal data.
//!
//! Values below [`MIN_VALUE`] (1 ns), including exact zeros, are counted in a
//! separate zero bucket, whose estimate is the exact minimum. `NaN`, negative
//! and infinite values are rejected: [`Sketch::insert`] returns `false` and the
//! sketch is unchanged, so the caller can count rejects. (`-0.0` is zero.)
//!
//! # The memory bound
//!
//! Counts (`u64`) live in one dense array over a contiguous key range that
//! grows (by doubling, with slack on both sides) as values arrive, and is
//! re-centred in place when the data move. The array never exceeds
//! [`MAX_BINS`] = 2048 bins (16 KiB), which spans a ratio of
//! `γ^2048 ≈ 2·10^13` between the smallest and the largest value: far more
//! than any latency distribution. If a value would stretch the range past the
//! cap anyway, the **lowest** bins are collapsed into the lowest bin that
//! survives: low quantiles then over-estimate (they report at most the
//! collapsed bin's value), high quantiles never lose accuracy. Merging obeys
//! the same rule. [`Sketch::is_collapsed`] tells when it has happened.
//!
//! Typical sizes: the occupied bins are fixed by the range of values, the
//! allocated array by the order in which the range was discovered (at most
//! double the occupied bins, plus 64 bins of slack):
//!
//! | latencies seen  | occupied bins | array allocated      |
//! |-----------------|---------------|----------------------|
//! | 10 ms .. 100 ms | 155           | 256 bins: 2 KiB      |
//! | 1 ms .. 1 s     | 461           | 525–1024: 4.1–8 KiB  |
//! | 1 ms .. 10 s    | 615           | 679–1024: 5.3–8 KiB  |
//! | (cap)           | 2048          | 2048 bins: 16 KiB    |
//!
//! plus 80 bytes for the struct itself.
//!
//! The array starts at 128 bins (1 KiB) on the first insert; [`Sketch::new`]
//! allocates nothing. [`Sketch::clear`] keeps the array, so a sketch reused as
//! a window slice stops allocating once it has seen its usual range.
//!
//! # Cost
//!
//! [`Sketch::insert`] is O(1): one `ln`, a multiply, a range check and an
//! add; it allocates only when a value falls outside the array (cold path).
//! [`Sketch::merge`] is O(bins of the other sketch) and
//! [`Sketch::quantile`] O(occupied bins).

use super::float::F64;
use super::window::{SliceState, StateError};

/// Relative accuracy `α` of every quantile estimate (0.75 %).
pub const RELATIVE_ACCURACY: f64 = 0.0075;

// Rules are promised 1 %.
const _: () = assert!(RELATIVE_ACCURACY < 0.01);

/// `γ = (1 + α) / (1 − α)`, the ratio between neighbouring bucket bounds.
const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

/// `ln(γ)`; checked against the computed value in the tests.
const LN_GAMMA: f64 = 0.015_000_281_259_492_598;

/// `1 / ln(γ)`.
const INV_LN_GAMMA: f64 = 1.0 / LN_GAMMA;

/// `2 / (γ + 1)`: scales the upper bucket bound to the bucket's representative.
const REPRESENTATIVE: f64 = 2.0 / (1.0 + GAMMA);

/// Smallest value with a bucket of its own (1 ns); smaller values, and zeros,
/// go to the zero bucket.
pub const MIN_VALUE: f64 = 1e-9;

/// Largest number of bins (`u64` counts) a sketch ever holds.
pub const MAX_BINS: usize = 2048;

/// Size of the array allocated on the first insert.
const INITIAL_BINS: usize = 128;

/// Bins of slack added on each side when the array grows.
const SLACK: usize = 32;

/// Key of a value `v >= MIN_VALUE` (finite).
#[inline(always)]
fn key_of(v: f64) -> i32 {
    // ln(f64::MAX) / ln(γ) ≈ 47 319 and ln(1e-9) / ln(γ) ≈ −1 382: fits i32.
    (v.ln() * INV_LN_GAMMA).ceil() as i32
}

/// Representative value of the bucket with key `k`.
#[inline]
fn value_of(k: i32) -> f64 {
    (f64::from(k) * LN_GAMMA).exp() * REPRESENTATIVE
}

/// A log-bucketed quantile sketch with relative accuracy [`RELATIVE_ACCURACY`].
///
/// See the [module documentation](self) for the guarantees and the memory
/// bound.
#[derive(Debug, Clone)]
pub struct Sketch {
    /// Dense counts; `bins[i]` counts the bucket with key `offset + i`.
    bins: Vec<u64>,
    /// Key of `bins[0]`.
    offset: i32,
    /// Smallest and largest key that may be non-zero (`lo > hi` when the array
    /// holds nothing). All bins outside `lo..=hi` are zero.
    lo: i32,
    hi: i32,
    /// Values below [`MIN_VALUE`].
    zero_count: u64,
    /// All accepted values, zero bucket included.
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Whether low bins were ever folded together to respect [`MAX_BINS`].
    collapsed: bool,
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new()
    }
}

impl Sketch {
    /// An empty sketch. Allocates nothing until the first positive value.
    pub const fn new() -> Self {
        Self {
            bins: Vec::new(),
            offset: 0,
            lo: i32::MAX,
            hi: i32::MIN,
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            collapsed: false,
        }
    }

    /// Records one value. Returns `false`, leaving the sketch unchanged, for
    /// `NaN`, negative and infinite values.
    #[inline]
    pub fn insert(&mut self, v: f64) -> bool {
        self.insert_n(v, 1)
    }

    /// Records `n` occurrences of `v`. Returns `false`, leaving the sketch
    /// unchanged, for `NaN`, negative and infinite values; `n == 0` records
    /// nothing and returns `true` for a valid value.
    #[inline]
    pub fn insert_n(&mut self, v: f64, n: u64) -> bool {
        // One comparison rejects NaN, negatives and +inf.
        if !(0.0..f64::INFINITY).contains(&v) {
            return false;
        }
        if n == 0 {
            return true;
        }
        if v < MIN_VALUE {
            self.zero_count = self.zero_count.saturating_add(n);
        } else {
            let i = self.slot(key_of(v));
            self.bins[i] = self.bins[i].saturating_add(n);
        }
        self.count = self.count.saturating_add(n);
        // `n as f64` is exact up to 2^53; beyond that the sum is approximate.
        self.sum += v * n as f64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        true
    }

    /// Index into `bins` for key `k`, making room if needed, and widening
    /// `lo..=hi` to include it.
    #[inline(always)]
    fn slot(&mut self, k: i32) -> usize {
        // Negative differences wrap to huge values: one unsigned compare.
        let i = k.wrapping_sub(self.offset) as u32 as usize;
        if i < self.bins.len() {
            self.lo = self.lo.min(k);
            self.hi = self.hi.max(k);
            i
        } else {
            self.remap(k)
        }
    }

    /// Slow path of [`Self::slot`]: grows, re-centres or collapses the array so
    /// that it holds `k` (or, when the cap forces a collapse and `k` is below
    /// what survives, the lowest surviving bin). Returns the index to use.
    #[cold]
    #[inline(never)]
    fn remap(&mut self, k: i32) -> usize {
        let empty = self.lo > self.hi;
        let (mut lo, hi) = if empty {
            (k, k)
        } else {
            (self.lo.min(k), self.hi.max(k))
        };
        let cap = MAX_BINS as i64;
        // Fold everything below the new floor into the floor bin.
        let mut folded = 0u64;
        if i64::from(hi) - i64::from(lo) + 1 > cap {
            lo = hi - (MAX_BINS as i32 - 1);
            if !empty && self.lo < lo {
                let end = lo.min(self.hi + 1);
                for key in self.lo..end {
                    let b = &mut self.bins[(key - self.offset) as usize];
                    folded = folded.saturating_add(*b);
                    *b = 0;
                }
            }
            self.collapsed = true;
        }
        let need = (i64::from(hi) - i64::from(lo) + 1) as usize;
        let old_len = self.bins.len();
        let new_len = if need <= old_len {
            old_len
        } else {
            (need + 2 * SLACK)
                .max(2 * old_len)
                .clamp(INITIAL_BINS, MAX_BINS)
        };
        // Centre lo..=hi in the new array.
        let new_offset = lo - ((new_len - need) / 2) as i32;
        // Old bins that survive: [max(self.lo, lo), self.hi].
        let keep = if empty || self.hi < lo {
            None
        } else {
            Some((self.lo.max(lo), self.hi))
        };
        if new_len == old_len {
            // Shift in place. Outside `keep` every bin is zero, so a rotation
            // moves the survivors and leaves zeros everywhere else.
            if let Some((a, _)) = keep {
                let from = (a - self.offset) as usize;
                let to = (a - new_offset) as usize;
                if to > from {
                    self.bins.rotate_right(to - from);
                } else {
                    self.bins.rotate_left(from - to);
                }
            }
        } else {
            let mut bins = vec![0u64; new_len];
            if let Some((a, b)) = keep {
                let src = &self.bins[(a - self.offset) as usize..=(b - self.offset) as usize];
                let to = (a - new_offset) as usize;
                bins[to..to + src.len()].copy_from_slice(src);
            }
            self.bins = bins;
        }
        self.offset = new_offset;
        let lo_index = (lo - new_offset) as usize;
        self.bins[lo_index] = self.bins[lo_index].saturating_add(folded);
        self.lo = lo;
        self.hi = hi;
        (k.max(lo) - new_offset) as usize
    }

    /// Adds every value of `other` to `self`, as if they had been inserted
    /// here. Quantiles of the result are those of the union (with the same
    /// accuracy), unless the union needs more than [`MAX_BINS`] bins, in
    /// which case the lowest bins collapse.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if other.lo <= other.hi {
            // Make room: top first, so a collapse keeps the top.
            self.slot(other.hi);
            self.slot(other.lo);
            let start = other.lo.max(self.offset);
            let mut folded = 0u64;
            for k in other.lo..start {
                folded = folded.saturating_add(other.bins[(k - other.offset) as usize]);
            }
            if folded > 0 {
                let i = (start - self.offset) as usize;
                self.bins[i] = self.bins[i].saturating_add(folded);
                self.collapsed = true;
            }
            let src =
                &other.bins[(start - other.offset) as usize..=(other.hi - other.offset) as usize];
            let from = (start - self.offset) as usize;
            let dst = &mut self.bins[from..from + src.len()];
            for (d, s) in dst.iter_mut().zip(src) {
                *d = d.saturating_add(*s);
            }
            self.lo = self.lo.min(start);
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.collapsed |= other.collapsed;
    }

    /// Estimate of the `q`-quantile (`q` in `[0, 1]`, clamped; `0` is the
    /// minimum and `1` the maximum): within [`RELATIVE_ACCURACY`] of the value
    /// of rank `⌊q·(count − 1)⌋`. `None` when the sketch is empty or `q` is
    /// `NaN`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // The float product is exact for counts below 2^53.
        let rank = ((q * (self.count - 1) as f64).floor() as u64).min(self.count - 1);
        // The extreme ranks are known exactly.
        if rank == 0 {
            return Some(self.min);
        }
        if rank == self.count - 1 {
            return Some(self.max);
        }
        let mut seen = self.zero_count;
        let estimate = if rank < seen {
            self.min
        } else {
            let mut est = self.max;
            if self.lo <= self.hi {
                let from = (self.lo - self.offset) as usize;
                let to = (self.hi - self.offset) as usize;
                for (i, &c) in self.bins[from..=to].iter().enumerate() {
                    seen = seen.saturating_add(c);
                    if seen > rank {
                        est = value_of(self.lo + i as i32);
                        break;
                    }
                }
            }
            est
        };
        Some(estimate.clamp(self.min, self.max))
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum of the values recorded (floating point), `0` when empty.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Exact smallest value recorded.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Exact largest value recorded.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean of the values recorded.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets every value but keeps the array, so that refilling with values
    /// in the same range does not allocate. O(occupied bins).
    pub fn clear(&mut self) {
        if self.lo <= self.hi {
            let from = (self.lo - self.offset) as usize;
            let to = (self.hi - self.offset) as usize;
            self.bins[from..=to].fill(0);
        }
        self.lo = i32::MAX;
        self.hi = i32::MIN;
        self.zero_count = 0;
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.collapsed = false;
    }

    /// Whether low bins were folded together to stay within [`MAX_BINS`]
    /// (low quantiles may then over-estimate). Reset by [`Self::clear`].
    pub fn is_collapsed(&self) -> bool {
        self.collapsed
    }

    /// Number of bins currently allocated (at most [`MAX_BINS`]).
    pub fn allocated_bins(&self) -> usize {
        self.bins.len()
    }

    /// Bytes used on the heap by the bin array.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }
}

/// A [`Sketch`] as written to a snapshot: the bins from the lowest to the
/// highest possibly non-zero key, and the exact summaries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SketchState {
    /// Key of `bins[0]`.
    pub lo: i32,
    /// Counts of the keys `lo, lo + 1, ...`.
    pub bins: Vec<u64>,
    /// Values below [`MIN_VALUE`].
    pub zero: u64,
    /// All values.
    pub count: u64,
    /// Their sum.
    pub sum: F64,
    /// The smallest.
    pub min: F64,
    /// The largest.
    pub max: F64,
    /// Whether low bins were folded together.
    #[serde(default)]
    pub collapsed: bool,
}

impl SliceState for Sketch {
    type State = SketchState;

    fn to_state(&self) -> Option<SketchState> {
        if self.count == 0 {
            return None;
        }
        let bins = if self.lo <= self.hi {
            let from = (self.lo - self.offset) as usize;
            let to = (self.hi - self.offset) as usize;
            self.bins[from..=to].to_vec()
        } else {
            Vec::new()
        };
        Some(SketchState {
            lo: if bins.is_empty() { 0 } else { self.lo },
            bins,
            zero: self.zero_count,
            count: self.count,
            sum: F64(self.sum),
            min: F64(self.min),
            max: F64(self.max),
            collapsed: self.collapsed,
        })
    }

    fn from_state(s: SketchState) -> Result<Sketch, StateError> {
        if s.bins.len() > MAX_BINS {
            return Err(StateError::Bins {
                found: s.bins.len(),
                max: MAX_BINS,
            });
        }
        let total = s.bins.iter().fold(s.zero, |a, &b| a.saturating_add(b));
        if total != s.count {
            return Err(StateError::Total {
                total,
                count: s.count,
            });
        }
        if s.count > 0 && !(s.min.0 >= 0.0 && s.min.0 <= s.max.0) {
            return Err(StateError::Bounds {
                min: s.min.0,
                max: s.max.0,
            });
        }
        let mut sketch = Sketch::new();
        if !s.bins.is_empty() {
            let hi = i64::from(s.lo) + s.bins.len() as i64 - 1;
            let hi = i32::try_from(hi).map_err(|_| StateError::Key(hi))?;
            sketch.offset = s.lo;
            sketch.lo = s.lo;
            sketch.hi = hi;
            sketch.bins = s.bins;
        }
        if s.count > 0 {
            sketch.zero_count = s.zero;
            sketch.count = s.count;
            sketch.sum = s.sum.0;
            sketch.min = s.min.0;
            sketch.max = s.max.0;
            sketch.collapsed = s.collapsed;
        }
        Ok(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny seeded generator: xorshift64* plus Box-Muller.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Self {
            Self(seed.max(1))
        }
        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in (0, 1].
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
        fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
            (mu + sigma * self.normal()).exp()
        }
    }

    const QS: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn rel_err(est: f64, truth: f64) -> f64 {
        (est - truth).abs() / truth
    }

    /// Largest relative error over QS and a fine grid of q.
    fn worst_error(data: &[f64], s: &Sketch) -> f64 {
        let mut sorted = data.to_vec();
        sorted.sort_by(f64::total_cmp);
        let grid = (0..=1000).map(|i| i as f64 / 1000.0);
        QS.into_iter()
            .chain(grid)
            .map(|q| rel_err(s.quantile(q).unwrap(), exact(&sorted, q)))
            .fold(0.0, f64::max)
    }

    /// Every q within α (plus float slack), hence within 1 %.
    fn check_against_exact(data: &[f64], s: &Sketch) {
        let e = worst_error(data, s);
        assert!(e <= RELATIVE_ACCURACY * (1.0 + 1e-9), "worst error {e}");
        assert!(e <= 0.01);
    }

    fn lognormal_data(seed: u64, n: usize) -> Vec<f64> {
        // Median 50 ms, long tail.
        let mut r = Rng::new(seed);
        (0..n).map(|_| r.lognormal((0.05f64).ln(), 0.8)).collect()
    }

    fn bimodal_data(seed: u64, n: usize) -> Vec<f64> {
        // 95 % around 20 ms, 5 % slow spikes around 2 s.
        let mut r = Rng::new(seed);
        (0..n)
            .map(|_| {
                if r.uniform() < 0.05 {
                    r.lognormal(2f64.ln(), 0.3)
                } else {
                    r.lognormal((0.02f64).ln(), 0.25)
                }
            })
            .collect()
    }

    fn sketch_of(data: &[f64]) -> Sketch {
        let mut s = Sketch::new();
        for &v in data {
            assert!(s.insert(v));
        }
        s
    }

    #[test]
    fn constants_are_consistent() {
        assert!((GAMMA.ln() - LN_GAMMA).abs() < 1e-15);
        let alpha = (GAMMA - 1.0) / (GAMMA + 1.0);
        assert!((alpha - RELATIVE_ACCURACY).abs() < 1e-15);
    }

    #[test]
    fn every_bucket_representative_is_within_alpha_of_its_bounds() {
        for k in [-1381, -500, -1, 0, 1, 7, 300, 614, 47_000] {
            let upper = (f64::from(k) * LN_GAMMA).exp();
            let lower = (f64::from(k - 1) * LN_GAMMA).exp();
            let rep = value_of(k);
            assert!(rel_err(rep, upper) <= RELATIVE_ACCURACY * (1.0 + 1e-9));
            assert!(rel_err(rep, lower) <= RELATIVE_ACCURACY * (1.0 + 1e-9));
            // Values just inside the bucket map to it.
            assert_eq!(key_of(upper * (1.0 - 1e-9)), k);
            assert_eq!(key_of(lower * (1.0 + 1e-9)), k);
        }
    }

    #[test]
    fn lognormal_quantiles_within_one_percent() {
        for seed in [1, 42, 0xDEAD_BEEF] {
            let data = lognormal_data(seed, 100_000);
            check_against_exact(&data, &sketch_of(&data));
        }
    }

    #[test]
    fn bimodal_quantiles_within_one_percent() {
        for seed in [7, 99] {
            let data = bimodal_data(seed, 100_000);
            let s = sketch_of(&data);
            check_against_exact(&data, &s);
            // The spikes are really in the tail.
            assert!(s.quantile(0.99).unwrap() > 1.0);
            assert!(s.quantile(0.9).unwrap() < 0.1);
        }
    }

    #[test]
    fn a_biased_sketch_fails_the_check() {
        // The check is able to fail: values off by 2 % are caught.
        let data = lognormal_data(3, 1000);
        let mut s = Sketch::new();
        for &v in &data {
            s.insert(v * 1.02);
        }
        assert!(worst_error(&data, &s) > 0.01);
        assert!(worst_error(&data, &sketch_of(&data)) <= RELATIVE_ACCURACY * (1.0 + 1e-9));
    }

    #[test]
    fn small_samples_are_exact_at_the_ends() {
        let mut s = Sketch::new();
        s.insert(0.123);
        assert_eq!(s.quantile(0.0), Some(0.123));
        assert_eq!(s.quantile(0.5), Some(0.123));
        assert_eq!(s.quantile(1.0), Some(0.123));
        s.insert(0.5);
        s.insert(0.010);
        assert_eq!(s.quantile(0.0), Some(0.010));
        assert_eq!(s.quantile(1.0), Some(0.5));
        let mid = s.quantile(0.5).unwrap();
        assert!(rel_err(mid, 0.123) <= RELATIVE_ACCURACY * (1.0 + 1e-9));
        // q out of range is clamped; NaN gives nothing.
        assert_eq!(s.quantile(-3.0), Some(0.010));
        assert_eq!(s.quantile(7.0), Some(0.5));
        assert_eq!(s.quantile(f64::NAN), None);
    }

    #[test]
    fn merge_equals_sketch_of_union() {
        let a = lognormal_data(11, 30_000);
        let b = bimodal_data(12, 20_000);
        let mut sa = sketch_of(&a);
        let sb = sketch_of(&b);
        sa.merge(&sb);
        let union: Vec<f64> = a.iter().chain(&b).copied().collect();
        let su = sketch_of(&union);
        assert_eq!(sa.count(), su.count());
        assert_eq!(sa.min(), su.min());
        assert_eq!(sa.max(), su.max());
        assert!((sa.sum() - su.sum()).abs() <= 1e-9 * su.sum());
        for i in 0..=1000 {
            let q = i as f64 / 1000.0;
            assert_eq!(sa.quantile(q), su.quantile(q), "q={q}");
        }
        check_against_exact(&union, &sa);
    }

    #[test]
    fn merge_disjoint_ranges_and_empties() {
        let mut lowish = Sketch::new();
        for i in 1..=100 {
            lowish.insert(i as f64 * 1e-6);
        }
        let mut high = Sketch::new();
        for i in 1..=100 {
            high.insert(i as f64 * 10.0);
        }
        let mut m = Sketch::new();
        m.merge(&Sketch::new());
        assert!(m.is_empty());
        m.merge(&high);
        m.merge(&lowish);
        m.merge(&Sketch::new());
        let union: Vec<f64> = (1..=100)
            .map(|i| i as f64 * 1e-6)
            .chain((1..=100).map(|i| i as f64 * 10.0))
            .collect();
        check_against_exact(&union, &m);
        // Merging the other way round gives the same answers.
        let mut m2 = lowish.clone();
        m2.merge(&high);
        for q in QS {
            assert_eq!(m.quantile(q), m2.quantile(q));
        }
    }

    #[test]
    fn empty_sketch_answers_none() {
        let s = Sketch::new();
        assert!(s.is_empty());
        assert_eq!(s.count(), 0);
        assert_eq!(s.sum(), 0.0);
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.min(), None);
        assert_eq!(s.max(), None);
        assert_eq!(s.mean(), None);
        assert_eq!(s.heap_bytes(), 0);
    }

    #[test]
    fn invalid_values_are_rejected_without_change() {
        let mut s = Sketch::new();
        for v in [f64::NAN, -1.0, -1e-300, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!s.insert(v), "{v} accepted");
            assert!(!s.insert_n(v, 5));
        }
        assert!(s.is_empty());
        assert!(s.insert_n(1.0, 0));
        assert!(s.is_empty());
    }

    #[test]
    fn zeros_and_tiny_values_use_the_zero_bucket() {
        let mut s = Sketch::new();
        assert!(s.insert(0.0));
        assert!(s.insert(-0.0));
        assert!(s.insert(1e-300));
        assert!(s.insert(f64::MIN_POSITIVE));
        assert!(s.insert(0.2));
        assert_eq!(s.count(), 5);
        assert_eq!(s.allocated_bins(), INITIAL_BINS);
        assert_eq!(s.quantile(0.5), Some(0.0));
        assert_eq!(s.quantile(1.0), Some(0.2));
        assert_eq!(s.min(), Some(0.0));
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let mut s = Sketch::new();
        for v in [
            f64::MAX,
            1e300,
            MIN_VALUE,
            MIN_VALUE * 1.0000001,
            1.0,
            f64::MAX / 3.0,
        ] {
            assert!(s.insert(v));
        }
        assert_eq!(s.quantile(1.0), Some(f64::MAX));
        assert_eq!(s.max(), Some(f64::MAX));
        assert!(s.allocated_bins() <= MAX_BINS);
        assert!(s.is_collapsed());
        assert!(s.quantile(0.5).unwrap().is_finite());
        // The sum overflows to infinity; that is documented floating point.
        assert!(s.sum().is_infinite());
        s.insert_n(1.0, u64::MAX);
        assert_eq!(s.count(), u64::MAX);
        assert!(s.quantile(0.5).is_some());
    }

    #[test]
    fn bin_cap_holds_and_high_quantiles_stay_accurate() {
        // Values spread over 30 decades: far wider than 2048 bins.
        let mut r = Rng::new(5);
        let data: Vec<f64> = (0..50_000)
            .map(|_| 10f64.powf(-8.0 + 30.0 * r.uniform()))
            .collect();
        let s = sketch_of(&data);
        assert_eq!(s.allocated_bins(), MAX_BINS);
        assert!(s.heap_bytes() <= MAX_BINS * 8);
        assert!(s.is_collapsed());
        let mut sorted = data.clone();
        sorted.sort_by(f64::total_cmp);
        // The top 2048 bins span γ^2048 ≈ 2e13: everything above
        // max / 2e13 keeps full accuracy.
        let floor = sorted[sorted.len() - 1] / (MAX_BINS as f64 * LN_GAMMA).exp();
        for q in [0.6, 0.9, 0.99, 0.999, 1.0] {
            let truth = exact(&sorted, q);
            assert!(truth > floor * GAMMA);
            let e = rel_err(s.quantile(q).unwrap(), truth);
            assert!(e <= RELATIVE_ACCURACY * (1.0 + 1e-9), "q={q} err {e}");
        }
        // Low quantiles over-estimate, but never exceed the collapsed floor bin.
        let p01 = s.quantile(0.01).unwrap();
        assert!(p01 >= exact(&sorted, 0.01));
        assert!(p01 <= floor * GAMMA * GAMMA);
        // Merging two capped sketches respects the cap too.
        let mut m = s.clone();
        m.merge(&sketch_of(&[1e-8, 1e300]));
        assert!(m.allocated_bins() <= MAX_BINS);
        assert_eq!(m.quantile(1.0), Some(1e300));
    }

    #[test]
    fn growth_and_recentring_keep_counts() {
        // Values walking upwards force re-centring and growth many times.
        let mut s = Sketch::new();
        let mut data = Vec::new();
        let mut v = 1e-6;
        while v < 1e3 {
            data.push(v);
            s.insert(v);
            v *= 1.01;
        }
        // ... then downwards.
        let mut v = 1e3;
        while v > 1e-6 {
            data.push(v);
            s.insert(v);
            v /= 1.013;
        }
        assert_eq!(s.count(), data.len() as u64);
        assert!(!s.is_collapsed());
        check_against_exact(&data, &s);
    }

    #[test]
    fn clear_keeps_the_array_and_forgets_values() {
        let data = lognormal_data(9, 10_000);
        let mut s = sketch_of(&data);
        let bins = s.allocated_bins();
        let ptr = s.bins.as_ptr();
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.quantile(0.5), None);
        assert!(s.bins.iter().all(|&c| c == 0));
        // Refilling with the same range neither allocates nor moves the array.
        for &v in &data {
            s.insert(v);
        }
        assert_eq!(s.allocated_bins(), bins);
        assert_eq!(s.bins.as_ptr(), ptr);
        check_against_exact(&data, &s);
        // A shifted range after clear re-centres in place when it fits.
        s.clear();
        let shifted: Vec<f64> = data.iter().map(|v| v * 1e4).collect();
        for &v in &shifted {
            s.insert(v);
        }
        assert_eq!(s.bins.as_ptr(), ptr);
        check_against_exact(&shifted, &s);
    }

    /// The sizes quoted in the module documentation.
    #[test]
    fn documented_sizes() {
        assert_eq!(std::mem::size_of::<Sketch>(), 80);
        for (lo, hi, occupied, allocated) in [
            (0.01, 0.1, 155, 256),
            (0.001, 1.0, 461, 1024),
            (0.001, 10.0, 615, 1024),
        ] {
            // Random order, as real traffic.
            let mut r = Rng::new(17);
            let mut s = Sketch::new();
            s.insert(lo);
            s.insert(hi);
            for _ in 0..100_000 {
                s.insert(lo * (hi / lo).powf(r.uniform()));
            }
            let bins = (s.hi - s.lo + 1) as usize;
            assert!(bins <= occupied, "{lo}..{hi}: {bins} bins");
            assert!(
                s.allocated_bins() <= allocated,
                "{lo}..{hi}: {}",
                s.allocated_bins()
            );
            eprintln!(
                "{lo}..{hi}: {bins} occupied, {} allocated",
                s.allocated_bins()
            );
        }
    }

    #[test]
    fn mean_min_max_sum() {
        let mut s = Sketch::new();
        s.insert_n(0.1, 3);
        s.insert(0.7);
        assert_eq!(s.count(), 4);
        assert!((s.sum() - 1.0).abs() < 1e-12);
        assert!((s.mean().unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(s.min(), Some(0.1));
        assert_eq!(s.max(), Some(0.7));
    }

    #[test]
    fn a_sketch_survives_its_state_and_bad_states_are_refused() {
        let mut rng = Rng::new(7);
        let mut s = Sketch::new();
        for _ in 0..10_000 {
            s.insert((rng.normal() * 1.5).exp() * 0.05);
        }
        s.insert(0.0);
        let text = serde_json::to_string(&s.to_state().unwrap()).unwrap();
        let back = Sketch::from_state(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.count(), s.count());
        assert_eq!(
            (back.sum(), back.min(), back.max()),
            (s.sum(), s.min(), s.max())
        );
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.quantile(q), s.quantile(q), "q={q}");
        }
        // It goes on recording and merging like the original.
        let (mut a, mut b) = (s.clone(), back.clone());
        for v in [1e-6, 3.0, 1e4] {
            a.insert(v);
            b.insert(v);
        }
        a.merge(&s);
        b.merge(&back);
        assert_eq!(a.quantile(0.5), b.quantile(0.5));
        assert_eq!(a.quantile(0.0001), b.quantile(0.0001));
        assert_eq!(Sketch::new().to_state(), None);

        let good = s.to_state().unwrap();
        let mut bad = good.clone();
        bad.count += 1;
        assert!(
            Sketch::from_state(bad)
                .unwrap_err()
                .to_string()
                .contains("add up")
        );
        let mut bad = good.clone();
        bad.bins = vec![0; MAX_BINS + 1];
        assert!(Sketch::from_state(bad).is_err());
        let mut bad = good.clone();
        bad.lo = i32::MAX;
        assert!(
            Sketch::from_state(bad)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        let mut bad = good;
        bad.min = F64(-1.0);
        assert!(Sketch::from_state(bad).is_err());
    }
}
