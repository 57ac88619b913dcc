//! Windowed signals of one model version: what the alert rules read.
//!
//! Every (model, version) keeps rings of per-interval slices
//! ([`SlidingWindow`]) for its requests, latencies, predictions, confidence,
//! features, business counters, log levels and resources. A rule's signal
//! over a window is the merge of the slices covering it.
//!
//! Memory per model version, with slices of width `w` and a span `S` (the
//! longest rule window): `S/w + 1` slices of each ring. Counts take 8 bytes
//! a counter a slice, moments 40; the latency sketch ring, which is the large
//! one (about 5 KiB a slice for latencies between 1 ms and 10 s), only spans
//! the longest window of a latency rule, and the per-feature rings only the
//! longest window of a rule reading features. With the built-in rules
//! (w = 10 s, S = 1 h, latency span 5 min, feature span 15 min) a model
//! version takes about 0.3 MiB plus about 6 KiB a numeric feature (twice
//! that with a reference to bin against); docs/performance.md has the
//! measured figures.

use std::collections::HashMap;
use std::time::Duration;

use super::hash::{HashMap as FastMap, IndexMap, at_position, remember_position};
use super::join::{FeedbackJoiner, FeedbackOutcome, JoinStats};
use super::quality::QualitySlice;
use super::validity::{Validity, validate};
use crate::baseline::format::FeatureBaseline;
use crate::config::{Config, FeatureSpec, ModelConfig};
use crate::ingest::event::{FeatureValue, Inference, LogLevel, Name, Outcome};
use crate::rules::expr::{DriftTarget, FeatureSel, FeatureStat, Resource, Signal};
use crate::stats::drift::BinCounts;
use crate::stats::reference::Reference;
use crate::stats::sketch::Sketch;
use crate::stats::window::{Counts, Moments, Slice, SlidingWindow};
use std::sync::Arc;

mod persist;
pub use persist::{
    FeatureState, ModelWindowsState, ReferenceState, StoreCapture, StoreState, fingerprint,
};

/// Indices into the per-model [`Counts`] slice.
mod idx {
    pub const REQUESTS: usize = 0;
    pub const ERRORS: usize = 1;
    pub const NUMERIC_PREDICTIONS: usize = 2;
    pub const POSITIVE: usize = 3;
    pub const CONFIDENCES: usize = 4;
    pub const LOW_CONFIDENCE: usize = 5;
    pub const CLASS_PREDICTIONS: usize = 6;
    pub const N: usize = 7;
}

/// Indices into the per-feature [`Counts`] slice.
mod fidx {
    pub const SEEN: usize = 0;
    pub const MISSING: usize = 1;
    pub const INVALID: usize = 2;
    pub const N: usize = 3;
}

/// Shapes of the rings: slice width and spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    /// Width of one slice.
    pub slice: Duration,
    /// Longest window any rule reads.
    pub span: Duration,
    /// Longest window of a latency rule (the sketch ring is sized by it).
    pub latency_span: Duration,
    /// Longest window of a rule reading features (their statistics, quality
    /// or drift): the span of the per-feature rings, which are the bulk of a
    /// model version's memory when it has many features.
    pub feature_span: Duration,
}

impl WindowSpec {
    /// The spec the rules of `config` need: slices of a tenth of the shortest
    /// window (at most 10 s, at least 100 ms), spans of the longest windows.
    pub fn for_config(config: &Config) -> WindowSpec {
        let rules = config.groups.iter().flat_map(|g| &g.rules);
        let default = config.defaults.window;
        let shortest = rules
            .clone()
            .map(|r| r.window)
            .min()
            .unwrap_or(default)
            .min(default);
        let span = rules
            .clone()
            .map(|r| r.window)
            .max()
            .unwrap_or(default)
            .max(default);
        let feature_span = rules
            .clone()
            .filter(|r| {
                matches!(
                    r.expr.signal,
                    Signal::FeatureStat { .. }
                        | Signal::Drift {
                            target: DriftTarget::Feature(_),
                            ..
                        }
                )
            })
            .map(|r| r.window)
            .max()
            .unwrap_or(default)
            .max(default);
        let latency_span = rules
            .filter(|r| {
                matches!(
                    r.expr.signal,
                    Signal::Quantile { .. } | Signal::LatencyMean | Signal::LatencyMax
                )
            })
            .map(|r| r.window)
            .max()
            .unwrap_or(default)
            .max(default);
        let slice = (shortest / 10).clamp(Duration::from_millis(100), Duration::from_secs(10));
        WindowSpec {
            slice,
            span,
            latency_span,
            feature_span,
        }
    }

