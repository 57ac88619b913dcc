//! Reference distributions: what a feature (or the prediction) looked like
//! in training, binned, so that a live window can be compared with it.
//!
//! A reference comes from a baseline file (`model-exporter baseline`), from
//! an inline `{mean, std}` in rules.yaml (taken as a normal distribution),
//! or is learned from the first events of a model version.
//!
//! Numeric references have `n` edges `e0 ≤ … ≤ e(n−1)` (for a baseline, from
//! the reference minimum to its maximum) and `n + 1` bins,
//! `(−∞, e0], (e0, e1], …, (e(n−1), +∞)`: a value is binned by
//! [`drift::bin_index`], the one binning function of the crate, so the bins
//! are the buckets of the feature's `model_feature_value` histogram and a
//! point mass at the minimum has a bin of its own. Categorical references
//! have one bin per known category plus one for every other value.

use std::collections::HashMap;

use super::drift::DriftMethod;
use super::drift::{self, PSI_EPSILON};

/// The standard normal's deciles (z-scores of 10%, 20%, ..., 90%).
const NORMAL_DECILES: [f64; 9] = [
    -1.281_551_565_545,
    -0.841_621_233_573,
    -0.524_400_512_708,
    -0.253_347_103_136,
    0.0,
    0.253_347_103_136,
    0.524_400_512_708,
    0.841_621_233_573,
    1.281_551_565_545,
];

/// Share of a normal distribution beyond 3 standard deviations on one side.
const NORMAL_TAIL_3SD: f64 = 0.001_349_898_031_630_094_6;

/// A binned reference distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// Numbers.
    Numeric {
        /// `n` non-decreasing edges.
        edges: Vec<f64>,
        /// `n + 1` proportions, one per bin (see [`drift::bin_index`]).
        proportions: Vec<f64>,
        /// A representative value of each bin (for Wasserstein).
        points: Vec<f64>,
        /// Reference mean.
        mean: f64,
        /// Reference standard deviation.
        std: f64,
        /// The shares PSI and JS compare with ([`drift::reference_shares`]).
        shares: Vec<f64>,
        /// How many values the reference was made of, when known.
        count: Option<u64>,
    },
    /// Text values.
    Categorical {
        /// Bin of each known category; every other value is in the last bin.
        index: HashMap<String, usize>,
        /// One proportion per known category, then "other".
        proportions: Vec<f64>,
        /// The shares PSI and JS compare with ([`drift::reference_shares`]).
        shares: Vec<f64>,
        /// How many values the reference was made of, when known.
        count: Option<u64>,
    },
}

impl Reference {
    /// A numeric reference from its parts; `None` unless the edges increase
    /// and there is one more proportion than edges (and the sum is positive).
    pub fn numeric(edges: Vec<f64>, proportions: Vec<f64>, mean: f64, std: f64) -> Option<Self> {
        let ok = !edges.is_empty()
            && edges.iter().all(|e| e.is_finite())
            && edges.windows(2).all(|w| w[0] <= w[1])
            && proportions.len() == edges.len() + 1
            && proportions.iter().all(|p| p.is_finite() && *p >= 0.0)
            && proportions.iter().sum::<f64>() > 0.0;
        if !ok {
            return None;
        }
        // The outer bins sit on their edge, the inner ones on their midpoint.
        let points = drift::bin_points(&edges);
        let shares = drift::reference_shares(&proportions, None);
        Some(Reference::Numeric {
            edges,
            proportions,
            points,
            mean,
            std,
            shares,
            count: None,
        })
    }

    /// The same reference, made of `count` values (a baseline's `count`,
    /// the number of values learned): its empty bins then get the share of
    /// one value in `count + 1` ([`drift::reference_shares`]). A count of 0
    /// is ignored.
    pub fn with_count(mut self, count: u64) -> Self {
        let count = (count > 0).then_some(count);
        match &mut self {
            Reference::Numeric {
                proportions,
                shares,
                count: c,
                ..
            }
            | Reference::Categorical {
                proportions,
                shares,
                count: c,
                ..
            } => {
                *shares = drift::reference_shares(proportions, count);
                *c = count;
            }
        }
        self
    }

    /// The same reference with each bin's mass placed at the mean of its
    /// training values (a baseline's `means`, one per bin, `None` for an
    /// empty bin, which keeps its edge or midpoint), for [`wasserstein`].
    /// Means of the wrong number, not finite or not ascending are ignored:
    /// the reference keeps its midpoints.
    ///
    /// [`wasserstein`]: drift::wasserstein
    pub fn with_means(mut self, means: &[Option<f64>]) -> Self {
        if let Reference::Numeric { points, .. } = &mut self
            && means.len() == points.len()
        {
            let placed: Vec<f64> = points
                .iter()
                .zip(means)
                .map(|(&p, m)| m.unwrap_or(p))
                .collect();
            if placed.iter().all(|p| p.is_finite()) && placed.windows(2).all(|w| w[0] <= w[1]) {
                *points = placed;
            }
        }
        self
    }

