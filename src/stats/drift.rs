//! Drift statistics: a live binned distribution against a reference one.
//!
//! The reference comes from a training-data baseline: bin edges and the
//! proportion of training values in each bin (numeric features), or category
//! proportions plus an "other" bin (categorical features). The live side is a
//! [`BinCounts`] merged from the slices of a
//! [`SlidingWindow`](super::window::SlidingWindow).
//!
//! Every statistic takes the reference proportions and the live counts as two
//! slices of the same length and returns `None`, never panicking, when they
//! cannot be compared: lengths differ or are zero, the live window is empty,
//! or a reference proportion is negative or not finite, or they sum to zero.
//! Reference proportions need not sum to exactly one; they are divided by
//! their sum. None of the functions allocates.
//!
//! | function | what | identical | range |
//! |---|---|---|---|
//! | [`psi`] | population stability index, zeros smoothed with `epsilon` | 0 | `[0, ∞)` |
//! | [`ks`] | Kolmogorov–Smirnov statistic on the binned CDFs | 0 | `[0, 1]` |
//! | [`js`] | Jensen–Shannon **distance**, base 2 | 0 | `[0, 1]` |
//! | [`wasserstein`] | 1-Wasserstein distance between bin points, in reference std | 0 | `[0, ∞)` |
//! | [`chi2_pvalue`] | chi-square goodness-of-fit p-value | 1 | `[0, 1]` |
//! | [`chi2_two_sample_pvalue`] | two-sample chi-square p-value | 1 | `[0, 1]` |
//!
//! # Bins
//!
//! `n` edges `e0 ≤ e1 ≤ … ≤ e(n−1)` make `n + 1` bins:
//! `(−∞, e0], (e0, e1], …, (e(n−1), +∞)`. A value equal to an edge falls in
//! the bin below it, as in Prometheus' `le` buckets, so the bins line up with
//! the buckets of `model_feature_value`. [`bin_index`] is the one function
//! that bins a number: the sidecar's references, the baseline builder and
//! the exported reference shares all go through it.
//!
//! The formulas, the conventions and how they are checked against SciPy are
//! in `docs/drift.md`; the fixtures come from `scripts/drift_fixtures.py`.

use super::window::{Slice, SliceState, StateError};

/// A drift measure against the reference distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftMethod {
    /// Population stability index.
    Psi,
    /// Kolmogorov–Smirnov statistic.
    Ks,
    /// Jensen–Shannon divergence.
    Js,
    /// Wasserstein (earth mover's) distance.
    Wasserstein,
    /// p-value of a chi-squared test (categorical values).
    Chi2Pvalue,
}

impl DriftMethod {
    /// Every method, in documentation order.
    pub const ALL: [DriftMethod; 5] = [
        DriftMethod::Psi,
        DriftMethod::Ks,
        DriftMethod::Js,
        DriftMethod::Wasserstein,
        DriftMethod::Chi2Pvalue,
    ];

    /// The function name in the expression language (also the metric label).
    pub fn function(self) -> &'static str {
        match self {
            DriftMethod::Psi => "psi",
            DriftMethod::Ks => "ks",
            DriftMethod::Js => "js",
            DriftMethod::Wasserstein => "wasserstein",
            DriftMethod::Chi2Pvalue => "chi2_pvalue",
        }
    }
}

/// Smoothing used by [`psi`] for empty bins, and by [`chi2_pvalue`] for
/// live values in bins the reference never saw.
pub const PSI_EPSILON: f64 = 1e-4;

/// Most bins a [`BinCounts`] holds; values for higher bins are dropped.
pub const MAX_BINS: usize = 4096;

/// Iteration cap of the incomplete gamma series and continued fraction.
/// Both converge in `O(√a)` steps; the cap only guards against nonsense.
const MAX_ITERATIONS: usize = 100_000;

/// Relative size of the last term at which the gamma iterations stop.
const GAMMA_TOLERANCE: f64 = 1e-16;

/// Index of the bin of `x` among the bins cut by `edges` (sorted ascending).
///
/// Bins are `(−∞, e0], (e0, e1], …, (e(n−1), +∞)`, i.e. `edges.len() + 1`
/// of them: the result is the number of edges strictly below `x`, so
/// `x == e(i)` goes to bin `i`, the lower one (Prometheus' `le`).
/// `−∞` goes to bin 0 and `+∞` to the last bin. `NaN` goes to the last bin,
/// as Prometheus puts it in `+Inf` only; callers that count `NaN` as invalid
/// should filter it out first. Up to [`COUNTED_EDGES`] edges, the edges
/// below `x` are counted (no branches, which histograms of a dozen buckets
/// favour); above, binary search: `O(log n)`. Unsorted edges do not panic
/// but give an unspecified bin.
#[inline]
pub fn bin_index(edges: &[f64], x: f64) -> usize {
    if x.is_nan() {
        return edges.len();
    }
    if edges.len() <= COUNTED_EDGES {
        return edges.iter().map(|&e| usize::from(e < x)).sum();
    }
    edges.partition_point(|&e| e < x)
}

/// Most edges [`bin_index`] counts rather than searches.
pub const COUNTED_EDGES: usize = 16;