    fn ring<T: Slice>(&self) -> SlidingWindow<T> {
        SlidingWindow::new(self.slice, self.span)
    }

    fn feature_ring<T: Slice>(&self) -> SlidingWindow<T> {
        SlidingWindow::new(self.slice, self.feature_span)
    }
}

/// A signal's value over a window, and how many samples it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The value; `None` when there is nothing to compute it from.
    pub value: Option<f64>,
    /// Samples behind it, compared with the rule's `min_samples`.
    /// [`u64::MAX`] for signals that need no samples (rates, ages).
    pub samples: u64,
}

impl Reading {
    /// No data: no verdict.
    pub const NONE: Reading = Reading {
        value: None,
        samples: 0,
    };

    fn always(value: Option<f64>) -> Reading {
        Reading {
            value,
            samples: u64::MAX,
        }
    }

    fn of(value: Option<f64>, samples: u64) -> Reading {
        Reading { value, samples }
    }
}

#[derive(Clone)]
struct FeatureWindows {
    values: SlidingWindow<Moments>,
    counts: SlidingWindow<Counts<{ fidx::N }>>,
    /// Live bins against the feature's reference, once it has one.
    bins: Option<SlidingWindow<BinCounts>>,
    /// Values collected to learn a reference from (`learn_reference`).
    learning: Vec<f64>,
    /// The reference learned from them.
    learned: Option<Reference>,
}

/// The references of one model: per feature, and of the prediction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReferences {
    /// Per feature.
    pub features: HashMap<String, Reference>,
    /// Of numeric or class predictions.
    pub prediction: Option<Reference>,
}

impl ModelReferences {
    /// The references rules.yaml gives a model: its baseline file, then
    /// inline `{mean, std}` of features the baseline lacks, taken as normal
    /// distributions.
    pub fn from_config(cfg: &ModelConfig) -> ModelReferences {
        let mut r = ModelReferences::default();
        if let Some(b) = &cfg.reference {
            for (name, f) in &b.features {
                if let Some(reference) = from_baseline(f) {
                    r.features.insert(name.clone(), reference);
                }
            }
            r.prediction = b.prediction.as_ref().and_then(from_baseline);
        }
        for (name, spec) in &cfg.features {
            if r.features.contains_key(name) {
                continue;
            }
            if let (Some(mean), Some(std)) = (spec.mean, spec.std)
                && let Some(n) = Reference::normal(mean, std)
            {
                r.features.insert(name.clone(), n);
            }
        }
        r
    }
}

/// The windows of one model version.
#[derive(Clone)]
pub struct ModelWindows {
    spec: WindowSpec,
    counts: SlidingWindow<Counts<{ idx::N }>>,
    latency: SlidingWindow<Sketch>,
    prediction: SlidingWindow<Moments>,
    confidence: SlidingWindow<Moments>,
    classes: FastMap<String, SlidingWindow<u64>>,
    features: IndexMap<Name, FeatureWindows>,
    /// For each position of the last inference's features, where that
    /// feature is in `features`: the next event, which usually sends the
    /// same features in the same order, compares names instead of hashing.
    feature_order: Vec<usize>,
    counters: FastMap<String, SlidingWindow<Moments>>,
    logs: [SlidingWindow<u64>; 5],
    resources: [SlidingWindow<Moments>; 2],
    quality: SlidingWindow<QualitySlice>,
    refs: Arc<ModelReferences>,
    prediction_bins: SlidingWindow<BinCounts>,
    last_event: f64,
    /// The last time anything was recorded (an event or a joined label).
    last_write: f64,
    trained_at: Option<f64>,
}

/// The per-feature count index and numeric value of a quality verdict.
fn classify(value: &FeatureValue, spec: Option<&FeatureSpec>) -> (usize, Option<f64>) {
    match validate(value, spec) {
        Validity::Valid(x) => (fidx::SEEN, x),
        Validity::Missing => (fidx::MISSING, None),
        Validity::Invalid(_, x) => (fidx::INVALID, x),
    }
}