    /// Where each bin's mass sits for Wasserstein (numeric references
    /// only): the bin's training mean, or its midpoint (the outer bins:
    /// their edge) without one.
    pub fn points(&self) -> Option<&[f64]> {
        match self {
            Reference::Numeric { points, .. } => Some(points),
            Reference::Categorical { .. } => None,
        }
    }

    /// How many values the reference was made of, when known.
    pub fn count(&self) -> Option<u64> {
        match self {
            Reference::Numeric { count, .. } | Reference::Categorical { count, .. } => *count,
        }
    }

    /// The reference's share of each bin as PSI and JS read it, and as
    /// `model_feature_reference_ratio` publishes it: the proportions with
    /// every empty bin given a share ([`drift::reference_shares`]).
    pub fn shares(&self) -> &[f64] {
        match self {
            Reference::Numeric { shares, .. } | Reference::Categorical { shares, .. } => shares,
        }
    }

    /// A normal distribution `N(mean, std²)` as a reference: ten bins of
    /// equal probability between `mean ± 3 std`, plus the two tails.
    pub fn normal(mean: f64, std: f64) -> Option<Self> {
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return None;
        }
        let mut edges = vec![mean - 3.0 * std];
        edges.extend(NORMAL_DECILES.iter().map(|z| mean + z * std));
        edges.push(mean + 3.0 * std);
        let mut proportions = vec![NORMAL_TAIL_3SD, 0.1 - NORMAL_TAIL_3SD];
        proportions.extend([0.1; 8]);
        proportions.extend([0.1 - NORMAL_TAIL_3SD, NORMAL_TAIL_3SD]);
        Reference::numeric(edges, proportions, mean, std)
    }

    /// A categorical reference from category proportions and "other".
    pub fn categorical<'a>(
        categories: impl IntoIterator<Item = (&'a str, f64)>,
        other: f64,
    ) -> Option<Self> {
        let mut index = HashMap::new();
        let mut proportions = Vec::new();
        for (c, p) in categories {
            if !(p.is_finite() && p >= 0.0) {
                return None;
            }
            index.insert(c.to_owned(), proportions.len());
            proportions.push(p);
        }
        if !(other.is_finite() && other >= 0.0) {
            return None;
        }
        proportions.push(other);
        let shares = drift::reference_shares(&proportions, None);
        Some(Reference::Categorical {
            index,
            proportions,
            shares,
            count: None,
        })
    }

    /// A numeric reference learned from sample values: `k` bins between the
    /// sample's quantiles. `None` for fewer than two distinct values.
    pub fn learn(values: &mut Vec<f64>, k: usize) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.len() < 2 {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let (min, max) = (values[0], values[n - 1]);
        if min == max {
            return None;
        }
        let mut edges: Vec<f64> = (0..=k)
            .map(|i| values[((i * (n - 1)) as f64 / k as f64).round() as usize])
            .collect();
        edges.dedup();
        let mut counts = vec![0u64; edges.len() + 1];
        for v in values.iter() {
            counts[drift::bin_index(&edges, *v)] += 1;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let proportions = counts.iter().map(|c| *c as f64 / n as f64).collect();
        Reference::numeric(edges, proportions, mean, var.sqrt()).map(|r| r.with_count(n as u64))
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        match self {
            Reference::Numeric { proportions, .. } | Reference::Categorical { proportions, .. } => {
                proportions.len()
            }
        }
    }

    /// Edges usable as histogram buckets (numeric references only).
    pub fn edges(&self) -> Option<&[f64]> {
        match self {
            Reference::Numeric { edges, .. } => Some(edges),
            Reference::Categorical { .. } => None,
        }
    }

    /// The reference mean and standard deviation (numeric references only).
    pub fn moments(&self) -> Option<(f64, f64)> {
        match self {
            Reference::Numeric { mean, std, .. } => Some((*mean, *std)),
            Reference::Categorical { .. } => None,
        }
    }

    /// The bin of a number, if this reference is numeric and `x` is not
    /// `NaN`: [`drift::bin_index`].
    pub fn bin_number(&self, x: f64) -> Option<usize> {
        match self {
            Reference::Numeric { edges, .. } if !x.is_nan() => Some(drift::bin_index(edges, x)),
            _ => None,
        }
    }

    /// The bin of a category, if this reference is categorical.
    pub fn bin_category(&self, c: &str) -> Option<usize> {
        match self {
            Reference::Categorical {
                index, proportions, ..
            } => Some(index.get(c).copied().unwrap_or(proportions.len() - 1)),
            Reference::Numeric { .. } => None,
        }
    }

    /// A short label for each bin: value ranges, or category names.
    pub fn bin_labels(&self) -> Vec<String> {
        let short = |x: f64| {
            let a = x.abs();
            if a != 0.0 && !(1e-3..1e6).contains(&a) {
                format!("{x:.2e}")
            } else {
                format!("{}", (x * 1000.0).round() / 1000.0)
            }
        };
        match self {
            Reference::Numeric { edges, .. } => {
                let mut v = vec![format!("≤{}", short(edges[0]))];
                v.extend(
                    edges
                        .windows(2)
                        .map(|w| format!("{}–{}", short(w[0]), short(w[1]))),
                );
                v.push(format!(">{}", short(edges[edges.len() - 1])));
                v
            }
            Reference::Categorical {
                index, proportions, ..
            } => {
                let mut v = vec![String::new(); proportions.len()];
                for (name, i) in index {
                    v[*i] = name.clone();
                }
                if let Some(last) = v.last_mut() {
                    *last = "other".into();
                }
                v
            }
        }
    }

    /// The reference proportions, bin by bin.
    pub fn proportions(&self) -> &[f64] {
        match self {
            Reference::Numeric { proportions, .. } | Reference::Categorical { proportions, .. } => {
                proportions
            }
        }
    }

    /// Whether `method` applies: KS and Wasserstein to numbers, the
    /// chi-square test to categories, PSI and JS to both.
    pub fn supports(&self, method: DriftMethod) -> bool {
        let numeric = matches!(self, Reference::Numeric { .. });
        match method {
            DriftMethod::Psi | DriftMethod::Js => true,
            DriftMethod::Ks | DriftMethod::Wasserstein => numeric,
            DriftMethod::Chi2Pvalue => !numeric,
        }
    }

    /// The drift of live bin counts from this reference.
    pub fn drift(&self, method: DriftMethod, live: &[u64]) -> Option<f64> {
        if !self.supports(method) {
            return None;
        }
        let props = self.proportions();
        match (method, self) {
            // Every share is positive: psi's own smoothing of the
            // reference side has nothing left to do.
            (DriftMethod::Psi, _) => drift::psi(self.shares(), live, PSI_EPSILON),
            (DriftMethod::Js, _) => drift::js(self.shares(), live),
            (DriftMethod::Ks, _) => drift::ks(props, live),
            (DriftMethod::Wasserstein, Reference::Numeric { points, std, .. }) => {
                drift::wasserstein(props, live, points, *std)
            }
            // A reference sample of known size: the two-sample test; an
            // exact one (inline, no count): goodness of fit.
            (DriftMethod::Chi2Pvalue, _) => match self.count() {
                Some(m) => drift::chi2_two_sample_pvalue(props, m as f64, live),
                None => drift::chi2_pvalue(props, live),
            },
            _ => None,
        }
    }
}

