//! A bounded in-memory history of each model's key signals at a fixed
//! resolution, for the dashboard and the report.
//!
//! Every `resolution` the aggregator takes a [`ModelSummary`] of each model
//! version over the default window and appends it to that model's ring of
//! at most `retention / resolution` points. Models beyond [`MAX_MODELS`]
//! are summarised but not kept in the history. Memory: 19 numbers a point,
//! so an hour at 10 s is about 55 KiB per model version.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use super::render::StateView;
use crate::config::Config;
use crate::rules::expr::CmpOp;
use crate::rules::signal::{
    DriftMethod, DriftTarget, FeatureSel, FeedbackMetric, Resource, Signal,
};

/// How the summary ranks the drift of a model's features: by the method of
/// the first rule about the drift of every feature (`psi(feature.*) > 0.2`
/// ranks by PSI, largest first; `chi2_pvalue(feature.*) < 0.01` by p-value,
/// smallest first), PSI without such a rule. Drift is summarised, as the
/// rules judge it, only over at least the rule's `min_samples` values, over
/// the rule's window, and over the newest `max_samples` values of that
/// window when the rule has the key, so that the summary, the dashboard and
/// `report` show the values the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftRanking {
    /// The method.
    pub method: DriftMethod,
    /// Whether larger values are worse (the rule fires above its threshold).
    pub larger_is_worse: bool,
    /// Values of a feature needed for its drift (the feature drift rule's
    /// `min_samples`, else `defaults.min_samples`).
    pub feature_min_samples: u64,
    /// Predictions needed for prediction drift (likewise, of the first rule
    /// on the prediction's drift).
    pub prediction_min_samples: u64,
    /// The feature drift rule's window, which feature drift is read over
    /// (None without a rule: the summary's window).
    pub feature_window: Option<Duration>,
    /// The feature drift rule's `max_samples`: feature drift is read over
    /// the newest this many values of the window.
    pub feature_max_samples: Option<u64>,
    /// The prediction drift rule's window, likewise.
    pub prediction_window: Option<Duration>,
    /// The prediction drift rule's `max_samples`, likewise.
    pub prediction_max_samples: Option<u64>,
}

impl Default for DriftRanking {
    fn default() -> Self {
        DriftRanking {
            method: DriftMethod::Psi,
            larger_is_worse: true,
            feature_min_samples: 0,
            prediction_min_samples: 0,
            feature_window: None,
            feature_max_samples: None,
            prediction_window: None,
            prediction_max_samples: None,
        }
    }
}

impl DriftRanking {
    /// The ranking the rules of `config` imply.
    pub fn of(config: &Config) -> DriftRanking {
        let rules = || config.groups.iter().flat_map(|g| &g.rules);
        let feature = rules().find(|r| {
            matches!(
                r.expr.signal,
                Signal::Drift {
                    target: DriftTarget::Feature(FeatureSel::All),
                    ..
                }
            )
        });
        let prediction = rules().find(|r| {
            matches!(
                r.expr.signal,
                Signal::Drift {
                    target: DriftTarget::Prediction,
                    ..
                }
            )
        });
        let defaults = config.defaults.min_samples;
        let mut ranking = DriftRanking {
            feature_min_samples: feature.map_or(defaults, |r| r.min_samples),
            prediction_min_samples: prediction.map_or(defaults, |r| r.min_samples),
            feature_window: feature.map(|r| r.window),
            feature_max_samples: feature.and_then(|r| r.max_samples),
            prediction_window: prediction.map(|r| r.window),
            prediction_max_samples: prediction.and_then(|r| r.max_samples),
            ..DriftRanking::default()
        };
        if let Some(r) = feature
            && let Signal::Drift { method, .. } = r.expr.signal
        {
            ranking.method = method;
            ranking.larger_is_worse = !matches!(r.expr.op, CmpOp::Lt | CmpOp::Le);
        }
        ranking
    }

    /// The window and cap feature drift is read with: the feature drift
    /// rule's, else `default` uncapped.
    pub fn features_window(&self, default: Duration) -> (Duration, Option<u64>) {
        (
            self.feature_window.unwrap_or(default),
            self.feature_max_samples,
        )
    }

