//! The JSON API (`/api/v1/*`): its endpoints, the bodies each aggregator's
//! [`ApiSnapshot`] gives (shaped like Prometheus' own responses), and the
//! view that serves them, merging the shards' snapshots on read.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::history::History;
use crate::rules::eval::RuleStatus;

mod snapshot;
pub use snapshot::ApiSnapshot;

/// How an endpoint's body is made from a snapshot.
pub type Body = fn(&ApiSnapshot) -> Value;

/// The endpoints under `/api/v1/`, and the body each gives.
pub const ENDPOINTS: [(&str, Body); 5] = [
    ("alerts", ApiSnapshot::alerts_json),
    ("rules", ApiSnapshot::rules_json),
    ("summary", ApiSnapshot::summary_json),
    ("history", ApiSnapshot::history_json),
    ("features", ApiSnapshot::features_json),
];

/// Where an aggregator answers a [`Refresh`]: one `()` once its snapshot
/// is up to date.
pub type RefreshAck = mpsc::UnboundedSender<()>;

/// Asks every aggregator to bring the summaries and features of its
/// snapshot up to the events applied so far, so that `/api/v1/summary`
/// shows events sent just before it is asked, not only those of the last
/// evaluation. Each request carries a [`RefreshAck`]; the server hands it to
/// every aggregator (shard), which applies the batches already queued,
/// refreshes, and answers.
#[derive(Clone)]
pub struct Refresh {
    requests: mpsc::UnboundedSender<RefreshAck>,
    parts: usize,
}

impl Refresh {
    /// A refresh of `parts` aggregators, and the receiving end of its
    /// requests.
    pub fn new(parts: usize) -> (Refresh, mpsc::UnboundedReceiver<RefreshAck>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (
            Refresh {
                requests,
                parts: parts.max(1),
            },
            rx,
        )
    }

    /// Asks for a refresh and waits until every aggregator has answered, or
    /// `limit` has passed; returns whether all answered in time (if not, the
    /// snapshot is served as the last evaluation left it).
    pub async fn run(&self, limit: Duration) -> bool {
        let (ack, mut answers) = mpsc::unbounded_channel();
        if self.requests.send(ack).is_err() {
            return false;
        }
        let all = async {
            for _ in 0..self.parts {
                if answers.recv().await.is_none() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(limit, all).await.unwrap_or(false)
    }
}

/// What `/api/v1/*` reads: the snapshot of each shard, merged on read.
#[derive(Clone)]
pub struct ApiView {
    slots: Arc<[Arc<RwLock<ApiSnapshot>>]>,
}

impl From<Arc<RwLock<ApiSnapshot>>> for ApiView {
    fn from(one: Arc<RwLock<ApiSnapshot>>) -> Self {
        ApiView::new(vec![one])
    }
}

impl ApiView {
    /// A view over the shards' snapshots, in shard order.
    pub fn new(slots: Vec<Arc<RwLock<ApiSnapshot>>>) -> Self {
        assert!(!slots.is_empty(), "at least one snapshot");
        ApiView {
            slots: slots.into(),
        }
    }

    /// Calls `f` with the current snapshot: the one aggregator's, or the
    /// shards' merged. Histories are merged only when `history` is true
    /// (they are the largest part; otherwise shard 0's is passed).
    pub fn read<R>(&self, history: bool, f: impl FnOnce(&ApiSnapshot) -> R) -> R {
        if let [one] = &*self.slots {
            let s = one.read().unwrap_or_else(|e| e.into_inner());
            return f(&s);
        }
        let guards: Vec<_> = self
            .slots
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let parts: Vec<&ApiSnapshot> = guards.iter().map(|g| &**g).collect();
        let merged = merge(&parts, history);
        drop(guards);
        f(&merged)
    }

    /// The body of one of the `/api/v1/` endpoints ([`ENDPOINTS`]), or
    /// `None` for another path.
    pub fn json(&self, path: &str) -> Option<Value> {
        let endpoint = path.strip_prefix("/api/v1/")?;
        let (_, body) = ENDPOINTS.iter().find(|(name, _)| *name == endpoint)?;
        Some(self.read(endpoint == "history", *body))
    }
}

/// Merges the shards' snapshots: alerts, summaries and features are
/// concatenated (each model is on one shard) and sorted; each rule's status
/// combines its shards' (`err` if any shard failed, the latest evaluation,
/// the evaluation times summed); groups and source are shard 0's.
pub fn merge(parts: &[&ApiSnapshot], history: bool) -> ApiSnapshot {
    let first = parts[0];
    let mut out = ApiSnapshot {
        alerts: Vec::new(),
        rules: first.rules.clone(),
        groups: first.groups.clone(),
        source: first.source.clone(),
        summary: Vec::new(),
        window: first.window,
        now: parts
            .iter()
            .map(|p| p.now)
            .fold(f64::NEG_INFINITY, f64::max),
        history: first.history.clone(),
        features: Vec::new(),
        ranking: first.ranking,
    };
    for p in parts {
        out.alerts.extend(p.alerts.iter().cloned());
        out.summary.extend(p.summary.iter().cloned());
        out.features.extend(p.features.iter().cloned());
    }
    for p in &parts[1..] {
        // During a reload, shards may briefly hold different rules: combine
        // only rules that are the same in both.
        if p.rules.len() != out.rules.len() {
            continue;
        }
        for (r, o) in out.rules.iter_mut().zip(&p.rules) {
            if r.group == o.group && r.rule.alert == o.rule.alert {
                combine(r, o);
            }
        }
    }
    out.alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    out.summary
        .sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
    out.features
        .sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
    if history && parts.len() > 1 {
        let mut h: History = (*first.history).clone();
        for p in &parts[1..] {
            h.absorb(&p.history);
        }
        out.history = Arc::new(h);
    }
    out
}

/// Folds one shard's status of a rule into another's.
fn combine(into: &mut RuleStatus, other: &RuleStatus) {
    let rank = |h: &str| match h {
        "err" => 2,
        "ok" => 1,
        _ => 0,
    };
    if rank(other.health) > rank(into.health) {
        into.health = other.health;
    }
    if into.last_error.is_empty() {
        into.last_error.clone_from(&other.last_error);
    }
    into.last_evaluation = into.last_evaluation.max(other.last_evaluation);
    into.evaluation_seconds += other.evaluation_seconds;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::eval::Engine;

    const RULES: &str = "defaults: {min_samples: 1}\ngroups:\n  - name: g\n    rules:\n      - alert: Errors\n        expr: error_rate > 5%\n";

    #[test]
    fn rule_status_combines_shards() {
        let mut ok = ApiSnapshot {
            rules: {
                let c = crate::config::load("t.yaml", RULES).unwrap();
                Engine::new(c.groups, c.defaults.evaluation_interval)
                    .rule_status()
                    .to_vec()
            },
            ..ApiSnapshot::default()
        };
        let mut err = ok.clone();
        ok.rules[0].health = "ok";
        ok.rules[0].last_evaluation = 20.0;
        ok.rules[0].evaluation_seconds = 0.5;
        err.rules[0].health = "err";
        err.rules[0].last_error = "boom".into();
        err.rules[0].last_evaluation = 10.0;
        err.rules[0].evaluation_seconds = 0.25;
        let merged = merge(&[&ok, &err], false);
        let r = &merged.rules[0];
        assert_eq!((r.health, r.last_error.as_str()), ("err", "boom"));
        assert_eq!((r.last_evaluation, r.evaluation_seconds), (20.0, 0.75));
    }
}
