//! The state of every model version, in one tree: model → version → label
//! values, each entry holding its series and its windows side by side
//! ([`Version`]), and the feedback join.
//!
//! The aggregator applies each event here once. Rules read it through
//! [`SignalSource`]; `--metrics.ttl` sweeps it ([`Store::expire`]); snapshots
//! copy its windows ([`Store::capture`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::capped::{Capped, Parts};
use super::declared::Declared;
use super::join::{FeedbackJoiner, JoinStats, Key, key_of};
use super::limits::{Fold, Limits, cut_values};
use super::signals::{WindowSpec, model_references};
use super::version::{Context, Version};
use crate::config::{Config, Expectations, ModelConfig};
use crate::export::metrics::Metrics;
use crate::export::render::StateView;
use crate::ingest::event::{Body, Event, Feedback, Inference, ModelLoaded};
use crate::rules::signal::Signal;
use crate::rules::source::{Reading, SignalSource};
use crate::stats::reference::{ModelReferences, Reference};

/// The versions of one model.
#[derive(Default)]
pub struct Model {
    pub(super) versions: Capped<Version>,
    /// The version last announced with a `model` event.
    pub(super) loaded: Option<String>,
}

impl Parts for Model {
    /// A model holds a place under `--limits.models` while a version of it
    /// holds one under `--limits.versions`.
    fn has_series(&self) -> bool {
        self.versions.any_series()
    }

    fn has_windows(&self) -> bool {
        self.versions.windows_places() > 0
    }
}

/// Every model version's series and windows, and the feedback join. See the
/// [module documentation](self).
pub struct Store {
    pub(super) metrics: Metrics,
    pub(super) limits: Limits,
    /// `--metrics.ttl`, if series expire.
    ttl: Option<Duration>,
    pub(super) config: Arc<Config>,
    default_model: ModelConfig,
    pub(super) spec: WindowSpec,
    pub(super) refs: References,
    /// The data-quality expectations of every configured model.
    expect: PerModel<Expectations>,
    pub(super) models: Capped<Model>,
    pub(super) joiner: FeedbackJoiner,
    /// The models and features rules.yaml declares: never folded.
    pub(super) declared: Declared,
}

/// What every configured model has (its references, its expectations),
/// computed once per load of the rules and found by model name.
#[derive(PartialEq)]
pub struct PerModel<T> {
    /// Per configured model name (`"*"` included).
    by_model: HashMap<String, T>,
    none: T,
}

impl<T: Default> PerModel<T> {
    fn of_config(config: &Config, make: impl Fn(&ModelConfig) -> T) -> PerModel<T> {
        PerModel {
            by_model: config
                .models
                .iter()
                .map(|(name, cfg)| (name.clone(), make(cfg)))
                .collect(),
            none: T::default(),
        }
    }

    /// What `model` has (its own entry, else `"*"`'s).
    pub fn of(&self, model: &str) -> &T {
        self.by_model
            .get(model)
            .or_else(|| self.by_model.get("*"))
            .unwrap_or(&self.none)
    }

    /// Sets what `model` has.
    #[cfg(test)]
    pub fn insert(&mut self, model: &str, value: T) {
        self.by_model.insert(model.to_owned(), value);
    }
}

/// The references of every configured model.
pub type References = PerModel<ModelReferences>;

/// The entries of (model, version), created if need be (a model created
/// declared if `declared` names it), after `f` (which may give the version
/// series or windows) changed the version.
pub(super) fn enter(
    models: &mut Capped<Model>,
    declared: &Declared,
    model: &str,
    version: &str,
    f: impl FnOnce(&mut Version),
) -> (usize, usize) {
    let before = models.len();
    let m = models.entry(model);
    if m == before && declared.model(model) {
        models.declare(m, true);
    }
    let v = models.update(m, |m| {
        let v = m.versions.entry(version);
        m.versions.update(v, f);
        v
    });
    (m, v)
}

