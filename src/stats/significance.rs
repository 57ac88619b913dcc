//! Significance of a drift reading: how likely a statistic at least as large
//! as the one seen would be if nothing had drifted, given the window's
//! sample size `n` and the reference's size `m`; and the adjustment of a
//! model version's p-values for the number of its features.
//!
//! Each p-value comes from the large-sample ("asymptotic") law of its
//! statistic under no drift, computed on bins that are large enough for
//! that law to hold (docs/drift.md, "Significance"):
//!
//! * the bins are first merged, neighbours with neighbours in bin order, so
//!   that every merged bin expects at least [`MIN_EXPECTED`] values of the
//!   smaller of the two samples ([`merge_bins`]). Which bins merge depends on
//!   the reference and on `n`, never on the live counts, so the merged test
//!   is a test of the same hypothesis;
//! * `chi2_pvalue`: Pearson's two-sample statistic (the reference being a
//!   sample of `m` values; `m` unknown means an exact reference) against the
//!   chi-square law with `k − 1` degrees of freedom, `k` the merged bins;
//! * `psi`: `n_eff · PSI` against the same chi-square law, where
//!   `n_eff = n·m / (n + m)` (`n` for an exact reference) and each live
//!   share is smoothed by one value (`(c + 1) / (n + k)`) instead of the
//!   statistic's `1e-4`, which at small `n` dominates the statistic. One
//!   value, not half: PSI's `r · ln(r / l)` half grows without bound as a
//!   group's live count nears 0, and with half a value a nearly empty group
//!   of 10 expected values lands beyond the chi-square law's 1e-4 tail far
//!   more often than 1e-4 of windows; with one value the law's tail holds
//!   down to the levels Holm's adjustment reads for 50 features
//!   ([`PSI_PSEUDO_COUNT`]);
//! * `js`: `8 · ln 2 · n_eff · JS²` (JS in bits, its square the divergence)
//!   against the same law, each live share smoothed by half a value
//!   (`(c + ½) / (n + k/2)`): JS compares with the midpoint and stays bounded
//!   as a count nears 0;
//! * `ks`: the Kolmogorov distribution at `(√n_eff + 0.12 + 0.11/√n_eff) · KS`
//!   (Stephens' small-sample correction), on the bins as they are: binning
//!   can only make it conservative;
//! * `wasserstein`: the binned CDF gaps are, under no drift, a Gaussian
//!   vector of known covariance; the weighted sum of their absolute values is
//!   approximated by the gamma law with its exact mean and variance.
//!
//! The calibration (uniform p-values under no drift, at small and large `n`)
//! is checked by the seeded simulation tests below; the whole verdict of the
//! built-in rule by `bench/drift_calibration.py` against the real binary.

use super::drift::{DriftMethod, chi2_sf, gamma_q};
use super::reference::Reference;

/// Least number of values each merged bin expects of the smaller sample
/// before a p-value is computed from the chi-square law. Five is Cochran's
/// classic rule; ten keeps PSI's and JS's p-values calibrated down to 20
/// values (the simulation tests).
pub const MIN_EXPECTED: f64 = 10.0;

/// Live values added to every merged bin before JS is computed for its
/// p-value: half a value, so an empty bin gives a finite term of the size
/// its chance of being empty warrants.
pub const HALF_COUNT: f64 = 0.5;

/// Live values added to every merged bin before PSI is computed for its
/// p-value: one value (Laplace's rule). PSI's reference-weighted half,
/// `r · ln(r / l)`, is unbounded as the live share `l` of a group goes to
/// 0; with [`HALF_COUNT`] a group expecting 10 values that receives none
/// or one gives a statistic beyond the chi-square law's far tail, so with no
/// drift `p < 0.0002` (the 1% level adjusted for 50 features) came about
/// twice as often as 0.0002 of windows of 30 to 150 values. With one value
/// the exact null probability of `p < α` is below `α` at every such level
/// (`psi_pvalue_holds_in_the_far_tail`), and the built-in rule stays under
/// 1% false alarms for 1 to 50 features (docs/drift.md, "Calibration").
pub const PSI_PSEUDO_COUNT: f64 = 1.0;

/// Bins beyond which the Wasserstein p-value is not computed (its variance
/// takes a number of steps quadratic in the bins).
pub const MAX_WASSERSTEIN_BINS: usize = 512;

