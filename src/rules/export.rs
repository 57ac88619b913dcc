//! Export of rules.yaml as Prometheus alerting rules
//! (`model-exporter rules export`).
//!
//! Every rule becomes a Prometheus alerting rule over the metrics the sidecar
//! serves (docs/metrics.md), aggregated over pods by `(model, version)` so a
//! fleet of sidecars can be alerted on centrally:
//!
//! * signals that follow from a histogram or counter are rewritten in PromQL
//!   (`histogram_quantile` over the latency buckets, ratios of `rate()`s);
//! * `time_since_last_event` and `model_age` are computed from the timestamp
//!   gauges with `time()`;
//! * feature drift by PSI, JS and KS is computed over the whole fleet from
//!   every pod's bin counts and the reference's shares (submodule `fleet`;
//!   docs/drift.md, "Fleet-wide drift");
//! * every other signal (other drift, feature statistics, feedback metrics, ...)
//!   exists only in the sidecar and is read from the gauge
//!   `model_rule_signal_value{alertname="ALERT"}`.
//!
//! The mapping is described in docs/rules.md, "Exporting to Prometheus".
//! [`rule_file`] builds a standard rules file, [`prometheus_rule`] wraps it
//! into a prometheus-operator `PrometheusRule`, and [`render`] turns either
//! into YAML text.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::duration::format_duration;
use super::rule::{Group, Matchers, Rule};
use crate::rules::signal::{DriftTarget, FeatureSel, Signal};

pub mod buckets;
mod fleet;

/// The output format of `model-exporter rules export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A Prometheus rules file (`groups:`), as read by `rule_files` and
    /// `promtool check rules`.
    Prometheus,
    /// A prometheus-operator `PrometheusRule` object
    /// (`monitoring.coreos.com/v1`) whose `spec` is the rules file.
    PrometheusOperator,
}

/// Default `metadata.name` of the `PrometheusRule` object.
pub const DEFAULT_OBJECT_NAME: &str = "model-exporter-rules";

/// Name of the gauge through which the sidecar exposes the current value of
/// the signals that cannot be computed in PromQL.
pub const SIGNAL_GAUGE: &str = "model_rule_signal_value";

/// Name of the gauge that says a model version was superseded by a newer
/// one (1) or is current (0); silence rules leave retired versions out.
pub const RETIRED_GAUGE: &str = "model_version_retired";

/// How to render an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The output format.
    pub format: ExportFormat,
    /// Where the rules came from, named in the header comment.
    pub source: String,
    /// `metadata.name` of the `PrometheusRule` (operator format only).
    pub name: String,
    /// `metadata.namespace` of the `PrometheusRule` (operator format only);
    /// omitted when `None`.
    pub namespace: Option<String>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The rules could not be serialised as YAML.
    #[error("cannot serialise the rules as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// A name Kubernetes would not accept for an object or a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a valid Kubernetes name: at most {max} lower-case letters, digits{}, starting and ending with a letter or digit",
    if *.dots { ", '-' and '.'" } else { " and '-'" }
)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// Its longest allowed length.
    pub max: usize,
    /// Whether `.` is allowed (object names) or not (namespaces).
    pub dots: bool,
}

/// A Prometheus rules file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFile {
    /// The rule groups, one per rules.yaml group, in file order.
    pub groups: Vec<RuleGroup>,
}

/// One Prometheus rule group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    /// The group name (as in rules.yaml).
    pub name: String,
    /// Evaluation interval, as a Prometheus duration.
    pub interval: String,
    /// The alerting rules, in file order.
    pub rules: Vec<AlertingRule>,
}

/// One Prometheus alerting rule. Fields serialise in the order declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertingRule {
    /// The alert name.
    pub alert: String,
    /// The PromQL condition.
    pub expr: String,
    /// `for`, omitted when zero.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// `keep_firing_for` (Prometheus >= 2.42), omitted when zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// The rule's labels plus `severity`.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates, unchanged (they are Prometheus template syntax).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A prometheus-operator `PrometheusRule` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrometheusRule {
    /// Always `monitoring.coreos.com/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `PrometheusRule`.
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// The rules file.
    pub spec: RuleFile,
}

/// The Kubernetes object metadata written for a `PrometheusRule`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace, omitted when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object labels (`app.kubernetes.io/name: model-exporter`).
    pub labels: BTreeMap<String, String>,
}

