//! The aggregator: the loop that applies batches of events to the state
//! ([`Store`]) and, every tick, expires series and evaluates the rules.

use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use super::expiry;
use super::join::Key;
use super::limits::{Fold, Limits, cut_values};
use super::slot::ShardSlot;
use super::snapshot::{RestoreReport, Snapshot, StateCapture, Storage};
use super::store::{self, Store};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::export::api::ApiSnapshot;
use crate::export::history::History;
use crate::export::metrics::Metrics;
use crate::export::render::{Publisher, Round};
use crate::ingest::Batch;
use crate::ingest::event::{Body, Event, EventKind, LogLine, Name};
use crate::rules::eval::{AlertState, Engine, Evaluation};
use crate::rules::notify::NotifierHandle;

/// Messages to the aggregator besides event batches.
#[derive(Debug)]
pub enum Control {
    /// New rules (already validated), and where they came from.
    Reload(Arc<Config>, String),
    /// Apply the batches already queued, bring the API's summaries up to
    /// date, and answer (`/api/v1/summary` waits for it).
    Refresh(crate::export::api::RefreshAck),
}

/// The sending half for [`Control`] messages.
pub type ControlSender = mpsc::UnboundedSender<Control>;

/// How many events ahead of the one applied the label join's index slots
/// are loaded (see [`Aggregator::apply`]).
const PREFETCH_AHEAD: usize = 4;

/// Join keys kept between an event's prefetch and its recording: the
/// events from the one applied to the one prefetched.
const KEYS_AHEAD: usize = PREFETCH_AHEAD + 1;

/// Owns the metric state; applies batches of events and evaluates rules.
pub struct Aggregator {
    metrics: Metrics,
    clock: SharedClock,
    limits: Limits,
    received: [prometheus::IntCounter; EventKind::ALL.len()],
    /// Model names of client reports (`model_exporter_client_*`), capped.
    client_models: super::client::ClientModels,
    /// Every model version's series and windows.
    pub(super) store: Store,
    engine: Engine,
    /// Where the rule families and the API snapshot go after evaluations.
    publisher: Publisher,
    source: String,
    notifier: Option<(NotifierHandle, String)>,
    reemit_logs: bool,
    /// The rule signals last published, kept with a ttl only, to publish
    /// again when versions expire between evaluations.
    last_signals: Vec<crate::rules::eval::SignalValue>,
    /// Snapshots of the state (`--storage.path`).
    storage: Option<Storage>,
    /// Why the final snapshot failed, if it did.
    final_snapshot: Option<crate::storage::StorageError>,
    /// Which shard this is (shard 0 of 1 unless `--aggregate.shards`).
    shard: ShardSlot,
    /// `model_exporter_feedback_total` as this aggregator last counted it.
    feedback_counted: [u64; 7],
}

/// How an aggregator is set up: everything it needs before the first event.
pub struct Options {
    /// Where the metric state is written.
    pub metrics: Metrics,
    /// The time source.
    pub clock: SharedClock,
    /// The rules to evaluate.
    pub config: Arc<Config>,
    /// Where the rules came from, as `/api/v1/rules` shows it.
    pub source: String,
    /// Caps on label values.
    pub limits: Limits,
    /// One point of each model's key signals is kept per
    /// `history_resolution` (10 s by default)...
    pub history_resolution: Duration,
    /// ...for `history_retention` (1 h by default).
    pub history_retention: Duration,
    /// `--metrics.ttl`: series that received no event for this long are
    /// forgotten; zero (the default) never (see the `expiry` module,
    /// docs/metrics.md "Series expiry", for what goes when).
    pub ttl: Duration,
    /// Whether the model's `log` events are written into the exporter's own
    /// log (target `model`), at their level.
    pub reemit_logs: bool,
    /// Which shard this aggregator is: it publishes its rule families into
    /// its own slot. Shard 0 of 1 by default.
    pub shard: ShardSlot,
    /// Where firing and resolved alerts are pushed after every evaluation,
    /// with the generator URL they link to.
    pub notifier: Option<(NotifierHandle, String)>,
    /// How long a prediction waits for its label (24 h by default)...
    pub feedback_ttl: Duration,
    /// ...and how many wait at most (100 000 by default).
    pub feedback_capacity: usize,
    /// Snapshots of the state (`--storage.path`): the last one is restored
    /// (and the rules evaluated on it once, so that alerts that were firing
    /// are firing at once, with their `activeAt`), and new ones are written
    /// there.
    pub storage: Option<Storage>,
}

impl Options {
    /// The defaults, for an aggregator writing into `metrics`, reading time
    /// from `clock` and evaluating the rules of `config`.
    pub fn new(metrics: Metrics, clock: SharedClock, config: Arc<Config>) -> Options {
        Options {
            metrics,
            clock,
            config,
            source: String::new(),
            limits: Limits::default(),
            history_resolution: Duration::from_secs(10),
            history_retention: Duration::from_secs(3600),
            ttl: Duration::ZERO,
            reemit_logs: false,
            shard: ShardSlot::default(),
            notifier: None,
            feedback_ttl: Duration::from_secs(24 * 3600),
            feedback_capacity: 100_000,
            storage: None,
        }
    }

    /// How often, in real time, an aggregator made with these options
    /// evaluates its rules ([`Aggregator::tick`]).
    pub fn tick(&self) -> Duration {
        let ttl = (!self.ttl.is_zero()).then_some(self.ttl);
        evaluation_tick(
            crate::rules::eval::tick(
                &self.config.groups,
                self.config.defaults.evaluation_interval,
            ),
            ttl,
            self.clock.speed(),
        )
    }
}