/// A reference from a baseline file's feature.
fn from_baseline(f: &FeatureBaseline) -> Option<Reference> {
    match f {
        FeatureBaseline::Numeric(n) => {
            Reference::numeric(n.edges.clone(), n.proportions.clone(), n.mean, n.std)
        }
        FeatureBaseline::Categorical(c) => {
            Reference::categorical(c.categories.iter().map(|(k, p)| (k.as_str(), *p)), c.other)
        }
    }
}

impl FeatureWindows {
    fn new(spec: &WindowSpec) -> Self {
        FeatureWindows {
            values: spec.feature_ring(),
            counts: spec.feature_ring(),
            bins: None,
            learning: Vec::new(),
            learned: None,
        }
    }

    /// Collects a value towards a learned reference of `n` values.
    fn learn(&mut self, x: f64, n: usize) {
        if self.learned.is_some() {
            return;
        }
        self.learning.push(x);
        if self.learning.len() >= n {
            let mut values = std::mem::take(&mut self.learning);
            self.learned = Reference::learn(&mut values, 10);
        }
    }
}

impl ModelWindows {
    /// Empty windows shaped by `spec`.
    pub fn new(spec: WindowSpec, refs: Arc<ModelReferences>) -> Self {
        ModelWindows {
            refs,
            prediction_bins: spec.ring(),
            spec,
            counts: spec.ring(),
            latency: SlidingWindow::new(spec.slice, spec.latency_span),
            prediction: spec.ring(),
            confidence: spec.ring(),
            classes: FastMap::default(),
            features: IndexMap::default(),
            feature_order: Vec::new(),
            counters: FastMap::default(),
            logs: std::array::from_fn(|_| spec.ring()),
            resources: std::array::from_fn(|_| spec.ring()),
            quality: spec.ring(),
            last_event: f64::NEG_INFINITY,
            last_write: f64::NEG_INFINITY,
            trained_at: None,
        }
    }

    /// Notes that the model sent something at `now`.
    pub fn touch(&mut self, now: f64) {
        self.last_event = self.last_event.max(now);
        self.last_write = self.last_write.max(now);
    }

    /// Records when this version was trained.
    pub fn set_trained_at(&mut self, t: f64) {
        self.trained_at = Some(t);
    }

    /// Records a prediction joined with its true outcome.
    pub fn record_label(
        &mut self,
        prediction: &Outcome,
        actual: &Outcome,
        cfg: &ModelConfig,
        now: f64,
    ) {
        self.last_write = self.last_write.max(now);
        self.quality
            .current_mut(now)
            .record(prediction, actual, cfg.positive_threshold);
    }

    /// Records a log event.
    pub fn record_log(&mut self, level: LogLevel, now: f64) {
        *self.logs[level as usize].current_mut(now) += 1;
    }