/// The point of each bin, for [`wasserstein`], when the reference does not
/// give each bin's mean: the midpoint `(e(i−1) + e(i)) / 2` of an inner bin,
/// and the edge of an outer one (`e0` for `(−∞, e0]`, which holds the
/// training minimum `e0` alone; `e(n−1)` above the maximum). Returns
/// `edges.len() + 1` points; with no edges, the single bin's point is 0.
pub fn bin_points(edges: &[f64]) -> Vec<f64> {
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else {
        return vec![0.0];
    };
    let mut points = Vec::with_capacity(edges.len() + 1);
    points.push(first);
    points.extend(edges.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    points.push(last);
    points
}

/// The reference's share of each bin as [`psi`] and [`js`] compare it with
/// the live shares, and as `model_feature_reference_ratio` publishes it:
/// the proportions divided by their sum, with every empty bin given a
/// share, so that live values where the reference has none (above the
/// training maximum, an unseen category) weigh a finite, documented amount.
///
/// With `count`, the number `m` of values the reference was made of, each
/// of the `z` empty bins is given one value, as if one more training value
/// lay there: a bin holding `m·p` of the `m` values gets `m·p / (m + z)`,
/// an empty bin `1 / (m + z)`. For continuous data a new value from the
/// training distribution lies above the training maximum with probability
/// exactly `1 / (m + 1)`, so the bin above the maximum gets (about) the
/// share an undrifted window has there, and as much as the bin at or below
/// the minimum, which holds one value of `m`. Without `count`, an empty bin
/// gets [`PSI_EPSILON`] and the shares are normalised again (the smoothing
/// of [`psi`]).
///
/// Proportions that are not usable (negative, not finite, or with a sum
/// that is not positive) are returned as they are; the statistics reject
/// them.
pub fn reference_shares(proportions: &[f64], count: Option<u64>) -> Vec<f64> {
    let total: f64 = proportions.iter().sum();
    let usable =
        total.is_finite() && total > 0.0 && proportions.iter().all(|p| p.is_finite() && *p >= 0.0);
    if !usable {
        return proportions.to_vec();
    }
    let empty = proportions.iter().filter(|&&p| p == 0.0).count() as f64;
    match count {
        Some(m) if m > 0 => {
            let m = m as f64;
            proportions
                .iter()
                .map(|&p| if p > 0.0 { m * (p / total) } else { 1.0 } / (m + empty))
                .collect()
        }
        _ => {
            let sum = 1.0 + PSI_EPSILON * empty;
            proportions
                .iter()
                .map(|&p| if p > 0.0 { p / total } else { PSI_EPSILON } / sum)
                .collect()
        }
    }
}

/// Counts per bin over one time slice (or, merged, a window): the live side
/// of the drift statistics.
///
/// The number of bins is fixed by [`BinCounts::with_bins`], or grows on
/// demand (up to [`MAX_BINS`]) from the empty `Default` that a
/// [`SlidingWindow`](super::window::SlidingWindow) starts its slices with.
/// Merging adds bin by bin (saturating) and takes the longer length;
/// clearing zeroes the counts and keeps the length, so a warm ring records
/// without allocating. Create the merge target with
/// `BinCounts::with_bins(reference.len())` to get counts of the reference's
/// length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinCounts {
    counts: Vec<u64>,
}

impl BinCounts {
    /// Zero counts for `bins` bins (at most [`MAX_BINS`]).
    pub fn with_bins(bins: usize) -> Self {
        Self {
            counts: vec![0; bins.min(MAX_BINS)],
        }
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    /// Adds `n` to bin `bin` (saturating), first growing to `bin + 1` bins if
    /// needed. Bins at or beyond [`MAX_BINS`] are ignored.
    #[inline]
    pub fn add(&mut self, bin: usize, n: u64) {
        if bin >= MAX_BINS {
            return;
        }
        if bin >= self.counts.len() {
            self.counts.resize(bin + 1, 0);
        }
        self.counts[bin] = self.counts[bin].saturating_add(n);
    }

    /// The counts, bin by bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Sum of all counts (saturating).
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Whether no value was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }
}

impl SliceState for BinCounts {
    type State = Vec<u64>;

    fn to_state(&self) -> Option<Vec<u64>> {
        (!self.is_empty()).then(|| self.counts.clone())
    }

    fn from_state(counts: Vec<u64>) -> Result<Self, StateError> {
        if counts.len() > MAX_BINS {
            return Err(StateError::Bins {
                found: counts.len(),
                max: MAX_BINS,
            });
        }
        Ok(BinCounts { counts })
    }
}

impl Slice for BinCounts {
    fn merge_from(&mut self, other: &Self) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, &b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(b);
        }
    }

    fn clear(&mut self) {
        self.counts.fill(0);
    }
}

/// Checks the inputs shared by every statistic; returns the sum of the
/// reference proportions and the number of live values.
fn totals(reference: &[f64], live: &[u64]) -> Option<(f64, f64)> {
    if reference.is_empty() || reference.len() != live.len() {
        return None;
    }
    let mut r = 0.0;
    for &p in reference {
        if !(p.is_finite() && p >= 0.0) {
            return None;
        }
        r += p;
    }
    let n: u128 = live.iter().map(|&c| u128::from(c)).sum();
    (r > 0.0 && r.is_finite() && n > 0).then_some((r, n as f64))
}

