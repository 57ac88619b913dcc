//! The configured references on `/metrics`, so that Prometheus can measure
//! drift over a whole fleet of sidecars (docs/drift.md, "Fleet-wide
//! drift"): for every model version and feature with a configured
//! reference (baseline file or inline `{mean, std}`) that the version has
//! sent,
//!
//! * `model_feature_reference_ratio{bin}`: the reference's share of each
//!   bin as the sidecar's PSI and JS read it (empty bins given a share), the
//!   bins being those `model_feature_bin_total` counts the live values in
//!   (numeric and categorical features), for PSI and JS;
//! * `model_feature_reference`: the reference of a numeric feature as a
//!   histogram of one observation: its cumulative share at each bucket bound
//!   of the feature's `model_feature_value` histogram (whose buckets are the
//!   reference's edges), `_count` 1 and `_sum` the reference mean, for KS.
//!
//! The reference is a histogram rather than a gauge with an `le` label so
//! that the exposition is valid (`promtool check metrics` refuses `le` on a
//! gauge) and so that Prometheus, which normalises the `le` values of
//! histograms (Prometheus 3 writes `1` as `1.0`), treats both histograms'
//! bounds alike and the two join on `le` in any version.
//!
//! Learned references are left out: each sidecar learns its own, so they
//! cannot be compared across a fleet.

use std::collections::BTreeMap;

use super::dynamic::{GaugeFamily, HistogramFamily, RenderedFamily};
use super::metrics::validate_buckets;
use super::render::StateView;
use super::series::le_label;
use crate::stats::reference::Reference;

/// Names and help of the reference families, in the order
/// [`reference_families`] returns them.
pub const REFERENCE_FAMILIES: &[(&str, &str)] = &[
    (
        "model_feature_reference",
        "A numeric feature's reference as a histogram of one observation: its share at or below each bucket bound of model_feature_value, count 1, sum the reference mean (for fleet-wide KS in PromQL).",
    ),
    (
        "model_feature_reference_ratio",
        "The reference's share of each bin of a feature, the bins of model_feature_bin_total, empty bins given the share of one training value (for fleet-wide PSI and JS in PromQL).",
    ),
];

/// The reference families of every live model version of `state`.
pub fn reference_families(state: &impl StateView) -> Vec<RenderedFamily> {
    let mut cdf = HistogramFamily::new(REFERENCE_FAMILIES[0].0, REFERENCE_FAMILIES[0].1);
    let mut shares = GaugeFamily::new(REFERENCE_FAMILIES[1].0, REFERENCE_FAMILIES[1].1);
    for (model, version) in state.series() {
        if !state.live(&model, &version) {
            continue;
        }
        let refs = state.references(&model);
        for feature in state.features(&model, &version) {
            let Some(reference) = refs.features.get(&feature) else {
                continue;
            };
            let mut labels = BTreeMap::from([
                ("model".to_owned(), model.clone()),
                ("version".to_owned(), version.clone()),
                ("feature".to_owned(), feature),
            ]);
            if let Some(buckets) = cumulative_at_edges(reference) {
                let mean = reference.moments().map_or(f64::NAN, |(mean, _)| mean);
                cdf.push(&labels, &buckets, mean, 1.0);
            }
            for (bin, share) in bin_shares(reference).into_iter().enumerate() {
                labels.insert("bin".to_owned(), bin.to_string());
                shares.push(&labels, share);
            }
        }
    }
    vec![cdf.finish(), shares.finish()]
}

/// The reference's share of each bin as the sidecar's PSI and JS read it
/// ([`Reference::shares`]: every empty bin given a share, docs/drift.md,
/// "Values beyond the reference"); empty when the proportions do not sum to
/// a positive number.
pub fn bin_shares(reference: &Reference) -> Vec<f64> {
    if raw_shares(reference).is_empty() {
        return Vec::new();
    }
    reference.shares().to_vec()
}

