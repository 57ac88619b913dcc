//! Rendering: what an aggregator publishes after each evaluation, read from
//! its state through [`StateView`].
//!
//! * The rule families, rebuilt whole and served on `/metrics`:
//!   `model_alerts`, `model_rule_signal_value`, the `model_window_*` gauges
//!   over every window a rule uses, `model_age_seconds`, the drift gauges,
//!   `model_feedback_pending`, and the configured references
//!   ([`references`](super::references)). Each aggregator shard
//!   stores its own in its slot of [`DynamicFamilies`].
//! * The snapshot behind `/api/v1/*` ([`ApiSnapshot`]): alerts, rules, each
//!   model version's key signals and features, and their history.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::api::ApiSnapshot;
use super::dynamic::{DynamicFamilies, GaugeFamily, RenderedFamily};
use super::history::{DriftRanking, FeatureView, History, ModelSummary};
use super::metrics::RULE_FAMILIES;
use super::references::reference_families;
use crate::config::Config;
use crate::rules::duration::format_duration;
use crate::rules::eval::{Alert, AlertState, RuleStatus, SignalValue};
use crate::rules::signal::{DriftMethod, DriftTarget, FeatureSel, Signal};
use crate::rules::source::SignalSource;
use crate::stats::reference::{ModelReferences, Reference};

/// What rendering reads of the state of every model version, besides the
/// signals the rules read.
pub trait StateView: SignalSource {
    /// Whether the series of (model, version) are exported now: the gauges
    /// computed from its windows are published only then.
    fn live(&self, model: &str, version: &str) -> bool;
    /// The longest window of the rings.
    fn span(&self) -> Duration;
    /// The longest window of the features' rings.
    fn feature_span(&self) -> Duration;
    /// The configured references of `model`.
    fn references(&self, model: &str) -> &ModelReferences;
    /// The reference of a feature of (model, version): configured, or
    /// learned.
    fn feature_reference(&self, model: &str, version: &str, feature: &str) -> Option<&Reference>;
    /// A feature's live bin counts over `window`, or with a `cap` (a
    /// rule's `max_samples`) over its newest `cap` values, with its
    /// reference.
    fn feature_bins(
        &self,
        model: &str,
        version: &str,
        feature: &str,
        window: (Duration, Option<u64>),
        now: f64,
    ) -> Option<(&Reference, Vec<u64>)>;
    /// Predictions waiting for their label, per (model, version).
    fn feedback_pending(&self) -> Vec<(String, String, u64)>;
}

/// One evaluation's results, to publish.
pub struct Round<'a> {
    /// Alerts, resolved ones included.
    pub alerts: &'a [Alert],
    /// The value of each rule's signal.
    pub signals: &'a [SignalValue],
    /// Each rule's status.
    pub rules: &'a [RuleStatus],
    /// The rules in force.
    pub config: &'a Config,
    /// Where they came from.
    pub source: &'a str,
    /// When.
    pub now: f64,
}

/// Where one aggregator publishes: its slot of the rule families, its
/// snapshot of the JSON API, and the history of key signals it keeps.
pub struct Publisher {
    families: DynamicFamilies,
    slot: usize,
    api: Arc<RwLock<ApiSnapshot>>,
    history: History,
}

impl Publisher {
    /// A publisher into slot `slot` of `families`, keeping `history`.
    pub fn new(families: DynamicFamilies, slot: usize, history: History) -> Publisher {
        Publisher {
            families,
            slot,
            api: Arc::default(),
            history,
        }
    }

    /// What `/api/v1/*` shows of this aggregator.
    pub fn api(&self) -> Arc<RwLock<ApiSnapshot>> {
        self.api.clone()
    }

    /// Rebuilds the rule families and the API snapshot from `state` after
    /// `round`.
    pub fn publish(&mut self, state: &impl StateView, round: &Round) {
        let now = round.now;
        let mut families = rule_families(round);
        families.extend(window_families(state, round.config, now));
        families.extend(reference_families(state));
        self.families.store_slot(self.slot, families);

        let window = round.config.defaults.window;
        let ranking = DriftRanking::of(round.config);
        self.history.ranking = ranking;
        let history = if self.history.maybe_record(state, window, now) {
            Some(Arc::new(self.history.clone()))
        } else {
            None
        };
        let summary = ModelSummary::read_all(state, window, now, ranking);
        let features = FeatureView::read_all(state, ranking.features_window(window), now);
        let mut api = self.api.write().unwrap_or_else(|e| e.into_inner());
        api.features = features;
        api.ranking = ranking;
        api.alerts = round.alerts.to_vec();
        api.rules = round.rules.to_vec();
        api.groups = round
            .config
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.interval.as_secs_f64()))
            .collect();
        api.source = round.source.to_owned();
        api.summary = summary;
        api.window = window;
        api.now = now;
        if let Some(h) = history {
            api.history = h;
        }
    }
}