/// Population Stability Index of the live counts against the reference
/// proportions: `Σ (l − r) · ln(l / r)` over bins, where `r` and `l` are the
/// smoothed reference and live proportions.
///
/// Smoothing, applied to each side separately: the proportions are
/// normalised to sum to one, every proportion that is exactly zero is
/// replaced by `epsilon` (usually [`PSI_EPSILON`]), and the proportions are
/// normalised again. Bins empty on both sides then contribute (almost)
/// nothing, and a bin empty on one side only contributes a large but finite
/// term. `None` unless `0 < epsilon < 1`, or for the reasons in the
/// [module documentation](self).
///
/// Common reading: below 0.1 stable, 0.1–0.25 moderate shift, above 0.25
/// significant shift.
pub fn psi(reference: &[f64], live: &[u64], epsilon: f64) -> Option<f64> {
    if !(epsilon > 0.0 && epsilon < 1.0) {
        return None;
    }
    let (r_total, n) = totals(reference, live)?;
    let smooth = |p: f64| if p > 0.0 { p } else { epsilon };
    let (mut r_sum, mut l_sum) = (0.0, 0.0);
    for (&r, &c) in reference.iter().zip(live) {
        r_sum += smooth(r / r_total);
        l_sum += smooth(c as f64 / n);
    }
    let mut psi = 0.0;
    for (&r, &c) in reference.iter().zip(live) {
        let r = smooth(r / r_total) / r_sum;
        let l = smooth(c as f64 / n) / l_sum;
        psi += (l - r) * (l / r).ln();
    }
    // Each term is non-negative; only rounding could make the sum negative.
    Some(psi.max(0.0))
}

/// Kolmogorov–Smirnov statistic on the binned distributions: the largest
/// `|CDF_live − CDF_ref|` over the inner bin boundaries (after bins
/// `0 ..= k − 2`; after the last bin both CDFs are 1).
///
/// Computed from bins, it is a lower bound of the KS statistic of the raw
/// values; with one bin it is 0. `None` for the reasons in the
/// [module documentation](self).
pub fn ks(reference: &[f64], live: &[u64]) -> Option<f64> {
    let (r_total, n) = totals(reference, live)?;
    // Counts accumulate in f64: exact below 2^53 values.
    let (mut r_cum, mut l_cum) = (0.0, 0.0);
    let mut d: f64 = 0.0;
    let inner = reference.len() - 1;
    for (&r, &c) in reference[..inner].iter().zip(&live[..inner]) {
        r_cum += r;
        l_cum += c as f64;
        d = d.max((l_cum / n - r_cum / r_total).abs());
    }
    Some(d.min(1.0))
}

/// Jensen–Shannon **distance** (the square root of the divergence), with
/// base-2 logarithms, so it lies in `[0, 1]`:
/// `sqrt((KL(r ‖ m) + KL(l ‖ m)) / 2)` with `m = (r + l) / 2`, and
/// `0 · ln 0 = 0`. No smoothing is needed: `m` is positive wherever either
/// side is. Equals SciPy's `jensenshannon(r, l, base=2)`. `None` for the
/// reasons in the [module documentation](self).
pub fn js(reference: &[f64], live: &[u64]) -> Option<f64> {
    let (r_total, n) = totals(reference, live)?;
    let (mut left, mut right) = (0.0, 0.0);
    for (&r, &c) in reference.iter().zip(live) {
        let r = r / r_total;
        let l = c as f64 / n;
        let m = (r + l) / 2.0;
        if r > 0.0 {
            left += r * (r / m).ln();
        }
        if l > 0.0 {
            right += l * (l / m).ln();
        }
    }
    let divergence = (left + right) / std::f64::consts::LN_2;
    Some((divergence / 2.0).max(0.0).sqrt().min(1.0))
}

/// 1-Wasserstein (earth mover's) distance between the two binned
/// distributions, each bin's mass placed at its representative point
/// (`points`, one per bin, ascending; see [`bin_points`]), divided by the
/// reference standard deviation `ref_std`:
/// `Σ |CDF_ref(i) − CDF_live(i)| · (x(i+1) − x(i)) / ref_std`.
///
/// Dividing by the std makes it unit-free: 0.5 means "the mass moved by half
/// a standard deviation on average". `None` unless `points` has one finite
/// point per bin in ascending order and `ref_std` is finite and positive, or
/// for the reasons in the [module documentation](self).
pub fn wasserstein(reference: &[f64], live: &[u64], points: &[f64], ref_std: f64) -> Option<f64> {
    if !(ref_std.is_finite() && ref_std > 0.0) || points.len() != reference.len() {
        return None;
    }
    if points.iter().any(|p| !p.is_finite()) || points.windows(2).any(|w| w[1] < w[0]) {
        return None;
    }
    let (r_total, n) = totals(reference, live)?;
    // Counts accumulate in f64: exact below 2^53 values.
    let (mut r_cum, mut l_cum) = (0.0, 0.0);
    let mut w = 0.0;
    for i in 0..reference.len() - 1 {
        r_cum += reference[i];
        l_cum += live[i] as f64;
        w += (r_cum / r_total - l_cum / n).abs() * (points[i + 1] - points[i]);
    }
    let w = w / ref_std;
    w.is_finite().then_some(w)
}

