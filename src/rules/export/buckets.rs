//! The latency histogram's bucket bounds that the rules need.
//!
//! An exported `pNN(latency)` rule reads `histogram_quantile` over
//! `model_request_duration_seconds`, which interpolates linearly inside the
//! bucket the quantile falls in. Between two bounds the interpolated value
//! says nothing exact about the threshold: with bounds 0.25 and 0.5, a p99
//! of 0.28 s can read 0.33 s and fire `p99(latency) > 300ms`. When the
//! threshold is itself a bound, the quantile is above it exactly when more
//! than `1 - q` of the requests were slower than the threshold, which is
//! what the sidecar decides on its own sketch. So the exporter adds every
//! latency threshold of its rules to the histogram's bounds when it starts
//! ([`latency_layout`]).
//!
//! `histogram_quantile` never returns more than the highest finite bound
//! (a quantile in the `+Inf` bucket reads as that bound), so a rule
//! `p99(latency) > T` with `T` at or above the top bound can never fire in
//! Prometheus: [`unreachable_thresholds`] finds those, for `check` and the start-up
//! log, and such thresholds are not added (a bound at `T` would still be
//! the top one).
//!
//! Only latency quantiles are read through `histogram_quantile`; the means
//! of predictions and confidences are exported as `_sum / _count`, which
//! is exact whatever the buckets.

use crate::rules::expr::CmpOp;
use crate::rules::rule::{Group, Rule};
use crate::rules::signal::Signal;

/// The rules that compare a latency quantile with a threshold, with the
/// threshold in seconds.
pub fn latency_thresholds(groups: &[Group]) -> impl Iterator<Item = (&Rule, f64)> {
    groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| matches!(r.expr.signal, Signal::Quantile { .. }))
        .map(|r| (r, r.expr.threshold))
        .filter(|(_, t)| t.is_finite() && *t > 0.0)
}

/// The latency bucket bounds for `groups`: `base` (sorted, as validated for
/// the histogram) with every latency threshold below its top bound added.
pub fn latency_layout(base: &[f64], groups: &[Group]) -> Vec<f64> {
    let top = base.last().copied().unwrap_or(f64::INFINITY);
    let mut bounds = base.to_vec();
    bounds.extend(
        latency_thresholds(groups)
            .map(|(_, t)| t)
            .filter(|t| *t < top),
    );
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds
}

/// How many latency thresholds of `groups` are not bounds of `bounds`: what
/// Prometheus then decides by interpolating between two buckets.
pub fn off_bucket(bounds: &[f64], groups: &[Group]) -> usize {
    latency_thresholds(groups)
        .filter(|(_, t)| !bounds.contains(t))
        .count()
}

/// A latency rule whose exported form can never fire: its threshold is at
/// or above the top bucket bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreachable {
    /// The alert.
    pub alert: String,
    /// Where its threshold is (1-based line and column).
    pub at: (usize, usize),
    /// The threshold, in seconds.
    pub threshold: f64,
    /// The top bucket bound, in seconds.
    pub top: f64,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the threshold of {} ({} s) is not below the top latency bucket ({} s): \
             histogram_quantile never exceeds the top bucket, so the exported rule can \
             never fire; add a larger bound with --metrics.latency-buckets",
            self.alert, self.threshold, self.top
        )
    }
}

/// The latency rules of `groups` that cannot fire over buckets `bounds`:
/// `> T` with `T` at or above the top bound, `>= T` with `T` above it.
pub fn unreachable_thresholds(bounds: &[f64], groups: &[Group]) -> Vec<Unreachable> {
    let Some(&top) = bounds.last() else {
        return Vec::new();
    };
    latency_thresholds(groups)
        .filter(|(r, t)| match r.expr.op {
            CmpOp::Gt => *t >= top,
            CmpOp::Ge => *t > top,
            _ => false,
        })
        .map(|(r, t)| Unreachable {
            alert: r.alert.clone(),
            at: r.threshold_at,
            threshold: t,
            top,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    const DEFAULT: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    fn groups(exprs: &[&str]) -> Vec<Group> {
        let mut text = String::from("groups:\n  - name: g\n    rules:\n");
        for (i, e) in exprs.iter().enumerate() {
            text.push_str(&format!("      - alert: A{i}\n        expr: {e}\n"));
        }
        load("t.yaml", &text).unwrap().groups
    }

    #[test]
    fn thresholds_between_buckets_become_bounds() {
        let g = groups(&[
            "p99(latency) > 300ms",
            "p50(latency) < 0.07s",
            "p95(latency) > 500ms",
            "mean(latency) > 123ms",
            "error_rate > 5%",
        ]);
        let layout = latency_layout(DEFAULT, &g);
        assert!(
            layout.contains(&0.3) && layout.contains(&0.07),
            "{layout:?}"
        );
        assert!(!layout.contains(&0.123), "a mean is exact without buckets");
        assert_eq!(layout.len(), DEFAULT.len() + 2);
        assert!(layout.windows(2).all(|w| w[0] < w[1]), "{layout:?}");
        assert_eq!(off_bucket(&layout, &g), 0);
        assert_eq!(off_bucket(DEFAULT, &g), 2);
    }

    #[test]
    fn thresholds_at_or_above_the_top_are_located_and_not_added() {
        let g = groups(&[
            "p99(latency) > 20s",
            "p99(latency) > 10s",
            "p99(latency) >= 10s",
            "p99(latency) < 30s",
        ]);
        let layout = latency_layout(DEFAULT, &g);
        assert_eq!(layout, DEFAULT);
        let u = unreachable_thresholds(&layout, &g);
        let names: Vec<&str> = u.iter().map(|u| u.alert.as_str()).collect();
        assert_eq!(names, ["A0", "A1"]);
        // `        expr: p99(latency) > 20s` on line 5: the threshold at column 30.
        assert_eq!(u[0].at, (5, 30));
        assert_eq!((u[0].threshold, u[0].top), (20.0, 10.0));
        assert!(u[0].to_string().contains("can never fire"), "{}", u[0]);
    }

    #[test]
    fn quoted_expressions_are_located_too() {
        let text =
            "groups:\n  - name: g\n    rules:\n      - {alert: A, expr: 'p99(latency)  >  1m'}\n";
        let g = load("t.yaml", text).unwrap().groups;
        let u = unreachable_thresholds(DEFAULT, &g);
        assert_eq!(u[0].at, (4, 44));
    }
}
