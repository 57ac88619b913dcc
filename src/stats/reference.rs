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
    },
    /// Text values.
    Categorical {
        /// Bin of each known category; every other value is in the last bin.
        index: HashMap<String, usize>,
        /// One proportion per known category, then "other".
        proportions: Vec<f64>,
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
        let points = drift::bin_points(&edges, None, None);
        Some(Reference::Numeric {
            edges,
            proportions,
            points,
            mean,
            std,
        })
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
        Some(Reference::Categorical { index, proportions })
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
        Reference::numeric(edges, proportions, mean, var.sqrt())
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
            Reference::Categorical { index, proportions } => {
                Some(index.get(c).copied().unwrap_or(proportions.len() - 1))
            }
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
            Reference::Categorical { index, proportions } => {
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
        let props = match self {
            Reference::Numeric { proportions, .. } | Reference::Categorical { proportions, .. } => {
                proportions
            }
        };
        match (method, self) {
            (DriftMethod::Psi, _) => drift::psi(props, live, PSI_EPSILON),
            (DriftMethod::Js, _) => drift::js(props, live),
            (DriftMethod::Ks, _) => drift::ks(props, live),
            (DriftMethod::Wasserstein, Reference::Numeric { points, std, .. }) => {
                drift::wasserstein(props, live, points, *std)
            }
            (DriftMethod::Chi2Pvalue, _) => drift::chi2_pvalue(props, live),
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