    /// Records an inference. `cap` bounds distinct feature, class and counter
    /// names (past it they are not windowed; the exported counters still fold
    /// them into the overflow label).
    pub fn record(&mut self, i: &Inference, cfg: &ModelConfig, cap: usize, now: f64) {
        let c = self.counts.current_mut(now);
        c.incr(idx::REQUESTS);
        if !i.ok {
            c.incr(idx::ERRORS);
        }
        match &i.prediction {
            Some(Outcome::Number(p)) => {
                c.incr(idx::NUMERIC_PREDICTIONS);
                if *p >= cfg.positive_threshold {
                    c.incr(idx::POSITIVE);
                }
            }
            Some(Outcome::Class(_)) => c.incr(idx::CLASS_PREDICTIONS),
            None => {}
        }
        if let Some(conf) = i.confidence {
            c.incr(idx::CONFIDENCES);
            if conf < cfg.low_confidence_threshold {
                c.incr(idx::LOW_CONFIDENCE);
            }
        }
        if let Some(l) = i.latency_seconds {
            self.latency.current_mut(now).insert(l);
        }
        match &i.prediction {
            Some(Outcome::Number(p)) => {
                self.prediction.current_mut(now).insert(*p);
            }
            Some(Outcome::Class(class)) => {
                if let Some(w) = entry(&mut self.classes, class, cap, |s| s.ring(), &self.spec) {
                    *w.current_mut(now) += 1;
                }
            }
            None => {}
        }
        if let Some(conf) = i.confidence {
            self.confidence.current_mut(now).insert(conf);
        }
        for (p, (name, value)) in i.features.iter().enumerate() {
            let spec = cfg.features.get(name.as_str());
            let (kind, numeric) = classify(value, spec);
            let slot = match at_position(&self.features, self.feature_order.get(p), name) {
                Some(slot) => slot,
                None => {
                    let slot = feature_slot(&mut self.features, name, cap, &self.spec);
                    remember_position(&mut self.feature_order, p, slot.unwrap_or(usize::MAX));
                    let Some(slot) = slot else { continue };
                    slot
                }
            };
            let f = &mut self.features[slot];
            f.counts.current_mut(now).incr(kind);
            if let Some(x) = numeric {
                f.values.current_mut(now).insert(x);
            }
            let reference = self.refs.features.get(name.as_str()).or(f.learned.as_ref());
            let bin = match (reference, value) {
                (Some(r), FeatureValue::Category(c)) => r.bin_category(c),
                (Some(r), _) => numeric.and_then(|x| r.bin_number(x)),
                (None, _) => {
                    if let (Some(n), Some(x)) = (cfg.learn_reference, numeric) {
                        f.learn(x, n);
                    }
                    None
                }
            };
            if let Some(b) = bin {
                let spec = self.spec;
                f.bins
                    .get_or_insert_with(|| spec.feature_ring())
                    .current_mut(now)
                    .add(b, 1);
            }
        }
        for (name, spec) in &cfg.features {
            if spec.required
                && !i.features.iter().any(|(n, _)| n == name)
                && let Some(slot) = feature_slot(&mut self.features, name, cap, &self.spec)
            {
                self.features[slot]
                    .counts
                    .current_mut(now)
                    .incr(fidx::MISSING);
            }
        }
        if let (Some(r), Some(p)) = (&self.refs.prediction, &i.prediction) {
            let bin = match p {
                Outcome::Number(x) => r.bin_number(*x),
                Outcome::Class(c) => r.bin_category(c),
            };
            if let Some(b) = bin {
                self.prediction_bins.current_mut(now).add(b, 1);
            }
        }
        for (name, v) in &i.counters {
            if let Some(w) = entry(&mut self.counters, name, cap, |s| s.ring(), &self.spec) {
                w.current_mut(now).insert(*v);
            }
        }
        if let Some(x) = i.cpu_ratio {
            self.resources[0].current_mut(now).insert(x);
        }
        if let Some(x) = i.memory_ratio {
            self.resources[1].current_mut(now).insert(x);
        }
    }

    /// The reference of a feature: configured, or learned.
    pub fn reference(&self, feature: &str) -> Option<&Reference> {
        self.refs
            .features
            .get(feature)
            .or_else(|| self.features.get(feature)?.learned.as_ref())
    }

    /// A feature's live bin counts over `window`, with its reference.
    pub fn feature_bins(
        &self,
        feature: &str,
        window: Duration,
        now: f64,
    ) -> Option<(&Reference, Vec<u64>)> {
        let reference = self.reference(feature)?;
        let mut live = BinCounts::with_bins(reference.bins());
        if let Some(bins) = self.features.get(feature).and_then(|f| f.bins.as_ref()) {
            bins.merged(now, window, &mut live);
        }
        Some((reference, live.counts().to_vec()))
    }

