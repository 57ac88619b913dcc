//! What the last evaluation left for `/api/v1/*` ([`ApiSnapshot`]) and the
//! JSON bodies made from it: `/api/v1/alerts` and `/api/v1/rules` are shaped
//! like Prometheus' own responses so that existing tooling can read them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use std::sync::Arc;
use std::time::Duration;

use crate::export::history::{DriftRanking, FeatureView, History, ModelSummary};
use crate::ingest::timestamp::format_rfc3339;
use crate::rules::duration::format_duration;
use crate::rules::eval::{Alert, AlertState, RuleStatus};
use crate::rules::signal::ValueKind;

/// What the last evaluation left for the API to show.
#[derive(Debug, Clone)]
pub struct ApiSnapshot {
    /// Pending and firing alerts.
    pub alerts: Vec<Alert>,
    /// Every rule with its last evaluation.
    pub rules: Vec<RuleStatus>,
    /// Groups in file order: name and interval in seconds.
    pub groups: Vec<(String, f64)>,
    /// Where the rules came from.
    pub source: String,
    /// Key signals of every model version over `window`.
    pub summary: Vec<ModelSummary>,
    /// The window of `summary` (the rules' default window).
    pub window: Duration,
    /// When the snapshot was taken.
    pub now: f64,
    /// The recent history of the key signals.
    pub history: Arc<History>,
    /// Each feature's distribution now against its reference.
    pub features: Vec<FeatureView>,
    /// How the summaries rank feature drift.
    pub ranking: DriftRanking,
}

impl Default for ApiSnapshot {
    fn default() -> Self {
        ApiSnapshot {
            alerts: Vec::new(),
            rules: Vec::new(),
            groups: Vec::new(),
            source: String::new(),
            summary: Vec::new(),
            window: Duration::from_secs(300),
            now: 0.0,
            history: Arc::new(History::new(
                Duration::from_secs(10),
                Duration::from_secs(3600),
            )),
            features: Vec::new(),
            ranking: DriftRanking::default(),
        }
    }
}

/// The unit of a signal's values, for formatting: `seconds`, `fraction` or
/// `number`.
fn unit(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Seconds => "seconds",
        ValueKind::Fraction => "fraction",
        ValueKind::Number => "number",
    }
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": format_rfc3339(a.active_at),
        "value": format!("{:e}", a.value),
    })
}

