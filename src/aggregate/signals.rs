//! Windowed signals of one model version: what the alert rules read.
//!
//! Every (model, version) keeps rings of per-interval slices
//! ([`SlidingWindow`]) for its requests, latencies, predictions, confidence,
//! features, business counters, log levels and resources. A rule's signal
//! over a window is the merge of the slices covering it. The rings of the
//! version as a whole are [`Windows`]; those of each feature, class and
//! business counter sit in the version's capped maps, next to the label
//! value's series ([`Version`]).
//!
//! Memory per model version, with slices of width `w` and a span `S` (the
//! longest rule window): `S/w + 1` slices of each ring. Counts take 8 bytes
//! a counter a slice, moments 40; the latency sketch ring, which is the large
//! one (about 5 KiB a slice for latencies between 1 ms and 10 s), only spans
//! the longest window of a latency rule, and the per-feature rings only the
//! longest window of a rule reading features. With the built-in rules
//! (w = 10 s, S = 1 h, latency span 5 min, feature span 15 min) a model
//! version takes about 0.3 MiB plus about 7 KiB a numeric feature (twice
//! that with a reference to bin against, and 600 bytes more for the bins
//! of the newest 300 values that FeatureDrift's `max_samples` reads);
//! docs/performance.md has the measured figures.

use std::time::Duration;

use super::quality::QualitySlice;
use super::version::Version;
use crate::baseline::format::FeatureBaseline;
use crate::config::{Config, ModelConfig};
use crate::ingest::event::Outcome;
use crate::rules::signal::{DriftTarget, FeatureSel, FeatureStat, Resource, Signal};
use crate::rules::source::Reading;
use crate::stats::drift::{BinCounts, DriftMethod};
use crate::stats::reference::{ModelReferences, Reference};
use crate::stats::significance;
use crate::stats::sketch::Sketch;
use crate::stats::window::{Counts, Moments, RecentBins, Slice, SlidingWindow};

mod persist;
pub use persist::{
    FeatureState, ModelWindowsState, ReferenceState, StoreCapture, StoreState, fingerprint,
};

/// Indices into the per-model [`Counts`] slice.
pub(super) mod idx {
    pub const REQUESTS: usize = 0;
    pub const ERRORS: usize = 1;
    pub const NUMERIC_PREDICTIONS: usize = 2;
    pub const POSITIVE: usize = 3;
    pub const CONFIDENCES: usize = 4;
    pub const LOW_CONFIDENCE: usize = 5;
    pub const CLASS_PREDICTIONS: usize = 6;
    pub const N: usize = 7;
}

/// Indices into the per-feature [`Counts`] slice. `SEEN`, `MISSING` and
/// `INVALID` add up to the feature's events; `OUT_OF_RANGE` and `UNSEEN`
/// are the invalid values of those two reasons (the rest are of the wrong
/// type).
pub(super) mod fidx {
    pub const SEEN: usize = 0;
    pub const MISSING: usize = 1;
    pub const INVALID: usize = 2;
    pub const OUT_OF_RANGE: usize = 3;
    pub const UNSEEN: usize = 4;
    pub const N: usize = 5;
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
    /// Newest bin indices each feature keeps for the drift rules with
    /// `max_samples` that read features: the largest of their
    /// `max_samples` (0, no ring, when none has one).
    pub feature_recent: usize,
    /// The same for the prediction's drift rules.
    pub prediction_recent: usize,
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
        let recent = |prediction: bool| {
            config
                .groups
                .iter()
                .flat_map(|g| &g.rules)
                .filter(|r| r.drift_of_prediction() == Some(prediction))
                .filter_map(|r| r.max_samples)
                .max()
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        let slice = (shortest / 10).clamp(Duration::from_millis(100), Duration::from_secs(10));
        WindowSpec {
            slice,
            span,
            latency_span,
            feature_span,
            feature_recent: recent(false),
            prediction_recent: recent(true),
        }
    }

    /// A ring spanning the longest window.
    pub(super) fn ring<T: Slice>(&self) -> SlidingWindow<T> {
        SlidingWindow::new(self.slice, self.span)
    }

