//! Sharded aggregation (`--aggregate.shards N`): N aggregators, each on its
//! own thread, each the only writer of the models routed to it.
//!
//! ```text
//!  listeners ──► Router: cut + cap the model name, hash it ──► shard k's channel
//!                 (one batch split into per-shard sub-batches)      │
//!                                                                   ▼
//!                                        Aggregator k: windows, feedback join,
//!                                        rules, handle cache of its models
//!                                                                   │
//!  /metrics ◄── registry (shared atomics) + rule families, one slot per shard
//!  /api/v1/* ◄── ApiView: the shards' snapshots merged at read time
//! ```
//!
//! * **Routing** is by a stable hash ([`shard_of`], FNV-1a) of the model
//!   name, after the name is cut to `--limits.label-length` and the model
//!   cap is applied (both are done by the [`Router`], before hashing), so a
//!   model, its feedback joins and its alert states live on exactly one
//!   shard, and the events of one model from one connection keep their
//!   order. One model cannot be spread over shards: its windows and its
//!   feedback join are one writer's state.
//! * **The model cap** (`--limits.models`) holds over all shards: the
//!   router keeps the set of admitted model names; past the cap, names are
//!   folded into `__other__`, which is itself routed to one shard. Each
//!   shard's own cap is set one above the global one so that it never folds
//!   a model the router admitted. Models rules.yaml declares
//!   ([`declared`](super::declared)) are admitted whatever the cap and take
//!   no place under it, here as in the shards; the router learns them again
//!   with every reload.
//! * **Merging**: the registry's metric vectors are atomic and the shards'
//!   label sets are disjoint, so counters and histograms need no merging.
//!   Each model's series thus have exactly one writer, its shard, which
//!   the hot path relies on: it writes them with
//!   [`Histogram::observe_owned`](crate::export::series::Histogram::observe_owned)
//!   and `inc_owned` (a load and a store), which would lose counts if two
//!   threads wrote one series.
//!   The families rebuilt after each evaluation (`model_alerts`, the
//!   `model_window_*` gauges, ...) are stored per shard
//!   ([`DynamicFamilies::store_slot`](crate::export::dynamic::DynamicFamilies::store_slot))
//!   and concatenated on scrape; the API snapshots are merged by
//!   [`ApiView`](crate::export::api::ApiView).
//! * **Self-metrics**: `model_exporter_rule_evaluation_duration_seconds` is
//!   the sum of every shard's last round (the CPU time of a round);
//!   `model_exporter_rule_evaluations_total` and
//!   `model_exporter_rule_last_evaluation_timestamp_seconds` are kept by
//!   shard 0 (every shard evaluates every group on the same interval);
//!   failures are counted by whichever shard failed.
//!   `model_exporter_event_batches_total` counts the sub-batches the shards
//!   received.
//!
//! With one shard (the default) none of this is in the path: listeners send
//! their batches straight to the one aggregator, as before.

use crate::ingest::name::Name;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::aggregator::{Aggregator, Control, ControlSender};
use super::declared::{Declared, Names};
use super::limits::{Limits, OVERFLOW_LABEL};
use crate::export::metrics::Metrics;
use crate::ingest::sink::Delivery;
use crate::ingest::{Batch, BatchSender, BatchSink, Deliver, SinkClosed};

/// How many aggregators to run: `--aggregate.shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    /// Exactly this many.
    Fixed(NonZeroUsize),
    /// One per available core.
    Auto,
}

impl ShardCount {
    /// The number of shards, resolving `auto` to the cores available to the
    /// process.
    pub fn resolve(self) -> usize {
        match self {
            ShardCount::Fixed(n) => n.get(),
            ShardCount::Auto => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        }
    }
}

impl Default for ShardCount {
    fn default() -> Self {
        ShardCount::Fixed(NonZeroUsize::MIN)
    }
}

/// Most shards accepted: far more than any useful number of cores.
pub const MAX_SHARDS: usize = 256;

/// A `--aggregate.shards` that is neither a number of shards nor `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number of shards from 1 to {MAX_SHARDS}, nor `auto`")]
pub struct ShardCountError(String);