    /// Names of the features seen, sorted.
    pub fn feature_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.features.keys().map(String::from).collect();
        v.sort();
        v
    }

    /// The value of `signal` over `window` ending at `now`. `feature` names
    /// the feature for per-feature signals whose selector is `feature.*`.
    pub fn read(
        &self,
        signal: &Signal,
        feature: Option<&str>,
        window: Duration,
        now: f64,
        cfg: &ModelConfig,
    ) -> Reading {
        let counts = || {
            let mut c = Counts::<{ idx::N }>::default();
            let secs = self.counts.merged(now, window, &mut c);
            (c, secs)
        };
        let moments = |w: &SlidingWindow<Moments>| {
            let mut m = Moments::new();
            w.merged(now, window, &mut m);
            m
        };
        let ratio =
            |c: &Counts<{ idx::N }>, a: usize, b: usize| Reading::of(c.ratio(a, b), c.get(b));
        let per_second = |n: f64, secs: f64| (secs > 0.0).then(|| n / secs);
        match signal {
            Signal::RequestRate => {
                let (c, secs) = counts();
                Reading::always(per_second(c.get(idx::REQUESTS) as f64, secs).or(Some(0.0)))
            }
            Signal::ErrorRate => ratio(&counts().0, idx::ERRORS, idx::REQUESTS),
            Signal::PositiveRate => ratio(&counts().0, idx::POSITIVE, idx::NUMERIC_PREDICTIONS),
            Signal::LowConfidenceRate => ratio(&counts().0, idx::LOW_CONFIDENCE, idx::CONFIDENCES),
            Signal::Quantile { q } => {
                let s = self.latency_sketch(now, window);
                Reading::of(s.quantile(*q), s.count())
            }
            Signal::LatencyMean => {
                let s = self.latency_sketch(now, window);
                Reading::of(s.mean(), s.count())
            }
            Signal::LatencyMax => {
                let s = self.latency_sketch(now, window);
                Reading::of(s.max(), s.count())
            }
            Signal::TimeSinceLastEvent => {
                Reading::always(self.last_event.is_finite().then_some(now - self.last_event))
            }
            Signal::PredictionMean => {
                let m = moments(&self.prediction);
                Reading::of(m.mean(), m.count())
            }
            Signal::ConfidenceMean => {
                let m = moments(&self.confidence);
                Reading::of(m.mean(), m.count())
            }
            Signal::ClassRate { class } => {
                let (c, _) = counts();
                let total = c.get(idx::CLASS_PREDICTIONS);
                let mut n = 0u64;
                if let Some(w) = self.classes.get(class) {
                    w.merged(now, window, &mut n);
                }
                Reading::of((total > 0).then(|| n as f64 / total as f64), total)
            }
            Signal::FeatureStat { stat, feature: sel } => {
                let name = match sel {
                    FeatureSel::Named(n) => n.as_str(),
                    FeatureSel::All => match feature {
                        Some(f) => f,
                        None => return Reading::NONE,
                    },
                };
                self.read_feature(*stat, name, window, now, cfg)
            }
            Signal::ModelAge => Reading::always(self.trained_at.map(|t| now - t)),
            Signal::CounterRatio {
                numerator,
                denominator,
            } => {
                let num = self
                    .counters
                    .get(numerator)
                    .map(&moments)
                    .unwrap_or_default();
                let den = self
                    .counters
                    .get(denominator)
                    .map(&moments)
                    .unwrap_or_default();
                let value = (den.sum() > 0.0).then(|| num.sum() / den.sum());
                Reading::of(value, den.count())
            }
            Signal::CounterRate { counter } => match self.counters.get(counter) {
                Some(w) => {
                    let mut m = Moments::new();
                    let secs = w.merged(now, window, &mut m);
                    Reading::always(per_second(m.sum(), secs).or(Some(0.0)))
                }
                None => Reading::always(Some(0.0)),
            },
            Signal::LogRate { level } => {
                let mut n = 0u64;
                let secs = self.logs[*level as usize].merged(now, window, &mut n);
                // Before any log event, the counts' span tells the time watched.
                let secs = if secs > 0.0 { secs } else { counts().1 };
                Reading::always(per_second(n as f64, secs).or(Some(0.0)))
            }
            Signal::ResourceMean(r) => {
                let i = match r {
                    Resource::Cpu => 0,
                    Resource::Memory => 1,
                };
                let m = moments(&self.resources[i]);
                Reading::of(m.mean(), m.count())
            }
            Signal::Feedback(metric) => {
                let mut q = QualitySlice::default();
                self.quality.merged(now, window, &mut q);
                Reading::of(q.value(*metric), q.samples_for(*metric))
            }
            Signal::Drift { method, target } => {
                let (reference, bins) = match target {
                    DriftTarget::Prediction => {
                        (self.refs.prediction.as_ref(), Some(&self.prediction_bins))
                    }
                    DriftTarget::Feature(sel) => {
                        let name = match (sel, feature) {
                            (FeatureSel::Named(n), _) => n.as_str(),
                            (FeatureSel::All, Some(f)) => f,
                            (FeatureSel::All, None) => return Reading::NONE,
                        };
                        let f = self.features.get(name);
                        (
                            self.refs
                                .features
                                .get(name)
                                .or(f.and_then(|f| f.learned.as_ref())),
                            f.and_then(|f| f.bins.as_ref()),
                        )
                    }
                };
                // No reference (yet): no verdict.
                let (Some(r), Some(bins)) = (reference, bins) else {
                    return Reading::NONE;
                };
                let mut live = BinCounts::with_bins(r.bins());
                bins.merged(now, window, &mut live);
                Reading::of(r.drift(*method, live.counts()), live.total())
            }
        }
    }

    fn latency_sketch(&self, now: f64, window: Duration) -> Sketch {
        let mut s = Sketch::new();
        self.latency.merged(now, window, &mut s);
        s
    }

    fn read_feature(
        &self,
        stat: FeatureStat,
        name: &str,
        window: Duration,
        now: f64,
        cfg: &ModelConfig,
    ) -> Reading {
        let Some(f) = self.features.get(name) else {
            return Reading::NONE;
        };
        let mut c = Counts::<{ fidx::N }>::default();
        f.counts.merged(now, window, &mut c);
        let total = c.get(fidx::SEEN) + c.get(fidx::MISSING) + c.get(fidx::INVALID);
        let mut m = Moments::new();
        f.values.merged(now, window, &mut m);
        let rate = |i: usize| (total > 0).then(|| c.get(i) as f64 / total as f64);
        match stat {
            FeatureStat::Mean => Reading::of(m.mean(), m.count()),
            FeatureStat::Stddev => Reading::of(m.stddev(), m.count()),
            FeatureStat::Zscore => {
                let spec = cfg.features.get(name);
                let reference = spec
                    .and_then(|s| Some((s.mean?, s.std?)))
                    .or_else(|| self.refs.features.get(name).and_then(Reference::moments))
                    .or_else(|| f.learned.as_ref().and_then(Reference::moments));
                let value = match (m.mean(), reference) {
                    (Some(mean), Some((rm, rs))) if rs > 0.0 => Some((mean - rm) / rs),
                    _ => None,
                };
                Reading::of(value, m.count())
            }
            FeatureStat::MissingRate => Reading::of(rate(fidx::MISSING), total),
            FeatureStat::InvalidRate => Reading::of(rate(fidx::INVALID), total),
        }
    }
}