/// Builds the Prometheus rules file for the groups of a loaded rules.yaml.
pub fn rule_file(groups: &[Group]) -> RuleFile {
    RuleFile {
        groups: groups
            .iter()
            .map(|g| RuleGroup {
                name: g.name.clone(),
                interval: duration(g.interval),
                rules: g.rules.iter().map(alerting_rule).collect(),
            })
            .collect(),
    }
}

/// Wraps a rules file into a `PrometheusRule` object.
pub fn prometheus_rule(spec: RuleFile, name: &str, namespace: Option<&str>) -> PrometheusRule {
    PrometheusRule {
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "PrometheusRule".into(),
        metadata: ObjectMeta {
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "model-exporter".to_owned(),
            )]),
        },
        spec,
    }
}

/// Renders the groups of a loaded rules.yaml as YAML in the requested
/// format, starting with a header comment naming `options.source`.
///
/// # Errors
/// [`ExportError::Yaml`] when serialisation fails.
pub fn render(groups: &[Group], options: &ExportOptions) -> Result<String, ExportError> {
    let file = rule_file(groups);
    let body = match options.format {
        ExportFormat::Prometheus => serde_yaml::to_string(&file)?,
        ExportFormat::PrometheusOperator => serde_yaml::to_string(&prometheus_rule(
            file,
            &options.name,
            options.namespace.as_deref(),
        ))?,
    };
    Ok(format!(
        "# Generated by `model-exporter rules export` from {}; do not edit.\n{body}",
        comment_safe(&options.source)
    ))
}

/// Checks a Kubernetes object name (a DNS-1123 subdomain: at most 253
/// lower-case letters, digits, `-` and `.`, starting and ending with a
/// letter or digit).
///
/// # Errors
/// A [`NameError`] saying what is allowed.
pub fn check_object_name(name: &str) -> Result<String, NameError> {
    check_dns(name, 253, true)
}

/// Checks a Kubernetes namespace (a DNS-1123 label: at most 63 lower-case
/// letters, digits and `-`, starting and ending with a letter or digit).
///
/// # Errors
/// A [`NameError`] saying what is allowed.
pub fn check_namespace(name: &str) -> Result<String, NameError> {
    check_dns(name, 63, false)
}

fn check_dns(name: &str, max: usize, dots: bool) -> Result<String, NameError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !name.is_empty()
        && name.len() <= max
        && name.starts_with(ok_char)
        && name.ends_with(ok_char)
        && name
            .chars()
            .all(|c| ok_char(c) || c == '-' || (dots && c == '.'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(NameError {
            name: name.to_owned(),
            max,
            dots,
        })
    }
}

/// The header comment must stay one line.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// One rules.yaml rule as a Prometheus alerting rule.
pub fn alerting_rule(rule: &Rule) -> AlertingRule {
    let mut labels: BTreeMap<String, String> = rule
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), template_literal(v)))
        .collect();
    labels.insert("severity".into(), rule.severity.as_str().into());
    AlertingRule {
        alert: rule.alert.clone(),
        expr: promql(rule),
        for_: nonzero(rule.for_),
        keep_firing_for: nonzero(rule.keep_firing_for),
        labels,
        annotations: rule
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), t.source().to_owned()))
            .collect(),
    }
}

fn nonzero(d: Duration) -> Option<String> {
    (!d.is_zero()).then(|| duration(d))
}

/// A duration in Prometheus syntax (`5m`, `1h30m`, `500ms`).
fn duration(d: Duration) -> String {
    format_duration(d)
}

/// Prometheus expands templates in label values too; rules.yaml label values
/// are plain text, so a literal `{{` is written as a template printing it.
fn template_literal(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}