/// The effective sample size of a window of `n` values against a reference
/// of `m` (`None`: an exact reference, taken as infinitely large):
/// `n·m / (n + m)`, the `n` at which a one-sample law gives the two-sample
/// spread.
pub fn effective_size(n: u64, m: Option<u64>) -> f64 {
    let n = n as f64;
    match m {
        Some(m) if m > 0 => {
            let m = m as f64;
            n * m / (n + m)
        }
        _ => n,
    }
}

/// Groups of neighbouring bins, each expecting at least `min_expected`
/// values out of `size`: bins are taken in order and a group is closed as
/// soon as `size · (its reference share) ≥ min_expected`; what is left at
/// the end joins the last group. Returns, for each bin, its group, and the
/// number of groups (1 when even all bins together expect too few). Shares
/// are the `reference` divided by its sum.
pub fn merge_bins(reference: &[f64], size: f64, min_expected: f64) -> (Vec<usize>, usize) {
    let total: f64 = reference.iter().sum();
    let mut group = Vec::with_capacity(reference.len());
    let (mut groups, mut filled) = (0usize, 0.0);
    for &r in reference {
        group.push(groups);
        filled += size * r / total;
        if filled >= min_expected {
            groups += 1;
            filled = 0.0;
        }
    }
    if groups == 0 {
        return (vec![0; reference.len()], 1);
    }
    // An unfinished last group (bins after the last one closed) joins the
    // one before it.
    for g in group.iter_mut().rev() {
        if *g < groups {
            break;
        }
        *g = groups - 1;
    }
    (group, groups.max(1))
}

/// The p-value of a drift `method` for live bin counts against reference
/// proportions of a reference of `m` values (`None`: exact, as an inline
/// `{mean, std}`). `points` and `std` are the bins' representative points and
/// the reference standard deviation, needed by Wasserstein only.
///
/// `None` when the inputs cannot be compared (as for the statistics in
/// [`drift`](super::drift)) or the method has no p-value here. `1` when the
/// window is too small to have two merged bins: too few values to tell
/// anything.
pub fn pvalue(
    method: DriftMethod,
    reference: &[f64],
    live: &[u64],
    m: Option<u64>,
    wasserstein: Option<(&[f64], f64)>,
) -> Option<f64> {
    if reference.is_empty()
        || reference.len() != live.len()
        || reference.iter().any(|r| !(r.is_finite() && *r >= 0.0))
    {
        return None;
    }
    let r_total: f64 = reference.iter().sum();
    let n: u64 = live.iter().fold(0u64, |a, &c| a.saturating_add(c));
    if r_total.is_nan() || r_total <= 0.0 || n == 0 {
        return None;
    }
    let m = m.filter(|m| *m > 0);
    let n_eff = effective_size(n, m);
    match method {
        DriftMethod::Ks => ks_pvalue(reference, r_total, live, n as f64, n_eff),
        DriftMethod::Wasserstein => {
            let (points, std) = wasserstein?;
            wasserstein_pvalue(reference, r_total, live, n as f64, n_eff, points, std)
        }
        DriftMethod::Psi | DriftMethod::Js | DriftMethod::Chi2Pvalue => {
            let smaller = match m {
                Some(m) => n.min(m) as f64,
                None => n as f64,
            };
            let (group, k) = merge_bins(reference, smaller, MIN_EXPECTED);
            if k < 2 {
                return Some(1.0);
            }
            let mut r = vec![0.0; k];
            let mut c = vec![0.0; k];
            for (i, g) in group.iter().enumerate() {
                r[*g] += reference[i] / r_total;
                c[*g] += live[i] as f64;
            }
            let dof = (k - 1) as f64;
            let statistic = match method {
                DriftMethod::Chi2Pvalue => pearson(&r, &c, n as f64, m.map(|m| m as f64)),
                DriftMethod::Psi => n_eff * smoothed_psi(&r, &c, n as f64),
                _ => 8.0 * std::f64::consts::LN_2 * n_eff * smoothed_js2(&r, &c, n as f64),
            };
            chi2_sf(statistic, dof)
        }
    }
}

