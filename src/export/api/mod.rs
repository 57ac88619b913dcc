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
/// evaluation. Requests are served by [`RefreshRequests::serve`], which
/// hands one [`RefreshAck`] to every aggregator (shard); each applies the
/// batches already queued, refreshes, and answers.
#[derive(Clone)]
pub struct Refresh {
    requests: mpsc::UnboundedSender<RefreshAck>,
}

/// The requests of a [`Refresh`], waiting to be served.
pub struct RefreshRequests {
    requests: mpsc::UnboundedReceiver<RefreshAck>,
    parts: usize,
}

impl Refresh {
    /// A refresh of `parts` aggregators, and its requests to serve.
    pub fn new(parts: usize) -> (Refresh, RefreshRequests) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Refresh { requests: tx },
            RefreshRequests {
                requests: rx,
                parts: parts.max(1),
            },
        )
    }

    /// Asks for a refresh and waits until it is done, or `limit` has
    /// passed; returns whether it was done in time (if not, the snapshot is
    /// served as the last evaluation or refresh left it).
    pub async fn run(&self, limit: Duration) -> bool {
        let (ack, mut answer) = mpsc::unbounded_channel();
        if self.requests.send(ack).is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(limit, answer.recv()).await,
            Ok(Some(()))
        )
    }
}

impl RefreshRequests {
    /// Serves the requests until every [`Refresh`] is dropped or `ask`
    /// returns `false` (the aggregators are gone). One refresh at a time:
    /// the requests that arrive while one is under way are all answered by
    /// the next, so a flood of requests costs the aggregators one refresh
    /// after another at most, never one per request. `ask` hands the
    /// [`RefreshAck`] to every aggregator, which answers once on it.
    pub async fn serve(mut self, mut ask: impl FnMut(RefreshAck) -> bool) {
        while let Some(first) = self.requests.recv().await {
            let mut waiting = vec![first];
            while let Ok(more) = self.requests.try_recv() {
                waiting.push(more);
            }
            let (ack, mut answers) = mpsc::unbounded_channel();
            if !ask(ack) {
                return;
            }
            let parts = self.parts;
            let all = async {
                for _ in 0..parts {
                    if answers.recv().await.is_none() {
                        return false;
                    }
                }
                true
            };
            if tokio::time::timeout(REFRESH_WAIT, all).await == Ok(true) {
                for w in waiting {
                    let _ = w.send(());
                }
            }
        }
    }
}

/// How long [`RefreshRequests::serve`] waits for the aggregators before it
/// serves the next requests (those waiting give up sooner, see
/// [`Refresh::run`]).
const REFRESH_WAIT: Duration = Duration::from_secs(2);

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

    /// Fifty requests at once, two aggregators that count their
    /// refreshes: every request is answered, by one refresh (two at most,
    /// should the first be asked before the others arrive), not fifty.
    #[tokio::test]
    async fn simultaneous_refresh_requests_share_one_refresh() {
        let (refresh, requests) = Refresh::new(2);
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(requests.serve(move |ack| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Both aggregators answer.
            ack.send(()).is_ok() && ack.send(()).is_ok()
        }));
        let runs: Vec<_> = (0..50)
            .map(|_| {
                let r = refresh.clone();
                tokio::spawn(async move { r.run(Duration::from_secs(30)).await })
            })
            .collect();
        for run in runs {
            assert!(run.await.unwrap(), "a request was not answered");
        }
        let n = asked.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} refreshes for 50 requests");
        // A later request gets a refresh of its own.
        assert!(refresh.run(Duration::from_secs(30)).await);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), n + 1);
    }

    /// An aggregator that does not answer: the request gives up at its
    /// limit, and the next one is still served.
    #[tokio::test]
    async fn a_refresh_that_never_comes_is_given_up() {
        let (refresh, requests) = Refresh::new(1);
        let mut first = true;
        tokio::spawn(requests.serve(move |ack| {
            if std::mem::take(&mut first) {
                // Held, never answered (as a stuck aggregator would).
                std::mem::forget(ack);
                true
            } else {
                ack.send(()).is_ok()
            }
        }));
        assert!(!refresh.run(Duration::from_millis(50)).await);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !refresh.run(Duration::from_secs(5)).await {
            assert!(std::time::Instant::now() < deadline, "never served again");
        }
    }

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