/// Chi-square goodness-of-fit p-value of the live counts against the counts
/// expected from the reference proportions: the probability, were the live
/// values drawn from the reference, of a statistic
/// `Σ (observed − expected)² / expected` at least as large as the one seen.
///
/// Expected counts are `n · q` with `n` the live total and `q` the reference
/// proportions, except:
///
/// * bins with zero reference proportion and no live value are left out
///   (they neither add to the statistic nor count as a degree of freedom);
/// * bins with zero reference proportion but live values (a category never
///   seen in training) get proportion [`PSI_EPSILON`]; then `q` is
///   normalised over the bins kept.
///
/// Degrees of freedom: bins kept − 1. With a single bin kept the live counts
/// match the reference exactly and the p-value is 1. Small p-values mean
/// drift (e.g. below 0.01 or 0.05); with many thousands of live values even
/// a negligible shift gives a tiny p-value, so pair it with [`psi`] or
/// [`js`] for the size of the shift. `None` for the reasons in the
/// [module documentation](self).
pub fn chi2_pvalue(reference: &[f64], live: &[u64]) -> Option<f64> {
    let (r_total, n) = totals(reference, live)?;
    let proportion = |r: f64, c: u64| {
        let p = r / r_total;
        if p > 0.0 {
            Some(p)
        } else if c > 0 {
            Some(PSI_EPSILON)
        } else {
            None
        }
    };
    let (mut q_sum, mut kept) = (0.0, 0usize);
    for (&r, &c) in reference.iter().zip(live) {
        if let Some(q) = proportion(r, c) {
            q_sum += q;
            kept += 1;
        }
    }
    if kept < 2 {
        return Some(1.0);
    }
    let mut statistic = 0.0;
    for (&r, &c) in reference.iter().zip(live) {
        if let Some(q) = proportion(r, c) {
            let expected = n * (q / q_sum);
            let d = c as f64 - expected;
            statistic += d * d / expected;
        }
    }
    chi2_sf(statistic, (kept - 1) as f64)
}

/// Two-sample chi-square p-value: the probability, were the reference
/// sample and the live window drawn from one distribution, of a statistic
/// at least as large as the one seen (the test of homogeneity of a 2 × k
/// table; SciPy's `chi2_contingency(table, correction=False)`).
///
/// The reference is a sample too: `reference_count` values (a baseline's
/// `count`) in the proportions `reference`, so its counts are
/// `R(i) = reference_count · r(i)`; the live counts are `L(i)`. With
/// `N = reference_count + n` and `T(i) = R(i) + L(i)`, the expected counts
/// are `T(i) · reference_count / N` and `T(i) · n / N`, and
/// `X² = Σ (R − E_R)² / E_R + (L − E_L)² / E_L` over the bins where `T(i)`
/// is not 0, with bins kept − 1 degrees of freedom (one bin kept: 1).
///
/// Unlike [`chi2_pvalue`], which takes the reference as exact, it holds its
/// level whatever the sizes: with no drift, `p < 0.05` in about 5% of
/// windows, even when the window is ten times the reference. `None` unless
/// `reference_count` is finite and positive, or for the reasons in the
/// [module documentation](self).
pub fn chi2_two_sample_pvalue(
    reference: &[f64],
    reference_count: f64,
    live: &[u64],
) -> Option<f64> {
    if !(reference_count.is_finite() && reference_count > 0.0) {
        return None;
    }
    let (r_total, n) = totals(reference, live)?;
    let m = reference_count;
    let total = m + n;
    let (mut statistic, mut kept) = (0.0, 0usize);
    for (&r, &c) in reference.iter().zip(live) {
        let (r, c) = (m * (r / r_total), c as f64);
        let column = r + c;
        if column <= 0.0 {
            continue;
        }
        kept += 1;
        let (er, el) = (column * m / total, column * n / total);
        statistic += (r - er) * (r - er) / er + (c - el) * (c - el) / el;
    }
    if kept < 2 {
        return Some(1.0);
    }
    chi2_sf(statistic, (kept - 1) as f64)
}

/// Survival function of the chi-square distribution with `dof` degrees of
/// freedom at `x`: `Q(dof / 2, x / 2)` (see [`gamma_q`]). Negative `x` gives
/// 1. `None` for `NaN` or non-positive `dof`.
pub fn chi2_sf(x: f64, dof: f64) -> Option<f64> {
    if x.is_nan() {
        return None;
    }
    gamma_q(dof / 2.0, x.max(0.0) / 2.0)
}

/// Regularized upper incomplete gamma function
/// `Q(a, x) = Γ(a, x) / Γ(a) = 1/Γ(a) ∫ₓ^∞ t^(a−1) e^(−t) dt`.
///
/// Relative accuracy is about `1e-13` for small `a`, degrading slowly as `a`
/// grows (the logarithm of the common factor is of size `a · ln x`): within
/// `2e-12` of SciPy's `gammaincc` for `a ≤ 1000` over the fixtures.
///
/// Below `x = a + 1` it sums the power series of the lower function `P` and
/// returns `1 − P` (there `Q` is not small, so nothing is lost to
/// cancellation); above, it evaluates the continued fraction of `Q` itself,
/// keeping its relative accuracy deep into the tail. `None` unless `a` is
/// finite and positive and `x` is not `NaN` and not negative.
pub fn gamma_q(a: f64, x: f64) -> Option<f64> {
    if !(a.is_finite() && a > 0.0 && x >= 0.0) {
        return None;
    }
    if x == 0.0 {
        return Some(1.0);
    }
    if x == f64::INFINITY {
        return Some(0.0);
    }
    // ln(x^a e^(−x) / Γ(a)), the factor in front of both expansions.
    let log_front = a * x.ln() - x - ln_gamma(a);
    let q = if x < a + 1.0 {
        1.0 - lower_series(a, x) * log_front.exp()
    } else {
        upper_fraction(a, x) * log_front.exp()
    };
    Some(q.clamp(0.0, 1.0))
}