    /// A ring spanning the longest window of a rule reading features.
    pub(super) fn feature_ring<T: Slice>(&self) -> SlidingWindow<T> {
        SlidingWindow::new(self.slice, self.feature_span)
    }
}

/// The windows of one feature.
#[derive(Clone)]
pub struct FeatureWindows {
    pub(super) values: SlidingWindow<Moments>,
    pub(super) counts: SlidingWindow<Counts<{ fidx::N }>>,
    /// Live bins against the feature's reference, once it has one.
    pub(super) bins: Option<SlidingWindow<BinCounts>>,
    /// The bins of its newest values, for rules with `max_samples`
    /// (capacity 0 when no rule has one). Not in snapshots: after a
    /// restart or a reload it fills again (docs/drift.md, "Recent values").
    pub(super) recent: RecentBins,
    /// Values collected to learn a reference from (`learn_reference`).
    pub(super) learning: Vec<f64>,
    /// The reference learned from them.
    pub(super) learned: Option<Reference>,
}

/// The Holm-adjusted drift p-values of a version's features, kept from
/// the first feature's read to the others' ([`Version::read`] of
/// `drift_pvalue_adjusted`): each family is worked out once per method,
/// window and time read, not once per feature, which made reading all `F`
/// features cost `F²` p-values. Valid for one time read (and one set of
/// references); the version drops it whenever it is changed
/// ([`Parts::changing`](super::capped::Parts::changing)), so a read after
/// an event, even at the same time, works the family out afresh. Read and
/// filled by the aggregator that owns the version, between its changes.
#[derive(Default)]
pub struct AdjustedPvalues {
    /// The time read (its bits) and the references (their address) the
    /// families are of.
    at: Option<(u64, usize)>,
    /// Per method and window, the adjusted p-value of each feature by
    /// position in the version's features.
    families: Vec<(FamilyKey, Vec<Option<f64>>)>,
}

/// A family of adjusted p-values: its method, window and `max_samples`.
type FamilyKey = (DriftMethod, Duration, Option<u64>);

impl AdjustedPvalues {
    /// Forgets every family.
    pub(super) fn clear(&mut self) {
        self.at = None;
        self.families.clear();
    }

    /// The family of (method, window) worked out at `at`, if kept; forgets
    /// those of another time.
    fn family(
        &mut self,
        at: (u64, usize),
        method: DriftMethod,
        window: Duration,
        cap: Option<u64>,
    ) -> Option<&[Option<f64>]> {
        if self.at != Some(at) {
            self.clear();
            self.at = Some(at);
        }
        self.families
            .iter()
            .find(|(key, _)| *key == (method, window, cap))
            .map(|(_, f)| f.as_slice())
    }

    /// Keeps the family of (method, window, cap) at the time last asked for.
    fn keep(
        &mut self,
        method: DriftMethod,
        window: Duration,
        cap: Option<u64>,
        family: Vec<Option<f64>>,
    ) {
        self.families.push(((method, window, cap), family));
    }
}

