//! The metric families: one [`Registry`] per process, no global state.
//!
//! Model metrics carry `model` and `version`; names and types follow the
//! catalogue in docs/metrics.md. Families are created here once; the
//! aggregator resolves label handles once per model and caches them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::series::{self, Encode, Kind};

use crate::ingest::event::EventKind;
use crate::ingest::metrics::IngestMetrics;

/// Histogram bucket upper bounds, configurable from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// `model_request_duration_seconds`.
    pub latency: Vec<f64>,
    /// `model_prediction_value`.
    pub prediction: Vec<f64>,
    /// `model_prediction_confidence`.
    pub confidence: Vec<f64>,
    /// `model_feature_value`.
    pub feature: Vec<f64>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            latency: vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            prediction: tenths(),
            confidence: tenths(),
            feature: vec![
                -1e4, -1e3, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6,
            ],
        }
    }
}

/// 0.1, 0.2, ..., 1.0 without accumulated rounding error.
fn tenths() -> Vec<f64> {
    (1..=10).map(|i| f64::from(i) / 10.0).collect()
}

/// Labels of every model metric.
const MV: &[&str] = &["model", "version"];

/// Every metric family the exporter serves.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` gathers from.
    pub registry: Registry,

    /// `model_requests_total{outcome}`.
    pub requests: series::IntCounterVec,
    /// `model_request_errors_total{error}`.
    pub request_errors: series::IntCounterVec,
    /// `model_request_duration_seconds`.
    pub request_duration: series::HistogramVec,
    /// `model_prediction_value`.
    pub prediction_value: series::HistogramVec,
    /// `model_predictions_total{class}`.
    pub predictions: series::IntCounterVec,
    /// `model_prediction_confidence`.
    pub prediction_confidence: series::HistogramVec,
    /// `model_feature_value{feature}`: each member with its own buckets.
    pub feature_value: super::histograms::HistogramFamily,
    /// Buckets of `model_feature_value` for features without a reference.
    pub feature_buckets: Vec<f64>,
    /// `model_feature_missing_total{feature}`.
    pub feature_missing: series::IntCounterVec,
    /// `model_feature_invalid_total{feature,reason}`.
    pub feature_invalid: series::IntCounterVec,
    /// `model_feature_category_total{feature,category}`.
    pub feature_category: series::IntCounterVec,
    /// `model_feature_bin_total{feature,bin}`: values by bin of the
    /// feature's configured reference.
    pub feature_bin: series::IntCounterVec,
    /// `model_business_counts_total{counter}`.
    pub counter: series::CounterVec,
    /// `model_resource_utilization_ratio{resource}`.
    pub resource: series::GaugeVec,
    /// `model_last_event_timestamp_seconds`.
    pub last_event: series::GaugeVec,
    /// `model_version_retired`: 1 once a newer version of the model
    /// superseded this one, else 0.
    pub retired: series::GaugeVec,
    /// `model_info`.
    pub info: series::IntGaugeVec,
    /// `model_trained_timestamp_seconds`.
    pub trained: series::GaugeVec,
    /// `model_loaded_timestamp_seconds`.
    pub loaded: series::GaugeVec,
    /// `model_log_events_total{level,component}`.
    pub log_events: series::IntCounterVec,
    /// `model_feedback_total`.
    pub feedback: series::IntCounterVec,

    /// `model_exporter_events_received_total{type}`.
    pub events_received: IntCounterVec,
    /// The listeners' own: `model_exporter_events_rejected_total` and the
    /// `model_exporter_connections*` families.
    pub ingest: IngestMetrics,
    /// `model_exporter_client_dropped_total{model,reason}`: events client
    /// libraries reported they dropped.
    pub client_dropped: IntCounterVec,
    /// `model_exporter_client_values_omitted_total{model}`: values client
    /// libraries reported they left out of events they sent.
    pub client_values_omitted: IntCounterVec,
    /// `model_exporter_series_dropped_total{label}`.
    pub series_dropped: IntCounterVec,
    /// `model_exporter_series_expired_total{label}` (`--metrics.ttl`).
    pub series_expired: IntCounterVec,
    /// `model_exporter_event_batches_total`.
    pub batches: IntCounter,
    /// `model_exporter_config_last_reload_successful`.
    pub config_last_reload_successful: IntGauge,
    /// `model_exporter_rule_thresholds_not_bucket_bounds`: latency thresholds of
    /// the loaded rules that are not bucket bounds of the latency histogram.
    pub rule_thresholds_not_bucket_bounds: IntGauge,
    /// `model_exporter_build_info{version,revision}`.
    pub build_info: IntGaugeVec,
    /// `model_exporter_scrape_duration_seconds` of the previous scrape.
    pub scrape_duration: prometheus::Gauge,
    /// `model_exporter_rule_evaluations_total{group}`.
    pub rule_evaluations: IntCounterVec,
    /// `model_exporter_rule_evaluation_failures_total{group}`.
    pub rule_evaluation_failures: IntCounterVec,
    /// `model_exporter_rule_evaluation_duration_seconds` of the last round.
    pub rule_evaluation_duration: prometheus::Gauge,
    /// `model_exporter_rule_last_evaluation_timestamp_seconds{group}`.
    pub rule_last_evaluation: GaugeVec,
    /// `model_exporter_feedback_total{result}`.
    pub feedback_results: IntCounterVec,
    /// `model_exporter_config_reloads_total{result}`.
    pub config_reloads: IntCounterVec,
    /// `model_exporter_config_last_reload_success_timestamp_seconds`.
    pub config_last_reload_success: prometheus::Gauge,
    /// Families rebuilt after each evaluation: `model_alerts`,
    /// `model_rule_signal_value` and the `model_window_*` gauges.
    pub rule_families: super::dynamic::DynamicFamilies,
    /// The model families above, in name order, for the encoder.
    hot: Arc<Vec<Box<dyn Encode>>>,
    /// Size of the previous response, to size the next one's buffer.
    last_size: Arc<AtomicUsize>,
}