/// `Σₖ xᵏ / (a (a+1) … (a+k))`, so that `P(a, x)` is this times
/// `x^a e^(−x) / Γ(a)`. Converges quickly for `x < a + 1`.
fn lower_series(a: f64, x: f64) -> f64 {
    let mut term = 1.0 / a;
    let mut sum = term;
    let mut denominator = a;
    for _ in 0..MAX_ITERATIONS {
        denominator += 1.0;
        term *= x / denominator;
        sum += term;
        if term < sum * GAMMA_TOLERANCE {
            break;
        }
    }
    sum
}

/// The continued fraction
/// `1 / (x + 1 − a − 1·(1 − a) / (x + 3 − a − 2·(2 − a) / (x + 5 − a − …)))`,
/// so that `Q(a, x)` is this times `x^a e^(−x) / Γ(a)`; evaluated front to
/// back with the modified Lentz method. Converges quickly for `x ≥ a + 1`.
fn upper_fraction(a: f64, x: f64) -> f64 {
    // Stand-in for a zero denominator, which would stop the recurrence.
    const TINY: f64 = 1e-300;
    let nonzero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / nonzero(b);
    let mut value = d;
    for k in 1..MAX_ITERATIONS {
        let k = k as f64;
        let numerator = -k * (k - a);
        b += 2.0;
        d = 1.0 / nonzero(b + numerator * d);
        c = nonzero(b + numerator / c);
        let step = c * d;
        value *= step;
        if (step - 1.0).abs() < GAMMA_TOLERANCE {
            break;
        }
    }
    value
}