/// The PromQL condition of a rule: the signal, the comparison and, for
/// signals computed from histograms and counters, the `min_samples` guard.
pub fn promql(rule: &Rule) -> String {
    let q = Query {
        window: duration(rule.window),
        matchers: &rule.matchers,
    };
    let signal = &rule.expr.signal;
    let comparison = format!("{} {}", rule.expr.op.as_str(), number(rule.expr.threshold));
    // A rule with `max_samples` reads the newest values of each pod,
    // which PromQL cannot count out of a counter: the sidecars' own value.
    let value = match rule.max_samples {
        Some(_) => None,
        None => q.signal(signal),
    };
    let Some(value) = value else {
        // Computed in the sidecar, which applies min_samples itself.
        let by = if signal.feature().is_some() {
            "model, version, feature"
        } else {
            "model, version"
        };
        return format!(
            "max by ({by}) ({}) {comparison}{}",
            q.selector(SIGNAL_GAUGE, &[("alertname", &rule.alert)]),
            significance(&q, rule)
        );
    };
    let condition = format!("{value} {comparison}{}", significance(&q, rule));
    if *signal == Signal::TimeSinceLastEvent {
        // A version every pod retired (a newer one superseded it) is not
        // silent: it was replaced.
        return format!(
            "{condition} unless on (model, version) min by (model, version) ({}) == 1",
            q.selector(RETIRED_GAUGE, &[])
        );
    }
    let gauge_based = *signal == Signal::ModelAge;
    if rule.min_samples == 0 || gauge_based {
        return condition;
    }
    if let Signal::Drift {
        target: DriftTarget::Feature(sel),
        ..
    } = signal
    {
        let guard = fleet::samples_guard(&q, sel, rule.min_samples);
        return format!("{condition} {guard}");
    }
    format!(
        "{condition} and on (model, version) sum by (model, version) (increase({}[{}])) >= {}",
        q.selector("model_requests_total", &[]),
        q.window,
        rule.min_samples
    )
}

/// The guard of a drift rule's `significance: α`: the sidecars' own
/// Holm-adjusted p-value of the method over the rule's window
/// (`model_feature_drift_pvalue_adjusted`, `model_prediction_drift_pvalue`),
/// which PromQL cannot compute, below `α` on some pod; empty for other
/// rules.
fn significance(q: &Query, rule: &Rule) -> String {
    let (Some(alpha), Signal::Drift { method, target }) = (rule.significance, &rule.expr.signal)
    else {
        return String::new();
    };
    // The gauge of the rule's own values: of the newest `max_samples`
    // values, or (no such label) of the whole window.
    let cap = rule.max_samples.map(|n| n.to_string()).unwrap_or_default();
    let own = [
        ("method", method.function()),
        ("window", q.window.as_str()),
        ("max_samples", cap.as_str()),
    ];
    let (by, gauge) = match target {
        DriftTarget::Feature(_) => (
            "model, version, feature",
            "model_feature_drift_pvalue_adjusted",
        ),
        DriftTarget::Prediction => ("model, version", "model_prediction_drift_pvalue"),
    };
    let mut own = own.to_vec();
    if let DriftTarget::Feature(FeatureSel::Named(f)) = target {
        own.push(("feature", f.as_str()));
    }
    format!(
        " and on ({by}) min by ({by}) ({}) < {}",
        q.selector(gauge, &own),
        number(alpha)
    )
}

/// Builds selectors and rates for one rule.
struct Query<'a> {
    window: String,
    matchers: &'a Matchers,
}