/// Pearson's chi-square of live counts `c` (total `n`) against a reference
/// of shares `r` drawn from `m` values: two-sample, each bin's expected
/// share the pooled one; with `m` unknown, goodness of fit to `r`.
fn pearson(r: &[f64], c: &[f64], n: f64, m: Option<f64>) -> f64 {
    let mut x2 = 0.0;
    for (&r, &c) in r.iter().zip(c) {
        match m {
            Some(m) => {
                let a = r * m;
                let pooled = (c + a) / (n + m);
                if pooled > 0.0 {
                    x2 += (c - n * pooled).powi(2) / (n * pooled)
                        + (a - m * pooled).powi(2) / (m * pooled);
                }
            }
            None => {
                if r > 0.0 {
                    x2 += (c - n * r).powi(2) / (n * r);
                } else if c > 0.0 {
                    return f64::INFINITY;
                }
            }
        }
    }
    x2
}

/// Live shares with `pseudo` values added to every bin.
fn smoothed(c: f64, n: f64, k: usize, pseudo: f64) -> f64 {
    (c + pseudo) / (n + pseudo * k as f64)
}

/// PSI of merged bins, the live shares smoothed by [`PSI_PSEUDO_COUNT`].
fn smoothed_psi(r: &[f64], c: &[f64], n: f64) -> f64 {
    let k = r.len();
    r.iter()
        .zip(c)
        .filter(|(r, _)| **r > 0.0)
        .map(|(&r, &c)| {
            let l = smoothed(c, n, k, PSI_PSEUDO_COUNT);
            (l - r) * (l / r).ln()
        })
        .sum::<f64>()
        .max(0.0)
}

/// Jensen–Shannon divergence in bits (JS distance squared) of merged bins,
/// the live shares smoothed by [`HALF_COUNT`].
fn smoothed_js2(r: &[f64], c: &[f64], n: f64) -> f64 {
    let k = r.len();
    let mut d = 0.0;
    for (&r, &c) in r.iter().zip(c) {
        let l = smoothed(c, n, k, HALF_COUNT);
        let mid = (r + l) / 2.0;
        if r > 0.0 {
            d += r * (r / mid).ln();
        }
        d += l * (l / mid).ln();
    }
    (d / std::f64::consts::LN_2 / 2.0).max(0.0)
}