/// `ln Γ(z)` for `z > 0`: raise `z` to at least 15 with
/// `Γ(z) = Γ(z + m) / (z (z+1) … (z+m−1))`, then Stirling's series up to
/// the `z⁻¹³` term, whose truncation error there is below `1e-19`.
fn ln_gamma(z: f64) -> f64 {
    let mut z = z;
    let mut product = 1.0;
    while z < 15.0 {
        product *= z;
        z += 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Bernoulli-number coefficients B(2k) / (2k (2k − 1)).
    let series = inv
        * (1.0 / 12.0
            - inv2
                * (1.0 / 360.0
                    - inv2
                        * (1.0 / 1260.0
                            - inv2
                                * (1.0 / 1680.0
                                    - inv2
                                        * (1.0 / 1188.0
                                            - inv2 * (691.0 / 360_360.0 - inv2 / 156.0))))));
    let half_ln_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    (z - 0.5) * z.ln() - z + half_ln_two_pi + series - product.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_index_follows_le_semantics() {
        let edges = [1.0, 2.0, 3.0];
        let cases = [
            (f64::NEG_INFINITY, 0),
            (-5.0, 0),
            (1.0, 0),
            (1.0 + 1e-12, 1),
            (2.0, 1),
            (2.5, 2),
            (3.0, 2),
            (3.1, 3),
            (f64::INFINITY, 3),
            (f64::NAN, 3),
        ];
        for (x, bin) in cases {
            assert_eq!(bin_index(&edges, x), bin, "x = {x}");
        }
        assert_eq!(bin_index(&[], 7.0), 0);
        assert_eq!(bin_index(&[], f64::NAN), 0);
        // Repeated edges: the value goes below the first copy.
        assert_eq!(bin_index(&[1.0, 1.0, 2.0], 1.0), 0);
        assert_eq!(bin_index(&[1.0, 1.0, 2.0], 1.5), 2);
        // Garbage edges do not panic.
        let _ = bin_index(&[3.0, f64::NAN, 1.0], 2.0);
    }

    /// Both ways of finding the bin, counting (up to `COUNTED_EDGES`) and
    /// binary search (above), give the first edge at or above the value.
    #[test]
    fn counted_and_searched_bins_agree() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..=2 * COUNTED_EDGES + 3 {
            for _ in 0..50 {
                // Small integers, so that values often equal an edge and
                // edges repeat.
                let mut edges: Vec<f64> = (0..len).map(|_| (next() % 20) as f64).collect();
                edges.sort_by(f64::total_cmp);
                if len > 2 && next() % 4 == 0 {
                    edges[0] = f64::NEG_INFINITY;
                }
                for x in
                    (-2..24)
                        .map(f64::from)
                        .chain([f64::NEG_INFINITY, f64::INFINITY, f64::NAN, 3.5])
                {
                    let want = if x.is_nan() {
                        len
                    } else {
                        edges.iter().position(|&e| e >= x).unwrap_or(len)
                    };
                    assert_eq!(bin_index(&edges, x), want, "{edges:?} x = {x}");
                }
            }
        }
    }

    #[test]
    fn reference_shares_give_empty_bins_one_value() {
        // 3 of 4 bins hold 10 values; one is empty: 31 values in all.
        let shares = reference_shares(&[0.5, 0.0, 0.25, 0.25], Some(20));
        let want = [10.0 / 21.0, 1.0 / 21.0, 5.0 / 21.0, 5.0 / 21.0];
        for (a, b) in shares.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{shares:?}");
        }
        // Unnormalised proportions are divided by their sum first.
        let scaled = reference_shares(&[2.0, 0.0, 1.0, 1.0], Some(20));
        for (a, b) in scaled.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{scaled:?}");
        }
        // No count (or 0): PSI_EPSILON, normalised again, as psi smooths.
        for count in [None, Some(0)] {
            let s = reference_shares(&[0.5, 0.0, 0.5], count);
            let sum = 1.0 + PSI_EPSILON;
            assert_eq!(s, [0.5 / sum, PSI_EPSILON / sum, 0.5 / sum]);
        }
        // Nothing empty: the proportions, normalised.
        assert_eq!(reference_shares(&[1.0, 3.0], Some(4)), [0.25, 0.75]);
        // Unusable proportions are left for the statistics to reject.
        assert_eq!(reference_shares(&[0.0, 0.0], Some(4)), [0.0, 0.0]);
        assert!(reference_shares(&[f64::NAN, 1.0], None)[0].is_nan());
        assert_eq!(reference_shares(&[-1.0, 2.0], Some(4)), [-1.0, 2.0]);
    }

    #[test]
    fn bin_points_are_midpoints_and_outer_edges() {
        assert_eq!(bin_points(&[0.0, 1.0, 3.0]), [0.0, 0.5, 2.0, 3.0]);
        assert_eq!(bin_points(&[2.0]), [2.0, 2.0]);
        assert_eq!(bin_points(&[]), [0.0]);
    }

    #[test]
    fn bin_counts_is_a_slice() {
        use crate::stats::window::SlidingWindow;
        use std::time::Duration;
        let edges = [0.0, 1.0, 2.0];
        let mut w =
            SlidingWindow::<BinCounts>::new(Duration::from_secs(10), Duration::from_secs(60));
        for i in 0..100 {
            let x = (i % 4) as f64 - 0.5;
            w.current_mut(1000.0 + i as f64)
                .add(bin_index(&edges, x), 1);
        }
        let mut merged = BinCounts::with_bins(4);
        w.merged(1099.0, Duration::from_secs(60), &mut merged);
        // Slices 103..=109: t = 1030..1099, 70 values.
        assert_eq!(merged.total(), 70);
        assert_eq!(merged.counts().len(), 4);
        assert_eq!(merged.counts().iter().sum::<u64>(), 70);
        // A target narrower than the slices grows; clear keeps the length.
        let mut narrow = BinCounts::default();
        w.merged(1099.0, Duration::from_secs(60), &mut narrow);
        assert_eq!(narrow, merged);
        narrow.clear();
        assert!(narrow.is_empty());
        assert_eq!(narrow.bins(), 4);
        // Merging adds bin by bin, saturating.
        let mut a = BinCounts::with_bins(2);
        a.add(0, u64::MAX - 1);
        let mut b = BinCounts::default();
        b.add(0, 5);
        b.add(2, 1);
        a.merge_from(&b);
        assert_eq!(a.counts(), [u64::MAX, 0, 1]);
        assert_eq!(a.total(), u64::MAX);
        // Out-of-range bins are dropped, not allocated.
        a.add(MAX_BINS, 1);
        assert_eq!(a.bins(), 3);
        assert_eq!(BinCounts::with_bins(usize::MAX).bins(), MAX_BINS);
    }

    /// Binned logistic distribution, location `shift`: counts of `n` values
    /// over the bins cut by `edges`, rounded.
    fn logistic_counts(edges: &[f64], shift: f64, n: f64) -> Vec<u64> {
        let cdf = |x: f64| 1.0 / (1.0 + (-(x - shift)).exp());
        let mut prev = 0.0;
        let mut out = Vec::new();
        for e in edges.iter().copied().chain([f64::INFINITY]) {
            let c = if e.is_infinite() { 1.0 } else { cdf(e) };
            out.push(((c - prev) * n).round() as u64);
            prev = c;
        }
        out
    }

    /// Quantile edges of the standard logistic distribution.
    fn logistic_edges(bins: usize) -> Vec<f64> {
        (1..bins)
            .map(|i| {
                let p = i as f64 / bins as f64;
                (p / (1.0 - p)).ln()
            })
            .collect()
    }

    #[test]
    fn identical_distributions_show_no_drift() {
        for bins in [1, 2, 5, 12, 40] {
            let edges = logistic_edges(bins);
            let live = logistic_counts(&edges, 0.0, 1e6);
            let total: u64 = live.iter().sum();
            let reference: Vec<f64> = live.iter().map(|&c| c as f64 / total as f64).collect();
            let points = bin_points(&edges);
            assert!(
                psi(&reference, &live, PSI_EPSILON).unwrap() < 1e-15,
                "{bins}"
            );
            assert!(ks(&reference, &live).unwrap() < 1e-15);
            assert!(js(&reference, &live).unwrap() < 1e-7);
            assert!(wasserstein(&reference, &live, &points, 1.8).unwrap() < 1e-14);
            assert!((chi2_pvalue(&reference, &live).unwrap() - 1.0).abs() < 1e-12);
        }
        // With empty bins on both sides, too.
        let reference = [0.5, 0.0, 0.25, 0.25, 0.0];
        let live = [200, 0, 100, 100, 0];
        assert_eq!(psi(&reference, &live, PSI_EPSILON), Some(0.0));
        assert_eq!(ks(&reference, &live), Some(0.0));
        assert_eq!(js(&reference, &live), Some(0.0));
        assert_eq!(chi2_pvalue(&reference, &live), Some(1.0));
        let points = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(wasserstein(&reference, &live, &points, 1.0), Some(0.0));
    }

    #[test]
    fn drift_grows_with_the_shift() {
        let edges = logistic_edges(12);
        let reference: Vec<f64> = logistic_counts(&edges, 0.0, 1e9)
            .iter()
            .map(|&c| c as f64 / 1e9)
            .collect();
        let points = bin_points(&edges);
        let std = std::f64::consts::PI / 3f64.sqrt();
        let mut last = [0.0; 4];
        let mut last_p = 1.0;
        for step in 1..=20 {
            let shift = step as f64 * 0.1;
            let live = logistic_counts(&edges, shift, 10_000.0);
            let now = [
                psi(&reference, &live, PSI_EPSILON).unwrap(),
                ks(&reference, &live).unwrap(),
                js(&reference, &live).unwrap(),
                wasserstein(&reference, &live, &points, std).unwrap(),
            ];
            for (i, (&a, &b)) in now.iter().zip(&last).enumerate() {
                assert!(a > b, "statistic {i} at shift {shift}: {a} <= {b}");
            }
            let p = chi2_pvalue(&reference, &live).unwrap();
            assert!(p <= last_p, "p-value at shift {shift}: {p} > {last_p}");
            assert!((0.0..=1.0).contains(&p));
            assert!(now[1] <= 1.0 && now[2] <= 1.0);
            last = now;
            last_p = p;
        }
        // Known reading: a shift of two logistic scales is a significant PSI.
        assert!(last[0] > 0.25);
        assert!(last_p < 1e-100);
    }

    #[test]
    fn bad_inputs_give_none_and_never_panic() {
        let r = [0.5, 0.5];
        let l = [3, 4];
        let p = [0.0, 1.0];
        // Mismatched or empty.
        assert_eq!(psi(&r, &[1], PSI_EPSILON), None);
        assert_eq!(ks(&[], &[]), None);
        assert_eq!(js(&r, &[1, 2, 3]), None);
        assert_eq!(wasserstein(&r, &l, &[0.0], 1.0), None);
        assert_eq!(chi2_pvalue(&[0.5], &l), None);
        // Empty live window.
        assert_eq!(psi(&r, &[0, 0], PSI_EPSILON), None);
        assert_eq!(ks(&r, &[0, 0]), None);
        assert_eq!(js(&r, &[0, 0]), None);
        assert_eq!(wasserstein(&r, &[0, 0], &p, 1.0), None);
        assert_eq!(chi2_pvalue(&r, &[0, 0]), None);
        // Bad reference proportions.
        for bad in [
            [f64::NAN, 1.0],
            [-0.1, 1.1],
            [0.0, 0.0],
            [f64::INFINITY, 1.0],
        ] {
            assert_eq!(psi(&bad, &l, PSI_EPSILON), None);
            assert_eq!(ks(&bad, &l), None);
            assert_eq!(js(&bad, &l), None);
            assert_eq!(wasserstein(&bad, &l, &p, 1.0), None);
            assert_eq!(chi2_pvalue(&bad, &l), None);
        }
        assert_eq!(psi(&[f64::MAX, f64::MAX], &l, PSI_EPSILON), None);
        // Bad epsilon, std or points.
        for eps in [0.0, -1.0, 1.0, f64::NAN] {
            assert_eq!(psi(&r, &l, eps), None);
        }
        for std in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(wasserstein(&r, &l, &p, std), None);
        }
        assert_eq!(wasserstein(&r, &l, &[1.0, 0.0], 1.0), None);
        assert_eq!(wasserstein(&r, &l, &[f64::NAN, 0.0], 1.0), None);
        // Huge counts are fine.
        let big = [u64::MAX, u64::MAX];
        assert_eq!(ks(&r, &big), Some(0.0));
        assert!(chi2_pvalue(&r, &big).unwrap() > 0.99);
    }

    #[test]
    fn extremes_stay_in_range() {
        // All live mass where the reference has none.
        let r = [1.0, 0.0];
        let l = [0, 50];
        let psi_v = psi(&r, &l, PSI_EPSILON).unwrap();
        // Smoothed: r = (1, 1e-4)/1.0001, l = (1e-4, 1)/1.0001.
        let (a, b): (f64, f64) = (1.0 / 1.0001, 1e-4 / 1.0001);
        assert!((psi_v - 2.0 * (a - b) * (a / b).ln()).abs() < 1e-12);
        assert_eq!(ks(&r, &l), Some(1.0));
        assert_eq!(js(&r, &l), Some(1.0));
        let w = wasserstein(&r, &l, &[-1.0, 3.0], 2.0).unwrap();
        assert!((w - 2.0).abs() < 1e-15);
        assert!(chi2_pvalue(&r, &l).unwrap() < 1e-100);
        // A single bin can show no drift.
        assert_eq!(psi(&[1.0], &[9], PSI_EPSILON), Some(0.0));
        assert_eq!(ks(&[1.0], &[9]), Some(0.0));
        assert_eq!(js(&[1.0], &[9]), Some(0.0));
        assert_eq!(wasserstein(&[1.0], &[9], &[0.0], 1.0), Some(0.0));
        assert_eq!(chi2_pvalue(&[1.0], &[9]), Some(1.0));
        // One live value in 1001 in a category unseen in training: two bins
        // kept, expected 0.1 there, statistic ≈ 8.1 on 1 dof.
        let p = chi2_pvalue(&[1.0, 0.0, 0.0], &[1000, 1, 0]).unwrap();
        assert!((1e-3..1e-2).contains(&p), "{p}");
    }

    /// Reference values computed with SciPy/NumPy by
    /// `scripts/drift_fixtures.py` (see `docs/drift.md`).
    const FIXTURES: &str = include_str!("../../tests/fixtures/drift_cases.json");

    /// Tolerance against the fixtures for psi, ks, js and wasserstein:
    /// `|ours − theirs| ≤ 1e-9 · max(1, |theirs|)`.
    const STAT_TOLERANCE: f64 = 1e-9;

    /// Relative tolerance against the fixtures for p-values and `Q(a, x)`
    /// (values SciPy underflows to 0 must be below 1e-300 here).
    const P_TOLERANCE: f64 = 1e-10;

    fn fixtures() -> serde_json::Value {
        serde_json::from_str(FIXTURES).expect("fixture JSON")
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    }

    fn close(ours: f64, theirs: f64) -> bool {
        (ours - theirs).abs() <= STAT_TOLERANCE * theirs.abs().max(1.0)
    }

    fn close_relative(ours: f64, theirs: f64) -> bool {
        (ours - theirs).abs() <= P_TOLERANCE * theirs.abs() + 1e-300
    }

    #[test]
    fn statistics_match_scipy_fixtures() {
        let doc = fixtures();
        assert_eq!(doc["psi_epsilon"].as_f64(), Some(PSI_EPSILON));
        let cases = doc["cases"].as_array().expect("cases");
        assert!(cases.len() >= 20);
        let mut wasserstein_cases = 0;
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let reference = floats(&case["reference"]);
            let live: Vec<u64> = case["live"]
                .as_array()
                .expect("live")
                .iter()
                .map(|c| c.as_u64().expect("count"))
                .collect();
            let want = |key: &str| case[key].as_f64().expect(key);
            let got = psi(&reference, &live, PSI_EPSILON).unwrap();
            assert!(
                close(got, want("psi")),
                "{name}: psi {got} vs {}",
                want("psi")
            );
            let got = ks(&reference, &live).unwrap();
            assert!(close(got, want("ks")), "{name}: ks {got} vs {}", want("ks"));
            let got = js(&reference, &live).unwrap();
            assert!(close(got, want("js")), "{name}: js {got} vs {}", want("js"));
            let got = chi2_pvalue(&reference, &live).unwrap();
            let p = want("chi2_pvalue");
            assert!(close_relative(got, p), "{name}: p-value {got} vs {p}");
            if case.get("edges").is_some() {
                let edges = floats(&case["edges"]);
                let points = bin_points(&edges);
                for (a, b) in points.iter().zip(floats(&case["points"])) {
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{name}: points");
                }
                let got = wasserstein(&reference, &live, &points, want("ref_std")).unwrap();
                let w = want("wasserstein");
                assert!(close(got, w), "{name}: wasserstein {got} vs {w}");
                wasserstein_cases += 1;
            }
        }
        assert!(wasserstein_cases >= 10);
    }

    #[test]
    fn gamma_q_matches_scipy_fixtures() {
        let doc = fixtures();
        let cases = doc["gamma_q"].as_array().expect("gamma_q");
        assert!(cases.len() >= 50);
        for case in cases {
            let (a, x, q) = (
                case["a"].as_f64().unwrap(),
                case["x"].as_f64().unwrap(),
                case["q"].as_f64().unwrap(),
            );
            let got = gamma_q(a, x).unwrap();
            assert!(close_relative(got, q), "Q({a}, {x}) = {got}, SciPy {q}");
        }
    }

    #[test]
    fn bin_index_matches_numpy_searchsorted() {
        let doc = fixtures();
        let cases = &doc["bin_index"];
        let edges = floats(&cases["edges"]);
        let bins = cases["bin"].as_array().unwrap();
        for (x, bin) in floats(&cases["x"]).into_iter().zip(bins) {
            assert_eq!(
                bin_index(&edges, x) as u64,
                bin.as_u64().unwrap(),
                "x = {x}"
            );
        }
    }

    #[test]
    fn gamma_q_known_values_and_edges() {
        // Q(1, x) = e^(−x); Q(1/2, x) = erfc(√x); chi² with 2 dof: e^(−x/2).
        for x in [1e-3, 0.5, 1.0, 2.0, 10.0, 100.0, 700.0] {
            let q = gamma_q(1.0, x).unwrap();
            assert!((q / (-x).exp() - 1.0).abs() < 1e-13, "x = {x}: {q}");
            let sf = chi2_sf(x, 2.0).unwrap();
            assert!((sf / (-x / 2.0).exp() - 1.0).abs() < 1e-13);
        }
        // Q(2, x) = (1 + x) e^(−x).
        for x in [0.1, 2.9, 3.1, 50.0] {
            let q = gamma_q(2.0, x).unwrap();
            assert!((q / ((1.0 + x) * (-x).exp()) - 1.0).abs() < 1e-13);
        }
        // ln Γ at integers and halves.
        let mut factorial: f64 = 1.0;
        for k in 1..30 {
            assert!((ln_gamma(k as f64) - factorial.ln()).abs() < 1e-13, "{k}");
            factorial *= k as f64;
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
        assert_eq!(gamma_q(3.0, 0.0), Some(1.0));
        assert_eq!(gamma_q(3.0, f64::INFINITY), Some(0.0));
        assert_eq!(gamma_q(0.0, 1.0), None);
        assert_eq!(gamma_q(f64::NAN, 1.0), None);
        assert_eq!(gamma_q(1.0, f64::NAN), None);
        assert_eq!(gamma_q(1.0, -1.0), None);
        assert_eq!(chi2_sf(-3.0, 4.0), Some(1.0));
        assert_eq!(chi2_sf(f64::NAN, 4.0), None);
        // Enormous arguments return promptly and stay in range.
        for (a, x) in [
            (1e12, 1e12),
            (1e-300, 1e-300),
            (1e6, 1e6 + 1e3),
            (0.5, 1e300),
        ] {
            let q = gamma_q(a, x).unwrap();
            assert!((0.0..=1.0).contains(&q), "Q({a}, {x}) = {q}");
        }
    }
}
