//! Feature drift over a whole fleet of sidecars, in PromQL: the exported
//! rules of `psi(feature.X)`, `js(feature.X)` and `ks(feature.X)` (and
//! `feature.*`) compute the statistic from every pod's counts summed
//! together, not from each sidecar's own value (docs/drift.md,
//! "Fleet-wide drift").
//!
//! What they read (docs/metrics.md):
//!
//! * `model_feature_bin_total{feature, bin}`: every sidecar's count of the
//!   feature's values in each bin of its configured reference, summed over
//!   pods and turned into live shares `l(i)`;
//! * `model_feature_reference_ratio{feature, bin}`: the reference's share
//!   `r(i)` of each bin (the same on every pod; `max` over pods);
//! * for KS, the cumulative `model_feature_value` histogram (whose buckets
//!   are the reference's edges) against the reference as a histogram,
//!   `model_feature_reference`, joined on `le`.
//!
//! PSI applies the sidecar's smoothing on both sides: shares that are
//! exactly 0 become [`PSI_EPSILON`], then the shares are normalised again
//! (written with `== bool 0` so that each side's rates appear a few times
//! rather than nested).
//! JS drops the terms whose share is 0 (`0 · log 0 = 0`). Wasserstein and
//! the chi-square p-value stay the sidecar's own values (see
//! [`feature_drift`]).

use super::Query;
use crate::rules::signal::{DriftMethod, FeatureSel};
use crate::stats::drift::PSI_EPSILON;

/// The labels of one feature's statistic.
const BY: &str = "model, version, feature";
/// The labels of one bin of a feature.
const BIN: &str = "model, version, feature, bin";

/// The PromQL value of a drift `method` of the features `sel` over the
/// fleet, or `None` for the methods only the sidecar computes: Wasserstein
/// needs each bin's representative point, which is not exported, and the
/// chi-square p-value needs the incomplete gamma function, which PromQL
/// lacks (and counts, where `rate()` gives extrapolated rates).
pub(super) fn feature_drift(q: &Query, method: DriftMethod, sel: &FeatureSel) -> Option<String> {
    let own = own(sel);
    match method {
        DriftMethod::Ks => Some(ks(q, &own)),
        DriftMethod::Psi => Some(psi(q, &own)),
        DriftMethod::Js => Some(js(q, &own)),
        _ => None,
    }
}

/// The `min_samples` guard of a fleet drift rule: the values binned over
/// the window, as the sidecar counts them for its own verdict.
pub(super) fn samples_guard(q: &Query, sel: &FeatureSel, min_samples: u64) -> String {
    format!(
        "and on ({BY}) sum by ({BY}) (increase({}[{}])) >= {min_samples}",
        q.selector("model_feature_bin_total", &own(sel)),
        q.window
    )
}

/// The feature matcher of a selection (none for `feature.*`).
fn own(sel: &FeatureSel) -> Vec<(&str, &str)> {
    match sel {
        FeatureSel::Named(n) => vec![("feature", n.as_str())],
        FeatureSel::All => vec![],
    }
}

/// The fleet's count rate of each bin over the window, and of all bins.
fn counts(q: &Query, own: &[(&str, &str)]) -> (String, String) {
    let rate = q.rate("model_feature_bin_total", own);
    (
        format!("sum by ({BIN}) ({rate})"),
        format!("sum by ({BY}) ({rate})"),
    )
}

/// `l(i)`: each bin's share of the fleet's values over the window.
fn live(q: &Query, own: &[(&str, &str)]) -> String {
    let (bins, all) = counts(q, own);
    format!("({bins} / on ({BY}) group_left {all})")
}

/// `r(i)`: the reference's share of each bin.
fn reference(q: &Query, own: &[(&str, &str)]) -> String {
    format!(
        "max by ({BIN}) ({})",
        q.selector("model_feature_reference_ratio", own)
    )
}

/// Shares summing to 1 with every exact 0 replaced by [`PSI_EPSILON`] and
/// normalised again: `(s(i) + ε·[z(i) = 0]) / (1 + ε·#{z = 0})`, where
/// `z` is `shares` or a vector that is 0 in the same bins. (`group_left
/// ()`: a `(` right after `group_left` would be read as its label list.)
fn smoothed(shares: &str, zero_where: &str) -> String {
    let zero = format!("({zero_where} == bool 0)");
    format!(
        "(({shares} + {PSI_EPSILON} * {zero}) / on ({BY}) group_left () (1 + {PSI_EPSILON} * sum by ({BY}) {zero}))"
    )
}