/// The rules' interval, or a quarter of the ttl if shorter (so that series
/// go at most a quarter late), shortened by the clock's speed.
fn evaluation_tick(rules: Duration, ttl: Option<Duration>, speed: f64) -> Duration {
    let tick = match ttl {
        Some(ttl) => rules.min(ttl / 4),
        None => rules,
    };
    tick.div_f64(speed).max(Duration::from_millis(1))
}

impl Aggregator {
    /// An aggregator set up by `options`. With storage, the last snapshot is
    /// restored and the rules evaluated on it before this returns.
    pub fn new(options: Options) -> Self {
        let Options {
            metrics,
            clock,
            config,
            source,
            limits,
            history_resolution,
            history_retention,
            ttl,
            reemit_logs,
            shard,
            notifier,
            feedback_ttl,
            feedback_capacity,
            storage,
        } = options;
        let received =
            EventKind::ALL.map(|k| metrics.events_received.with_label_values(&[k.as_str()]));
        let ttl = (!ttl.is_zero()).then_some(ttl);
        if ttl.is_some() {
            for label in expiry::LABELS {
                metrics.series_expired.with_label_values(&[label]);
            }
        }
        let mut store = Store::new(config.clone(), limits, metrics.clone(), ttl);
        store.set_feedback(feedback_ttl, feedback_capacity);
        let publisher = Publisher::new(
            metrics.rule_families.clone(),
            shard.index(),
            History::new(history_resolution, history_retention),
        );
        let mut a = Aggregator {
            metrics,
            clock,
            limits,
            received,
            client_models: super::client::ClientModels::default(),
            store,
            engine: Engine::new(config.groups.clone(), config.defaults.evaluation_interval),
            publisher,
            source,
            notifier,
            reemit_logs,
            last_signals: Vec::new(),
            storage: None,
            final_snapshot: None,
            shard,
            feedback_counted: [0; 7],
        };
        a.publish(&Evaluation::default());
        if let Some(storage) = storage {
            a.attach_storage(storage);
        }
        a
    }

    /// What `/api/v1/alerts` and `/api/v1/rules` show; updated after every
    /// evaluation.
    pub fn api(&self) -> Arc<RwLock<ApiSnapshot>> {
        self.publisher.api()
    }

    /// Brings the API's summaries and features up to the events applied so
    /// far, without evaluating the rules.
    pub fn refresh_api(&mut self) {
        let now = self.clock.now();
        self.publisher.refresh(&self.store, &self.store.config, now);
    }

    /// Applies every event of a batch, in order.
    ///
    /// A run of consecutive inference events sent with the same model and
    /// version (the usual batch: one client's read) finds its handles and
    /// windows once, not once an event.
    pub fn apply(&mut self, mut batch: Batch) {
        let now = self.clock.now();
        // Events are applied where they lie in the batch (an `Event` is a
        // few hundred bytes: moving each out cost more than reading it).
        let mut k = 0;
        while k < batch.len() {
            let event = &mut batch[k];
            if matches!(event.body, Body::Client(_)) {
                cut_values(&self.metrics, &self.limits, event);
                let Body::Client(report) = &event.body else {
                    unreachable!()
                };
                self.client_models
                    .record(&self.metrics, &self.limits, &event.model, report);
                self.received[EventKind::Client as usize].inc();
                k += 1;
                continue;
            }
            if !matches!(event.body, Body::Inference(_)) {
                self.store.admit(event);
                self.received[event.body.kind() as usize].inc();
                if let Body::Log(l) = &event.body
                    && self.reemit_logs
                {
                    reemit(&event.model, &event.version, l);
                }
                self.store.record(event, now);
                k += 1;
                continue;
            }
            let sent = (event.model.clone(), event.version.clone());
            let fold = self.store.admit(event);
            k = self.apply_run(&mut batch, k, fold, &sent, now);
        }
        crate::ingest::batch::recycle(batch);
    }