/// Parses `--aggregate.shards`: a number from 1 to [`MAX_SHARDS`], or `auto`.
pub fn parse_shard_count(s: &str) -> Result<ShardCount, ShardCountError> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(ShardCount::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(ShardCount::Fixed(
            NonZeroUsize::new(n).expect("checked above"),
        )),
        _ => Err(ShardCountError(s.to_owned())),
    }
}

/// The shard of a model name among `shards`: FNV-1a (64 bit) of its bytes,
/// modulo the shard count. Stable across runs, builds and platforms.
pub fn shard_of(model: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// The limits each shard's aggregator is given: those of the command line,
/// with the model cap one above the global one (the [`Router`] enforces the
/// global cap; a shard holds at most that many admitted models plus
/// `__other__`).
pub fn shard_limits(limits: Limits) -> Limits {
    Limits {
        models: limits.models.saturating_add(1),
        ..limits
    }
}

/// Each shard's share of a capacity meant for all models together (the
/// feedback join's), rounded up.
pub fn share(total: usize, shards: usize) -> usize {
    total.div_ceil(shards.max(1))
}

/// Starts one aggregator thread per shard (`aggs[i]` must have been given
/// `super::ShardSlot::all(n)[i]`), each with its own queue of `queue` batches, and
/// a task that forwards every control message to all of them. Returns where
/// listeners send, and the threads, each of which stops once every sender is
/// dropped and its queue is drained.
pub fn spawn_all(
    aggs: Vec<Aggregator>,
    queue: usize,
    control: mpsc::UnboundedReceiver<Control>,
    limits: Limits,
    metrics: &Metrics,
) -> (BatchSink, Vec<JoinHandle<Aggregator>>) {
    let mut senders = Vec::new();
    let mut controls = Vec::new();
    let mut threads = Vec::new();
    let declared = aggs
        .first()
        .map(|a| a.store.declared.models().clone())
        .unwrap_or_default();
    for agg in aggs {
        let (tx, rx) = mpsc::channel(queue);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        senders.push(tx);
        controls.push(ctl);
        threads.push(super::aggregator::spawn(agg, rx, ctl_rx));
    }
    let router = Router::new(senders, limits, metrics.clone());
    router.declare(declared);
    tokio::spawn(fan_out(control, controls, Some(router.declared_models())));
    let sink = BatchSink::Spread(Arc::new(router));
    (sink, threads)
}

/// Cuts `s` to at most `max` bytes at a character boundary, as the
/// aggregator does; returns whether it cut.
fn cut(s: &mut Name, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// The admitted model names and their shards, shared by every listener.
struct Admission {
    shards: usize,
    cap: usize,
    label_length: usize,
    known: RwLock<Known>,
    /// The models rules.yaml declares: admitted whatever the cap.
    declared: DeclaredModels,
    metrics: Metrics,
}

/// The admitted model names, their shards, and how many of them took a
/// place under the cap (declared ones take none).
#[derive(Default)]
struct Known {
    shards: HashMap<String, u16>,
    counted: usize,
}

/// The model names rules.yaml declares, shared by the router and what
/// reloads them.
#[derive(Clone, Default)]
pub struct DeclaredModels(Arc<RwLock<Arc<Names>>>);

impl DeclaredModels {
    /// The names now declared.
    fn get(&self) -> Arc<Names> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Declares `models` instead.
    pub fn set(&self, models: Names) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(models);
    }
}

/// Marks an event whose model is not (yet) known to be admitted (shard
/// indices are below [`MAX_SHARDS`] and fit in a `u16`).
const UNKNOWN: u16 = u16::MAX;

impl Admission {
    /// Cuts and caps every event's model name and returns each event's shard.
    fn assign(&self, batch: &mut Batch) -> Vec<u16> {
        let mut out = Vec::with_capacity(batch.len());
        let mut misses = false;
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            for i in 0..batch.len() {
                if cut(&mut batch[i].model, self.label_length) {
                    self.metrics
                        .series_dropped
                        .with_label_values(&["label_length"])
                        .inc();
                }
                // Runs of one model are common: compare with the previous
                // event before hashing.
                if i > 0 && out[i - 1] != UNKNOWN && batch[i].model == batch[i - 1].model {
                    out.push(out[i - 1]);
                    continue;
                }
                let s = known.shards.get(batch[i].model.as_str()).copied();
                misses |= s.is_none();
                out.push(s.unwrap_or(UNKNOWN));
            }
        }
        if misses {
            let declared = self.declared.get();
            let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
            for (e, s) in batch.iter_mut().zip(out.iter_mut()) {
                if *s != UNKNOWN {
                    continue;
                }
                let free = declared.contains(e.model.as_str());
                if let Some(k) = known.shards.get(e.model.as_str()) {
                    *s = *k;
                } else if free || known.counted < self.cap {
                    *s = shard_of(&e.model, self.shards) as u16;
                    known.shards.insert(e.model.to_string(), *s);
                    known.counted += usize::from(!free);
                } else {
                    self.metrics
                        .series_dropped
                        .with_label_values(&["model"])
                        .inc();
                    e.model = Name::new(OVERFLOW_LABEL);
                    *s = shard_of(OVERFLOW_LABEL, self.shards) as u16;
                }
            }
        }
        out
    }
}