    /// The window and cap prediction drift is read with, likewise.
    pub fn predictions_window(&self, default: Duration) -> (Duration, Option<u64>) {
        (
            self.prediction_window.unwrap_or(default),
            self.prediction_max_samples,
        )
    }

    /// Whether drift `a` is worse than drift `b`.
    pub fn worse(&self, a: f64, b: f64) -> bool {
        if self.larger_is_worse { a > b } else { a < b }
    }
}

/// Model versions kept in the history.
pub const MAX_MODELS: usize = 50;

/// The key signals of one model version over the default window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Requests per second.
    pub request_rate: Option<f64>,
    /// Failed / all requests.
    pub error_rate: Option<f64>,
    /// Latency quantiles, in seconds.
    pub p50: Option<f64>,
    /// 95th percentile latency.
    pub p95: Option<f64>,
    /// 99th percentile latency.
    pub p99: Option<f64>,
    /// Share of numeric predictions at or above the positive threshold.
    pub positive_rate: Option<f64>,
    /// Mean numeric prediction.
    pub prediction_mean: Option<f64>,
    /// Mean confidence.
    pub confidence_mean: Option<f64>,
    /// Share of low-confidence predictions.
    pub low_confidence_rate: Option<f64>,
    /// `clicked / shown` when the model sends those counters.
    pub click_through_rate: Option<f64>,
    /// Mean CPU utilisation reported by the model (ratio).
    pub cpu: Option<f64>,
    /// Mean memory utilisation reported by the model (ratio).
    pub memory: Option<f64>,
    /// Drift of the prediction against the baseline's (PSI).
    pub prediction_drift: Option<f64>,
    /// The worst drift of a feature, by the [`DriftRanking`]'s method.
    pub feature_drift: Option<f64>,
    /// The feature it is of (left out of the history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_drift_top: Option<String>,
    /// Accuracy of the classifications joined with their label.
    pub accuracy: Option<f64>,
    /// Mean absolute error of the numeric predictions joined with their label.
    pub mae: Option<f64>,
    /// Predictions joined with their label in the window.
    pub labels_joined: Option<f64>,
    /// Predictions waiting for their label now.
    pub labels_pending: Option<f64>,
}

impl ModelSummary {
    /// Reads the summary of every model version from the windows.
    pub fn read_all(
        state: &impl StateView,
        window: Duration,
        now: f64,
        ranking: DriftRanking,
    ) -> Vec<ModelSummary> {
        let pending = state.feedback_pending();
        state
            .series()
            .iter()
            .map(|(m, v)| {
                let mut s = ModelSummary::read(state, m, v, window, now, ranking);
                s.labels_pending = pending
                    .iter()
                    .find(|(pm, pv, _)| pm == m && pv == v)
                    .map(|(_, _, n)| *n as f64);
                s
            })
            .collect()
    }