impl Query<'_> {
    /// The PromQL value of a signal computed from the exported metrics, or
    /// `None` for a signal only the sidecar computes ([`SIGNAL_GAUGE`]).
    fn signal(&self, signal: &Signal) -> Option<String> {
        Some(match signal {
            Signal::Quantile { q } => format!(
                "histogram_quantile({}, sum by (model, version, le) ({}))",
                number(*q),
                self.rate("model_request_duration_seconds_bucket", &[])
            ),
            Signal::LatencyMean => self.mean("model_request_duration_seconds"),
            Signal::RequestRate => self.sum_rate("model_requests_total", &[]),
            Signal::ErrorRate => format!(
                "{} / {}",
                self.sum_rate("model_requests_total", &[("outcome", "error")]),
                self.sum_rate("model_requests_total", &[])
            ),
            Signal::PredictionMean => self.mean("model_prediction_value"),
            Signal::ConfidenceMean => self.mean("model_prediction_confidence"),
            Signal::ClassRate { class } => format!(
                "{} / {}",
                self.sum_rate("model_predictions_total", &[("class", class)]),
                self.sum_rate("model_predictions_total", &[])
            ),
            Signal::CounterRate { counter } => {
                self.sum_rate("model_business_counts_total", &[("counter", counter)])
            }
            Signal::CounterRatio {
                numerator,
                denominator,
            } => format!(
                "{} / {}",
                self.sum_rate("model_business_counts_total", &[("counter", numerator)]),
                self.sum_rate("model_business_counts_total", &[("counter", denominator)])
            ),
            Signal::LogRate { level } => {
                self.sum_rate("model_log_events_total", &[("level", level.as_str())])
            }
            Signal::TimeSinceLastEvent => format!(
                "time() - max by (model, version) ({})",
                self.selector("model_last_event_timestamp_seconds", &[])
            ),
            Signal::ModelAge => format!(
                "time() - max by (model, version) ({})",
                self.selector("model_trained_timestamp_seconds", &[])
            ),
            Signal::Drift {
                method,
                target: DriftTarget::Feature(sel),
            } => return fleet::feature_drift(self, *method, sel),
            Signal::LatencyMax
            | Signal::PositiveRate
            | Signal::LowConfidenceRate
            | Signal::FeatureStat { .. }
            | Signal::Drift { .. }
            | Signal::DriftPvalue { .. }
            | Signal::Feedback(_)
            | Signal::ResourceMean(_) => return None,
        })
    }

    /// `metric{k="v",...,model="M",version="V"}`; no braces without matchers.
    fn selector(&self, metric: &str, own: &[(&str, &str)]) -> String {
        let mut matchers: Vec<String> = own
            .iter()
            .map(|(k, v)| format!("{k}={}", string(v)))
            .collect();
        if let Some(m) = &self.matchers.model {
            matchers.push(format!("model={}", string(m)));
        }
        if let Some(v) = &self.matchers.version {
            matchers.push(format!("version={}", string(v)));
        }
        if matchers.is_empty() {
            metric.to_owned()
        } else {
            format!("{metric}{{{}}}", matchers.join(","))
        }
    }

    /// `rate(SELECTOR[W])`
    fn rate(&self, metric: &str, own: &[(&str, &str)]) -> String {
        format!("rate({}[{}])", self.selector(metric, own), self.window)
    }

    /// `sum by (model, version) (rate(SELECTOR[W]))`
    fn sum_rate(&self, metric: &str, own: &[(&str, &str)]) -> String {
        format!("sum by (model, version) ({})", self.rate(metric, own))
    }

    /// Mean of a histogram over the window: rate of `_sum` over rate of `_count`.
    fn mean(&self, histogram: &str) -> String {
        format!(
            "{} / {}",
            self.sum_rate(&format!("{histogram}_sum"), &[]),
            self.sum_rate(&format!("{histogram}_count"), &[])
        )
    }
}