impl Store {
    /// A store writing series into `metrics` within `limits`, with windows
    /// shaped for the rules of `config`; with a `ttl`, series that received
    /// no event for that long expire ([`Store::expire`]).
    pub fn new(
        config: Arc<Config>,
        limits: Limits,
        metrics: Metrics,
        ttl: Option<Duration>,
    ) -> Store {
        Store {
            metrics,
            limits,
            ttl,
            spec: WindowSpec::for_config(&config),
            default_model: ModelConfig::default(),
            refs: References::of_config(&config, model_references),
            expect: PerModel::of_config(&config, Expectations::of_model),
            models: Capped::default(),
            joiner: FeedbackJoiner::new(Duration::from_secs(24 * 3600), 100_000),
            declared: Declared::of_config(&config),
            config,
        }
    }

    /// `--metrics.ttl`, if series expire.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The shapes of the rings, from the current rules.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// The expectations of `model` (its own entry, `"*"`, or the defaults).
    pub fn model_cfg(&self, model: &str) -> &ModelConfig {
        self.config.model(model).unwrap_or(&self.default_model)
    }

    /// Bounds of the feedback join: how long a prediction waits for its
    /// label, and how many wait at most. Pending predictions are forgotten.
    pub fn set_feedback(&mut self, ttl: Duration, capacity: usize) {
        self.joiner = FeedbackJoiner::new(ttl, capacity);
    }

    /// Forgets predictions whose label did not come within the ttl.
    pub fn expire_feedback(&mut self, now: f64) -> u64 {
        self.joiner.expire(now)
    }

    /// Cumulative counts of the feedback join.
    pub fn feedback_stats(&self) -> JoinStats {
        self.joiner.stats()
    }

    /// Predictions waiting for their label, per (model, version).
    pub fn feedback_pending(&self) -> Vec<(String, String, u64)> {
        self.joiner
            .pending()
            .map(|(m, v, n)| (m.to_owned(), v.to_owned(), n))
            .collect()
    }

    /// Takes new rules at `now`. When they need windows of another shape
    /// but slices of the same width (another longest window, other
    /// references), the windows are carried over into the new shape, as a
    /// snapshot is restored (drift bins only while their reference is
    /// unchanged); with another slice width every window starts afresh.
    /// Series are kept either way.
    pub fn set_config(&mut self, config: Arc<Config>, now: f64) {
        let spec = WindowSpec::for_config(&config);
        let refs = References::of_config(&config, model_references);
        if refs != self.refs {
            let (metrics, before) = (&self.metrics, &self.refs);
            self.models.retain(|model, m| {
                let pair = (before.of(model), refs.of(model));
                m.versions.retain(|version, v| {
                    v.forget_reference_series(metrics, [model, version], pair)
                });
            });
        }
        let reshape = spec != self.spec || refs != self.refs;
        // Taken with the old references, so that bins against a reference
        // that changed are left out.
        let carried = (reshape && spec.slice == self.spec.slice).then(|| {
            let mut state = self.capture().to_state();
            state.feedback = Default::default();
            state
        });
        self.expect = PerModel::of_config(&config, Expectations::of_model);
        // Names declared now are admitted from the next event on (and by
        // the windows carried below); names no longer declared keep their
        // places, counted under the caps again.
        let declared = Declared::of_config(&config);
        self.models.redeclare(|m| declared.model(m));
        self.models.retain(|model, m| {
            let features = declared.features(model);
            m.versions.retain(|_, v| {
                v.features.redeclare(|f| features.contains(f));
            });
        });
        self.declared = declared;
        self.config = config;
        if reshape {
            self.spec = spec;
            self.refs = refs;
            self.models
                .retain(|_, m| m.versions.retain(|_, v| v.drop_windows()));
        }
        if let Some(state) = carried {
            let mut report = super::snapshot::RestoreReport::default();
            let (models, versions) = (self.limits.models, self.limits.versions);
            self.restore(state, models, versions, now, &mut report);
            if !report.dropped.is_empty() {
                tracing::info!(
                    "windows left out when reshaped for the new rules: {}",
                    report.dropped.join("; ")
                );
            }
        }
    }