    /// Reads the summary of one model version from the windows (without
    /// `labels_pending`, which [`ModelSummary::read_all`] fills in).
    pub fn read(
        state: &impl StateView,
        model: &str,
        version: &str,
        window: Duration,
        now: f64,
        ranking: DriftRanking,
    ) -> Self {
        let read = |s: Signal| state.read(model, version, &s, None, window, now);
        // Drift as its rule reads it: over the rule's window, capped.
        let read_drift = |s: Signal, w: (Duration, Option<u64>)| {
            state.read_capped(model, version, &s, None, w, now)
        };
        let r = |s: Signal| read(s).value;
        let mut feature_drift: Option<(f64, String)> = None;
        for feature in state.features(model, version) {
            let signal = Signal::Drift {
                method: ranking.method,
                target: DriftTarget::Feature(FeatureSel::Named(feature.clone())),
            };
            let reading = read_drift(signal, ranking.features_window(window));
            if reading.samples < ranking.feature_min_samples {
                continue;
            }
            if let Some(v) = reading.value
                && feature_drift
                    .as_ref()
                    .is_none_or(|(worst, _)| ranking.worse(v, *worst))
            {
                feature_drift = Some((v, feature));
            }
        }
        let accuracy = read(Signal::Feedback(FeedbackMetric::Accuracy));
        let mae = read(Signal::Feedback(FeedbackMetric::Mae));
        let joined = accuracy.samples.saturating_add(mae.samples);
        let (feature_drift, feature_drift_top) = feature_drift.unzip();
        let prediction_drift = read_drift(
            Signal::Drift {
                method: DriftMethod::Psi,
                target: DriftTarget::Prediction,
            },
            ranking.predictions_window(window),
        );
        ModelSummary {
            prediction_drift: prediction_drift
                .value
                .filter(|_| prediction_drift.samples >= ranking.prediction_min_samples),
            feature_drift,
            feature_drift_top,
            accuracy: accuracy.value,
            mae: mae.value,
            labels_joined: Some(joined as f64),
            labels_pending: None,
            model: model.to_owned(),
            version: version.to_owned(),
            request_rate: r(Signal::RequestRate),
            error_rate: r(Signal::ErrorRate),
            p50: r(Signal::Quantile { q: 0.5 }),
            p95: r(Signal::Quantile { q: 0.95 }),
            p99: r(Signal::Quantile { q: 0.99 }),
            positive_rate: r(Signal::PositiveRate),
            prediction_mean: r(Signal::PredictionMean),
            confidence_mean: r(Signal::ConfidenceMean),
            low_confidence_rate: r(Signal::LowConfidenceRate),
            click_through_rate: r(Signal::CounterRatio {
                numerator: "clicked".into(),
                denominator: "shown".into(),
            }),
            cpu: r(Signal::ResourceMean(Resource::Cpu)),
            memory: r(Signal::ResourceMean(Resource::Memory)),
        }
    }
}

/// One model version's points, oldest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Timestamps (seconds since the epoch).
    pub ts: VecDeque<f64>,
    /// The summaries at those times (model and version left empty).
    pub points: VecDeque<ModelSummary>,
}

/// The history of every model version.
#[derive(Debug, Clone)]
pub struct History {
    resolution: Duration,
    capacity: usize,
    next: f64,
    series: BTreeMap<(String, String), Series>,
    /// How feature drift is ranked in the points.
    pub ranking: DriftRanking,
}

impl History {
    /// A history of `retention` at one point per `resolution`.
    pub fn new(resolution: Duration, retention: Duration) -> History {
        let resolution = resolution.max(Duration::from_millis(100));
        History {
            resolution,
            capacity: (retention.as_secs_f64() / resolution.as_secs_f64())
                .ceil()
                .max(1.0) as usize,
            next: f64::NEG_INFINITY,
            series: BTreeMap::new(),
            ranking: DriftRanking::default(),
        }
    }

    /// Seconds between points.
    pub fn resolution(&self) -> Duration {
        self.resolution
    }

    /// Takes a point of every model version if one is due at `now`.
    /// Returns whether it did.
    pub fn maybe_record(&mut self, state: &impl StateView, window: Duration, now: f64) -> bool {
        if now < self.next {
            return false;
        }
        let step = self.resolution.as_secs_f64();
        // Align points to the resolution, like the windows' slices.
        self.next = ((now / step).floor() + 1.0) * step;
        for mut summary in ModelSummary::read_all(state, window, now, self.ranking) {
            let (model, version) = (
                std::mem::take(&mut summary.model),
                std::mem::take(&mut summary.version),
            );
            let key = (model.clone(), version.clone());
            if !self.series.contains_key(&key) && self.series.len() >= MAX_MODELS {
                continue;
            }
            summary.feature_drift_top = None;
            let s = self.series.entry(key).or_insert_with(|| Series {
                model,
                version,
                ..Series::default()
            });
            if s.ts.len() == self.capacity {
                s.ts.pop_front();
                s.points.pop_front();
            }
            s.ts.push_back(now);
            s.points.push_back(summary);
        }
        true
    }