/// Survival function of the Kolmogorov distribution,
/// `P(K > x) = 2 Σ_{j≥1} (−1)^(j−1) e^(−2 j² x²)`; below `x = 1` the
/// equivalent theta series `1 − √(2π)/x · Σ_{j≥1} e^(−(2j−1)² π² / (8x²))`,
/// which converges fast there. Equals SciPy's `kstwobign.sf`.
pub fn kolmogorov_sf(x: f64) -> Option<f64> {
    if x.is_nan() {
        return None;
    }
    if x <= 0.0 {
        return Some(1.0);
    }
    if x < 1.0 {
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        let mut cdf = 0.0;
        for j in 1..=20 {
            let odd = (2 * j - 1) as f64;
            cdf += (-odd * odd * pi2 / (8.0 * x * x)).exp();
        }
        cdf *= (2.0 * std::f64::consts::PI).sqrt() / x;
        return Some((1.0 - cdf).clamp(0.0, 1.0));
    }
    let mut sf = 0.0;
    for j in 1..=100 {
        let jf = j as f64;
        let term = (-2.0 * jf * jf * x * x).exp();
        sf += if j % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    Some((2.0 * sf).clamp(0.0, 1.0))
}

fn ks_pvalue(reference: &[f64], r_total: f64, live: &[u64], n: f64, n_eff: f64) -> Option<f64> {
    let inner = reference.len() - 1;
    let (mut r_cum, mut l_cum, mut d) = (0.0, 0.0, 0.0f64);
    for i in 0..inner {
        r_cum += reference[i];
        l_cum += live[i] as f64;
        d = d.max((l_cum / n - r_cum / r_total).abs());
    }
    let root = n_eff.sqrt();
    kolmogorov_sf((root + 0.12 + 0.11 / root) * d)
}

/// The Wasserstein p-value: `W·σ = Σ |G(i)| · Δ(i)` with `G` the gaps of
/// the binned CDFs, under no drift a Gaussian vector with covariance
/// `(R(min(i,j)) − R(i)·R(j)) / n_eff`. Its mean and variance are exact
/// (folded normals: `E|X| = σ√(2/π)`,
/// `E|X||Y| = (2/π) σx σy (√(1−ρ²) + ρ·asin ρ)`); the p-value is that of
/// the gamma law with that mean and variance.
fn wasserstein_pvalue(
    reference: &[f64],
    r_total: f64,
    live: &[u64],
    n: f64,
    n_eff: f64,
    points: &[f64],
    std: f64,
) -> Option<f64> {
    let k = reference.len();
    if k > MAX_WASSERSTEIN_BINS
        || points.len() != k
        || !(std.is_finite() && std > 0.0)
        || points
            .windows(2)
            .any(|w| w[1].partial_cmp(&w[0]).is_none_or(|o| o.is_lt()))
    {
        return None;
    }
    // Cumulative reference shares, widths and observed gaps over the inner
    // boundaries; boundaries with no width or no spread carry nothing.
    let (mut r_cum, mut l_cum, mut observed) = (0.0, 0.0, 0.0);
    let mut cdf = Vec::with_capacity(k);
    let mut width = Vec::with_capacity(k);
    for i in 0..k - 1 {
        r_cum += reference[i] / r_total;
        l_cum += live[i] as f64 / n;
        let dx = points[i + 1] - points[i];
        observed += (l_cum - r_cum).abs() * dx;
        let rc = r_cum.min(1.0);
        if dx > 0.0 && rc > 0.0 && rc < 1.0 {
            cdf.push(rc);
            width.push(dx);
        }
    }
    if cdf.is_empty() {
        return Some(1.0);
    }
    let sd: Vec<f64> = cdf.iter().map(|r| (r * (1.0 - r) / n_eff).sqrt()).collect();
    let two_over_pi = 2.0 / std::f64::consts::PI;
    let mean: f64 = sd
        .iter()
        .zip(&width)
        .map(|(s, w)| w * s * two_over_pi.sqrt())
        .sum();
    let mut second = 0.0;
    for i in 0..cdf.len() {
        for j in 0..cdf.len() {
            let (lo, hi) = if cdf[i] <= cdf[j] { (i, j) } else { (j, i) };
            let cov = cdf[lo] * (1.0 - cdf[hi]) / n_eff;
            let rho = (cov / (sd[i] * sd[j])).clamp(-1.0, 1.0);
            let folded =
                two_over_pi * sd[i] * sd[j] * ((1.0 - rho * rho).sqrt() + rho * rho.asin());
            second += width[i] * width[j] * folded;
        }
    }
    let variance = second - mean * mean;
    if !(mean > 0.0 && variance > 0.0) {
        return Some(1.0);
    }
    let shape = mean * mean / variance;
    let scale = variance / mean;
    gamma_q(shape, observed / scale)
}

/// Holm's step-down adjustment of a family of p-values, in place:
/// sorted ascending, the `i`-th (from 0) of `k` becomes
/// `max over j ≤ i of min(1, (k − j) · p(j))`. A feature whose adjusted
/// p-value is below `α` is then significant with a family-wise error rate
/// of at most `α`, whatever the dependence between the features.
/// `NaN`s are left as they are and not counted.
pub fn holm(pvalues: &mut [f64]) {
    let mut order: Vec<usize> = (0..pvalues.len())
        .filter(|i| !pvalues[*i].is_nan())
        .collect();
    order.sort_by(|a, b| pvalues[*a].total_cmp(&pvalues[*b]));
    let k = order.len();
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adjusted = ((k - rank) as f64 * pvalues[i]).min(1.0);
        running = running.max(adjusted);
        pvalues[i] = running;
    }
}

