//! Bounded summaries of one column, used by the builder's first pass.
//!
//! * [`SignedQuantiles`]: quantiles of any finite numbers with the
//!   relative-error [`Sketch`] (which takes values `>= 0` only). Values are
//!   measured from a *pivot*, the median of the first [`PIVOT_SAMPLE`] values:
//!   `x − pivot` goes to one sketch when it is `>= 0` and its negation to a
//!   second one otherwise. A quantile estimate `q̂` of the value `x` of the
//!   requested rank then satisfies
//!   `|q̂ − x| <= α·|x − pivot| <= α·(max − min)` with `α` =
//!   [`RELATIVE_ACCURACY`] (0.75 %). Measuring from a pivot inside the data
//!   keeps that bound tied to the spread of the data rather than to its
//!   distance from zero (timestamps, incomes around 50 000).
//! * [`SmallDistinct`]: the distinct values of a column while there are at
//!   most a given number of them (low-cardinality numbers: booleans,
//!   ratings).
//! * [`CategoryCounter`]: exact counts of text values up to a cap of distinct
//!   values, then a Misra–Gries summary over the table it has: when a new
//!   value finds the table full, every count is decreased by one and zeros
//!   are dropped. Any value more frequent than `n / (capacity + 1)` is then
//!   guaranteed to be in the table, each count under-estimates by at most the
//!   number of decrements, and the cost is amortised O(1) per value.

use std::collections::HashMap;

use crate::stats::sketch::{RELATIVE_ACCURACY as SKETCH_ACCURACY, Sketch};

/// Relative accuracy of the quantile sketch (see the module documentation).
pub const RELATIVE_ACCURACY: f64 = SKETCH_ACCURACY;

/// Number of first values whose median becomes the pivot.
pub const PIVOT_SAMPLE: usize = 64;

/// Quantiles of finite numbers of either sign (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct SignedQuantiles {
    /// The first values, until the pivot is chosen.
    pending: Vec<f64>,
    pivot: Option<f64>,
    /// `x − pivot` for `x >= pivot`.
    above: Sketch,
    /// `pivot − x` for `x < pivot`.
    below: Sketch,
}

impl SignedQuantiles {
    /// Records a finite value; non-finite values are ignored.
    pub fn insert(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        match self.pivot {
            Some(p) => self.place(p, x),
            None => {
                self.pending.push(x);
                if self.pending.len() >= PIVOT_SAMPLE {
                    self.choose_pivot();
                }
            }
        }
    }

    fn place(&mut self, pivot: f64, x: f64) {
        let d = x - pivot;
        if d >= 0.0 {
            // An infinite difference (values near ±f64::MAX) is rejected by
            // the sketch; clamping keeps the count right.
            self.above.insert(d.min(f64::MAX));
        } else {
            self.below.insert((-d).min(f64::MAX));
        }
    }

    fn choose_pivot(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut sample = std::mem::take(&mut self.pending);
        sample.sort_by(f64::total_cmp);
        let pivot = sample[sample.len() / 2];
        self.pivot = Some(pivot);
        for x in sample {
            self.place(pivot, x);
        }
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.pending.len() as u64 + self.above.count() + self.below.count()
    }

    /// Estimate of the value of rank `⌊q·(count − 1)⌋` (0-based, ascending),
    /// `None` when empty.
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.pivot.is_none() {
            self.choose_pivot();
        }
        let pivot = self.pivot?;
        let n = self.count();
        if n == 0 || q.is_nan() {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64).min(n - 1);
        let below = self.below.count();
        if rank < below {
            // Below the pivot, ascending order is descending distance.
            let r = below - 1 - rank;
            let d = self.below.quantile(rank_to_q(r, below))?;
            Some(pivot - d)
        } else {
            let r = rank - below;
            let d = self.above.quantile(rank_to_q(r, self.above.count()))?;
            Some(pivot + d)
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<f64>()
            + self.above.heap_bytes()
            + self.below.heap_bytes()
    }
}

/// A `q` for which [`Sketch::quantile`] picks rank `r` of `n`.
fn rank_to_q(r: u64, n: u64) -> f64 {
    if n <= 1 {
        0.0
    } else {
        // Half a rank of margin keeps the sketch's floor() on `r`.
        ((r as f64 + 0.5) / (n - 1) as f64).min(1.0)
    }
}

/// The distinct values of a column, while there are at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct SmallDistinct {
    /// Sorted, without duplicates; emptied once `limit` is exceeded.
    values: Vec<f64>,
    overflowed: bool,
}

impl SmallDistinct {
    /// Records `x`, keeping at most `limit` distinct values.
    pub fn insert(&mut self, x: f64, limit: usize) {
        if self.overflowed {
            return;
        }
        if let Err(i) = self.values.binary_search_by(|v| v.total_cmp(&x)) {
            if self.values.len() >= limit {
                self.overflowed = true;
                self.values = Vec::new();
            } else {
                self.values.insert(i, x);
            }
        }
    }

    /// The distinct values in increasing order, or `None` if there were more
    /// than the limit.
    pub fn values(&self) -> Option<&[f64]> {
        (!self.overflowed).then_some(&self.values)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f64>()
    }
}

/// Approximate heap bytes of one table entry besides its text.
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<String>() + std::mem::size_of::<u64>() + 16;

/// Counts of text values: exact up to a cap, then a Misra–Gries summary.
#[derive(Debug, Clone, Default)]
pub struct CategoryCounter {
    counts: HashMap<String, u64>,
    /// Bytes of the keys, for [`Self::heap_bytes`].
    key_bytes: usize,
    /// Total decrements applied (the error bound of every count).
    decrements: u64,
    /// Values too long to be tracked.
    untracked: u64,
}