    /// Adds the series of another history (another shard's: its model
    /// versions are not in this one), up to [`MAX_MODELS`] in all.
    pub fn absorb(&mut self, other: &History) {
        for (key, s) in &other.series {
            if self.series.len() >= MAX_MODELS {
                break;
            }
            self.series.entry(key.clone()).or_insert_with(|| s.clone());
        }
    }

    /// Every series.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.values()
    }
}

/// One feature's distribution now against its reference, for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureView {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Feature name.
    pub feature: String,
    /// Bin labels (value ranges or categories).
    pub bins: Vec<String>,
    /// Reference proportions per bin.
    pub reference: Vec<f64>,
    /// Live proportions per bin over the feature drift rule's window, or
    /// over its newest `max_samples` values (empty when no values).
    pub live: Vec<f64>,
    /// Values read: those in the window, at most `max_samples`.
    pub count: u64,
    /// The feature drift rule's `max_samples`, which `live`, `count` and
    /// `drift` are read with; None when the rule has none (or there is no
    /// rule).
    pub max_samples: Option<u64>,
    /// Drift by method over the values read.
    pub drift: std::collections::BTreeMap<String, f64>,
}

impl FeatureView {
    /// The views of every feature with a reference, over `window`, or over
    /// its newest `max_samples` values when given: the feature drift rule's
    /// ([`DriftRanking::features_window`]).
    pub fn read_all(
        state: &impl StateView,
        (window, max_samples): (Duration, Option<u64>),
        now: f64,
    ) -> Vec<FeatureView> {
        let mut out = Vec::new();
        for (model, version) in state.series() {
            for feature in state.features(&model, &version) {
                let Some((reference, counts)) =
                    state.feature_bins(&model, &version, &feature, (window, max_samples), now)
                else {
                    continue;
                };
                let count: u64 = counts.iter().sum();
                let live = if count > 0 {
                    counts.iter().map(|c| *c as f64 / count as f64).collect()
                } else {
                    Vec::new()
                };
                let drift = DriftMethod::ALL
                    .into_iter()
                    .filter(|m| reference.supports(*m))
                    .filter_map(|method| {
                        let signal = Signal::Drift {
                            method,
                            target: DriftTarget::Feature(FeatureSel::Named(feature.clone())),
                        };
                        let v = state
                            .read_capped(
                                &model,
                                &version,
                                &signal,
                                None,
                                (window, max_samples),
                                now,
                            )
                            .value?;
                        Some((method.function().to_owned(), v))
                    })
                    .collect();
                out.push(FeatureView {
                    model: model.clone(),
                    version: version.clone(),
                    bins: reference.bin_labels(),
                    reference: reference.proportions().to_vec(),
                    live,
                    count,
                    max_samples,
                    drift,
                    feature,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod ranking_tests {
    use super::*;

    /// The ranking follows the first rule on every feature's drift: its
    /// method, window and `max_samples` (the built-in FeatureDrift's 15m and
    /// 300), and falls back to the summary's window uncapped without one.
    #[test]
    fn feature_views_read_as_the_feature_drift_rule_does() {
        let built_in = DriftRanking::of(&Config::default_rules());
        assert_eq!(built_in.method, DriftMethod::Psi);
        assert_eq!(built_in.feature_window, Some(Duration::from_secs(900)));
        assert_eq!(built_in.feature_max_samples, Some(300));
        assert_eq!(
            built_in.features_window(Duration::from_secs(300)),
            (Duration::from_secs(900), Some(300))
        );
        let config = crate::config::load(
            "rules.yaml",
            "groups:\n  - name: g\n    rules:\n      - alert: K\n        expr: ks(feature.*) > 0.3\n        window: 2m\n",
        )
        .expect("valid rules");
        let ks = DriftRanking::of(&config);
        assert_eq!(ks.method, DriftMethod::Ks);
        assert_eq!(
            ks.features_window(Duration::from_secs(300)),
            (Duration::from_secs(120), None)
        );
        let none = DriftRanking::of(&crate::config::load("r.yaml", "groups: []\n").unwrap());
        assert_eq!(
            none.features_window(Duration::from_secs(300)),
            (Duration::from_secs(300), None)
        );
    }
}