/// Names and help of the families in [`Metrics::rule_families`].
pub const RULE_FAMILIES: &[(&str, &str)] = &[
    (
        "model_alerts",
        "Alerts pending or firing (always 1), like Prometheus' ALERTS.",
    ),
    (
        "model_rule_signal_value",
        "Current value of each alert rule's signal over the rule's window.",
    ),
    (
        "model_window_request_rate",
        "Requests per second over the window.",
    ),
    (
        "model_window_error_ratio",
        "Failed requests over all requests in the window.",
    ),
    (
        "model_window_latency_seconds",
        "Latency quantiles over the window (relative error below 1%).",
    ),
    (
        "model_window_positive_ratio",
        "Numeric predictions at or above the positive threshold, over all numeric predictions in the window.",
    ),
    (
        "model_window_low_confidence_ratio",
        "Predictions with confidence below the low-confidence threshold, over all with a confidence, in the window.",
    ),
    (
        "model_window_prediction_mean",
        "Mean numeric prediction over the window.",
    ),
    (
        "model_window_confidence_mean",
        "Mean confidence over the window.",
    ),
    (
        "model_window_accuracy",
        "Share of joined labels the model predicted right, over the window.",
    ),
    (
        "model_window_precision",
        "Precision of the positive class over the window's joined labels.",
    ),
    (
        "model_window_recall",
        "Recall of the positive class over the window's joined labels.",
    ),
    (
        "model_window_mae",
        "Mean absolute error of regression predictions over the window's joined labels.",
    ),
    (
        "model_window_rmse",
        "Root mean squared error of regression predictions over the window's joined labels.",
    ),
    (
        "model_feature_drift",
        "Drift of a feature's window from its reference, by method (psi, ks, js, wasserstein, chi2_pvalue).",
    ),
    (
        "model_prediction_drift",
        "Drift of the predictions' window from their reference, by method.",
    ),
    (
        "model_feature_drift_pvalue",
        "Probability of a drift at least this large were the window drawn from the reference, at its sizes, by method.",
    ),
    (
        "model_feature_drift_pvalue_adjusted",
        "model_feature_drift_pvalue adjusted (Holm) across the model version's features, by method.",
    ),
    (
        "model_prediction_drift_pvalue",
        "Probability of a prediction drift at least this large were the window drawn from the reference, by method.",
    ),
    (
        "model_feature_drift_samples",
        "Values of a feature in the window its drift is computed over (n).",
    ),
    (
        "model_prediction_drift_samples",
        "Predictions in the window their drift is computed over (n).",
    ),
    (
        "model_feature_reference_size",
        "Values a feature's reference was made of (m); absent for an exact inline reference.",
    ),
    (
        "model_prediction_reference_size",
        "Values the predictions' reference was made of (m).",
    ),
    (
        "model_feedback_pending",
        "Predictions waiting for their label (feedback).",
    ),
    (
        "model_age_seconds",
        "Seconds since the model version was trained (staleness), from its model event.",
    ),
];

fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric families are registered once with distinct names");
    c
}

fn hot_counter(name: &str, help: &str, labels: &[&str]) -> series::IntCounterVec {
    series::IntCounterVec::new(name, help, Kind::Counter, labels)
}

fn hot_gauge(name: &str, help: &str, labels: &[&str]) -> series::GaugeVec {
    series::GaugeVec::new(name, help, Kind::Gauge, labels)
}

fn hot_histogram(name: &str, help: &str, labels: &[&str], b: &[f64]) -> series::HistogramVec {
    series::HistogramVec::new(name, help, labels, b)
}

/// Reserves names in the registry for families encoded outside it.
struct Reserved(Vec<Desc>);

impl Collector for Reserved {
    fn desc(&self) -> Vec<&Desc> {
        self.0.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    reg(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    MV.iter().chain(extra).copied().collect()
}

impl Metrics {
    /// Creates and registers every family, with the given buckets. Fails only
    /// for invalid buckets (unsorted or duplicated bounds).
    pub fn new(buckets: &Buckets) -> Result<Metrics, MetricsError> {
        for (name, b) in [
            ("latency", &buckets.latency),
            ("prediction", &buckets.prediction),
            ("confidence", &buckets.confidence),
            ("feature", &buckets.feature),
        ] {
            validate_buckets(b).map_err(|error| MetricsError::Buckets { name, error })?;
        }
        let r = Registry::new();
        let m = Metrics {
            requests: hot_counter(
                "model_requests_total",
                "Requests served by the model, by outcome.",
                &with(&["outcome"]),
            ),
            request_errors: hot_counter(
                "model_request_errors_total",
                "Failed requests, by error class.",
                &with(&["error"]),
            ),
            request_duration: hot_histogram(
                "model_request_duration_seconds",
                "Serving latency reported by the model server.",
                MV,
                &buckets.latency,
            ),
            prediction_value: hot_histogram(
                "model_prediction_value",
                "Numeric predictions.",
                MV,
                &buckets.prediction,
            ),
            predictions: hot_counter(
                "model_predictions_total",
                "Class predictions, by class.",
                &with(&["class"]),
            ),
            prediction_confidence: hot_histogram(
                "model_prediction_confidence",
                "Confidence of the model in its predictions.",
                MV,
                &buckets.confidence,
            ),
            feature_value: super::histograms::HistogramFamily::new(
                "model_feature_value",
                "Values of numeric and boolean features; buckets are the reference baseline's bins where one is set.",
                &with(&["feature"]),
                &buckets.feature,
            ),
            feature_buckets: buckets.feature.clone(),
            feature_missing: hot_counter(
                "model_feature_missing_total",
                "Requests in which a feature was null, or a required feature was absent.",
                &with(&["feature"]),
            ),
            feature_invalid: hot_counter(
                "model_feature_invalid_total",
                "Feature values not as rules.yaml expects, by reason (wrong_type, out_of_range, unseen_category).",
                &with(&["feature", "reason"]),
            ),
            feature_category: hot_counter(
                "model_feature_category_total",
                "Values of categorical features, by category.",
                &with(&["feature", "category"]),
            ),
            feature_bin: hot_counter(
                "model_feature_bin_total",
                "Values of a feature with a configured reference, by bin of the reference (bin numbers as in model_feature_reference_ratio; not cumulative).",
                &with(&["feature", "bin"]),
            ),
            counter: series::CounterVec::new(
                "model_business_counts_total",
                "Business counts sent by the model server (e.g. shown, clicked).",
                Kind::Counter,
                &with(&["counter"]),
            ),
            resource: hot_gauge(
                "model_resource_utilization_ratio",
                "Last CPU and memory utilisation reported by the model process.",
                &with(&["resource"]),
            ),
            last_event: hot_gauge(
                "model_last_event_timestamp_seconds",
                "When the model last sent an event of any type.",
                MV,
            ),
            retired: hot_gauge(
                "model_version_retired",
                "1 once a newer version of the model superseded this one (announced by a model event, or sending its first event), 0 while it is current.",
                MV,
            ),
            info: series::IntGaugeVec::new(
                "model_info",
                "The model version loaded now (always 1).",
                Kind::Gauge,
                MV,
            ),
            trained: hot_gauge(
                "model_trained_timestamp_seconds",
                "When the model version was trained.",
                MV,
            ),
            loaded: hot_gauge(
                "model_loaded_timestamp_seconds",
                "When the model version was loaded.",
                MV,
            ),
            log_events: hot_counter(
                "model_log_events_total",
                "Log events of the model process, by level and component.",
                &with(&["level", "component"]),
            ),
            feedback: hot_counter(
                "model_feedback_total",
                "Ground-truth (feedback) events received.",
                MV,
            ),
            events_received: counter(
                &r,
                "model_exporter_events_received_total",
                "Events accepted, by type.",
                &["type"],
            ),
            ingest: IngestMetrics::new(&r)
                .expect("metric families are registered once with distinct names"),
            client_dropped: counter(
                &r,
                "model_exporter_client_dropped_total",
                "Events client libraries reported they dropped before sending, by model (the client's) and reason.",
                &["model", "reason"],
            ),
            client_values_omitted: counter(
                &r,
                "model_exporter_client_values_omitted_total",
                "Values client libraries reported they left out of events they sent (values that could not be encoded), by model.",
                &["model"],
            ),
            series_dropped: counter(
                &r,
                "model_exporter_series_dropped_total",
                "Events whose label value was past a cap and was counted under __other__ (or cut, for label_length), by label.",
                &["label"],
            ),
            series_expired: counter(
                &r,
                "model_exporter_series_expired_total",
                "Label values forgotten, with every series carrying them, after receiving no event for --metrics.ttl, by label.",
                &["label"],
            ),
            batches: reg(
                &r,
                IntCounter::new(
                    "model_exporter_event_batches_total",
                    "Batches of events handed from the listeners to the aggregator.",
                )
                .expect("valid metric"),
            ),
            config_last_reload_successful: reg(
                &r,
                IntGauge::new(
                    "model_exporter_config_last_reload_successful",
                    "Whether the last load of rules.yaml succeeded.",
                )
                .expect("valid metric"),
            ),
            rule_thresholds_not_bucket_bounds: reg(
                &r,
                IntGauge::new(
                    "model_exporter_rule_thresholds_not_bucket_bounds",
                    "Latency thresholds of the loaded rules that are not bucket bounds of model_request_duration_seconds (added by a reload: the buckets are set at start).",
                )
                .expect("valid metric"),
            ),
            build_info: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "model_exporter_build_info",
                        "Version and revision of this build (always 1).",
                    ),
                    &["version", "revision"],
                )
                .expect("valid metric"),
            ),
            scrape_duration: reg(
                &r,
                prometheus::Gauge::new(
                    "model_exporter_scrape_duration_seconds",
                    "How long encoding the previous /metrics response took.",
                )
                .expect("valid metric"),
            ),
            rule_evaluations: counter(
                &r,
                "model_exporter_rule_evaluations_total",
                "Alert rule evaluations, by group.",
                &["group"],
            ),
            rule_evaluation_failures: counter(
                &r,
                "model_exporter_rule_evaluation_failures_total",
                "Alert rule evaluations that failed, by group.",
                &["group"],
            ),
            rule_evaluation_duration: reg(
                &r,
                prometheus::Gauge::new(
                    "model_exporter_rule_evaluation_duration_seconds",
                    "How long the last round of rule evaluation took.",
                )
                .expect("valid metric"),
            ),
            rule_last_evaluation: gauge(
                &r,
                "model_exporter_rule_last_evaluation_timestamp_seconds",
                "When each rule group was last evaluated.",
                &["group"],
            ),
            feedback_results: counter(
                &r,
                "model_exporter_feedback_total",
                "Feedback and predictions in the label join, by result: joined, carried (the label brought its prediction), unmatched, duplicate_feedback, duplicate_inference, expired, evicted.",
                &["result"],
            ),
            config_reloads: counter(
                &r,
                "model_exporter_config_reloads_total",
                "Attempts to reload rules.yaml, by result (success or failure).",
                &["result"],
            ),
            config_last_reload_success: reg(
                &r,
                prometheus::Gauge::new(
                    "model_exporter_config_last_reload_success_timestamp_seconds",
                    "When rules.yaml was last loaded successfully.",
                )
                .expect("valid metric"),
            ),
            rule_families: super::dynamic::DynamicFamilies::new(RULE_FAMILIES),
            registry: r,
            hot: Arc::default(),
            last_size: Arc::default(),
        };
        let mut hot: Vec<Box<dyn Encode>> = vec![
            Box::new(m.requests.family().clone()),
            Box::new(m.request_errors.family().clone()),
            Box::new(m.request_duration.family().clone()),
            Box::new(m.prediction_value.family().clone()),
            Box::new(m.predictions.family().clone()),
            Box::new(m.prediction_confidence.family().clone()),
            Box::new(m.feature_value.family().clone()),
            Box::new(m.feature_missing.family().clone()),
            Box::new(m.feature_invalid.family().clone()),
            Box::new(m.feature_category.family().clone()),
            Box::new(m.feature_bin.family().clone()),
            Box::new(m.counter.family().clone()),
            Box::new(m.resource.family().clone()),
            Box::new(m.last_event.family().clone()),
            Box::new(m.retired.family().clone()),
            Box::new(m.info.family().clone()),
            Box::new(m.trained.family().clone()),
            Box::new(m.loaded.family().clone()),
            Box::new(m.log_events.family().clone()),
            Box::new(m.feedback.family().clone()),
        ];
        hot.sort_by(|a, b| a.family_name().cmp(b.family_name()));
        // The registry still knows every name, so that nothing registered
        // later (notifier, prediction log) can take one of them.
        let names = hot
            .iter()
            .map(|f| (f.family_name().to_owned(), f.family_help().to_owned()))
            .chain(
                RULE_FAMILIES
                    .iter()
                    .chain(super::references::REFERENCE_FAMILIES)
                    .map(|(n, h)| (n.to_string(), h.to_string())),
            );
        m.registry
            .register(Box::new(Reserved(
                names
                    .map(|(n, h)| Desc::new(n, h, vec![], Default::default()).expect("valid name"))
                    .collect(),
            )))
            .expect("model family names are distinct from the self-metrics");
        let m = Metrics {
            hot: Arc::new(hot),
            ..m
        };
        for k in EventKind::ALL {
            m.events_received.with_label_values(&[k.as_str()]);
        }
        for result in ["success", "failure"] {
            m.config_reloads.with_label_values(&[result]);
        }
        m.build_info
            .with_label_values(&[crate::VERSION, crate::REVISION])
            .set(1);
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registered once");
        Ok(m)
    }

    /// What client libraries reported they dropped, for the dashboard:
    /// `{model: {"dropped": {reason: n}, "values_omitted": n}}`, only the
    /// models with a count above zero.
    pub fn client_drops_json(&self) -> serde_json::Value {
        use prometheus::core::Collector;
        let mut out = serde_json::Map::new();
        let families = [
            (&self.client_dropped, "dropped"),
            (&self.client_values_omitted, "values_omitted"),
        ];
        for (vec, key) in families {
            for f in vec.collect() {
                for m in f.get_metric() {
                    let v = m.get_counter().get_value();
                    if v <= 0.0 {
                        continue;
                    }
                    // Counts: whole numbers (integer counters).
                    let v = v as u64;
                    let label = |n: &str| {
                        m.get_label()
                            .iter()
                            .find(|l| l.name() == n)
                            .map_or("", |l| l.value())
                            .to_owned()
                    };
                    let entry = out
                        .entry(label("model"))
                        .or_insert_with(|| serde_json::json!({"dropped": {}, "values_omitted": 0}));
                    if key == "dropped" {
                        entry["dropped"][label("reason")] = v.into();
                    } else {
                        entry["values_omitted"] = v.into();
                    }
                }
            }
        }
        out.into()
    }

    /// Encodes every family in the Prometheus text format 0.0.4, in name
    /// order: the model families with the direct encoder of
    /// [`super::series`], the rule families from their last
    /// snapshot, and what the registry gathers (the self-metrics).
    pub fn encode(&self) -> Vec<u8> {
        let started = std::time::Instant::now();
        let mut out = Vec::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);
        let gathered = self.registry.gather();
        let rules = self.rule_families.snapshot();
        enum Source<'a> {
            Proto(&'a MetricFamily),
            Rendered(&'a super::dynamic::RenderedFamily),
            Direct(&'a dyn Encode),
        }
        let mut all: Vec<(&str, Source)> = gathered
            .iter()
            .map(|f| (f.name(), Source::Proto(f)))
            .chain(rules.iter().map(|f| (f.name(), Source::Rendered(f))))
            .chain(
                self.hot
                    .iter()
                    .map(|f| (f.family_name(), Source::Direct(f.as_ref()))),
            )
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (_, source) in all {
            match source {
                Source::Proto(f) => series::encode_protos(std::slice::from_ref(f), &mut out),
                Source::Rendered(f) => f.encode(&mut out),
                Source::Direct(f) => f.encode_into(&mut out),
            }
        }
        self.last_size.store(out.len(), Ordering::Relaxed);
        self.scrape_duration.set(started.elapsed().as_secs_f64());
        out
    }
}