/// The reference's proportions divided by their sum, with no smoothing (KS
/// reads them so); empty when they do not sum to a positive number.
fn raw_shares(reference: &Reference) -> Vec<f64> {
    let p = reference.proportions();
    let total: f64 = p.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Vec::new();
    }
    p.iter().map(|x| x / total).collect()
}

/// The reference's cumulative share at each of its edges, with each edge's
/// `le` label value, when the edges are the buckets of the feature's
/// `model_feature_value` histogram (strictly increasing; a constant
/// feature's `[v, v]` is not, and its histogram has the default buckets).
pub fn cumulative_at_edges(reference: &Reference) -> Option<Vec<(String, f64)>> {
    let edges = reference.edges()?;
    validate_buckets(edges).ok()?;
    let shares = raw_shares(reference);
    if shares.is_empty() {
        return None;
    }
    edges
        .iter()
        .map(|&e| {
            let n = bins_at_or_below(reference, e)?.min(shares.len());
            Some((le_label(e), shares[..n].iter().sum::<f64>().min(1.0)))
        })
        .collect()
}

/// How many bins, from the first, lie wholly at or below `e`: the bins
/// before `e`'s own, and `e`'s own if nothing above `e` falls in it. Read
/// through [`Reference::bin_number`], so that it follows the bins'
/// definition (docs/drift.md, "Bins"); with bins closed on the right at
/// the edges, the values in them are those a histogram bucket `le = e`
/// counts.
fn bins_at_or_below(reference: &Reference, e: f64) -> Option<usize> {
    let own = reference.bin_number(e)?;
    let closed = reference.bin_number(e.next_up())? != own;
    Some(if closed { own + 1 } else { own })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_normalised() {
        let r = Reference::categorical([("DE", 2.0), ("FR", 1.0)], 1.0).unwrap();
        assert_eq!(bin_shares(&r), vec![0.5, 0.25, 0.25]);
        assert!(cumulative_at_edges(&r).is_none());
    }

    #[test]
    fn the_cumulative_share_at_an_edge_is_what_its_bucket_counts() {
        let r = Reference::normal(10.0, 2.0).unwrap();
        let edges = r.edges().unwrap().to_vec();
        // Live values on a grid that hits every inner edge exactly, binned
        // as the sidecar bins them: the bins at or below each edge hold
        // exactly the values a histogram bucket `le = edge` counts.
        let values: Vec<f64> = (0..4000)
            .map(|i| 2.0 + f64::from(i) * 0.004)
            .chain(edges[1..].iter().copied())
            .collect();
        let mut live = vec![0u64; r.bins()];
        for &x in &values {
            live[r.bin_number(x).unwrap()] += 1;
        }
        for &e in &edges[1..] {
            let n = bins_at_or_below(&r, e).unwrap();
            let counted: u64 = live[..n].iter().sum();
            let bucket = values.iter().filter(|&&x| x <= e).count() as u64;
            assert_eq!(counted, bucket, "le={e}");
        }
        let cdf = cumulative_at_edges(&r).unwrap();
        assert_eq!(cdf.len(), edges.len());
        assert_eq!(cdf[3].0, le_label(edges[3]));
        assert!(cdf.windows(2).all(|w| w[0].1 <= w[1].1));
        // The last bin lies above the maximum: the share at it is below 1.
        assert!(cdf.last().unwrap().1 < 1.0);
        // Equal edges are not histogram buckets.
        let constant = Reference::numeric(vec![3.0, 3.0], vec![0.0, 1.0, 0.0], 3.0, 0.0).unwrap();
        assert!(cumulative_at_edges(&constant).is_none());
        assert_eq!(raw_shares(&constant), vec![0.0, 1.0, 0.0]);
        // Made of 10 values: each empty bin holds one more.
        let constant = constant.with_count(10);
        assert_eq!(
            bin_shares(&constant),
            vec![1.0 / 12.0, 10.0 / 12.0, 1.0 / 12.0]
        );
    }
}