    /// Applies the caps on models, versions and label length to an event's
    /// names (features, classes and the like are capped where they are
    /// counted). Returns what the caps on models and versions did. A
    /// declared model is never folded (its versions are capped).
    pub fn admit(&self, event: &mut Event) -> Fold {
        let limits = &self.limits;
        cut_values(&self.metrics, limits, event);
        let fold = match self.models.get(&event.model).filter(|m| m.has_series()) {
            None if self.models.series_places() >= limits.models
                && !self.declared.model(&event.model) =>
            {
                Fold::Model
            }
            Some(m)
                if !m
                    .versions
                    .get(&event.version)
                    .is_some_and(Version::has_series)
                    && m.versions.series_places() >= limits.versions =>
            {
                Fold::Version
            }
            _ => Fold::Keep,
        };
        fold.apply(&self.metrics, event);
        fold
    }

    /// Applies one (admitted) event received at `now`.
    pub fn record(&mut self, event: &Event, now: f64) {
        let mv = [event.model.as_str(), event.version.as_str()];
        let f = match &event.body {
            Body::Inference(i) => {
                self.run(mv[0], mv[1], now).record(mv, i, now);
                return;
            }
            Body::Feedback(f) => Some(f),
            Body::Log(_) | Body::Model(_) => None,
            // Client reports are counted by the aggregator, never stored.
            Body::Client(_) => return,
        };
        if let Some(f) = f {
            self.record_feedback(mv[0], f, now);
        }
        let spec = &self.spec;
        let mut first = false;
        let (m, v) = enter(&mut self.models, &self.declared, mv[0], mv[1], |v| {
            v.stamp(now);
            // A label is recorded under its prediction's version (above).
            if f.is_none() {
                first = v.is_new();
                v.touch(spec, now);
            }
        });
        // A version announced, or sending its first event, supersedes the
        // model's others.
        if first || matches!(event.body, Body::Model(_)) {
            retire_others(&self.metrics, self.models.at_mut(m).1, mv[0], v);
        }
        let cx = Context {
            metrics: &self.metrics,
            limits: &self.limits,
            cfg: self.config.model(mv[0]).unwrap_or(&self.default_model),
            refs: self.refs.of(mv[0]),
            expect: self.expect.of(mv[0]),
            spec,
            declared: self.declared.features(mv[0]),
        };
        let model = self.models.at_mut(m).1;
        let version = model.versions.at_mut(v).1;
        version.set_last_event(cx.metrics, mv, now);
        match &event.body {
            Body::Feedback(_) => version.count_feedback(cx.metrics, mv),
            Body::Log(l) => version.record_log(&cx, mv, l, now),
            Body::Model(loaded) => {
                if let Some(t) = loaded.trained_at {
                    version.windows_mut(spec).trained_at = Some(t);
                }
                model_loaded(cx.metrics, &mut model.loaded, mv, loaded, now);
            }
            Body::Inference(_) | Body::Client(_) => unreachable!("applied above"),
        }
    }

    /// The version (model, version), created if need be, stamped and
    /// touched at `now`, with what applying an inference to it needs:
    /// resolved once for a run of inference events of that version instead
    /// of once an event.
    pub fn run(&mut self, model: &str, version: &str, now: f64) -> Run<'_> {
        let spec = &self.spec;
        let mut first = false;
        let (m, v) = enter(&mut self.models, &self.declared, model, version, |v| {
            first = v.is_new();
            v.stamp(now);
            v.touch(spec, now);
        });
        if first {
            retire_others(&self.metrics, self.models.at_mut(m).1, model, v);
        }
        Run {
            version: self.models.at_mut(m).1.versions.at_mut(v).1,
            joiner: &mut self.joiner,
            cx: Context {
                metrics: &self.metrics,
                limits: &self.limits,
                cfg: self.config.model(model).unwrap_or(&self.default_model),
                refs: self.refs.of(model),
                expect: self.expect.of(model),
                spec,
                declared: self.declared.features(model),
            },
        }
    }

    /// Joins a label to its prediction and records the pair under the
    /// prediction's version (not the feedback event's own, usually empty).
    fn record_feedback(&mut self, model: &str, f: &Feedback, now: f64) {
        let outcome = self.joiner.on_feedback(
            model,
            f.id.as_deref(),
            &f.actual,
            f.prediction.as_ref(),
            now,
        );
        if let Some((version, prediction, actual)) = outcome.pair() {
            let cfg = self.config.model(model).unwrap_or(&self.default_model);
            let spec = &self.spec;
            enter(&mut self.models, &self.declared, model, version, |v| {
                v.windows_mut(spec)
                    .record_label(prediction, actual, cfg, now)
            });
        }
    }

    /// The version (model, version) if it has windows.
    pub fn get(&self, model: &str, version: &str) -> Option<&Version> {
        self.models
            .get(model)?
            .versions
            .get(version)
            .filter(|v| v.windows.is_some())
    }

    /// Whether no model version holds anything.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Retires every version of `model` but the one at `current`, which