/// Why the metric families could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// The buckets of one kind of histogram are invalid.
    #[error("{name} buckets: {error}")]
    Buckets {
        /// Which: `latency`, `prediction`, `confidence` or `feature`.
        name: &'static str,
        /// What is wrong with them.
        error: BucketsError,
    },
}

/// Why bucket bounds are refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BucketsError {
    /// No bound at all.
    #[error("at least one bucket bound is needed")]
    Empty,
    /// A bound that is not finite.
    #[error("bound {0} is not finite (+Inf is always added)")]
    NotFinite(f64),
    /// A bound not above the one before it.
    #[error("bounds must increase strictly, but {0} is followed by {1}")]
    NotIncreasing(f64, f64),
}

/// Checks that bucket bounds are finite, strictly increasing and non-empty.
pub fn validate_buckets(b: &[f64]) -> Result<(), BucketsError> {
    if b.is_empty() {
        return Err(BucketsError::Empty);
    }
    if let Some(x) = b.iter().find(|x| !x.is_finite()) {
        return Err(BucketsError::NotFinite(*x));
    }
    if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
        return Err(BucketsError::NotIncreasing(w[0], w[1]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_are_valid() {
        let b = Buckets::default();
        for v in [&b.latency, &b.prediction, &b.confidence, &b.feature] {
            validate_buckets(v).unwrap();
        }
        assert_eq!(b.prediction.last(), Some(&1.0));
    }

    #[test]
    fn bad_buckets_are_refused() {
        assert!(validate_buckets(&[]).is_err());
        assert!(validate_buckets(&[1.0, 1.0]).is_err());
        assert!(validate_buckets(&[2.0, 1.0]).is_err());
        assert!(validate_buckets(&[f64::NAN]).is_err());
        let b = Buckets {
            latency: vec![0.5, 0.1],
            ..Buckets::default()
        };
        match Metrics::new(&b) {
            Err(e) => assert!(e.to_string().starts_with("latency buckets"), "{e}"),
            Ok(_) => panic!("unsorted buckets accepted"),
        }
    }

    /// The whole page: every family once, in name order, the registry's
    /// samples as the crate's encoder writes them, a rule family as text,
    /// and the model families' histograms well formed.
    #[test]
    fn whole_page_matches_the_crate_for_the_registry_families() {
        use crate::export::series::tests::{check_histograms, parse};
        let m = Metrics::new(&Buckets::default()).unwrap();
        m.requests.with_label_values(&["m", "v", "ok"]).inc();
        m.request_duration
            .with_label_values(&["m", "v"])
            .observe(0.3);
        m.feature_value
            .member(&["m", "v", "f"], &[1.0, 2.0])
            .observe(1.5);
        m.info.with_label_values(&["m", "v"]).set(1);
        m.ingest
            .events_rejected
            .with_label_values(&["too_long"])
            .inc_by(3);
        let mut g = super::super::dynamic::GaugeFamily::new("model_alerts", "Alerts.");
        let labels = [("alertname", "A \"x\""), ("model", "m\n")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        g.push(&labels, 1.0);
        m.rule_families.store(vec![
            g.finish(),
            super::super::dynamic::GaugeFamily::new("model_age_seconds", "Empty.").finish(),
        ]);
        let text = String::from_utf8(m.encode()).unwrap();
        let page = parse(&text);
        check_histograms(&page);
        assert!(text.contains(
            "# HELP model_alerts Alerts.\n# TYPE model_alerts gauge\n\
             model_alerts{alertname=\"A \\\"x\\\"\",model=\"m\\n\"} 1\n"
        ));
        let crate_side = m.registry.gather();
        let mut want = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &crate_side, &mut want)
            .unwrap();
        let want = parse(std::str::from_utf8(&want).unwrap());
        assert!(!want.samples.is_empty());
        for (k, v) in &want.samples {
            // Values that change between two reads: only present.
            if k.0.starts_with("process_") || k.0 == "model_exporter_scrape_duration_seconds" {
                assert!(page.samples.contains_key(k), "{k:?}");
            } else {
                assert_eq!(page.samples.get(k), Some(v), "{k:?}");
            }
        }
        for (k, v) in &want.help {
            assert_eq!(page.help.get(k), Some(v), "{k}");
        }
        for name in ["model_requests_total", "model_feature_value", "model_info"] {
            assert!(page.types.contains_key(name), "{name}");
        }
        assert!(!page.types.contains_key("model_age_seconds"));
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert!(families.windows(2).all(|w| w[0] < w[1]), "{families:?}");
        assert_eq!(
            page.samples.len(),
            want.samples.len() + 1 + (13 + 3) + (2 + 3) + 1 + 1
        );
    }

    #[test]
    fn model_family_names_stay_reserved_in_the_registry() {
        let m = Metrics::new(&Buckets::default()).unwrap();
        for name in ["model_requests_total", "model_alerts"] {
            let c = IntCounter::new(name, "other help").unwrap();
            assert!(m.registry.register(Box::new(c)).is_err(), "{name}");
        }
    }

    #[test]
    fn fresh_registry_exposes_self_metrics() {
        let m = Metrics::new(&Buckets::default()).unwrap();
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains("model_exporter_events_rejected_total{reason=\"too_long\"} 0"));
        assert!(text.contains("model_exporter_events_received_total{type=\"log\"} 0"));
        assert!(text.contains("model_exporter_build_info{"));
    }
}