/// The entry for `key`, created when there is room; `None` past the cap.
fn entry<'m, V>(
    map: &'m mut FastMap<String, V>,
    key: &str,
    cap: usize,
    make: impl FnOnce(&WindowSpec) -> V,
    spec: &WindowSpec,
) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        if map.len() >= cap {
            return None;
        }
        map.insert(key.to_owned(), make(spec));
    }
    map.get_mut(key)
}

/// Records an inference of (model, version) into its windows `w` and, when
/// it has an id and a prediction, into the feedback join.
fn record_inference(
    w: &mut ModelWindows,
    joiner: &mut FeedbackJoiner,
    cfg: &ModelConfig,
    cap: usize,
    (model, version): (&str, &str),
    i: &Inference,
    now: f64,
) {
    w.record(i, cfg, cap, now);
    if let (Some(id), Some(p)) = (&i.id, &i.prediction) {
        joiner.on_inference(model, version, id, p, now);
    }
}

/// The windows of one model version resolved for a run of its inference
/// events ([`WindowStore::recorder`]); recording through it is the same as
/// [`WindowStore::record`] without finding the windows again.
pub struct Recorder<'s> {
    windows: &'s mut ModelWindows,
    joiner: &'s mut FeedbackJoiner,
    cfg: &'s ModelConfig,
    refs: &'s Arc<ModelReferences>,
    cap: usize,
}

impl Recorder<'_> {
    /// Records inference `i` of the version, received at `now`; `mv` are
    /// the event's model and version, those the recorder was made for.
    pub fn record(&mut self, mv: (&str, &str), i: &Inference, now: f64) {
        self.windows.touch(now);
        record_inference(self.windows, self.joiner, self.cfg, self.cap, mv, i, now);
    }

    /// The model's expectations ([`WindowStore::model_cfg`]).
    pub fn cfg(&self) -> &ModelConfig {
        self.cfg
    }

    /// The model's references ([`WindowStore::references`]).
    pub fn refs(&self) -> &ModelReferences {
        self.refs
    }
}

/// Where feature `name` is in `features`, added when there is room; `None`
/// past the cap.
fn feature_slot(
    features: &mut IndexMap<Name, FeatureWindows>,
    name: &str,
    cap: usize,
    spec: &WindowSpec,
) -> Option<usize> {
    if let Some(i) = features.get_index_of(name) {
        return Some(i);
    }
    if features.len() >= cap {
        return None;
    }
    Some(
        features
            .insert_full(Name::new(name), FeatureWindows::new(spec))
            .0,
    )
}