    /// Applies `batch[first]`, an admitted inference event, and the
    /// inference events right after it that were sent with the same model
    /// and version as it (`sent`, before `admit`), with the handles and
    /// windows found once; returns the index after the run. `admit`'s
    /// decision for those names holds for the whole run: within a batch map
    /// entries are only added (expiry runs between batches), so a name that
    /// had a place keeps it and one folded into the overflow label is folded
    /// again; `fold` repeats it (counted) for each event.
    fn apply_run(
        &mut self,
        batch: &mut [Event],
        first: usize,
        fold: Fold,
        sent: &(Name, Name),
        now: f64,
    ) -> usize {
        let metrics = &self.metrics;
        let limits = &self.limits;
        let received = &self.received[batch[first].body.kind() as usize];
        let mut run = self
            .store
            .run(&batch[first].model, &batch[first].version, now);
        // The label join's index is larger than the caches: its slots for
        // the events a few ahead are loaded while this one is applied (a
        // hint; events that turn out to be of another run load in vain).
        // Each event's join key is made then, under the run's model name
        // (every event of the run is recorded under it), and kept until the
        // event is recorded, so that its id is hashed once.
        let run_model = batch[first].model.clone();
        let mut keys: [Option<Key>; KEYS_AHEAD] = [None; KEYS_AHEAD];
        let prefetch = |run: &store::Run<'_>, keys: &mut [Option<Key>], j: usize, e: &Event| {
            if let Body::Inference(i) = &e.body {
                keys[j % KEYS_AHEAD] = run.prefetch_key(&run_model, i);
                // The feature list, written on a listener's thread, is
                // read first by `cut_values`.
                if let (Some(a), Some(b)) = (i.features.first(), i.features.last()) {
                    super::join::prefetch(a);
                    super::join::prefetch(b);
                }
            }
        };
        for (j, e) in batch.iter().enumerate().skip(first).take(PREFETCH_AHEAD) {
            prefetch(&run, &mut keys, j, e);
        }
        let mut k = first;
        loop {
            if let Some(e) = batch.get(k + PREFETCH_AHEAD) {
                prefetch(&run, &mut keys, k + PREFETCH_AHEAD, e);
            }
            let event = &batch[k];
            let Body::Inference(i) = &event.body else {
                unreachable!("a run holds inference events only")
            };
            let mv = [event.model.as_str(), event.version.as_str()];
            run.record_keyed(mv, i, keys[k % KEYS_AHEAD], now);
            k += 1;
            match batch.get_mut(k) {
                Some(e)
                    if matches!(e.body, Body::Inference(_))
                        && e.model == sent.0
                        && e.version == sent.1 =>
                {
                    cut_values(metrics, limits, e);
                    fold.apply(metrics, e);
                }
                _ => {
                    received.inc_by((k - first) as u64);
                    return k;
                }
            }
        }
    }

    /// Takes new rules; alerts of unchanged rules keep their state.
    pub fn reload(&mut self, config: Arc<Config>, source: String) {
        self.engine
            .set_rules(config.groups.clone(), config.defaults.evaluation_interval);
        self.store.set_config(config, self.clock.now());
        self.source = source;
        self.publish(&Evaluation::default());
    }

    /// How often, in real time, [`Aggregator::evaluate`] should run: the
    /// rules' interval (or a quarter of `--metrics.ttl` if shorter, so that
    /// series go at most a quarter late), shortened by the clock's speed.
    pub fn tick(&self) -> Duration {
        evaluation_tick(self.engine.tick(), self.store.ttl(), self.clock.speed())
    }

    /// How long, in real time, until the next round: until the rules' next
    /// aligned evaluation time by the clock (so that rounds fall on the
    /// evaluation grid however the timer drifts from the clock), and at most
    /// [`Aggregator::tick`].
    pub fn until_next_round(&self) -> Duration {
        let tick = self.tick();
        let now = self.clock.now();
        let Some(at) = self.engine.next_evaluation(now) else {
            return tick;
        };
        let wait = (at - now) / self.clock.speed();
        if wait.is_finite() && wait > 0.0 {
            Duration::from_secs_f64(wait).clamp(Duration::from_millis(1), tick)
        } else {
            Duration::from_millis(1)
        }
    }

    /// Forgets expired series, then evaluates the rules that are due and
    /// publishes the results.
    pub fn evaluate(&mut self) -> Evaluation {
        let now = self.clock.now();
        let forgot = self.store.expire(now).series;
        self.store.expire_feedback(now);
        self.count_feedback();
        let started = std::time::Instant::now();
        let ev = self.engine.evaluate(now, &self.store);
        if !ev.groups_evaluated.is_empty() {
            // Every shard evaluates every group at the same interval: shard 0
            // counts the rounds.
            let leader = self.shard.is_leader();
            for g in ev.groups_evaluated.iter().filter(|_| leader) {
                let n = self
                    .engine
                    .groups()
                    .iter()
                    .find(|x| &x.name == g)
                    .map_or(0, |x| x.rules.len());
                self.metrics
                    .rule_evaluations
                    .with_label_values(&[g])
                    .inc_by(n as u64);
                self.metrics
                    .rule_last_evaluation
                    .with_label_values(&[g])
                    .set(now);
            }
            for g in &ev.failures {
                self.metrics
                    .rule_evaluation_failures
                    .with_label_values(&[g])
                    .inc();
            }
            self.publish(&ev);
            self.notify(&ev);
            self.shard
                .set_evaluation_duration(&self.metrics, started.elapsed().as_secs_f64());
        } else if self.engine.groups().is_empty() {
            // Without rules every tick is a round: the gauges computed from
            // the windows (drift, references, `model_window_*`) and the API
            // follow the state, not the rules.
            self.publish(&ev);
        } else if forgot {
            // The gauges of versions just forgotten go now.
            let again = Evaluation {
                alerts: ev.alerts.clone(),
                signals: std::mem::take(&mut self.last_signals),
                ..Evaluation::default()
            };
            self.publish(&again);
        }
        ev
    }

    /// Brings `model_exporter_feedback_total` up to the join's counts.
    fn count_feedback(&mut self) {
        let s = self.store.feedback_stats();
        for (i, (result, n)) in [
            ("joined", s.joined),
            ("carried", s.carried),
            ("unmatched", s.unmatched),
            ("duplicate_feedback", s.duplicate_feedback),
            ("duplicate_inference", s.duplicate_inference),
            ("expired", s.expired),
            ("evicted", s.evicted),
        ]
        .into_iter()
        .enumerate()
        {
            // By what this aggregator counted before: shards share the counter.
            let c = self.metrics.feedback_results.with_label_values(&[result]);
            c.inc_by(n.saturating_sub(self.feedback_counted[i]));
            self.feedback_counted[i] = self.feedback_counted[i].max(n);
        }
    }

    /// Hands firing and just-resolved alerts to the notifier (pending ones
    /// are not sent, as in Prometheus).
    fn notify(&self, ev: &Evaluation) {
        let Some((handle, url)) = &self.notifier else {
            return;
        };
        let alerts = ev
            .alerts
            .iter()
            .filter(|a| a.state != AlertState::Pending)
            .map(|a| a.notification(url))
            .collect();
        handle.send(alerts);
    }

    /// Rebuilds the rule families and the API snapshot.
    fn publish(&mut self, ev: &Evaluation) {
        if self.store.ttl().is_some() {
            self.last_signals = ev.signals.clone();
        }
        let round = Round {
            alerts: &ev.alerts,
            signals: &ev.signals,
            rules: self.engine.rule_status(),
            config: &self.store.config,
            source: &self.source,
            now: self.clock.now(),
        };
        self.publisher.publish(&self.store, &round);
    }
}