/// The references rules.yaml gives a model: its baseline file, then inline
/// `{mean, std}` of features the baseline lacks, taken as normal
/// distributions.
pub fn model_references(cfg: &ModelConfig) -> ModelReferences {
    let mut r = ModelReferences::default();
    if let Some(b) = &cfg.reference {
        for (name, f) in &b.features {
            if let Some(reference) = f.reference() {
                r.features.insert(name.clone(), reference);
            }
        }
        r.prediction = b.prediction.as_ref().and_then(FeatureBaseline::reference);
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

/// The windows of one model version as a whole (those of its features,
/// classes and business counters are in its capped maps).
#[derive(Clone)]
pub struct Windows {
    pub(super) counts: SlidingWindow<Counts<{ idx::N }>>,
    pub(super) latency: SlidingWindow<Sketch>,
    pub(super) prediction: SlidingWindow<Moments>,
    pub(super) confidence: SlidingWindow<Moments>,
    pub(super) logs: [SlidingWindow<u64>; 5],
    pub(super) resources: [SlidingWindow<Moments>; 2],
    pub(super) quality: SlidingWindow<QualitySlice>,
    pub(super) prediction_bins: SlidingWindow<BinCounts>,
    /// The bins of the newest predictions, for rules with `max_samples`.
    pub(super) prediction_recent: RecentBins,
    /// The last time the version sent anything.
    pub(super) last_event: f64,
    /// The last time anything was recorded (an event or a joined label).
    pub(super) last_write: f64,
    pub(super) trained_at: Option<f64>,
}

impl FeatureWindows {
    /// Empty windows shaped by `spec`.
    pub(super) fn new(spec: &WindowSpec) -> Self {
        FeatureWindows {
            values: spec.feature_ring(),
            counts: spec.feature_ring(),
            bins: None,
            recent: RecentBins::new(spec.feature_recent),
            learning: Vec::new(),
            learned: None,
        }
    }

    /// Collects a value towards a learned reference of `n` values.
    pub(super) fn learn(&mut self, x: f64, n: usize) {
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

impl Windows {
    /// Empty windows shaped by `spec`.
    pub(super) fn new(spec: &WindowSpec) -> Self {
        Windows {
            counts: spec.ring(),
            latency: SlidingWindow::new(spec.slice, spec.latency_span),
            prediction: spec.ring(),
            confidence: spec.ring(),
            logs: std::array::from_fn(|_| spec.ring()),
            resources: std::array::from_fn(|_| spec.ring()),
            quality: spec.ring(),
            prediction_bins: spec.ring(),
            prediction_recent: RecentBins::new(spec.prediction_recent),
            last_event: f64::NEG_INFINITY,
            last_write: f64::NEG_INFINITY,
            trained_at: None,
        }
    }

    /// Notes that the version sent something at `now`.
    pub(super) fn touch(&mut self, now: f64) {
        self.last_event = self.last_event.max(now);
        self.last_write = self.last_write.max(now);
    }

    /// Records a prediction joined with its true outcome.
    pub(super) fn record_label(
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

    fn latency_sketch(&self, now: f64, window: Duration) -> Sketch {
        let mut s = Sketch::new();
        self.latency.merged(now, window, &mut s);
        s
    }
}

/// Narrows `live`, the bin counts of a whole time window, to its newest
/// `cap` values: the newest `min(cap, n)` values of `recent`, `n` being the
/// window's total. While `recent` holds fewer than that (it started after
/// the window did: a restart or a reload restored the window from a
/// snapshot), `live` is left as it is, the whole window.
fn recent_bins(recent: &RecentBins, cap: u64, live: &mut BinCounts) {
    let n = live.total();
    let want = usize::try_from(cap.min(n)).unwrap_or(usize::MAX);
    if n <= cap || recent.len() < want {
        return;
    }
    let bins = live.counts().len();
    let mut newest = BinCounts::with_bins(bins);
    if recent.newest(want, &mut newest).is_some() {
        *live = newest;
    }
}

/// What the rules read of a version. A version without windows reads as
/// having no data.
impl Version {
    /// The reference of a feature: configured (in `refs`), or learned.
    pub fn reference<'a>(
        &'a self,
        refs: &'a ModelReferences,
        feature: &str,
    ) -> Option<&'a Reference> {
        refs.features
            .get(feature)
            .or_else(|| self.feature_windows(feature)?.learned.as_ref())
    }

    fn feature_windows(&self, feature: &str) -> Option<&FeatureWindows> {
        self.features.get(feature)?.windows.as_ref()
    }

    /// A feature's live bin counts over `window`, or with a `cap` over
    /// the newest `cap` values of `window` (as a drift rule with
    /// `max_samples` reads them), with its reference.
    pub fn feature_bins<'a>(
        &'a self,
        refs: &'a ModelReferences,
        feature: &str,
        (window, cap): (Duration, Option<u64>),
        now: f64,
    ) -> Option<(&'a Reference, Vec<u64>)> {
        let reference = self.reference(refs, feature)?;
        let mut live = BinCounts::with_bins(reference.bins());
        if let Some(f) = self.feature_windows(feature) {
            if let Some(bins) = &f.bins {
                bins.merged(now, window, &mut live);
            }
            if let Some(cap) = cap {
                recent_bins(&f.recent, cap, &mut live);
            }
        }
        Some((reference, live.counts().to_vec()))
    }

    /// Names of the features windowed, sorted.
    pub fn feature_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .features
            .iter()
            .filter(|(_, f)| f.windows.is_some())
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// The value of `signal` over `window` ending at `now`. `feature` names
    /// the feature for per-feature signals whose selector is `feature.*`.
    /// `cap` is a rule's `max_samples`: drift signals then read the newest
    /// `cap` values of the window only (other signals ignore it).
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &self,
        signal: &Signal,
        feature: Option<&str>,
        (window, cap): (Duration, Option<u64>),
        now: f64,
        cfg: &ModelConfig,
        refs: &ModelReferences,
    ) -> Reading {
        let Some(w) = &self.windows else {
            return Reading::NONE;
        };
        let counts = || {
            let mut c = Counts::<{ idx::N }>::default();
            let secs = w.counts.merged(now, window, &mut c);
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
        let counter = |name: &str| self.counters.get(name)?.windows.as_ref();
        match signal {
            Signal::RequestRate => {
                let (c, secs) = counts();
                Reading::always(per_second(c.get(idx::REQUESTS) as f64, secs).or(Some(0.0)))
            }
            Signal::ErrorRate => ratio(&counts().0, idx::ERRORS, idx::REQUESTS),
            Signal::PositiveRate => ratio(&counts().0, idx::POSITIVE, idx::NUMERIC_PREDICTIONS),
            Signal::LowConfidenceRate => ratio(&counts().0, idx::LOW_CONFIDENCE, idx::CONFIDENCES),
            Signal::Quantile { q } => {
                let s = w.latency_sketch(now, window);
                Reading::of(s.quantile(*q), s.count())
            }
            Signal::LatencyMean => {
                let s = w.latency_sketch(now, window);
                Reading::of(s.mean(), s.count())
            }
            Signal::LatencyMax => {
                let s = w.latency_sketch(now, window);
                Reading::of(s.max(), s.count())
            }
            // A retired version is not silent: it was replaced.
            Signal::TimeSinceLastEvent if self.retired => Reading::NONE,
            Signal::TimeSinceLastEvent => {
                Reading::always(w.last_event.is_finite().then_some(now - w.last_event))
            }
            Signal::PredictionMean => {
                let m = moments(&w.prediction);
                Reading::of(m.mean(), m.count())
            }
            Signal::ConfidenceMean => {
                let m = moments(&w.confidence);
                Reading::of(m.mean(), m.count())
            }
            Signal::ClassRate { class } => {
                let (c, _) = counts();
                let total = c.get(idx::CLASS_PREDICTIONS);
                let mut n = 0u64;
                if let Some(w) = self.classes.get(class).and_then(|c| c.windows.as_ref()) {
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
                self.read_feature(*stat, name, window, now, cfg, refs)
            }
            Signal::ModelAge => Reading::always(w.trained_at.map(|t| (now - t).max(0.0))),
            Signal::CounterRatio {
                numerator,
                denominator,
            } => {
                let num = counter(numerator).map(&moments).unwrap_or_default();
                let den = counter(denominator).map(&moments).unwrap_or_default();
                let value = (den.sum() > 0.0).then(|| num.sum() / den.sum());
                Reading::of(value, den.count())
            }
            Signal::CounterRate { counter: name } => match counter(name) {
                Some(w) => {
                    let mut m = Moments::new();
                    let secs = w.merged(now, window, &mut m);
                    Reading::always(per_second(m.sum(), secs).or(Some(0.0)))
                }
                None => Reading::always(Some(0.0)),
            },
            Signal::LogRate { level } => {
                let mut n = 0u64;
                let secs = w.logs[*level as usize].merged(now, window, &mut n);
                // Before any log event, the counts' span tells the time watched.
                let secs = if secs > 0.0 { secs } else { counts().1 };
                Reading::always(per_second(n as f64, secs).or(Some(0.0)))
            }
            Signal::ResourceMean(r) => {
                let i = match r {
                    Resource::Cpu => 0,
                    Resource::Memory => 1,
                };
                let m = moments(&w.resources[i]);
                Reading::of(m.mean(), m.count())
            }
            Signal::Feedback(metric) => {
                let mut q = QualitySlice::default();
                w.quality.merged(now, window, &mut q);
                Reading::of(q.value(*metric), q.samples_for(*metric))
            }
            Signal::Drift { method, target } => {
                match self.drift_input(target, feature, (window, cap), now, refs) {
                    Some((r, live)) => Reading::of(r.drift(*method, live.counts()), live.total()),
                    None => Reading::NONE,
                }
            }
            Signal::DriftPvalue {
                method,
                target,
                adjusted,
            } => {
                let Some((r, live)) = self.drift_input(target, feature, (window, cap), now, refs)
                else {
                    return Reading::NONE;
                };
                let value = match (target, adjusted) {
                    // The family holds the feature exactly when it has a
                    // raw p-value; its adjusted one is worked out with the
                    // others'.
                    (DriftTarget::Feature(sel), true) => {
                        let name = match sel {
                            FeatureSel::Named(n) => n.as_str(),
                            FeatureSel::All => feature.unwrap_or_default(),
                        };
                        self.adjusted_pvalue(*method, name, (window, cap), now, refs)
                    }
                    _ => r.pvalue(*method, live.counts()),
                };
                Reading::of(value, live.total())
            }
        }
    }

    /// What a drift signal compares: the reference and the live bin counts
    /// over `window`, or with a `cap` over the newest `cap` values of
    /// `window` ([`Self::recent_bins`]).
    fn drift_input<'a>(
        &'a self,
        target: &DriftTarget,
        feature: Option<&str>,
        (window, cap): (Duration, Option<u64>),
        now: f64,
        refs: &'a ModelReferences,
    ) -> Option<(&'a Reference, BinCounts)> {
        let w = self.windows.as_ref()?;
        let (reference, bins, recent) = match target {
            DriftTarget::Prediction => (
                refs.prediction.as_ref(),
                Some(&w.prediction_bins),
                Some(&w.prediction_recent),
            ),
            DriftTarget::Feature(sel) => {
                let name = match (sel, feature) {
                    (FeatureSel::Named(n), _) => n.as_str(),
                    (FeatureSel::All, Some(f)) => f,
                    (FeatureSel::All, None) => return None,
                };
                let f = self.feature_windows(name);
                (
                    refs.features
                        .get(name)
                        .or(f.and_then(|f| f.learned.as_ref())),
                    f.and_then(|f| f.bins.as_ref()),
                    f.map(|f| &f.recent),
                )
            }
        };
        // No reference (yet): no verdict.
        let (Some(r), Some(bins)) = (reference, bins) else {
            return None;
        };
        let mut live = BinCounts::with_bins(r.bins());
        bins.merged(now, window, &mut live);
        if let (Some(cap), Some(recent)) = (cap, recent) {
            recent_bins(recent, cap, &mut live);
        }
        Some((r, live))
    }

    /// The p-value of `method` for `feature`, adjusted by Holm's method
    /// across every feature of this version that has a p-value of `method`
    /// over `window` (docs/drift.md, "Family-wise control"); `None` if
    /// `feature` has none. The whole family is worked out on the first
    /// read of (method, window) at `now`, and kept for the other features'
    /// reads until the time read or the version changes.
    fn adjusted_pvalue(
        &self,
        method: DriftMethod,
        feature: &str,
        (window, cap): (Duration, Option<u64>),
        now: f64,
        refs: &ModelReferences,
    ) -> Option<f64> {
        let i = self.features.index_of(feature)?;
        let at = (now.to_bits(), std::ptr::from_ref(refs) as usize);
        if let Some(family) = self.adjusted.borrow_mut().family(at, method, window, cap) {
            return family.get(i).copied().flatten();
        }
        let family = self.adjusted_family(method, (window, cap), now, refs);
        let p = family.get(i).copied().flatten();
        self.adjusted.borrow_mut().keep(method, window, cap, family);
        p
    }

    /// The Holm-adjusted p-values of `method` over `window` of every
    /// feature, by position in the version's features (`None`: the feature
    /// has no p-value, and is not of the family).
    fn adjusted_family(
        &self,
        method: DriftMethod,
        window: (Duration, Option<u64>),
        now: f64,
        refs: &ModelReferences,
    ) -> Vec<Option<f64>> {
        let mut names = Vec::new();
        let mut pvalues = Vec::new();
        for name in self.feature_names() {
            let target = DriftTarget::Feature(FeatureSel::Named(name.clone()));
            let Some((r, live)) = self.drift_input(&target, None, window, now, refs) else {
                continue;
            };
            if let Some(p) = r.pvalue(method, live.counts()) {
                names.push(name);
                pvalues.push(p);
            }
        }
        significance::holm(&mut pvalues);
        let mut family = vec![None; self.features.len()];
        for (name, p) in names.iter().zip(pvalues) {
            if let Some(i) = self.features.index_of(name) {
                family[i] = Some(p);
            }
        }
        family
    }

    fn read_feature(
        &self,
        stat: FeatureStat,
        name: &str,
        window: Duration,
        now: f64,
        cfg: &ModelConfig,
        refs: &ModelReferences,
    ) -> Reading {
        let Some(f) = self.feature_windows(name) else {
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
                    .or_else(|| refs.features.get(name).and_then(Reference::moments))
                    .or_else(|| f.learned.as_ref().and_then(Reference::moments));
                let value = match (m.mean(), reference) {
                    (Some(mean), Some((rm, rs))) if rs > 0.0 => Some((mean - rm) / rs),
                    _ => None,
                };
                Reading::of(value, m.count())
            }
            FeatureStat::MissingRate => Reading::of(rate(fidx::MISSING), total),
            FeatureStat::InvalidRate => Reading::of(rate(fidx::INVALID), total),
            FeatureStat::OutOfRangeRate => Reading::of(rate(fidx::OUT_OF_RANGE), total),
            FeatureStat::UnseenRate => Reading::of(rate(fidx::UNSEEN), total),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::Limits;
    use crate::aggregate::store::Store;
    use crate::export::metrics::{Buckets, Metrics};

    #[test]
    fn rings_span_only_the_windows_their_rules_read() {
        // Built-in rules: accuracy over 1 h, feature drift over 15 m,
        // latency and the rest over the 5 m default.
        let spec = WindowSpec::for_config(&Config::default_rules());
        assert_eq!(spec.slice, Duration::from_secs(10));
        assert_eq!(spec.span, Duration::from_secs(3600));
        assert_eq!(spec.feature_span, Duration::from_secs(900));
        assert_eq!(spec.latency_span, Duration::from_secs(300));
        // FeatureDrift reads the newest 300 values; no prediction rule
        // has max_samples.
        assert_eq!((spec.feature_recent, spec.prediction_recent), (300, 0));
        let mut s = Store::new(
            Arc::new(Config::default_rules()),
            Limits {
                features: 10,
                ..Limits::default()
            },
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        );
        let event = crate::ingest::parse::parse_event(br#"{"features":{"a":1}}"#).unwrap();
        s.record(&event, 1000.0);
        let v = s.get("default", "").unwrap();
        let f = v.features.get("a").unwrap().windows.as_ref().unwrap();
        assert_eq!(f.values.slice_count(), 91);
        assert_eq!(f.counts.slice_count(), 91);
        assert_eq!(v.windows.as_ref().unwrap().counts.slice_count(), 361);
    }

    use crate::ingest::parse::parse_event;
    use crate::rules::source::SignalSource;

    /// A store of model `m` whose `features` features have a N(0, 1)
    /// reference each.
    fn wide(features: usize) -> Store {
        let mut yaml = String::from("models:\n  m:\n    features:\n");
        for i in 0..features {
            yaml.push_str(&format!("      f{i}: {{mean: 0, std: 1}}\n"));
        }
        let config = crate::config::load("rules.yaml", &yaml).unwrap();
        Store::new(
            Arc::new(config),
            Limits::default(),
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        )
    }

    /// `n` events of model `m`, feature `fi` near `shift · i` (so that the
    /// features drift by different amounts), at `now`.
    fn send(s: &mut Store, features: usize, n: usize, shift: f64, now: f64) {
        for k in 0..n {
            let values: Vec<String> = (0..features)
                .map(|i| {
                    let x = (k as f64 + 0.5) / n as f64 * 4.0 - 2.0 + shift * i as f64;
                    format!(r#""f{i}":{x}"#)
                })
                .collect();
            let line = format!(r#"{{"model":"m","features":{{{}}}}}"#, values.join(","));
            s.record(&parse_event(line.as_bytes()).unwrap(), now);
        }
    }

    fn pvalue(s: &Store, method: DriftMethod, feature: usize, adjusted: bool, now: f64) -> f64 {
        let signal = Signal::DriftPvalue {
            method,
            target: DriftTarget::Feature(FeatureSel::All),
            adjusted,
        };
        let f = format!("f{feature}");
        let window = Duration::from_secs(300);
        s.read("m", "", &signal, Some(&f), window, now)
            .value
            .unwrap()
    }

    /// Holm's adjustment of the raw p-values read one by one, by feature.
    fn holm_of_raw(s: &Store, method: DriftMethod, features: usize, now: f64) -> Vec<f64> {
        let mut by_name: Vec<(String, f64)> = (0..features)
            .map(|i| (format!("f{i}"), pvalue(s, method, i, false, now)))
            .collect();
        // In the order the version lists its features, as before.
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        let mut p: Vec<f64> = by_name.iter().map(|(_, p)| *p).collect();
        significance::holm(&mut p);
        let mut out = vec![0.0; features];
        for ((name, _), p) in by_name.iter().zip(p) {
            out[name[1..].parse::<usize>().unwrap()] = p;
        }
        out
    }

    /// A tiny deterministic generator (xorshift64*), for the random
    /// sequences below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A store of model `m` with one feature `x` (reference N(0, 1)) and a
    /// 5-minute drift rule with `max_samples: 37`.
    fn capped_store() -> Store {
        let yaml = "defaults: {window: 5m, min_samples: 0}\nmodels:\n  m:\n    features:\n      x: {mean: 0, std: 1}\ngroups:\n  - name: g\n    rules:\n      - alert: D\n        expr: psi(feature.*) > 0.2\n        max_samples: 37\n";
        let config = crate::config::load("rules.yaml", yaml).unwrap();
        Store::new(
            Arc::new(config),
            Limits::default(),
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        )
    }

    /// The counts a capped drift read compares with the reference.
    fn capped_counts(s: &Store, cap: Option<u64>, now: f64) -> Vec<u64> {
        use crate::export::render::StateView;
        let target = DriftTarget::Feature(FeatureSel::Named("x".into()));
        let window = Duration::from_secs(300);
        let v = s.get("m", "").unwrap();
        match v.drift_input(&target, None, (window, cap), now, s.references("m")) {
            Some((_, live)) => live.counts().to_vec(),
            None => Vec::new(),
        }
    }

    /// With `max_samples: N` a drift read counts the newest `N` values
    /// inside the time window (all of them when it holds fewer), exactly as
    /// picking them out of every value sent, one by one, does: random
    /// values at random times, with pauses of minutes and one longer than
    /// the window.
    #[test]
    fn capped_drift_reads_the_newest_values_inside_the_window() {
        let mut s = capped_store();
        assert_eq!(s.spec().feature_recent, 37);
        let reference = Reference::normal(0.0, 1.0).unwrap();
        let (width, slices) = (s.spec().slice.as_secs_f64(), 31.0);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Every value sent: (time, bin).
        let mut sent: Vec<(f64, usize)> = Vec::new();
        let mut now = 10_000.0;
        let mut checked = 0;
        for k in 0..4000 {
            now += match rng.next() % 200 {
                0 => 400.0,
                1..=4 => 60.0 + rng.unit() * 120.0,
                _ => rng.unit() * 2.0,
            };
            let x = (rng.unit() - 0.5) * 6.0;
            let line = format!(r#"{{"model":"m","features":{{"x":{x}}}}}"#);
            s.record(&parse_event(line.as_bytes()).unwrap(), now);
            sent.push((now, reference.bin_number(x).unwrap()));
            if k % 13 != 0 {
                continue;
            }
            let read_at = now + rng.unit() * 30.0;
            // The slices a 5-minute window reads at `read_at`.
            let last = (read_at / width).floor();
            let from = ((read_at - 300.0) / width)
                .floor()
                .max(last - (slices - 1.0));
            let inside: Vec<usize> = sent
                .iter()
                .filter(|(t, _)| (t / width).floor() >= from)
                .map(|(_, b)| *b)
                .collect();
            for cap in [None, Some(1), Some(5), Some(37)] {
                let n = cap.map_or(inside.len(), |c| inside.len().min(c as usize));
                let mut want = vec![0u64; reference.bins()];
                for b in &inside[inside.len() - n..] {
                    want[*b] += 1;
                }
                assert_eq!(capped_counts(&s, cap, read_at), want, "{cap:?} at {k}");
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    fn computed() -> usize {
        significance::COMPUTED.with(|n| n.get())
    }

    /// Reading the adjusted p-value of every one of `F` features (what a
    /// `feature.*` rule with `significance` and the
    /// `model_feature_drift_pvalue_adjusted` gauges do) works out `F`
    /// p-values per method and window, not `F²`, and gives what Holm's
    /// adjustment of the raw ones gives, bit for bit.
    #[test]
    fn adjusted_pvalues_of_all_features_cost_one_pvalue_each() {
        const F: usize = 20;
        let mut s = wide(F);
        send(&mut s, F, 200, 0.02, 1000.0);
        let now = 1001.0;
        for method in [DriftMethod::Psi, DriftMethod::Ks] {
            let before = computed();
            let adjusted: Vec<f64> = (0..F).map(|i| pvalue(&s, method, i, true, now)).collect();
            assert_eq!(computed() - before, F, "{method:?}");
            // Read again in the same round: nothing more to work out.
            for i in (0..F).rev() {
                assert_eq!(
                    pvalue(&s, method, i, true, now).to_bits(),
                    adjusted[i].to_bits()
                );
            }
            assert_eq!(computed() - before, F, "{method:?}");
            let want = holm_of_raw(&s, method, F, now);
            for i in 0..F {
                assert_eq!(adjusted[i].to_bits(), want[i].to_bits(), "{method:?} f{i}");
            }
            // Not all the same: the features drift by different amounts.
            assert!(adjusted.iter().any(|p| *p != adjusted[0]), "{adjusted:?}");
        }
        // Another window is another family.
        let signal = Signal::DriftPvalue {
            method: DriftMethod::Psi,
            target: DriftTarget::Feature(FeatureSel::Named("f3".into())),
            adjusted: true,
        };
        let before = computed();
        let r = s.read("m", "", &signal, None, Duration::from_secs(60), now);
        assert!(r.value.is_some());
        assert_eq!(computed() - before, F);
    }

    /// The adjusted p-values kept are those of one time and one state of
    /// the version: after an event, at a later time or at the same one, the
    /// next read gives the new values.
    #[test]
    fn adjusted_pvalues_follow_time_and_events() {
        const F: usize = 6;
        let method = DriftMethod::Psi;
        let mut s = wide(F);
        send(&mut s, F, 100, 0.05, 1000.0);
        let read_all = |s: &Store, now: f64| -> Vec<f64> {
            (0..F).map(|i| pvalue(s, method, i, true, now)).collect()
        };
        let first = read_all(&s, 1000.0);
        assert_eq!(first, holm_of_raw(&s, method, F, 1000.0));

        // Events at the same time: the counts change, the time read not.
        send(&mut s, F, 100, 0.5, 1000.0);
        let same_time = read_all(&s, 1000.0);
        assert_ne!(same_time, first);
        assert_eq!(same_time, holm_of_raw(&s, method, F, 1000.0));

        // Events later, read later.
        send(&mut s, F, 300, 0.0, 1100.0);
        let later = read_all(&s, 1100.0);
        assert_ne!(later, same_time);
        assert_eq!(later, holm_of_raw(&s, method, F, 1100.0));

        // Time alone: once the first events leave the 5-minute window, only
        // the last ones count.
        let after = read_all(&s, 1350.0);
        assert_ne!(after, later);
        assert_eq!(after, holm_of_raw(&s, method, F, 1350.0));
    }
}