/// The windows of every model version, readable by the rule evaluator.
pub struct WindowStore {
    spec: WindowSpec,
    config: std::sync::Arc<Config>,
    default_model: ModelConfig,
    cap: usize,
    models: FastMap<String, FastMap<String, ModelWindows>>,
    joiner: FeedbackJoiner,
    /// References per configured model name (`"*"` included).
    refs: FastMap<String, Arc<ModelReferences>>,
    no_refs: Arc<ModelReferences>,
}

fn references(config: &Config) -> FastMap<String, Arc<ModelReferences>> {
    config
        .models
        .iter()
        .map(|(name, cfg)| (name.clone(), Arc::new(ModelReferences::from_config(cfg))))
        .collect()
}

impl WindowStore {
    /// A store shaped for the rules of `config`; `cap` bounds distinct
    /// features, classes and counters windowed per model version.
    pub fn new(config: std::sync::Arc<Config>, cap: usize) -> WindowStore {
        WindowStore {
            spec: WindowSpec::for_config(&config),
            default_model: ModelConfig::default(),
            cap,
            models: FastMap::default(),
            joiner: FeedbackJoiner::new(Duration::from_secs(24 * 3600), 100_000),
            refs: references(&config),
            no_refs: Arc::default(),
            config,
        }
    }

    /// The shapes of the rings, from the current rules.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// The references of `model` (its own entry, else `"*"`).
    pub fn references(&self, model: &str) -> &Arc<ModelReferences> {
        self.refs
            .get(model)
            .or_else(|| self.refs.get("*"))
            .unwrap_or(&self.no_refs)
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

    /// Takes new rules. When they need other windows, the windows start
    /// afresh; otherwise they are kept.
    pub fn set_config(&mut self, config: std::sync::Arc<Config>) {
        let spec = WindowSpec::for_config(&config);
        let refs = references(&config);
        if spec != self.spec || refs != self.refs {
            self.spec = spec;
            self.refs = refs;
            self.models.clear();
        }
        self.config = config;
    }

    /// Records one event received at `now`.
    pub fn record(&mut self, event: &crate::ingest::event::Event, now: f64) {
        use crate::ingest::event::Body;
        if let Body::Feedback(f) = &event.body {
            self.record_feedback(&event.model, f, now);
            return;
        }
        let cfg = self
            .config
            .model(&event.model)
            .unwrap_or(&self.default_model);
        let versions = match self.models.get_mut(event.model.as_str()) {
            Some(v) => v,
            None => self.models.entry(event.model.to_string()).or_default(),
        };
        let w = match versions.get_mut(event.version.as_str()) {
            Some(w) => w,
            None => {
                let refs = self
                    .refs
                    .get(event.model.as_str())
                    .or_else(|| self.refs.get("*"))
                    .unwrap_or(&self.no_refs)
                    .clone();
                versions
                    .entry(event.version.to_string())
                    .or_insert_with(|| ModelWindows::new(self.spec, refs))
            }
        };
        w.touch(now);
        match &event.body {
            Body::Inference(i) => record_inference(
                w,
                &mut self.joiner,
                cfg,
                self.cap,
                (event.model.as_str(), event.version.as_str()),
                i,
                now,
            ),
            Body::Log(l) => w.record_log(l.level, now),
            Body::Model(m) => {
                if let Some(t) = m.trained_at {
                    w.set_trained_at(t);
                }
            }
            // Recorded above, under the version of the prediction it joins.
            Body::Feedback(_) => {}
        }
    }

    /// The windows of (model, version), created if need be, with what
    /// recording an inference into them needs: resolved once for a run of
    /// inference events of that version instead of once an event.
    pub fn recorder(&mut self, model: &str, version: &str) -> Recorder<'_> {
        let cfg = self.config.model(model).unwrap_or(&self.default_model);
        let refs = self
            .refs
            .get(model)
            .or_else(|| self.refs.get("*"))
            .unwrap_or(&self.no_refs);
        if !self.models.contains_key(model) {
            self.models.insert(model.to_owned(), FastMap::default());
        }
        let versions = self.models.get_mut(model).expect("inserted above");
        if !versions.contains_key(version) {
            let w = ModelWindows::new(self.spec, refs.clone());
            versions.insert(version.to_owned(), w);
        }
        Recorder {
            windows: versions.get_mut(version).expect("inserted above"),
            joiner: &mut self.joiner,
            cfg,
            refs,
            cap: self.cap,
        }
    }