impl Publisher {
    /// Brings the API's summaries and features up to `now` from `state`
    /// without evaluating the rules (alerts, rules and history stay as the
    /// last evaluation left them), so that `/api/v1/summary` shows events
    /// applied since.
    pub fn refresh(&mut self, state: &impl StateView, config: &Config, now: f64) {
        let window = config.defaults.window;
        let ranking = DriftRanking::of(config);
        let summary = ModelSummary::read_all(state, window, now, ranking);
        let features = FeatureView::read_all(state, ranking.features_window(window), now);
        let mut api = self.api.write().unwrap_or_else(|e| e.into_inner());
        api.summary = summary;
        api.features = features;
        api.ranking = ranking;
        api.window = window;
        api.now = now;
    }
}

/// `model_alerts` (pending and firing) and `model_rule_signal_value`.
fn rule_families(round: &Round) -> Vec<RenderedFamily> {
    let mut alerts = GaugeFamily::new("model_alerts", RULE_FAMILIES[0].1);
    for a in round
        .alerts
        .iter()
        .filter(|a| a.state != AlertState::Resolved)
    {
        let mut labels = a.labels.clone();
        labels.insert("alertstate".into(), a.state.as_str().into());
        alerts.push(&labels, 1.0);
    }
    let mut signals = GaugeFamily::new("model_rule_signal_value", RULE_FAMILIES[1].1);
    for s in round.signals {
        signals.push(&s.labels, s.value);
    }
    vec![alerts.finish(), signals.finish()]
}