impl ApiSnapshot {
    /// Active alerts, excluding resolved ones.
    fn active(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state != AlertState::Resolved)
    }

    /// The body of `/api/v1/alerts`.
    pub fn alerts_json(&self) -> Value {
        json!({
            "status": "success",
            "data": { "alerts": self.active().map(alert_json).collect::<Vec<_>>() },
        })
    }

    /// The body of `/api/v1/summary`: each model's key signals now, the
    /// rules' thresholds (those of per-feature rules apart), how feature
    /// drift is ranked, and the active alerts.
    pub fn summary_json(&self) -> Value {
        let threshold = |r: &&RuleStatus| {
            json!({
                "alert": r.rule.alert,
                "signal": r.rule.expr.signal.name(),
                "op": r.rule.expr.op.as_str(),
                "threshold": r.rule.expr.threshold,
                "unit": unit(r.rule.expr.signal.value_kind()),
                "window": format_duration(r.rule.window),
                "severity": r.rule.severity.as_str(),
            })
        };
        let (per_feature, whole): (Vec<&RuleStatus>, Vec<&RuleStatus>) = self
            .rules
            .iter()
            .partition(|r| r.rule.expr.signal.is_per_feature());
        let thresholds: Vec<Value> = whole.iter().map(threshold).collect();
        let feature_thresholds: Vec<Value> = per_feature.iter().map(threshold).collect();
        json!({
            "status": "success",
            "data": {
                "time": format_rfc3339(self.now),
                "window": format_duration(self.window),
                "models": self.summary,
                "thresholds": thresholds,
                "feature_thresholds": feature_thresholds,
                "drift": {
                    "method": self.ranking.method.function(),
                    "larger_is_worse": self.ranking.larger_is_worse,
                    "window": format_duration(self.ranking.features_window(self.window).0),
                    "max_samples": self.ranking.feature_max_samples,
                },
                "alerts": self.active().map(alert_json).collect::<Vec<_>>(),
            },
        })
    }

    /// The body of `/api/v1/history`: one point per resolution for the
    /// last hour, per model version.
    pub fn history_json(&self) -> Value {
        let series: Vec<Value> = self
            .history
            .series()
            .map(|s| {
                let col = |f: fn(&ModelSummary) -> Option<f64>| -> Vec<Option<f64>> {
                    s.points.iter().map(f).collect()
                };
                json!({
                    "model": s.model,
                    "version": s.version,
                    "ts": s.ts,
                    "request_rate": col(|p| p.request_rate),
                    "error_rate": col(|p| p.error_rate),
                    "p50": col(|p| p.p50),
                    "p95": col(|p| p.p95),
                    "p99": col(|p| p.p99),
                    "positive_rate": col(|p| p.positive_rate),
                    "prediction_mean": col(|p| p.prediction_mean),
                    "confidence_mean": col(|p| p.confidence_mean),
                    "low_confidence_rate": col(|p| p.low_confidence_rate),
                    "click_through_rate": col(|p| p.click_through_rate),
                    "cpu": col(|p| p.cpu),
                    "memory": col(|p| p.memory),
                    "prediction_drift": col(|p| p.prediction_drift),
                    "feature_drift": col(|p| p.feature_drift),
                    "accuracy": col(|p| p.accuracy),
                    "mae": col(|p| p.mae),
                    "labels_joined": col(|p| p.labels_joined),
                    "labels_pending": col(|p| p.labels_pending),
                })
            })
            .collect();
        json!({
            "status": "success",
            "data": {
                "resolution": self.history.resolution().as_secs_f64(),
                "drift_method": self.history.ranking.method.function(),
                "window": format_duration(self.window),
                "series": series,
            },
        })
    }

    /// The body of `/api/v1/features`: every feature with a reference, its
    /// live distribution over the window against the reference, and drift.
    pub fn features_json(&self) -> Value {
        json!({
            "status": "success",
            "data": {
                "window": format_duration(self.ranking.features_window(self.window).0),
                "max_samples": self.ranking.feature_max_samples,
                "features": self.features,
            },
        })
    }

    /// The body of `/api/v1/rules`.
    pub fn rules_json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|(name, interval)| {
                let rules: Vec<&RuleStatus> =
                    self.rules.iter().filter(|r| &r.group == name).collect();
                let rules_json: Vec<Value> = rules.iter().map(|r| self.rule_json(r)).collect();
                let last = rules.iter().map(|r| r.last_evaluation).fold(0.0, f64::max);
                let took: f64 = rules.iter().map(|r| r.evaluation_seconds).sum();
                json!({
                    "name": name,
                    "file": self.source,
                    "interval": interval,
                    "rules": rules_json,
                    "evaluationTime": took,
                    "lastEvaluation": format_rfc3339(last),
                })
            })
            .collect();
        json!({ "status": "success", "data": { "groups": groups } })
    }

    fn rule_json(&self, r: &RuleStatus) -> Value {
        let alerts: Vec<&Alert> = self
            .active()
            .filter(|a| a.labels.get("alertname") == Some(&r.rule.alert))
            .filter(|a| {
                r.rule
                    .labels
                    .iter()
                    .all(|(k, v)| a.labels.get(k) == Some(v))
            })
            .collect();
        let state = if alerts.iter().any(|a| a.state == AlertState::Firing) {
            "firing"
        } else if alerts.is_empty() {
            "inactive"
        } else {
            "pending"
        };
        let mut labels: BTreeMap<&str, &str> = r
            .rule
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        labels.insert("severity", r.rule.severity.as_str());
        let annotations: BTreeMap<&str, &str> = r
            .rule
            .annotations
            .iter()
            .map(|(k, t)| (k.as_str(), t.source()))
            .collect();
        json!({
            "state": state,
            "name": r.rule.alert,
            "query": r.rule.expr.to_string(),
            "window": format_duration(r.rule.window),
            "duration": r.rule.for_.as_secs_f64(),
            "keepFiringFor": r.rule.keep_firing_for.as_secs_f64(),
            "minSamples": r.rule.min_samples,
            "labels": labels,
            "annotations": annotations,
            "alerts": alerts.into_iter().map(alert_json).collect::<Vec<_>>(),
            "health": r.health,
            "lastError": r.last_error,
            "evaluationTime": r.evaluation_seconds,
            "lastEvaluation": format_rfc3339(r.last_evaluation),
            "type": "alerting",
        })
    }
}