/// A PromQL double-quoted string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number in plain decimal (`0.5`, `0.05`, `-3`), or `NaN`/`+Inf`/`-Inf`.
fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, load};

    /// Loads a config with one group `g` holding the given rule bodies
    /// (YAML mappings, one per line).
    fn config(rules: &[&str]) -> Config {
        let mut text = String::from("groups:\n  - name: g\n    rules:\n");
        for r in rules {
            text.push_str(&format!("      - {r}\n"));
        }
        match load("t.yaml", &text) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    /// The PromQL of a single rule `A` with this expression and extra keys.
    fn expr_of(expr: &str, extra: &str) -> String {
        let c = config(&[&format!(
            "{{alert: A, expr: '{expr}', min_samples: 0{extra}}}"
        )]);
        promql(&c.groups[0].rules[0])
    }

    #[test]
    fn every_signal_kind_maps_to_its_promql() {
        let cases: &[(&str, &str)] = &[
            (
                "p99(latency) > 500ms",
                "histogram_quantile(0.99, sum by (model, version, le) (rate(model_request_duration_seconds_bucket[5m]))) > 0.5",
            ),
            (
                "p99.9(latency) >= 1s",
                "histogram_quantile(0.999, sum by (model, version, le) (rate(model_request_duration_seconds_bucket[5m]))) >= 1",
            ),
            (
                "mean(latency) > 250ms",
                "sum by (model, version) (rate(model_request_duration_seconds_sum[5m])) / sum by (model, version) (rate(model_request_duration_seconds_count[5m])) > 0.25",
            ),
            (
                "request_rate < 1",
                "sum by (model, version) (rate(model_requests_total[5m])) < 1",
            ),
            (
                "error_rate > 5%",
                r#"sum by (model, version) (rate(model_requests_total{outcome="error"}[5m])) / sum by (model, version) (rate(model_requests_total[5m])) > 0.05"#,
            ),
            (
                "mean(prediction) > 0.7",
                "sum by (model, version) (rate(model_prediction_value_sum[5m])) / sum by (model, version) (rate(model_prediction_value_count[5m])) > 0.7",
            ),
            (
                "mean(confidence) < 60%",
                "sum by (model, version) (rate(model_prediction_confidence_sum[5m])) / sum by (model, version) (rate(model_prediction_confidence_count[5m])) < 0.6",
            ),
            (
                "class_rate(spam) > 10%",
                r#"sum by (model, version) (rate(model_predictions_total{class="spam"}[5m])) / sum by (model, version) (rate(model_predictions_total[5m])) > 0.1"#,
            ),
            (
                "rate(counter.clicks) < 2",
                r#"sum by (model, version) (rate(model_business_counts_total{counter="clicks"}[5m])) < 2"#,
            ),
            (
                "ratio(counter.clicks, counter.shown) < 1.5%",
                r#"sum by (model, version) (rate(model_business_counts_total{counter="clicks"}[5m])) / sum by (model, version) (rate(model_business_counts_total{counter="shown"}[5m])) < 0.015"#,
            ),
            (
                "rate(log.error) > 0.1",
                r#"sum by (model, version) (rate(model_log_events_total{level="error"}[5m])) > 0.1"#,
            ),
            (
                "time_since_last_event > 10m",
                "time() - max by (model, version) (model_last_event_timestamp_seconds) > 600 unless on (model, version) min by (model, version) (model_version_retired) == 1",
            ),
            (
                "model_age > 30d",
                "time() - max by (model, version) (model_trained_timestamp_seconds) > 2592000",
            ),
            (
                "max(latency) > 2s",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) > 2"#,
            ),
            (
                "positive_rate > 15%",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) > 0.15"#,
            ),
            (
                "low_confidence_rate > 30%",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) > 0.3"#,
            ),
            (
                "wasserstein(feature.*) > 0.25",
                r#"max by (model, version, feature) (model_rule_signal_value{alertname="A"}) > 0.25"#,
            ),
            (
                "zscore(feature.amount) < -3",
                r#"max by (model, version, feature) (model_rule_signal_value{alertname="A"}) < -3"#,
            ),
            (
                "missing_rate(feature.*) >= 5%",
                r#"max by (model, version, feature) (model_rule_signal_value{alertname="A"}) >= 0.05"#,
            ),
            (
                "ks(prediction) > 0.2",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) > 0.2"#,
            ),
            (
                "chi2_pvalue(feature.country) < 1%",
                r#"max by (model, version, feature) (model_rule_signal_value{alertname="A"}) < 0.01"#,
            ),
            (
                "accuracy < 80%",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) < 0.8"#,
            ),
            (
                "rmse != 0",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) != 0"#,
            ),
            (
                "mean(resource.cpu) == 100%",
                r#"max by (model, version) (model_rule_signal_value{alertname="A"}) == 1"#,
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(expr_of(expr, ""), *want, "for {expr}");
        }
    }

    #[test]
    fn windows_and_thresholds_are_written_in_prometheus_syntax() {
        assert_eq!(
            expr_of("request_rate > 1e-3", ", window: 1h30m"),
            "sum by (model, version) (rate(model_requests_total[1h30m])) > 0.001"
        );
        assert_eq!(
            expr_of("p50(latency) > 1500ms", ", window: 90s"),
            "histogram_quantile(0.5, sum by (model, version, le) (rate(model_request_duration_seconds_bucket[1m30s]))) > 1.5"
        );
    }

    #[test]
    fn match_becomes_label_matchers_on_every_selector() {
        assert_eq!(
            expr_of("error_rate > 5%", ", match: {model: fraud, version: v3}"),
            r#"sum by (model, version) (rate(model_requests_total{outcome="error",model="fraud",version="v3"}[5m])) / sum by (model, version) (rate(model_requests_total{model="fraud",version="v3"}[5m])) > 0.05"#
        );
        assert_eq!(
            expr_of("model_age > 1d", ", match: {version: v3}"),
            r#"time() - max by (model, version) (model_trained_timestamp_seconds{version="v3"}) > 86400"#
        );
        assert_eq!(
            expr_of("chi2_pvalue(feature.*) < 1%", ", match: {model: fraud}"),
            r#"max by (model, version, feature) (model_rule_signal_value{alertname="A",model="fraud"}) < 0.01"#
        );
    }

    /// A drift rule with `max_samples` reads the sidecars' own values of
    /// their newest values, PSI included, and its significance the p-value
    /// gauge of the same `max_samples`; without it, the gauge of the whole
    /// window (no `max_samples` label).
    #[test]
    fn max_samples_rules_read_the_sidecars_values() {
        assert_eq!(
            expr_of(
                "psi(feature.*) > 0.2",
                ", window: 15m, significance: 1%, max_samples: 300"
            ),
            r#"max by (model, version, feature) (model_rule_signal_value{alertname="A"}) > 0.2 and on (model, version, feature) min by (model, version, feature) (model_feature_drift_pvalue_adjusted{method="psi",window="15m",max_samples="300"}) < 0.01"#
        );
        assert_eq!(
            expr_of("psi(prediction) > 0.2", ", max_samples: 50"),
            r#"max by (model, version) (model_rule_signal_value{alertname="A"}) > 0.2"#
        );
        let whole = expr_of("psi(feature.age) > 0.2", ", window: 15m, significance: 1%");
        assert!(whole.contains("model_feature_bin_total"), "{whole}");
        assert!(
            whole.contains(r#"model_feature_drift_pvalue_adjusted{method="psi",window="15m",max_samples="",feature="age"}"#),
            "{whole}"
        );
    }

    #[test]
    fn min_samples_guards_the_signals_computed_from_counters() {
        let c = config(&[
            "{alert: A, expr: 'p99(latency) > 1s', min_samples: 30, match: {model: m}}",
            "{alert: B, expr: 'time_since_last_event > 1m', min_samples: 30}",
            "{alert: C, expr: 'positive_rate > 0.5', min_samples: 30}",
            "{alert: D, expr: 'request_rate > 1', min_samples: 0}",
        ]);
        let got: Vec<String> = c.groups[0].rules.iter().map(promql).collect();
        assert_eq!(
            got[0],
            r#"histogram_quantile(0.99, sum by (model, version, le) (rate(model_request_duration_seconds_bucket{model="m"}[5m]))) > 1 and on (model, version) sum by (model, version) (increase(model_requests_total{model="m"}[5m])) >= 30"#
        );
        assert!(!got[1].contains(" and "), "{}", got[1]);
        assert!(!got[2].contains(" and "), "{}", got[2]);
        assert!(!got[3].contains(" and "), "{}", got[3]);
    }

    #[test]
    fn label_values_are_escaped() {
        let cases: &[(&str, &str)] = &[
            ("plain", r#""plain""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r"back\slash", r#""back\\slash""#),
            ("line\nbreak\ttab\rcr", r#""line\nbreak\ttab\rcr""#),
            ("bell\u{7}", r#""bell\u0007""#),
            ("ünïcödé 🙂", r#""ünïcödé 🙂""#),
        ];
        for (raw, want) in cases {
            assert_eq!(string(raw), *want, "for {raw:?}");
        }
        assert_eq!(
            expr_of(r#"class_rate("not \"spam\"") > 1%"#, ""),
            r#"sum by (model, version) (rate(model_predictions_total{class="not \"spam\""}[5m])) / sum by (model, version) (rate(model_predictions_total[5m])) > 0.01"#
        );
    }

    #[test]
    fn numbers_are_plain_decimals() {
        for (x, want) in [
            (0.5, "0.5"),
            (0.05, "0.05"),
            (-3.0, "-3"),
            (1e-7, "0.0000001"),
            (2.5e10, "25000000000"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(number(x), want);
        }
    }

    #[test]
    fn rules_carry_for_labels_and_annotations() {
        let c = config(&[
            "{alert: A, expr: 'error_rate > 5%', for: 1m, keep_firing_for: 2m, severity: critical, labels: {team: ml, odd: 'a{{b'}, annotations: {summary: '{{ $labels.model }} fails {{$value}}'}}",
            "{alert: B, expr: 'request_rate < 1'}",
        ]);
        let a = alerting_rule(&c.groups[0].rules[0]);
        assert_eq!(a.for_.as_deref(), Some("1m"));
        assert_eq!(a.keep_firing_for.as_deref(), Some("2m"));
        assert_eq!(a.labels["severity"], "critical");
        assert_eq!(a.labels["team"], "ml");
        assert_eq!(a.labels["odd"], r#"a{{ "{{" }}b"#);
        assert_eq!(
            a.annotations["summary"],
            "{{ $labels.model }} fails {{$value}}"
        );
        let b = alerting_rule(&c.groups[0].rules[1]);
        assert_eq!((b.for_, b.keep_firing_for), (None, None));
        assert_eq!(
            b.labels,
            BTreeMap::from([("severity".to_string(), "warning".to_string())])
        );
    }

    fn options(format: ExportFormat) -> ExportOptions {
        ExportOptions {
            format,
            source: "rules.yaml".into(),
            name: DEFAULT_OBJECT_NAME.into(),
            namespace: None,
        }
    }

    #[test]
    fn prometheus_format_is_a_rules_file_with_stable_field_order() {
        let c = config(&[
            "{alert: A, expr: 'error_rate > 5%', for: 1m, keep_firing_for: 2m, min_samples: 0, annotations: {summary: x}}",
        ]);
        let text = render(&c.groups, &options(ExportFormat::Prometheus)).unwrap();
        let want = concat!(
            "# Generated by `model-exporter rules export` from rules.yaml; do not edit.\n",
            "groups:\n",
            "- name: g\n",
            "  interval: 10s\n",
            "  rules:\n",
            "  - alert: A\n",
            "    expr: sum by (model, version) (rate(model_requests_total{outcome=\"error\"}[5m])) / sum by (model, version) (rate(model_requests_total[5m])) > 0.05\n",
            "    for: 1m\n",
            "    keep_firing_for: 2m\n",
            "    labels:\n",
            "      severity: warning\n",
            "    annotations:\n",
            "      summary: x\n",
        );
        assert_eq!(text, want);
    }

    #[test]
    fn operator_format_wraps_the_same_groups() {
        let c = config(&["{alert: A, expr: 'request_rate < 1'}"]);
        let plain: serde_yaml::Value =
            serde_yaml::from_str(&render(&c.groups, &options(ExportFormat::Prometheus)).unwrap())
                .unwrap();
        let mut o = options(ExportFormat::PrometheusOperator);
        let text = render(&c.groups, &o).unwrap();
        assert!(text.starts_with("# Generated by `model-exporter rules export` from rules.yaml"));
        let obj: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(obj["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(obj["kind"], "PrometheusRule");
        assert_eq!(obj["metadata"]["name"], "model-exporter-rules");
        assert!(obj["metadata"].get("namespace").is_none());
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/name"],
            "model-exporter"
        );
        assert_eq!(obj["spec"], plain);

        o.name = "fraud-rules".into();
        o.namespace = Some("ml".into());
        let obj: serde_yaml::Value = serde_yaml::from_str(&render(&c.groups, &o).unwrap()).unwrap();
        assert_eq!(obj["metadata"]["name"], "fraud-rules");
        assert_eq!(obj["metadata"]["namespace"], "ml");
    }

    #[test]
    fn empty_config_exports_no_groups() {
        let text = render(
            &Config::default().groups,
            &options(ExportFormat::Prometheus),
        )
        .unwrap();
        assert!(text.ends_with("groups: []\n"), "{text}");
    }

    #[test]
    fn header_stays_one_line() {
        let mut o = options(ExportFormat::Prometheus);
        o.source = "evil\nname.yaml".into();
        let text = render(&Config::default().groups, &o).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 1);
        assert!(text.starts_with(
            "# Generated by `model-exporter rules export` from evil\u{FFFD}name.yaml;"
        ));
    }

    #[test]
    fn kubernetes_names_are_checked() {
        assert!(check_object_name("model-exporter-rules").is_ok());
        assert!(check_object_name("a.b-c").is_ok());
        assert!(check_namespace("monitoring").is_ok());
        for bad in [
            "",
            "Upper",
            "-lead",
            "trail-",
            "under_score",
            &"a".repeat(254),
        ] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_namespace("a.b").is_err());
        assert!(check_namespace(&"a".repeat(64)).is_err());
    }

    #[test]
    fn the_builtin_rules_export() {
        let file = rule_file(&Config::default_rules().groups);
        assert_eq!(file.groups.len(), 2);
        let high = &file.groups[0].rules[0];
        assert_eq!(high.alert, "HighLatency");
        assert_eq!(high.keep_firing_for.as_deref(), Some("2m"));
        assert!(
            high.expr.ends_with(">= 30"),
            "min_samples guard missing: {}",
            high.expr
        );
    }
}