/// The `model_window_*` gauges over every window a rule of `config` uses,
/// the age, drift and reference gauges, and the pending feedback.
fn window_families(state: &impl StateView, config: &Config, now: f64) -> Vec<RenderedFamily> {
    let mut windows: Vec<Duration> = config
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| r.window))
        .chain([config.defaults.window])
        .collect();
    windows.sort();
    windows.dedup();
    // The drift rules with `max_samples`: their (window, max_samples),
    // for features and for the prediction.
    let capped = |prediction: bool| -> Vec<(Duration, Option<u64>)> {
        let mut v: Vec<(Duration, Option<u64>)> = config
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.drift_of_prediction() == Some(prediction))
            .filter_map(|r| Some((r.window, Some(r.max_samples?))))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (feature_capped, prediction_capped) = (capped(false), capped(true));
    use crate::rules::signal::FeedbackMetric as F;
    let specs: [(&str, Signal, Option<&str>); 14] = [
        ("model_window_request_rate", Signal::RequestRate, None),
        ("model_window_error_ratio", Signal::ErrorRate, None),
        (
            "model_window_latency_seconds",
            Signal::Quantile { q: 0.5 },
            Some("p50"),
        ),
        (
            "model_window_latency_seconds",
            Signal::Quantile { q: 0.95 },
            Some("p95"),
        ),
        (
            "model_window_latency_seconds",
            Signal::Quantile { q: 0.99 },
            Some("p99"),
        ),
        ("model_window_positive_ratio", Signal::PositiveRate, None),
        (
            "model_window_low_confidence_ratio",
            Signal::LowConfidenceRate,
            None,
        ),
        ("model_window_prediction_mean", Signal::PredictionMean, None),
        ("model_window_confidence_mean", Signal::ConfidenceMean, None),
        ("model_window_accuracy", Signal::Feedback(F::Accuracy), None),
        (
            "model_window_precision",
            Signal::Feedback(F::Precision),
            None,
        ),
        ("model_window_recall", Signal::Feedback(F::Recall), None),
        ("model_window_mae", Signal::Feedback(F::Mae), None),
        ("model_window_rmse", Signal::Feedback(F::Rmse), None),
    ];
    let mut fams: Vec<(&str, GaugeFamily)> = RULE_FAMILIES[2..]
        .iter()
        .map(|(n, h)| (*n, GaugeFamily::new(n, h)))
        .collect();
    fn family<'f>(fams: &'f mut [(&str, GaugeFamily)], name: &str) -> &'f mut GaugeFamily {
        let i = fams
            .iter()
            .position(|(n, _)| *n == name)
            .expect("family is listed");
        &mut fams[i].1
    }
    let series: Vec<(String, String)> = state
        .series()
        .into_iter()
        .filter(|(m, v)| state.live(m, v))
        .collect();
    for (model, version) in series.clone() {
        let mv = BTreeMap::from([
            ("model".to_owned(), model.clone()),
            ("version".to_owned(), version.clone()),
        ]);
        let age = state.read(
            &model,
            &version,
            &Signal::ModelAge,
            None,
            Duration::ZERO,
            now,
        );
        if let Some(age) = age.value {
            family(&mut fams, "model_age_seconds").push(&mv, age);
        }
        for w in &windows {
            for (name, signal, percentile) in &specs {
                let r = state.read(&model, &version, signal, None, *w, now);
                let Some(v) = r.value else { continue };
                let mut labels = mv.clone();
                labels.insert("window".into(), format_duration(*w));
                if let Some(p) = percentile {
                    labels.insert("percentile".into(), (*p).into());
                }
                family(&mut fams, name).push(&labels, v);
            }
        }
    }
    for (model, version) in series {
        let refs = state.references(&model);
        let mut targets: Vec<(Option<String>, &Reference)> = state
            .features(&model, &version)
            .into_iter()
            .filter_map(|f| {
                let r = state.feature_reference(&model, &version, &f)?;
                Some((Some(f), r))
            })
            .collect();
        if let Some(r) = &refs.prediction {
            targets.push((None, r));
        }
        for (feature, reference) in targets {
            for method in DriftMethod::ALL
                .into_iter()
                .filter(|m| reference.supports(*m))
            {
                let target = match &feature {
                    Some(f) => DriftTarget::Feature(FeatureSel::Named(f.clone())),
                    None => DriftTarget::Prediction,
                };
                let signal = Signal::Drift { method, target };
                // Feature rings span only the windows feature rules read.
                let (span, capped) = match feature {
                    Some(_) => (state.feature_span(), &feature_capped),
                    None => (state.span(), &prediction_capped),
                };
                let all = windows.iter().filter(|w| **w <= span).map(|w| (*w, None));
                for (win, cap) in all.chain(capped.iter().copied()) {
                    let r = state.read_capped(&model, &version, &signal, None, (win, cap), now);
                    let Some(v) = r.value else { continue };
                    let mut labels = BTreeMap::from([
                        ("model".to_owned(), model.clone()),
                        ("version".to_owned(), version.clone()),
                        ("method".to_owned(), method.function().to_owned()),
                        ("window".to_owned(), format_duration(win)),
                    ]);
                    // The newest `max_samples` values of the window only.
                    if let Some(n) = cap {
                        labels.insert("max_samples".into(), n.to_string());
                    }
                    let name = match &feature {
                        Some(f) => {
                            labels.insert("feature".into(), f.clone());
                            "model_feature_drift"
                        }
                        None => "model_prediction_drift",
                    };
                    family(&mut fams, name).push(&labels, v);
                    let Signal::Drift { target, .. } = &signal else {
                        continue;
                    };
                    // Its significance: raw, and for features adjusted
                    // across the version's features.
                    let adjustments: &[bool] = match feature {
                        Some(_) => &[false, true],
                        None => &[false],
                    };
                    for adjusted in adjustments {
                        let pvalue = Signal::DriftPvalue {
                            method,
                            target: target.clone(),
                            adjusted: *adjusted,
                        };
                        let p = state.read_capped(&model, &version, &pvalue, None, (win, cap), now);
                        let Some(p) = p.value else { continue };
                        let name = match (&feature, adjusted) {
                            (Some(_), false) => "model_feature_drift_pvalue",
                            (Some(_), true) => "model_feature_drift_pvalue_adjusted",
                            (None, _) => "model_prediction_drift_pvalue",
                        };
                        family(&mut fams, name).push(&labels, p);
                    }
                    // The window's size n, once per window (not per method).
                    if method == DriftMethod::Psi {
                        labels.remove("method");
                        let name = match feature {
                            Some(_) => "model_feature_drift_samples",
                            None => "model_prediction_drift_samples",
                        };
                        family(&mut fams, name).push(&labels, r.samples as f64);
                    }
                }
            }
            // The reference's size m, where there is a drift reading.
            let read = |w: &Duration| {
                let target = match &feature {
                    Some(f) => DriftTarget::Feature(FeatureSel::Named(f.clone())),
                    None => DriftTarget::Prediction,
                };
                let signal = Signal::Drift {
                    method: DriftMethod::Psi,
                    target,
                };
                state.read(&model, &version, &signal, None, *w, now).value
            };
            if windows.iter().any(|w| read(w).is_some())
                && let Some(m) = reference.count()
            {
                let mut labels = BTreeMap::from([
                    ("model".to_owned(), model.clone()),
                    ("version".to_owned(), version.clone()),
                ]);
                let name = match &feature {
                    Some(f) => {
                        labels.insert("feature".into(), f.clone());
                        "model_feature_reference_size"
                    }
                    None => "model_prediction_reference_size",
                };
                family(&mut fams, name).push(&labels, m as f64);
            }
        }
    }
    for (model, version, n) in state.feedback_pending() {
        if !state.live(&model, &version) {
            continue;
        }
        let labels = BTreeMap::from([("model".to_owned(), model), ("version".to_owned(), version)]);
        family(&mut fams, "model_feedback_pending").push(&labels, n as f64);
    }
    fams.into_iter().map(|(_, f)| f.finish()).collect()
}