/// superseded them.
fn retire_others(metrics: &Metrics, model: &mut Model, name: &str, current: usize) {
    for i in 0..model.versions.iter().count() {
        if i != current {
            let (version, v) = model.versions.at_mut(i);
            v.retire(metrics, [name, version.as_str()]);
        }
    }
}

/// Sets the gauges of a `model` event of `mv` received at `ts`; `model_info`
/// shows only the version loaded last (`loaded`).
fn model_loaded(
    metrics: &Metrics,
    loaded: &mut Option<String>,
    mv: [&str; 2],
    m: &ModelLoaded,
    ts: f64,
) {
    let [model, version] = mv;
    if let Some(old) = loaded.as_deref()
        && old != version
    {
        let _ = metrics.info.remove_label_values(&[model, old]);
    }
    *loaded = Some(version.to_owned());
    metrics.info.with_label_values(&mv).set(1);
    if let Some(t) = m.trained_at {
        metrics.trained.with_label_values(&mv).set(t);
    }
    metrics
        .loaded
        .with_label_values(&mv)
        .set(m.loaded_at.unwrap_or(ts));
}

/// One model version resolved for a run of its inference events
/// ([`Store::run`]); recording through it is the same as [`Store::record`]
/// without finding the version again.
pub struct Run<'s> {
    version: &'s mut Version,
    joiner: &'s mut FeedbackJoiner,
    cx: Context<'s>,
}

impl Run<'_> {
    /// Starts loading what [`record_keyed`](Self::record_keyed) of
    /// inference `i` of `model` will look at in memory larger than the
    /// caches (the label join's index); a hint for an event a few ahead of
    /// the one recorded. Returns the label join's key of the inference
    /// (None when it has no id or no prediction, and so is not
    /// remembered), to be handed to `record_keyed` so that the id is hashed
    /// once. `model` must be the name the event is recorded under (after
    /// cutting and folding).
    pub fn prefetch_key(&self, model: &str, i: &Inference) -> Option<Key> {
        let (Some(id), Some(_)) = (&i.id, &i.prediction) else {
            return None;
        };
        let key = key_of(model, id);
        self.joiner.prefetch_key(key);
        Some(key)
    }

    /// Applies inference `i` of the version, received at `now`; `mv` are
    /// the event's model and version, those the run was made for.
    pub fn record(&mut self, mv: [&str; 2], i: &Inference, now: f64) {
        let key = match (&i.id, &i.prediction) {
            (Some(id), Some(_)) => Some(key_of(mv[0], id)),
            _ => None,
        };
        self.record_keyed(mv, i, key, now);
    }

    /// [`record`](Self::record) with the label join's key made by
    /// [`prefetch_key`](Self::prefetch_key) for the same event and model.
    pub fn record_keyed(&mut self, mv: [&str; 2], i: &Inference, key: Option<Key>, now: f64) {
        let v = &mut *self.version;
        v.touch(self.cx.spec, now);
        v.set_last_event(self.cx.metrics, mv, now);
        v.record_inference(&self.cx, mv, i, now);
        if let (Some(key), Some(p)) = (key, &i.prediction) {
            debug_assert_eq!(Some(key), i.id.as_deref().map(|id| key_of(mv[0], id)));
            self.joiner.on_inference_keyed(key, mv[0], mv[1], p, now);
        }
    }
}