/// State across restarts (`--storage.path`, see [`crate::storage`]).
impl Aggregator {
    /// Restores the snapshot `storage` holds, if any, evaluates the rules
    /// once on the restored state, and from then on writes snapshots there.
    fn attach_storage(&mut self, storage: Storage) {
        if let Some(snapshot) = storage.load() {
            let path = storage.path();
            let age = self.clock.now() - snapshot.written_at;
            let r = self.restore(snapshot);
            tracing::info!(
                path = %path.display(),
                age_seconds = age,
                series = r.series,
                slices = r.slices,
                pending_feedback = r.pending_feedback,
                alerts = r.alerts,
                alerts_dropped = r.alerts_dropped,
                "restored the snapshot"
            );
            if !r.dropped.is_empty() {
                let more = if r.more_dropped > 0 {
                    format!("; and {} more", r.more_dropped)
                } else {
                    String::new()
                };
                tracing::warn!(
                    path = %path.display(),
                    "left out of the restored snapshot: {}{more}",
                    r.dropped.join("; ")
                );
            }
            self.evaluate();
        }
        self.storage = Some(storage);
    }

    /// A copy of the state a snapshot holds: windows, pending feedback,
    /// alert states.
    pub fn capture(&self) -> StateCapture {
        StateCapture {
            written_at: self.clock.now(),
            windows: self.store.capture(),
            alerts: self.engine.alert_records(),
        }
    }

    /// Puts back the state of a snapshot, as of now. Windows, pending
    /// feedback and the alerts of unchanged rules are restored; what does
    /// not fit the current rules and limits is left out and reported.
    pub fn restore(&mut self, snapshot: Snapshot) -> RestoreReport {
        let mut report = RestoreReport::default();
        let now = self.clock.now();
        self.store.restore(
            snapshot.body.windows,
            self.limits.models,
            self.limits.versions,
            now,
            &mut report,
        );
        let (restored, dropped) = self.engine.restore_alerts(snapshot.body.alerts);
        report.alerts = restored;
        report.alerts_dropped = dropped;
        report
    }

    /// How often, in real time, to write a snapshot; `None` without
    /// storage or when only the one at shutdown is written.
    pub fn snapshot_interval(&self) -> Option<Duration> {
        let i = self.storage.as_ref()?.interval();
        (!i.is_zero()).then(|| i.div_f64(self.clock.speed()).max(Duration::from_millis(1)))
    }

    /// Takes a snapshot and hands it to the writer, unless the previous one
    /// is still being written (then it is skipped and counted).
    pub fn save_snapshot(&mut self) {
        let Some(storage) = &self.storage else { return };
        if storage.is_busy() {
            storage.skip();
            return;
        }
        let started = std::time::Instant::now();
        let capture = self.capture();
        storage.submit(capture, started.elapsed().as_secs_f64());
    }

    /// Writes the last snapshot and waits until it is on disk.
    ///
    /// # Errors
    /// When it could not be written. It is logged here, whatever the rate
    /// limit on the periodic snapshots' failures, counted, and kept for
    /// [`Aggregator::final_snapshot_error`].
    pub fn finish_storage(&mut self) -> Result<(), &crate::storage::StorageError> {
        if self.storage.is_none() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let capture = self.capture();
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(storage) = self.storage.take() {
            let path = storage.path();
            match storage.finish(capture, elapsed) {
                Ok(()) => tracing::info!(path = %path.display(), "wrote the final snapshot"),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "{e}");
                    self.final_snapshot = Some(e);
                }
            }
        }
        self.final_snapshot.as_ref().map_or(Ok(()), Err)
    }

    /// Why the final snapshot could not be written, if it could not.
    pub fn final_snapshot_error(&self) -> Option<&crate::storage::StorageError> {
        self.final_snapshot.as_ref()
    }

    /// Takes why the final snapshot could not be written, if it could not.
    pub fn take_final_snapshot_error(&mut self) -> Option<crate::storage::StorageError> {
        self.final_snapshot.take()
    }
}

/// Writes a model's log event into the exporter's log.
fn reemit(model: &str, version: &str, l: &LogLine) {
    use crate::ingest::event::LogLevel as L;
    let (c, m) = (l.component.as_str(), l.message.as_str());
    match l.level {
        L::Debug => tracing::debug!(target: "model", model, version, component = c, "{m}"),
        L::Info => tracing::info!(target: "model", model, version, component = c, "{m}"),
        L::Warning => tracing::warn!(target: "model", model, version, component = c, "{m}"),
        L::Error | L::Critical => {
            tracing::error!(target: "model", model, version, component = c, critical = l.level == L::Critical, "{m}")
        }
    }
}