/// Splits listeners' batches by model and sends each part to its shard.
#[derive(Clone)]
pub struct Router {
    senders: Arc<[BatchSender]>,
    admission: Arc<Admission>,
}

impl Router {
    /// A router over the shards' channels, enforcing `limits.models` and
    /// `limits.label_length` on model names over all of them.
    pub fn new(senders: Vec<BatchSender>, limits: Limits, metrics: Metrics) -> Router {
        let shards = senders.len();
        Router {
            senders: senders.into(),
            admission: Arc::new(Admission {
                shards,
                cap: limits.models,
                label_length: limits.label_length,
                known: RwLock::default(),
                declared: DeclaredModels::default(),
                metrics,
            }),
        }
    }

    /// Takes the model names rules.yaml now declares: from now on they are
    /// admitted whatever the cap, without taking a place under it.
    pub fn declare(&self, models: Names) {
        self.admission.declared.set(models);
    }

    /// Where the declared model names are kept, to change them later
    /// without holding the router (and its senders).
    pub fn declared_models(&self) -> DeclaredModels {
        self.admission.declared.clone()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Splits a batch into per-shard parts, keeping each model's events in
    /// order. The largest part reuses the batch's own buffer; a batch whose
    /// events all go to one shard is passed on whole.
    pub fn split(&self, mut batch: Batch) -> Vec<(usize, Batch)> {
        if batch.is_empty() {
            return Vec::new();
        }
        let shards = self.admission.assign(&mut batch);
        let first = shards[0];
        if shards.iter().all(|s| *s == first) {
            return vec![(usize::from(first), batch)];
        }
        let mut counts = vec![0usize; self.senders.len()];
        for s in &shards {
            counts[usize::from(*s)] += 1;
        }
        let keep = (0..counts.len())
            .max_by_key(|i| counts[*i])
            .expect("at least one shard");
        let mut parts: Vec<Batch> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i == keep {
                    Vec::new()
                } else {
                    Vec::with_capacity(*n)
                }
            })
            .collect();
        let next = std::cell::Cell::new(0usize);
        for e in batch.extract_if(.., |_| {
            let i = next.get();
            next.set(i + 1);
            usize::from(shards[i]) != keep
        }) {
            // The predicate has just been called for this event.
            parts[usize::from(shards[next.get() - 1])].push(e);
        }
        parts[keep] = batch;
        parts
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .collect()
    }
}

/// Listeners' batches go through the router when there are several shards:
/// each part to its shard's channel, in order.
impl Deliver for Router {
    fn deliver(&self, batch: Batch) -> Delivery<'_> {
        Box::pin(async move {
            for (shard, part) in self.split(batch) {
                self.senders[shard]
                    .send(part)
                    .await
                    .map_err(|_| SinkClosed)?;
            }
            Ok(())
        })
    }

    fn deliver_blocking(&self, batch: Batch) -> Result<(), SinkClosed> {
        for (shard, part) in self.split(batch) {
            self.senders[shard]
                .blocking_send(part)
                .map_err(|_| SinkClosed)?;
        }
        Ok(())
    }
}