    /// Joins a label to its prediction and records the pair under the
    /// prediction's version (not the feedback event's own, usually empty).
    fn record_feedback(&mut self, model: &str, f: &crate::ingest::event::Feedback, now: f64) {
        let outcome = self.joiner.on_feedback(
            model,
            f.id.as_deref(),
            &f.actual,
            f.prediction.as_ref(),
            now,
        );
        if let FeedbackOutcome::Joined {
            version,
            prediction,
            actual,
            ..
        }
        | FeedbackOutcome::Carried {
            version,
            prediction,
            actual,
        } = outcome
        {
            let cfg = self.config.model(model).unwrap_or(&self.default_model);
            let (spec, refs) = (self.spec, self.references(model).clone());
            let w = self
                .models
                .entry(model.to_owned())
                .or_default()
                .entry(version)
                .or_insert_with(|| ModelWindows::new(spec, refs));
            w.record_label(&prediction, &actual, cfg, now);
        }
    }

    /// The expectations of `model` (its own entry, `"*"`, or the defaults).
    pub fn model_cfg(&self, model: &str) -> &ModelConfig {
        self.config.model(model).unwrap_or(&self.default_model)
    }

    /// The windows of one model version, if it sent anything.
    pub fn get(&self, model: &str, version: &str) -> Option<&ModelWindows> {
        self.models.get(model)?.get(version)
    }

    /// Drops the windows of model versions that recorded nothing for
    /// `idle` seconds and that no rule can read anything from any more
    /// (nothing recorded within the longest rule window and one slice).
    /// While a rule reads `time_since_last_event`, the newest version of
    /// each model (by last event) is kept, so that a model that went silent
    /// altogether keeps being reported silent. Returns the versions dropped.
    pub fn expire(&mut self, idle: f64, now: f64) -> Vec<(String, String)> {
        let empty_after = (self.spec.span + self.spec.slice).as_secs_f64();
        let cutoff = now - idle.max(empty_after);
        let keep_newest = self
            .config
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .any(|r| r.expr.signal == Signal::TimeSinceLastEvent);
        let mut dropped = Vec::new();
        for (model, versions) in &mut self.models {
            // Cheap when nothing is due: one comparison per version.
            if versions.values().all(|w| w.last_write > cutoff) {
                continue;
            }
            let newest = versions
                .values()
                .map(|w| w.last_event)
                .fold(f64::NEG_INFINITY, f64::max);
            versions.retain(|version, w| {
                let keep = w.last_write > cutoff
                    || (keep_newest && newest.is_finite() && w.last_event >= newest);
                if !keep {
                    dropped.push((model.clone(), version.clone()));
                }
                keep
            });
        }
        self.models.retain(|_, versions| !versions.is_empty());
        dropped
    }
}

impl crate::rules::eval::SignalSource for WindowStore {
    fn series(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .models
            .iter()
            .flat_map(|(m, vs)| vs.keys().map(move |v| (m.clone(), v.clone())))
            .collect();
        v.sort();
        v
    }

    fn features(&self, model: &str, version: &str) -> Vec<String> {
        self.get(model, version)
            .map(ModelWindows::feature_names)
            .unwrap_or_default()
    }

    fn read(
        &self,
        model: &str,
        version: &str,
        signal: &Signal,
        feature: Option<&str>,
        window: Duration,
        now: f64,
    ) -> Reading {
        match self.get(model, version) {
            Some(w) => w.read(signal, feature, window, now, self.model_cfg(model)),
            None => Reading::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_span_only_the_windows_their_rules_read() {
        // Built-in rules: accuracy over 1 h, feature drift over 15 m,
        // latency and the rest over the 5 m default.
        let spec = WindowSpec::for_config(&Config::default_rules());
        assert_eq!(spec.slice, Duration::from_secs(10));
        assert_eq!(spec.span, Duration::from_secs(3600));
        assert_eq!(spec.feature_span, Duration::from_secs(900));
        assert_eq!(spec.latency_span, Duration::from_secs(300));
        let mut w = ModelWindows::new(spec, Arc::default());
        let i = match crate::ingest::parse::parse_event(br#"{"features":{"a":1}}"#)
            .unwrap()
            .body
        {
            crate::ingest::event::Body::Inference(i) => i,
            other => panic!("not an inference: {other:?}"),
        };
        w.record(&i, &ModelConfig::default(), 10, 1000.0);
        let f = &w.features["a"];
        assert_eq!(f.values.slice_count(), 91);
        assert_eq!(f.counts.slice_count(), 91);
        assert_eq!(w.counts.slice_count(), 361);
    }
}