/// `PSI = Σ (l' − r') · ln(l' / r')` over the smoothed shares.
fn psi(q: &Query, own: &[(&str, &str)]) -> String {
    let (bins, _) = counts(q, own);
    let r = reference(q, own);
    let l = smoothed(&live(q, own), &bins);
    let r = smoothed(&r, &r);
    format!("sum by ({BY}) (({l} - {r}) * ln({l} / {r}))")
}

/// `JS = sqrt((KL(r ‖ m) + KL(l ‖ m)) / 2)`, `m = (r + l) / 2`, base 2.
fn js(q: &Query, own: &[(&str, &str)]) -> String {
    let (l, r) = (live(q, own), reference(q, own));
    let m = format!("(({r} + {l}) / 2)");
    let kl = |p: &str| format!("sum by ({BY}) (({p} > 0) * log2({p} / {m}))");
    format!("sqrt(({} + {}) / 2)", kl(&r), kl(&l))
}

/// `KS = max |L(e) − R(e)|` over the reference's edges: the fleet's
/// cumulative histogram against the reference's, joined on `le`.
fn ks(q: &Query, own: &[(&str, &str)]) -> String {
    format!(
        "max by ({BY}) (abs(sum by ({BY}, le) ({}) / on ({BY}) group_left sum by ({BY}) ({}) - on ({BY}, le) max by ({BY}, le) ({})))",
        q.rate("model_feature_value_bucket", own),
        q.rate("model_feature_value_count", own),
        q.selector("model_feature_reference_bucket", own)
    )
}

#[cfg(test)]
mod tests {
    use crate::config::load;
    use crate::rules::export::promql;

    /// The PromQL of a single rule with this expression and extra keys.
    fn expr_of(expr: &str, extra: &str) -> String {
        let text = format!(
            "groups:\n  - name: g\n    rules:\n      - {{alert: A, expr: '{expr}'{extra}}}\n"
        );
        let c = load("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        promql(&c.groups[0].rules[0])
    }

    #[test]
    fn ks_compares_the_fleets_histogram_with_the_reference_histogram() {
        assert_eq!(
            expr_of(
                "ks(feature.age) > 0.2",
                ", min_samples: 30, match: {version: v3}"
            ),
            concat!(
                r#"max by (model, version, feature) (abs(sum by (model, version, feature, le) (rate(model_feature_value_bucket{feature="age",version="v3"}[5m]))"#,
                r#" / on (model, version, feature) group_left sum by (model, version, feature) (rate(model_feature_value_count{feature="age",version="v3"}[5m]))"#,
                r#" - on (model, version, feature, le) max by (model, version, feature, le) (model_feature_reference_bucket{feature="age",version="v3"}))) > 0.2"#,
                r#" and on (model, version, feature) sum by (model, version, feature) (increase(model_feature_bin_total{feature="age",version="v3"}[5m])) >= 30"#,
            )
        );
    }

    #[test]
    fn psi_and_js_read_the_bin_counts_and_the_reference_shares() {
        for (expr, head) in [
            ("psi(feature.*) > 0.2", "sum by (model, version, feature) ("),
            (
                "js(feature.*) > 0.1",
                "sqrt((sum by (model, version, feature) (",
            ),
        ] {
            let q = expr_of(expr, ", min_samples: 0, window: 15m");
            assert!(q.starts_with(head), "{q}");
            assert!(q.contains("rate(model_feature_bin_total[15m])"), "{q}");
            assert!(
                q.contains("max by (model, version, feature, bin) (model_feature_reference_ratio)"),
                "{q}"
            );
            assert!(
                !q.contains("model_rule_signal_value") && !q.contains(" and "),
                "{q}"
            );
            // Every parenthesis closes.
            assert_eq!(q.matches('(').count(), q.matches(')').count(), "{q}");
        }
        let q = expr_of(r#"psi(feature."unit price") > 0.2"#, "");
        assert!(
            q.contains(r#"rate(model_feature_bin_total{feature="unit price"}[5m])"#),
            "{q}"
        );
        assert!(q.contains("+ 0.0001 * ("), "{q}");
        assert!(
            q.ends_with(r#"(increase(model_feature_bin_total{feature="unit price"}[5m])) >= 30"#),
            "{q}"
        );
    }

    #[test]
    fn wasserstein_chi_square_and_prediction_drift_stay_the_sidecars() {
        for expr in [
            "wasserstein(feature.age) > 1",
            "chi2_pvalue(feature.c) < 1%",
            "psi(prediction) > 0.2",
        ] {
            let q = expr_of(expr, "");
            assert!(q.starts_with("max by (model, version"), "{q}");
            assert!(
                q.contains(r#"model_rule_signal_value{alertname="A"}"#),
                "{q}"
            );
        }
    }
}