/// Forwards every control message (rule reloads) to every shard, until the
/// sending side is dropped; `declared`, if given (the router's), learns the
/// models each new configuration declares.
pub async fn fan_out(
    mut control: mpsc::UnboundedReceiver<Control>,
    shards: Vec<ControlSender>,
    declared: Option<DeclaredModels>,
) {
    while let Some(c) = control.recv().await {
        if let (Some(d), Control::Reload(config, _)) = (&declared, &c) {
            d.set(Declared::of_config(config).models().clone());
        }
        for s in &shards {
            let copy = match &c {
                Control::Reload(config, source) => Control::Reload(config.clone(), source.clone()),
                Control::Refresh(ack) => Control::Refresh(ack.clone()),
            };
            let _ = s.send(copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Options;
    use crate::aggregate::ShardSlot;
    use crate::clock::ManualClock;
    use crate::export::api::ApiView;
    use crate::export::metrics::Buckets;
    use crate::ingest::parse::parse_event;

    fn metrics() -> Metrics {
        Metrics::new(&Buckets::default()).unwrap()
    }

    /// Events of `models` in turn, `n` in all, each with its position as
    /// its latency in ms (to check order).
    fn batch(models: &[&str], n: usize) -> Batch {
        (0..n)
            .map(|i| {
                let m = models[i % models.len()];
                let line = format!(r#"{{"model":"{m}","latency_ms":{i}}}"#);
                parse_event(line.as_bytes()).unwrap()
            })
            .collect()
    }

    fn position(e: &crate::ingest::event::Event) -> u64 {
        match &e.body {
            crate::ingest::event::Body::Inference(i) => {
                (i.latency_seconds.unwrap() * 1000.0).round() as u64
            }
            _ => unreachable!(),
        }
    }

    fn router(shards: usize, limits: Limits, m: &Metrics) -> (Router, Vec<mpsc::Receiver<Batch>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..shards).map(|_| mpsc::channel(16)).unzip();
        (Router::new(tx, limits, m.clone()), rx)
    }

    #[test]
    fn the_shard_of_a_name_is_stable() {
        // FNV-1a of "" is the offset basis; of "a" a published test vector.
        assert_eq!(
            shard_of("", 1000),
            (0xcbf2_9ce4_8422_2325u64 % 1000) as usize
        );
        assert_eq!(
            shard_of("a", 1000),
            (0xaf63_dc4c_8601_ec8cu64 % 1000) as usize
        );
        assert_eq!(shard_of("fraud", 1), 0);
        // Names spread over every shard.
        let names: Vec<String> = (0..64).map(|i| format!("model-{i}")).collect();
        for n in [2, 3, 4] {
            let mut hit = vec![false; n];
            for name in &names {
                let s = shard_of(name, n);
                assert_eq!(s, shard_of(name, n));
                hit[s] = true;
            }
            assert!(hit.iter().all(|h| *h), "{n} shards: {hit:?}");
        }
    }

    #[test]
    fn every_model_goes_to_one_shard_in_order() {
        let m = metrics();
        let (r, _rx) = router(3, Limits::default(), &m);
        let models = ["fraud", "reco", "churn", "ads", "search", "default"];
        let parts = r.split(batch(&models, 600));
        assert!(parts.len() > 1, "the models should spread over shards");
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut total = 0;
        for (shard, part) in &parts {
            let mut last: HashMap<&str, u64> = HashMap::new();
            for e in part {
                assert_eq!(*shard, shard_of(&e.model, 3), "{}", e.model);
                assert_eq!(*seen.entry(e.model.to_string()).or_insert(*shard), *shard);
                let p = position(e);
                if let Some(prev) = last.insert(&e.model, p) {
                    assert!(prev < p, "{} out of order", e.model);
                }
            }
            total += part.len();
        }
        assert_eq!(total, 600);
        assert_eq!(seen.len(), models.len());
        // The shards' counts are the models' counts.
        for (shard, part) in &parts {
            let want: usize = models.iter().filter(|n| shard_of(n, 3) == *shard).count() * 100;
            assert_eq!(part.len(), want);
        }
    }

    #[test]
    fn a_batch_for_one_shard_is_passed_on_whole() {
        let m = metrics();
        let (r, _rx) = router(4, Limits::default(), &m);
        let b = batch(&["fraud"], 10);
        let ptr = b.as_ptr();
        let parts = r.split(b);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, shard_of("fraud", 4));
        assert_eq!(parts[0].1.as_ptr(), ptr);
        assert!(r.split(Vec::new()).is_empty());
    }

    #[test]
    fn the_model_cap_holds_over_all_shards() {
        let m = metrics();
        let limits = Limits {
            models: 3,
            label_length: 8,
            ..Limits::default()
        };
        let (r, _rx) = router(3, limits, &m);
        // Five names, three admitted; two long names equal once cut.
        let parts = r.split(batch(
            &["a", "b", "c-long-name-1", "c-long-name-2", "d", "e"],
            12,
        ));
        let mut models: Vec<(String, usize)> = parts
            .iter()
            .flat_map(|(s, p)| p.iter().map(move |e| (e.model.to_string(), *s)))
            .collect();
        models.sort();
        models.dedup();
        let names: Vec<&str> = models.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["__other__", "a", "b", "c-long-n"]);
        for (n, s) in &models {
            assert_eq!(*s, shard_of(n, 3));
        }
        let dropped = |l: &str| m.series_dropped.with_label_values(&[l]).get();
        assert_eq!(dropped("model"), 4);
        assert_eq!(dropped("label_length"), 4);
        // Admitted names stay admitted; new ones keep folding.
        let parts = r.split(batch(&["a", "z"], 2));
        let got: Vec<&str> = parts
            .iter()
            .flat_map(|(_, p)| p.iter().map(|e| e.model.as_str()))
            .collect();
        assert!(got.contains(&"a") && got.contains(&"__other__"), "{got:?}");
        // A declared model passes the full cap, and takes no place: after
        // it, new names still fold.
        r.declare(["declared".to_owned()].into_iter().collect());
        let parts = r.split(batch(&["declared", "y"], 2));
        let got: Vec<&str> = parts
            .iter()
            .flat_map(|(_, p)| p.iter().map(|e| e.model.as_str()))
            .collect();
        assert!(
            got.contains(&"declared") && got.contains(&"__other__"),
            "{got:?}"
        );
        assert!(!got.contains(&"y"), "{got:?}");
    }

    #[test]
    fn shard_counts_parse() {
        assert_eq!(parse_shard_count("auto"), Ok(ShardCount::Auto));
        assert_eq!(parse_shard_count("1"), Ok(ShardCount::default()));
        assert_eq!(parse_shard_count("3").unwrap().resolve(), 3);
        assert!(ShardCount::Auto.resolve() >= 1);
        for bad in ["0", "-1", "257", "two", ""] {
            let e = parse_shard_count(bad).unwrap_err().to_string();
            assert!(e.contains("1 to 256"), "{bad}: {e}");
        }
        assert_eq!(share(100_000, 3), 33_334);
        assert_eq!(share(7, 1), 7);
        assert_eq!(shard_limits(Limits::default()).models, 101);
    }

    const RULES: &str = "defaults: {min_samples: 1}\ngroups:\n  - name: g\n    rules:\n      - alert: Errors\n        expr: error_rate > 5%\n";

    fn shard_aggregators(n: usize, m: &Metrics, clock: &Arc<ManualClock>) -> Vec<Aggregator> {
        let config = Arc::new(crate::config::load("t.yaml", RULES).unwrap());
        ShardSlot::all(n)
            .into_iter()
            .map(|slot| {
                Aggregator::new(Options {
                    limits: shard_limits(Limits::default()),
                    source: "t".into(),
                    shard: slot,
                    ..Options::new(m.clone(), clock.clone(), config.clone())
                })
            })
            .collect()
    }

    /// Two names on different shards of `n`.
    fn two_shards(n: usize) -> (String, String) {
        let a = "fraud".to_owned();
        let b = (0..)
            .map(|i| format!("reco-{i}"))
            .find(|b| shard_of(b, n) != shard_of(&a, n))
            .unwrap();
        (a, b)
    }

    #[test]
    fn shards_publish_side_by_side_and_merge() {
        let m = metrics();
        let clock = Arc::new(ManualClock::new(1000.0));
        let mut aggs = shard_aggregators(2, &m, &clock);
        let (a, b) = two_shards(2);
        for (model, feedback) in [(&a, "x"), (&b, "y")] {
            let lines = [
                format!(r#"{{"model":"{model}","id":"{feedback}","prediction":1,"error":"boom"}}"#),
                format!(r#"{{"type":"feedback","model":"{model}","id":"{feedback}","actual":1}}"#),
            ];
            aggs[shard_of(model, 2)].apply(
                lines
                    .iter()
                    .map(|l| parse_event(l.as_bytes()).unwrap())
                    .collect(),
            );
        }
        // The history takes its next point 10 s on.
        clock.advance(std::time::Duration::from_secs(10));
        for agg in &mut aggs {
            agg.evaluate();
        }
        let text = String::from_utf8(m.encode()).unwrap();
        for model in [&a, &b] {
            let want = format!(
                r#"model_alerts{{alertname="Errors",alertstate="firing",model="{model}",severity="warning",version=""}} 1"#
            );
            assert!(text.contains(&want), "missing {want}\n{text}");
        }
        // Each shard's joins are counted once, not overwritten by the other's.
        assert!(
            text.contains(r#"model_exporter_feedback_total{result="joined"} 2"#),
            "{text}"
        );
        // Shard 0 counts the rounds.
        assert!(
            text.contains(r#"model_exporter_rule_evaluations_total{group="g"} 1"#),
            "{text}"
        );

        let view = ApiView::new(aggs.iter().map(Aggregator::api).collect());
        let alerts = view.json("/api/v1/alerts").unwrap();
        let mut names: Vec<&str> = alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["model"].as_str().unwrap())
            .collect();
        names.sort();
        let mut want = vec![a.as_str(), b.as_str()];
        want.sort();
        assert_eq!(names, want);
        let rules = view.json("/api/v1/rules").unwrap();
        let rule = &rules["data"]["groups"][0]["rules"][0];
        assert_eq!(rule["health"], "ok");
        assert_eq!(rule["state"], "firing");
        assert_eq!(rule["alerts"].as_array().unwrap().len(), 2);
        let summary = view.json("/api/v1/summary").unwrap();
        assert_eq!(summary["data"]["models"].as_array().unwrap().len(), 2);
        let history = view.json("/api/v1/history").unwrap();
        assert_eq!(history["data"]["series"].as_array().unwrap().len(), 2);
        assert!(view.json("/api/v1/other").is_none());
    }

    #[test]
    fn sharded_pipeline_applies_everything_then_stops() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let m = metrics();
        let (_ctl, ctl_rx) = mpsc::unbounded_channel();
        let (sink, threads) = rt.block_on(async {
            let clock = Arc::new(ManualClock::new(1000.0));
            spawn_all(
                shard_aggregators(3, &m, &clock),
                2,
                ctl_rx,
                Limits::default(),
                &m,
            )
        });
        let models = ["fraud", "reco", "churn", "ads", "search"];
        for _ in 0..20 {
            sink.blocking_send(batch(&models, 50)).unwrap();
        }
        drop(sink);
        for t in threads {
            t.join().unwrap();
        }
        let text = String::from_utf8(m.encode()).unwrap();
        for model in models {
            let want =
                format!(r#"model_requests_total{{model="{model}",outcome="ok",version=""}} 200"#);
            assert!(text.contains(&want), "missing {want}\n{text}");
        }
    }
}