impl SignalSource for Store {
    fn series(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .models
            .iter()
            .flat_map(|(m, model)| {
                model
                    .versions
                    .iter()
                    .filter(|(_, v)| v.windows.is_some())
                    .map(move |(v, _)| (m.to_string(), v.to_string()))
            })
            .collect();
        v.sort();
        v
    }

    fn features(&self, model: &str, version: &str) -> Vec<String> {
        self.get(model, version)
            .map(Version::feature_names)
            .unwrap_or_default()
    }

    fn read_capped(
        &self,
        model: &str,
        version: &str,
        signal: &Signal,
        feature: Option<&str>,
        window: (Duration, Option<u64>),
        now: f64,
    ) -> Reading {
        match self.get(model, version) {
            Some(v) => v.read(
                signal,
                feature,
                window,
                now,
                self.model_cfg(model),
                self.refs.of(model),
            ),
            None => Reading::NONE,
        }
    }
}

impl StateView for Store {
    /// Always without a ttl; with one, while the version's series have not
    /// expired.
    fn live(&self, model: &str, version: &str) -> bool {
        self.ttl.is_none()
            || self
                .models
                .get(model)
                .and_then(|m| m.versions.get(version)?.series.as_ref())
                .is_some_and(|s| !s.expired)
    }

    fn span(&self) -> Duration {
        self.spec.span
    }

    fn feature_span(&self) -> Duration {
        self.spec.feature_span
    }

    fn references(&self, model: &str) -> &ModelReferences {
        self.refs.of(model)
    }

    fn feature_reference(&self, model: &str, version: &str, feature: &str) -> Option<&Reference> {
        self.get(model, version)?
            .reference(self.refs.of(model), feature)
    }

    fn feature_bins(
        &self,
        model: &str,
        version: &str,
        feature: &str,
        window: (Duration, Option<u64>),
        now: f64,
    ) -> Option<(&Reference, Vec<u64>)> {
        self.get(model, version)?
            .feature_bins(self.refs.of(model), feature, window, now)
    }

    fn feedback_pending(&self) -> Vec<(String, String, u64)> {
        Store::feedback_pending(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::history::{History, Series};
    use crate::export::metrics::Buckets;
    use crate::ingest::parse::parse_event;

    #[test]
    fn points_at_a_fixed_resolution_within_retention() {
        let mut store = Store::new(
            Arc::new(Config::default_rules()),
            Limits {
                features: 10,
                ..Limits::default()
            },
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        );
        let mut h = History::new(Duration::from_secs(10), Duration::from_secs(60));
        let window = Duration::from_secs(300);
        let mut t = 1000.0;
        while t < 1200.0 {
            for line in [
                r#"{"model":"reco","latency_ms":30,"counters":{"shown":10,"clicked":2}}"#,
                r#"{"model":"reco","latency_ms":30,"error":"x","counters":{"shown":10,"clicked":1}}"#,
            ] {
                store.record(&parse_event(line.as_bytes()).unwrap(), t);
            }
            h.maybe_record(&store, window, t);
            t += 1.0;
        }
        let s: Vec<&Series> = h.series().collect();
        assert_eq!(s.len(), 1);
        // 6 points of 10 s kept for a minute of retention.
        assert_eq!(s[0].ts.len(), 6);
        assert_eq!(s[0].ts.back(), Some(&1190.0));
        let last = s[0].points.back().unwrap();
        assert_eq!(last.error_rate, Some(0.5));
        assert!((last.click_through_rate.unwrap() - 0.15).abs() < 1e-12);
        assert!((last.p99.unwrap() - 0.03).abs() < 0.03 * 0.01);
        // Not due again within the same 10 s.
        assert!(!h.maybe_record(&store, window, 1195.0));
    }
}