/// Starts the aggregator on its own thread. It applies batches and
/// evaluates rules every tick until every batch sender is dropped, then
/// returns the aggregator; it does not evaluate the rules again after the
/// last batch. With storage attached it
/// writes a snapshot every snapshot interval, and a last one once every
/// queued batch is applied.
pub fn spawn(
    mut agg: Aggregator,
    mut rx: mpsc::Receiver<Batch>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> JoinHandle<Aggregator> {
    std::thread::Builder::new()
        .name(agg.shard.thread_name())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("building the aggregator's runtime");
            rt.block_on(async {
                // The first round is at once; then each is scheduled at the
                // rules' next aligned evaluation time (see `until_next_round`).
                let tick = tokio::time::sleep(Duration::ZERO);
                tokio::pin!(tick);
                let snapshots = agg.snapshot_interval();
                let period = snapshots.unwrap_or(Duration::from_secs(3600));
                let mut snapshot =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        biased;
                        Some(c) = control.recv() => match c {
                            Control::Reload(config, source) => {
                                agg.reload(config, source);
                                tick.as_mut().reset(tokio::time::Instant::now());
                            }
                            Control::Refresh(ack) => {
                                // What was queued before the request, at
                                // most a queue's worth.
                                for _ in 0..rx.max_capacity() {
                                    let Ok(batch) = rx.try_recv() else { break };
                                    agg.metrics.batches.inc();
                                    agg.apply(batch);
                                }
                                agg.refresh_api();
                                let _ = ack.send(());
                            }
                        },
                        _ = &mut tick => {
                            // A fault in evaluation or publishing must not
                            // stop the thread that applies events.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                agg.evaluate();
                            }));
                            if r.is_err() {
                                tracing::error!("rule evaluation round failed; events are still applied");
                                agg.metrics.rule_evaluation_failures.with_label_values(&["*"]).inc();
                            }
                            tick.as_mut().reset(tokio::time::Instant::now() + agg.until_next_round());
                        }
                        _ = snapshot.tick(), if snapshots.is_some() => agg.save_snapshot(),
                        b = rx.recv() => match b {
                            Some(batch) => {
                                agg.metrics.batches.inc();
                                agg.apply(batch);
                            }
                            None => break,
                        },
                    }
                }
            });
            // Every queued batch is applied: the last snapshot has them all.
            // A failure is logged and kept in `agg` for the caller.
            let _ = agg.finish_storage();
            agg
        })
        .expect("spawning the aggregator thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::export::metrics::Buckets;
    use crate::ingest::parse::parse_event;

    fn agg(limits: Limits) -> (Aggregator, Metrics) {
        let m = Metrics::new(&Buckets::default()).unwrap();
        let a = Aggregator::new(Options {
            limits,
            source: "test".into(),
            ..Options::new(
                m.clone(),
                Arc::new(ManualClock::new(1000.0)),
                Arc::new(Config::default_rules()),
            )
        });
        (a, m)
    }

    /// An aggregator for the rules.yaml `yaml`, at t = 1000 s.
    fn agg_with(yaml: &str) -> (Aggregator, Metrics) {
        let config = crate::config::load("t.yaml", yaml).unwrap();
        let m = Metrics::new(&Buckets::default()).unwrap();
        let a = Aggregator::new(Options {
            source: "t".into(),
            ..Options::new(
                m.clone(),
                Arc::new(ManualClock::new(1000.0)),
                Arc::new(config),
            )
        });
        (a, m)
    }

    /// Rounds are scheduled at the rules' aligned evaluation times by the
    /// clock, whenever the previous one ran.
    #[test]
    fn rounds_are_scheduled_at_the_aligned_evaluation_times() {
        let clock = ManualClock::new(1000.0003);
        let config = crate::config::load(
            "t.yaml",
            "defaults: {evaluation_interval: 1s}\ngroups:\n  - name: g\n    interval: 2s\n    rules:\n      - {alert: A, expr: request_rate > 0}\n  - name: h\n    interval: 5s\n    rules:\n      - {alert: B, expr: request_rate > 0}\n",
        )
        .unwrap();
        let mut a = Aggregator::new(Options::new(
            Metrics::new(&Buckets::default()).unwrap(),
            Arc::new(clock.clone()),
            Arc::new(config),
        ));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let wait = |a: &Aggregator| (ms(a.until_next_round()) * 10.0).round() / 10.0;
        // Evaluated at 1000 (both groups); next at 1002.
        assert_eq!(a.evaluate().groups_evaluated, ["g", "h"]);
        assert_eq!(wait(&a), 1999.7);
        // Woken a hair early: still the round of 1002, g only; then 1004
        // (2.0002 s away, cut to the shortest interval: the round after
        // comes at most that late).
        clock.set(1001.9998);
        assert_eq!(a.evaluate().groups_evaluated, ["g"]);
        assert_eq!(wait(&a), 2000.0);
        clock.set(1003.5);
        assert!(a.evaluate().groups_evaluated.is_empty());
        assert_eq!(wait(&a), 500.0);
        // Late, past 1005: g's round of 1004 and h's of 1005; then 1006.
        clock.set(1005.4);
        assert_eq!(a.evaluate().groups_evaluated, ["g", "h"]);
        assert_eq!(wait(&a), 600.0);
        // Never longer than the shortest interval, never zero.
        clock.set(1005.99999);
        assert_eq!(wait(&a), 2000.0);
        assert!(a.until_next_round() >= Duration::from_millis(1));
    }

    fn batch(lines: &[&str]) -> Batch {
        lines
            .iter()
            .map(|l| parse_event(l.as_bytes()).unwrap())
            .collect()
    }

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.encode()).unwrap()
    }

    #[test]
    fn inference_events_become_metrics() {
        let (mut a, m) = agg(Limits::default());
        a.apply(batch(&[
            r#"{"model":"fraud","version":"v3","latency_ms":20,"prediction":1,"confidence":0.9,"features":{"age":35,"flag":true,"country":"DE","x":null},"counters":{"shown":10,"clicked":2},"resources":{"cpu_percent":40}}"#,
            r#"{"model":"fraud","version":"v3","latency_ms":700,"error":"timeout"}"#,
            r#"{"model":"fraud","version":"v3","prediction":"cat","counters":{"shown":5}}"#,
        ]));
        let t = text(&m);
        for want in [
            r#"model_requests_total{model="fraud",outcome="ok",version="v3"} 2"#,
            r#"model_requests_total{model="fraud",outcome="error",version="v3"} 1"#,
            r#"model_request_errors_total{error="timeout",model="fraud",version="v3"} 1"#,
            r#"model_request_duration_seconds_bucket{model="fraud",version="v3",le="0.025"} 1"#,
            r#"model_request_duration_seconds_bucket{model="fraud",version="v3",le="1"} 2"#,
            r#"model_request_duration_seconds_sum{model="fraud",version="v3"} 0.72"#,
            r#"model_request_duration_seconds_count{model="fraud",version="v3"} 2"#,
            r#"model_prediction_value_count{model="fraud",version="v3"} 1"#,
            r#"model_predictions_total{class="cat",model="fraud",version="v3"} 1"#,
            r#"model_prediction_confidence_sum{model="fraud",version="v3"} 0.9"#,
            r#"model_feature_value_sum{feature="age",model="fraud",version="v3"} 35"#,
            r#"model_feature_value_sum{feature="flag",model="fraud",version="v3"} 1"#,
            r#"model_feature_category_total{category="DE",feature="country",model="fraud",version="v3"} 1"#,
            r#"model_feature_missing_total{feature="x",model="fraud",version="v3"} 1"#,
            r#"model_business_counts_total{counter="shown",model="fraud",version="v3"} 15"#,
            r#"model_business_counts_total{counter="clicked",model="fraud",version="v3"} 2"#,
            r#"model_resource_utilization_ratio{model="fraud",resource="cpu",version="v3"} 0.4"#,
            r#"model_exporter_events_received_total{type="inference"} 3"#,
            r#"model_last_event_timestamp_seconds{model="fraud",version="v3"} 1000"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
    }

    #[test]
    fn model_log_and_feedback_events() {
        let (mut a, m) = agg(Limits::default());
        a.apply(batch(&[
            r#"{"type":"model","model":"fraud","version":"v3","trained_at":100,"loaded_at":200}"#,
            r#"{"type":"log","model":"fraud","version":"v3","level":"error","component":"inference"}"#,
            r#"{"type":"log","model":"fraud","version":"v3","level":"error","component":"inference"}"#,
            r#"{"type":"feedback","model":"fraud","id":"a","actual":1}"#,
            r#"{"type":"model","model":"fraud","version":"v4","ts":300}"#,
        ]));
        let t = text(&m);
        for want in [
            r#"model_info{model="fraud",version="v4"} 1"#,
            r#"model_trained_timestamp_seconds{model="fraud",version="v3"} 100"#,
            r#"model_loaded_timestamp_seconds{model="fraud",version="v3"} 200"#,
            // Without loaded_at: the time of receipt, whatever ts says.
            r#"model_loaded_timestamp_seconds{model="fraud",version="v4"} 1000"#,
            r#"model_log_events_total{component="inference",level="error",model="fraud",version="v3"} 2"#,
            r#"model_feedback_total{model="fraud",version=""} 1"#,
            r#"model_exporter_events_received_total{type="model"} 2"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
        assert!(
            !t.contains(r#"model_info{model="fraud",version="v3"}"#),
            "{t}"
        );
    }

    #[test]
    fn label_values_past_a_cap_fold_into_overflow() {
        let (mut a, m) = agg(Limits {
            errors: 2,
            features: 1,
            ..Limits::default()
        });
        a.apply(batch(&[
            r#"{"error":"a"}"#,
            r#"{"error":"b"}"#,
            r#"{"error":"c"}"#,
            r#"{"error":"d"}"#,
            r#"{"error":"a"}"#,
            r#"{"features":{"f1":1,"f2":2,"f3":null}}"#,
        ]));
        let t = text(&m);
        for want in [
            r#"model_request_errors_total{error="a",model="default",version=""} 2"#,
            r#"model_request_errors_total{error="b",model="default",version=""} 1"#,
            r#"model_request_errors_total{error="__other__",model="default",version=""} 2"#,
            r#"model_feature_value_count{feature="f1",model="default",version=""} 1"#,
            r#"model_feature_value_count{feature="__other__",model="default",version=""} 1"#,
            r#"model_feature_missing_total{feature="__other__",model="default",version=""} 1"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
        assert!(!t.contains(r#"error="c""#));
    }

    #[test]
    fn data_quality_against_expectations() {
        let (mut a, m) = agg_with(
            "models:\n  fraud:\n    features:\n      age: {min: 0, max: 120, required: true}\n      country: {categories: [DE, FR]}\n",
        );
        a.apply(batch(&[
            r#"{"model":"fraud","features":{"age":35,"country":"DE"}}"#,
            r#"{"model":"fraud","features":{"age":150,"country":"US"}}"#,
            r#"{"model":"fraud","features":{"age":"old","country":7}}"#,
            r#"{"model":"fraud","features":{"country":null}}"#,
            r#"{"model":"other","features":{"country":"US"}}"#,
        ]));
        let t = text(&m);
        for want in [
            r#"model_feature_invalid_total{feature="age",model="fraud",reason="out_of_range",version=""} 1"#,
            r#"model_feature_invalid_total{feature="age",model="fraud",reason="wrong_type",version=""} 1"#,
            r#"model_feature_invalid_total{feature="country",model="fraud",reason="unseen_category",version=""} 1"#,
            r#"model_feature_invalid_total{feature="country",model="fraud",reason="wrong_type",version=""} 1"#,
            r#"model_feature_missing_total{feature="age",model="fraud",version=""} 1"#,
            r#"model_feature_missing_total{feature="country",model="fraud",version=""} 1"#,
            // out-of-range values are still observed
            r#"model_feature_value_count{feature="age",model="fraud",version=""} 2"#,
            r#"model_feature_category_total{category="US",feature="country",model="other",version=""} 1"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
        assert!(!t.contains(r#"model_feature_invalid_total{feature="country",model="other""#));
    }

    #[test]
    fn values_are_counted_in_the_bins_of_their_configured_reference() {
        use crate::stats::reference::Reference;
        let yaml = |std: u32| {
            format!(
                "models:\n  fraud:\n    features:\n      amount: {{mean: 100, std: {std}}}\n      \
                 country: {{categories: [DE]}}\n      other: {{mean: 0, std: 1}}\n"
            )
        };
        let config = crate::config::load("t.yaml", &yaml(50)).unwrap();
        let m = Metrics::new(&Buckets::default()).unwrap();
        let mut a = Aggregator::new(Options {
            limits: Limits {
                features: 0,
                ..Limits::default()
            },
            source: "t".into(),
            ..Options::new(
                m.clone(),
                Arc::new(ManualClock::new(1000.0)),
                Arc::new(config),
            )
        });
        // The configured features are declared: they pass the cap (of 0).
        // `junk` is past it: it is counted under `__other__`, whose values
        // have no reference, so no bins.
        let values = [100.0, 100.0, 300.0, -1000.0, 1.0];
        let mut lines: Vec<String> = values
            .iter()
            .map(|x| {
                format!(
                    r#"{{"model":"fraud","features":{{"amount":{x},"country":"DE","junk":0}}}}"#
                )
            })
            .collect();
        lines.push(r#"{"model":"fraud","features":{"amount":"x","country":"FR"}}"#.into());
        lines.push(r#"{"model":"fraud","features":{"amount":true}}"#.into());
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        a.apply(batch(&lines));
        let bin = |name: &str, b: usize| {
            let want = format!(
                r#"model_feature_bin_total{{bin="{b}",feature="{name}",model="fraud",version=""}} "#
            );
            let t = text(&m);
            t.lines()
                .find_map(|l| l.strip_prefix(want.as_str())?.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {want}\n{t}"))
        };
        let reference = Reference::normal(100.0, 50.0).unwrap();
        let mut want = vec![0u64; reference.bins()];
        for x in values.into_iter().chain([1.0]) {
            want[reference.bin_number(x).unwrap()] += 1;
        }
        // Every bin is there, empty ones at 0; the string is not binned.
        let got: Vec<u64> = (0..reference.bins()).map(|b| bin("amount", b)).collect();
        assert_eq!(got, want);
        // `categories` are expectations, not a reference: no bins.
        let t = text(&m);
        assert!(
            !t.contains(r#"model_feature_bin_total{bin="0",feature="country""#),
            "{t}"
        );
        assert!(
            !t.contains(r#"model_feature_bin_total{bin="0",feature="__other__""#),
            "{t}"
        );
        assert!(!t.contains(r#"feature="junk""#), "{t}");

        // Another reference for amount: its bins and value histogram start
        // again at its next value, shaped by the new reference.
        a.reload(
            Arc::new(crate::config::load("t.yaml", &yaml(20)).unwrap()),
            "t".into(),
        );
        let t = text(&m);
        for gone in ["model_feature_bin_total{", "model_feature_value_bucket{"] {
            let amount = format!(r#"{gone}bin="0",feature="amount""#);
            assert!(
                !t.contains(&amount) && !t.contains(&format!(r#"{gone}feature="amount""#)),
                "{t}"
            );
        }
        // The amount's other series stay.
        assert!(
            t.contains(r#"model_feature_invalid_total{feature="amount""#),
            "{t}"
        );
        a.apply(batch(&[r#"{"model":"fraud","features":{"amount":100}}"#]));
        let reference = Reference::normal(100.0, 20.0).unwrap();
        let b = reference.bin_number(100.0).unwrap();
        assert_eq!(bin("amount", b), 1);
        let t = text(&m);
        assert!(
            t.contains(
                r#"model_feature_value_bucket{feature="amount",model="fraud",version="",le="40"} 0"#
            ),
            "{t}"
        );
    }

    #[test]
    fn evaluation_publishes_every_family() {
        let (mut a, m) = agg_with(
            "defaults: {min_samples: 1}\nmodels:\n  fraud:\n    features:\n      amount: {mean: 100, std: 50}\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: accuracy < 99%\n      - alert: B\n        expr: accuracy < 1%\n        window: 1h\n",
        );
        a.apply(batch(&[
            r#"{"type":"model","model":"fraud","version":"v1","trained_at":100}"#,
            r#"{"model":"fraud","version":"v1","id":"a","prediction":1,"confidence":0.9,"latency_ms":10,"features":{"amount":120}}"#,
            r#"{"model":"fraud","version":"v1","id":"b","prediction":1,"features":{"amount":80}}"#,
            r#"{"type":"feedback","model":"fraud","id":"a","actual":0}"#,
        ]));
        a.evaluate();
        let t = text(&m);
        for want in [
            r#"model_age_seconds{model="fraud",version="v1"} 900"#,
            r#"model_feedback_pending{model="fraud",version="v1"} 1"#,
            r#"model_window_accuracy{model="fraud",version="v1",window="5m"} 0"#,
            r#"model_feature_drift{feature="amount",method="psi",model="fraud",version="v1",window="5m"}"#,
            r#"model_feature_drift{feature="amount",method="wasserstein",model="fraud",version="v1",window="5m"}"#,
            r#"model_window_request_rate{model="fraud",version="v1",window="5m"}"#,
            r#"model_alerts{alertname="A",alertstate="firing",model="fraud",severity="warning",version="v1"} 1"#,
            r#"model_exporter_feedback_total{result="joined"} 1"#,
            // The reference's edges are the feature histogram's buckets.
            r#"model_feature_value_bucket{feature="amount",model="fraud",version="v1",le="-50"} 0"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
        // The 1 h window is read by a feedback rule only: the feature rings
        // do not span it, so no feature drift is exported for it.
        assert!(t.contains(r#"model_window_accuracy{model="fraud",version="v1",window="1h"} 0"#));
        assert!(!t.contains(r#"model_feature_drift{feature="amount",method="psi",model="fraud",version="v1",window="1h"}"#), "{t}");
    }

    #[test]
    fn runs_of_one_version_apply_as_events_one_by_one() {
        // Runs of the same model and version, broken by other versions and
        // by feedback, log and model events, past the caps on models,
        // versions, features and label length: one batch must leave the
        // same series and windows as the events applied one batch each.
        let limits = Limits {
            models: 2,
            versions: 2,
            features: 2,
            label_length: 8,
            ..Limits::default()
        };
        let lines = [
            r#"{"model":"a","version":"v1","id":"1","prediction":1,"features":{"x":1,"y":2}}"#,
            r#"{"model":"a","version":"v1","id":"2","prediction":0,"features":{"x":3,"z":4}}"#,
            r#"{"model":"a","version":"v1","error":"e","latency_ms":5,"features":{"y":5,"x":6}}"#,
            r#"{"type":"feedback","model":"a","id":"1","actual":1}"#,
            r#"{"model":"a","version":"v1","id":"3","prediction":1}"#,
            r#"{"model":"a","version":"v2","prediction":1,"features":{"x":1}}"#,
            r#"{"model":"a","version":"v3","prediction":1,"features":{"x":2}}"#,
            r#"{"model":"a","version":"v3","prediction":0,"features":{"x":3}}"#,
            r#"{"type":"log","model":"a","version":"v3","level":"error","component":"c"}"#,
            r#"{"model":"a","version":"v3","prediction":1}"#,
            r#"{"model":"b-long-model-name","version":"v1","prediction":"cat-long-class"}"#,
            r#"{"model":"b-long-model-name","version":"v1","prediction":"cat-long-class"}"#,
            r#"{"model":"c","latency_ms":7}"#,
            r#"{"model":"c","latency_ms":8}"#,
            r#"{"type":"model","model":"a","version":"v4","trained_at":100}"#,
            r#"{"model":"a","version":"v4","latency_ms":9}"#,
            r#"{"model":"a","version":"v1","latency_ms":10}"#,
        ];
        let (mut whole, m_whole) = agg(limits);
        whole.apply(batch(&lines));
        let (mut single, m_single) = agg(limits);
        for l in lines {
            single.apply(batch(&[l]));
        }
        whole.evaluate();
        single.evaluate();
        // Everything but the time evaluation took and the process's own.
        let series = |m: &Metrics| {
            text(m)
                .lines()
                .filter(|l| !l.contains("_duration_seconds") && !l.contains("process_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let (w, s) = (series(&m_whole), series(&m_single));
        assert_eq!(w, s);
        let t = w.join("\n");
        for want in [
            r#"model_exporter_series_dropped_total{label="model"} 2"#,
            // v1 and "" (the feedback's) hold the two places: v2 once, v3
            // four times (with its log), v4 twice (with its model event).
            r#"model_exporter_series_dropped_total{label="version"} 7"#,
            r#"model_exporter_series_dropped_total{label="label_length"} 4"#,
            r#"model_window_accuracy{model="a",version="v1",window="5m"} 1"#,
            // Features found by position, in another order, past the cap.
            r#"model_feature_value_count{feature="x",model="a",version="v1"} 3"#,
            r#"model_feature_value_sum{feature="y",model="a",version="v1"} 7"#,
            r#"model_feature_value_count{feature="__other__",model="a",version="v1"} 1"#,
        ] {
            assert!(t.contains(want), "missing {want}\n{t}");
        }
    }

    #[test]
    fn spawned_aggregator_drains_then_stops() {
        let (a, m) = agg(Limits::default());
        let (tx, rx) = mpsc::channel(4);
        let (_ctl, ctl_rx) = mpsc::unbounded_channel();
        let handle = spawn(a, rx, ctl_rx);
        tx.blocking_send(batch(&["{}", "{}"])).unwrap();
        tx.blocking_send(batch(&["{}"])).unwrap();
        drop(tx);
        handle.join().unwrap();
        assert!(
            text(&m).contains(r#"model_requests_total{model="default",outcome="ok",version=""} 3"#)
        );
        assert_eq!(m.batches.get(), 2);
    }
}