#[cfg(test)]
thread_local! {
    /// How many p-values [`Reference::pvalue`] worked out on this thread:
    /// tests count what a read costs with it.
    pub(crate) static COMPUTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Reference {
    /// The p-value of `method` for live bin counts against this reference,
    /// made of [`Reference::count`] values (`None`: exact). See [`pvalue`];
    /// `None` where the method does not apply to this reference.
    pub fn pvalue(&self, method: DriftMethod, live: &[u64]) -> Option<f64> {
        if !self.supports(method) {
            return None;
        }
        #[cfg(test)]
        COMPUTED.with(|n| n.set(n.get() + 1));
        let m = self.count();
        match self {
            Reference::Numeric {
                proportions,
                points,
                std,
                ..
            } => pvalue(method, proportions, live, m, Some((points, *std))),
            Reference::Categorical { proportions, .. } => {
                pvalue(method, proportions, live, m, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, seeded: the simulations are the same on every run.
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }

        /// One draw from the categorical distribution `cdf` (cumulative).
        fn bin(&mut self, cdf: &[f64]) -> usize {
            let u = self.uniform();
            cdf.partition_point(|c| *c <= u).min(cdf.len() - 1)
        }

        fn counts(&mut self, cdf: &[f64], n: usize) -> Vec<u64> {
            let mut c = vec![0u64; cdf.len()];
            for _ in 0..n {
                c[self.bin(cdf)] += 1;
            }
            c
        }
    }

    fn cumulative(p: &[f64]) -> Vec<f64> {
        let total: f64 = p.iter().sum();
        p.iter()
            .scan(0.0, |s, x| {
                *s += x / total;
                Some(*s)
            })
            .collect()
    }

    /// Shares of p-values below 0.5, 0.05 and 0.01 over `trials` windows of
    /// `n` values drawn from the reference itself (and, when `m` is given,
    /// a reference estimated from `m` values of the same distribution).
    fn null_rates(
        reference: &Reference,
        method: DriftMethod,
        n: usize,
        m: Option<usize>,
        trials: usize,
        seed: u64,
    ) -> [f64; 3] {
        let truth = reference.proportions().to_vec();
        let cdf = cumulative(&truth);
        let mut rng = Rng(seed);
        let mut below = [0usize; 3];
        for _ in 0..trials {
            let live = rng.counts(&cdf, n);
            let p = match m {
                None => reference.pvalue(method, &live),
                Some(m) => {
                    let drawn = rng.counts(&cdf, m);
                    let shares: Vec<f64> = drawn.iter().map(|c| *c as f64 / m as f64).collect();
                    let estimated = match reference {
                        Reference::Numeric {
                            edges, mean, std, ..
                        } => Reference::numeric(edges.clone(), shares, *mean, *std).unwrap(),
                        Reference::Categorical { .. } => Reference::categorical(
                            (0..shares.len() - 1).map(|i| (CATEGORIES[i], shares[i])),
                            shares[shares.len() - 1],
                        )
                        .unwrap(),
                    };
                    estimated.with_count(m as u64).pvalue(method, &live)
                }
            }
            .unwrap();
            assert!((0.0..=1.0).contains(&p), "{p}");
            for (i, level) in [0.5, 0.05, 0.01].iter().enumerate() {
                if p < *level {
                    below[i] += 1;
                }
            }
        }
        below.map(|b| b as f64 / trials as f64)
    }

    const CATEGORIES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

    fn categorical() -> Reference {
        // A dominant category, a rare one and an "other" bin nobody uses.
        Reference::categorical(
            [
                ("a", 0.55),
                ("b", 0.2),
                ("c", 0.12),
                ("d", 0.08),
                ("e", 0.04),
                ("f", 0.01),
            ],
            0.0,
        )
        .unwrap()
    }

    /// Under no drift every p-value is calibrated: at most a little above
    /// 5% of windows below 0.05 and 1% below 0.01 (never far below either
    /// once the window is large: the test keeps its power), at small and at
    /// large windows, against exact and estimated references.
    #[test]
    fn pvalues_are_calibrated_under_no_drift() {
        let normal = Reference::normal(0.0, 1.0).unwrap();
        let numeric_methods = [
            DriftMethod::Psi,
            DriftMethod::Js,
            DriftMethod::Ks,
            DriftMethod::Wasserstein,
        ];
        let cases: Vec<(&Reference, DriftMethod, usize, Option<usize>)> = [5, 20, 50, 300, 3000]
            .into_iter()
            .flat_map(|n| {
                numeric_methods
                    .iter()
                    .flat_map(move |m| [(*m, n, None), (*m, n, Some(2000))])
            })
            .map(|(method, n, m)| (&normal, method, n, m))
            .collect();
        let cat = categorical();
        let mut all = cases;
        for n in [5, 20, 50, 300, 3000] {
            for method in [DriftMethod::Psi, DriftMethod::Js, DriftMethod::Chi2Pvalue] {
                all.push((&cat, method, n, None));
                all.push((&cat, method, n, Some(2000)));
            }
        }
        let mut failures = Vec::new();
        for (seed, (reference, method, n, m)) in all.into_iter().enumerate() {
            let trials = if n >= 3000 { 500 } else { 2000 };
            let [half, five, one] =
                null_rates(reference, method, n, m, trials, 0x9e37_79b9 + seed as u64);
            // Binomial noise at these trial counts is about ±0.01 at 5% and
            // ±0.005 at 1%; KS on bins is conservative by design, so only an
            // upper bound is asserted for it.
            let upper = five <= 0.075 && one <= 0.02;
            let lower = n < 50 || matches!(method, DriftMethod::Ks) || five >= 0.02;
            if !(upper && lower) {
                failures.push(format!(
                    "{method:?} n={n} m={m:?}: <0.5 {half:.3} <0.05 {five:.4} <0.01 {one:.4}"
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// Large windows: the p-values are close to uniform over the whole
    /// range, not only in the tail.
    #[test]
    fn pvalues_are_uniform_at_large_windows() {
        let normal = Reference::normal(10.0, 2.0).unwrap();
        for method in [DriftMethod::Psi, DriftMethod::Js, DriftMethod::Wasserstein] {
            let [half, five, _] = null_rates(&normal, method, 1000, None, 1500, 7);
            assert!((half - 0.5).abs() < 0.06, "{method:?}: {half}");
            assert!((five - 0.05).abs() < 0.02, "{method:?}: {five}");
        }
    }

    /// A real shift (0.4 standard deviations) is significant at a few
    /// hundred values by every method, and not at a handful.
    #[test]
    fn a_shift_is_significant_once_the_window_is_large_enough() {
        let r = Reference::normal(0.0, 1.0).unwrap();
        let Reference::Numeric { edges, .. } = &r else {
            panic!()
        };
        let mut rng = Rng(42);
        let draw = |rng: &mut Rng, n: usize| {
            let mut c = vec![0u64; r.bins()];
            for _ in 0..n {
                let (u1, u2) = (rng.uniform().max(1e-12), rng.uniform());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                c[edges.partition_point(|e| *e < z + 0.4)] += 1;
            }
            c
        };
        let big = draw(&mut rng, 400);
        let small = draw(&mut rng, 5);
        for method in [
            DriftMethod::Psi,
            DriftMethod::Js,
            DriftMethod::Ks,
            DriftMethod::Wasserstein,
        ] {
            let r = r.clone().with_count(100_000);
            let p = r.pvalue(method, &big).unwrap();
            assert!(p < 1e-4, "{method:?}: {p}");
            let p = r.pvalue(method, &small).unwrap();
            assert!(p > 1e-3, "{method:?} at 5 values: {p}");
        }
    }

    /// The far tail of PSI's p-value, exactly: with `k` groups of equal
    /// shares and an exact reference, every window of `n` values is
    /// enumerated with its multinomial probability, and the probability of
    /// `p < α` must not exceed `α` at the levels Holm's adjustment reads for
    /// 1 to 50 features (1% / 50 = 0.0002). Groups of 10 to 25 expected
    /// values, as `merge_bins` makes them in windows of 30 to 100 values.
    /// (Two groups are left out: there the test is a binomial one, whose
    /// few attainable p-values fall either side of any level.)
    #[test]
    fn psi_pvalue_holds_in_the_far_tail() {
        let mut failures = Vec::new();
        for (k, n) in [(3usize, 30u64), (3, 45), (4, 40), (4, 100), (5, 50)] {
            let reference = vec![1.0; k];
            assert_eq!(merge_bins(&reference, n as f64, MIN_EXPECTED).1, k);
            let ln_fact: Vec<f64> = (0..=n)
                .scan(0.0, |s, i| {
                    if i > 0 {
                        *s += (i as f64).ln();
                    }
                    Some(*s)
                })
                .collect();
            let ln_share = (1.0 / k as f64).ln();
            let levels = [0.01, 0.001, 0.0002];
            let mut below = [0.0f64; 3];
            let mut live = vec![0u64; k];
            // Every composition of n into k counts, in lexicographic order.
            loop {
                let last: u64 = n - live[..k - 1].iter().sum::<u64>();
                live[k - 1] = last;
                let p = pvalue(DriftMethod::Psi, &reference, &live, None, None).unwrap();
                if p < levels[0] {
                    let ln_prob = ln_fact[n as usize]
                        - live.iter().map(|c| ln_fact[*c as usize]).sum::<f64>()
                        + n as f64 * ln_share;
                    for (b, level) in below.iter_mut().zip(levels) {
                        if p < level {
                            *b += ln_prob.exp();
                        }
                    }
                }
                // Next composition: raise the last free count that can be
                // raised, and zero the free counts after it.
                let mut i = k - 1;
                loop {
                    if i == 0 {
                        break;
                    }
                    i -= 1;
                    if live[..k - 1].iter().sum::<u64>() < n {
                        live[i] += 1;
                        break;
                    }
                    live[i] = 0;
                }
                if live[..k - 1].iter().all(|c| *c == 0) {
                    break;
                }
            }
            for (b, level) in below.iter().zip(levels) {
                if *b > level {
                    failures.push(format!("k={k} n={n}: P(p < {level}) = {b:.6}"));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn bins_merge_until_each_expects_enough() {
        let r = [0.001, 0.099, 0.2, 0.2, 0.2, 0.2, 0.099, 0.001];
        // 100 values: groups close at 10 expected values.
        let (g, k) = merge_bins(&r, 100.0, 10.0);
        assert_eq!(g, vec![0, 0, 1, 2, 3, 4, 5, 5]);
        assert_eq!(k, 6);
        // Too few values for two groups: one.
        assert_eq!(merge_bins(&r, 15.0, 10.0), (vec![0; 8], 1));
        assert_eq!(merge_bins(&r, 5.0, 10.0).1, 1);
        // Plenty: every bin is its own group.
        assert_eq!(merge_bins(&r, 1e6, 10.0), ((0..8).collect(), 8));
    }

    #[test]
    fn holm_adjusts_step_down() {
        let mut p = [0.01, 0.04, 0.03, 0.005, f64::NAN];
        holm(&mut p);
        // Sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1).
        let want = [0.03, 0.06, 0.06, 0.02];
        for (got, want) in p[..4].iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{p:?}");
        }
        assert!(p[4].is_nan());
        let mut big = [0.5, 0.9];
        holm(&mut big);
        assert_eq!(big, [1.0, 1.0]);
    }

    #[test]
    fn effective_size_of_two_samples() {
        assert_eq!(effective_size(100, None), 100.0);
        assert_eq!(effective_size(100, Some(100)), 50.0);
        assert_eq!(effective_size(100, Some(0)), 100.0);
    }

    #[test]
    fn bad_input_has_no_pvalue() {
        let r = [0.5, 0.5];
        assert_eq!(pvalue(DriftMethod::Psi, &r, &[0, 0], None, None), None);
        assert_eq!(pvalue(DriftMethod::Psi, &r, &[1], None, None), None);
        assert_eq!(
            pvalue(DriftMethod::Psi, &[f64::NAN, 1.0], &[1, 1], None, None),
            None
        );
        assert_eq!(
            pvalue(DriftMethod::Wasserstein, &r, &[1, 1], None, None),
            None
        );
        assert_eq!(kolmogorov_sf(f64::NAN), None);
        assert_eq!(kolmogorov_sf(0.0), Some(1.0));
    }

    /// Values computed by SciPy (`scripts/significance_fixtures.py`).
    #[test]
    fn agrees_with_scipy() {
        let text = include_str!("../../tests/fixtures/significance_cases.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for case in v["kolmogorov"].as_array().unwrap() {
            let x = case["x"].as_f64().unwrap();
            let want = case["sf"].as_f64().unwrap();
            let got = kolmogorov_sf(x).unwrap();
            assert!(
                (got - want).abs() <= 1e-10 * want + 1e-15,
                "{x}: {got} vs {want}"
            );
        }
        for case in v["pvalues"].as_array().unwrap() {
            let method = match case["method"].as_str().unwrap() {
                "psi" => DriftMethod::Psi,
                "js" => DriftMethod::Js,
                "ks" => DriftMethod::Ks,
                _ => DriftMethod::Chi2Pvalue,
            };
            let r: Vec<f64> = serde_json::from_value(case["reference"].clone()).unwrap();
            let c: Vec<u64> = serde_json::from_value(case["live"].clone()).unwrap();
            let m = case["m"].as_u64();
            let want = case["pvalue"].as_f64().unwrap();
            let got = pvalue(method, &r, &c, m, None).unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want + 1e-300,
                "{}: {got} vs {want}",
                case["name"]
            );
        }
    }
}