impl CategoryCounter {
    /// Counts `value`. `may_grow` says whether the table may take a new
    /// entry; when it may not and `value` is new, the Misra–Gries step runs.
    /// Values longer than `max_len` bytes are only counted as untracked.
    pub fn insert(&mut self, value: &str, may_grow: bool, max_len: usize) {
        if value.len() > max_len {
            self.untracked += 1;
            return;
        }
        if let Some(c) = self.counts.get_mut(value) {
            *c += 1;
        } else if may_grow {
            self.key_bytes += value.len();
            self.counts.insert(value.to_owned(), 1);
        } else {
            self.decrements += 1;
            let mut freed = 0;
            self.counts.retain(|k, c| {
                *c -= 1;
                if *c == 0 {
                    freed += k.len();
                }
                *c > 0
            });
            self.key_bytes -= freed;
            // Deleted slots would otherwise make the table grow as values
            // come and go; rehashing keeps the allocation tied to `len`.
            self.counts.shrink_to_fit();
        }
    }

    /// Number of distinct values in the table.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Whether the counts are exact (no Misra–Gries step ever ran).
    pub fn is_exact(&self) -> bool {
        self.decrements == 0
    }

    /// The `k` values with the largest counts (ties broken by value), most
    /// frequent first.
    pub fn top(&self, k: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(&String, &u64)> = self.counts.iter().collect();
        all.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(k)
            .map(|(s, &c)| (s.clone(), c))
            .collect()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        // The table's slots (allocated, not only used) plus the key text.
        self.counts.capacity() * ENTRY_OVERHEAD + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    fn unit(i: u64) -> f64 {
        let x = (i.wrapping_add(1))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn check(data: &[f64]) {
        let mut s = SignedQuantiles::default();
        for &x in data {
            s.insert(x);
        }
        let mut sorted = data.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        for i in 0..=100 {
            let q = i as f64 / 100.0;
            let truth = exact_quantile(&sorted, q);
            let est = s.quantile(q).unwrap();
            let bound = RELATIVE_ACCURACY * (max - min) * (1.0 + 1e-9) + 1e-9;
            assert!(
                (est - truth).abs() <= bound,
                "q={q}: {est} vs {truth} (bound {bound})"
            );
        }
    }

    #[test]
    fn quantiles_of_signed_data_are_within_the_bound() {
        // Symmetric around zero, all negative, far from zero, and tiny data.
        check(
            &(0..10_000)
                .map(|i| unit(i) * 200.0 - 100.0)
                .collect::<Vec<_>>(),
        );
        check(
            &(0..10_000)
                .map(|i| -1.0 - unit(i) * 50.0)
                .collect::<Vec<_>>(),
        );
        check(
            &(0..10_000)
                .map(|i| 1.7e9 + unit(i) * 1000.0)
                .collect::<Vec<_>>(),
        );
        check(&[3.0]);
        check(&[-2.0, 5.0]);
        check(&(0..10).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn far_from_zero_data_keep_their_resolution() {
        // Relative to zero, 0.75 % of 1.7e9 would swamp a spread of 1000.
        let data: Vec<f64> = (0..1000).map(|i| 1.7e9 + f64::from(i)).collect();
        let mut s = SignedQuantiles::default();
        for &x in &data {
            s.insert(x);
        }
        let median = s.quantile(0.5).unwrap();
        assert!((median - (1.7e9 + 499.0)).abs() < 10.0, "{median}");
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let mut s = SignedQuantiles::default();
        for x in [f64::MAX, -f64::MAX, 0.0, f64::NAN, f64::INFINITY, 1.0] {
            s.insert(x);
        }
        assert_eq!(s.count(), 4);
        for q in [0.0, 0.3, 0.5, 1.0] {
            assert!(s.quantile(q).is_some());
        }
        assert_eq!(SignedQuantiles::default().quantile(0.5), None);
    }

    #[test]
    fn small_distinct_stops_at_the_limit() {
        let mut d = SmallDistinct::default();
        for x in [1.0, 0.0, 1.0, 0.0] {
            d.insert(x, 3);
        }
        assert_eq!(d.values(), Some(&[0.0, 1.0][..]));
        d.insert(2.0, 3);
        assert_eq!(d.values(), Some(&[0.0, 1.0, 2.0][..]));
        d.insert(3.0, 3);
        assert_eq!(d.values(), None);
        d.insert(0.0, 3);
        assert_eq!(d.values(), None);
    }

    #[test]
    fn category_counter_is_exact_until_full_then_keeps_heavy_hitters() {
        let mut c = CategoryCounter::default();
        for v in ["a", "b", "a", "c", "a"] {
            c.insert(v, true, 100);
        }
        assert!(c.is_exact());
        assert_eq!(c.top(2), vec![("a".to_owned(), 3), ("b".to_owned(), 1)]);
        // A table of 10: a heavy value survives a flood of unique ones.
        let mut c = CategoryCounter::default();
        let mut most = 0;
        for i in 0..100_000u32 {
            let v = if i % 3 == 0 {
                "heavy".to_owned()
            } else {
                format!("u{i}")
            };
            let may_grow = c.len() < 10;
            c.insert(&v, may_grow, 100);
            assert!(c.len() <= 10);
            most = most.max(c.heap_bytes());
        }
        // The allocation follows the length, not the churn.
        assert!(most <= 16 * ENTRY_OVERHEAD + 10 * 7, "{most}");
        assert!(!c.is_exact());
        assert_eq!(c.top(1)[0].0, "heavy");
        // Too long values are not tracked.
        c.insert(&"x".repeat(101), true, 100);
        assert_eq!(c.untracked, 1);
    }
}