/// The references of one model: per feature, and of the prediction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReferences {
    /// Per feature.
    pub features: HashMap<String, Reference>,
    /// Of numeric or class predictions.
    pub prediction: Option<Reference>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_reference_bins_are_equiprobable() {
        let r = Reference::normal(100.0, 50.0).unwrap();
        assert_eq!(r.bins(), 12);
        let Reference::Numeric {
            edges, proportions, ..
        } = &r
        else {
            panic!()
        };
        assert_eq!(edges.len(), 11);
        assert!((edges[0] + 50.0).abs() < 1e-9);
        assert!((edges[5] - 100.0).abs() < 1e-9);
        assert!((proportions.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Samples from the reference itself: no drift to speak of.
        let mut live = vec![0u64; 12];
        let mut s = 12345u64;
        for _ in 0..20_000 {
            // Box-Muller from a xorshift.
            let mut u = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64
            };
            let (u1, u2) = (u().max(1e-12), u());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            live[r.bin_number(100.0 + 50.0 * z).unwrap()] += 1;
        }
        assert!(r.drift(DriftMethod::Psi, &live).unwrap() < 0.01);
        // Shifted by 20% of the mean (0.4 std): a clear PSI.
        let mut shifted = vec![0u64; 12];
        for (i, c) in live.iter().enumerate() {
            let Reference::Numeric { points, .. } = &r else {
                panic!()
            };
            shifted[r.bin_number(points[i] + 20.0).unwrap()] += c;
        }
        assert!(r.drift(DriftMethod::Psi, &shifted).unwrap() > 0.1);
        assert!(r.drift(DriftMethod::Chi2Pvalue, &live).is_none());
        assert!(r.drift(DriftMethod::Ks, &live).is_some());
    }

    #[test]
    fn categorical_and_learned_references() {
        let r = Reference::categorical([("DE", 0.5), ("FR", 0.3)], 0.2).unwrap();
        assert_eq!(r.bin_category("FR"), Some(1));
        assert_eq!(r.bin_category("US"), Some(2));
        assert_eq!(r.bin_number(1.0), None);
        assert!(r.supports(DriftMethod::Chi2Pvalue) && !r.supports(DriftMethod::Ks));
        let p = r.drift(DriftMethod::Chi2Pvalue, &[500, 300, 200]).unwrap();
        assert!(p > 0.99, "{p}");
        assert!(r.drift(DriftMethod::Chi2Pvalue, &[100, 300, 600]).unwrap() < 1e-6);

        let mut values: Vec<f64> = (0..1000).map(f64::from).collect();
        let l = Reference::learn(&mut values, 10).unwrap();
        let Reference::Numeric {
            edges, proportions, ..
        } = &l
        else {
            panic!()
        };
        assert_eq!(edges.len(), 11);
        // The minimum alone is in (−∞, min]; nothing lies above the maximum.
        assert_eq!(proportions[0], 0.001);
        assert_eq!(*proportions.last().unwrap(), 0.0);
        assert!(
            proportions[1..11].iter().all(|p| (p - 0.1).abs() < 0.002),
            "{proportions:?}"
        );
        assert!(Reference::learn(&mut vec![1.0, 1.0], 10).is_none());
        assert!(Reference::numeric(vec![2.0, 1.0], vec![0.5, 0.0, 0.5], 0.0, 1.0).is_none());
    }

    /// A reference of `m = 200` values on the edges 0..=10: the minimum
    /// alone in `(−∞, 0]`, 19 values in `(0, 1]`, 20 in each other bin,
    /// none above the maximum.
    fn two_hundred() -> Reference {
        let mut proportions = vec![1.0 / 200.0, 19.0 / 200.0];
        proportions.extend([20.0 / 200.0; 9]);
        proportions.push(0.0);
        let edges = (0..=10).map(f64::from).collect();
        Reference::numeric(edges, proportions, 5.0, 2.9)
            .unwrap()
            .with_count(200)
    }

    #[test]
    fn values_just_past_the_maximum_weigh_one_training_value() {
        let r = two_hundred();
        assert_eq!(r.count(), Some(200));
        let shares = r.shares();
        // The empty bin above the maximum holds one value of 201, as the
        // minimum's bin does.
        assert!((shares[11] - 1.0 / 201.0).abs() < 1e-15);
        assert!((shares[0] - 1.0 / 201.0).abs() < 1e-15);
        assert!((shares[1] - 19.0 / 201.0).abs() < 1e-15);
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // A window of 200 like the training data, but with 2 values just
        // past the maximum (an unbounded distribution puts about
        // n / (m + 1) = 1 there): not drift. With a share of 1e-4 there,
        // those two values alone added 0.046.
        let mut live = vec![1u64, 19];
        live.extend([20; 8]);
        live.extend([18, 2]);
        let psi = r.drift(DriftMethod::Psi, &live).unwrap();
        assert!(psi < 0.01, "{psi}");
        let js = r.drift(DriftMethod::Js, &live).unwrap();
        assert!(js < 0.05, "{js}");
        // KS keeps the raw proportions: 1% of the values moved past the
        // last edge.
        let ks = r.drift(DriftMethod::Ks, &live).unwrap();
        assert!((ks - 0.01).abs() < 1e-12, "{ks}");
        // A fifth of the window past the maximum is drift.
        let mut moved = vec![1u64, 19];
        moved.extend([20; 7]);
        moved.extend([0, 0, 40]);
        assert!(r.drift(DriftMethod::Psi, &moved).unwrap() > 0.25);
        // Without a count, an empty bin gets PSI_EPSILON.
        let bare = Reference::numeric(vec![0.0, 1.0], vec![0.5, 0.5, 0.0], 0.5, 0.5).unwrap();
        assert_eq!(bare.count(), None);
        let sum = 1.0 + PSI_EPSILON;
        assert_eq!(bare.shares(), [0.5 / sum, 0.5 / sum, PSI_EPSILON / sum]);
    }

    #[test]
    fn binning_convention() {
        // The bins of drift::bin_index: (−∞, 0], (0, 10], (10, 20], (20, ∞).
        let r = Reference::numeric(vec![0.0, 10.0, 20.0], vec![0.25; 4], 10.0, 5.0).unwrap();
        let cases = [
            (f64::NEG_INFINITY, 0),
            (-1.0, 0),
            (0.0, 0),
            (5.0, 1),
            (10.0, 1),
            (10.5, 2),
            (20.0, 2),
            (20.1, 3),
            (f64::INFINITY, 3),
        ];
        for (x, want) in cases {
            assert_eq!(r.bin_number(x), Some(want), "{x}");
        }
        assert_eq!(r.bin_number(f64::NAN), None);
        assert_eq!(r.bin_labels(), ["≤0", "0–10", "10–20", ">20"]);
    }
}
