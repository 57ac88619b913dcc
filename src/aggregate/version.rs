//! One model version's state: the series it exports (cached metric
//! handles), the windows the rules read, and when each was last used.
//!
//! An event is applied to its version once: each feature value is found once
//! (by its position in the previous event, else by name) and checked once
//! against rules.yaml, and the one verdict feeds both the counters of
//! `/metrics` and the windows. Features, classes, business counters, error
//! classes, log components and categories are [`Capped`] maps whose entries
//! hold a label value's series and windows side by side, each under its own
//! cap (see the [`capped`](super::capped) module for how they differ).

use std::cell::RefCell;

use super::capped::{Capped, Parts, Slot, Stamped};
use super::limits::Limits;
use super::signals::{AdjustedPvalues, FeatureWindows, WindowSpec, Windows, fidx, idx};
use super::validity::{InvalidReason, Validity, validate};
use crate::config::{Expectation, Expectations, ModelConfig};
use crate::export::metrics::Metrics;
use crate::export::series::{Counter, Gauge, Histogram, IntCounter};
use crate::ingest::event::{FeatureValue, Inference, LogLine, Outcome};
use crate::stats::reference::{ModelReferences, Reference};
use crate::stats::window::{Moments, SlidingWindow};

/// The series of one feature: its value histogram and its counters.
#[derive(Default)]
pub struct FeatureHandles {
    pub(super) value: Option<Histogram>,
    pub(super) missing: Option<IntCounter>,
    /// By [`InvalidReason`](super::validity::InvalidReason).
    pub(super) invalid: [Option<IntCounter>; 3],
    pub(super) categories: Capped<Slot<IntCounter>>,
    /// `model_feature_bin_total`, one per bin of the feature's configured
    /// reference; empty until a value is binned against it.
    pub(super) bins: Vec<IntCounter>,
}

/// A feature: its series and its windows.
pub type Feature = Slot<FeatureHandles, FeatureWindows>;

/// `model_log_events_total` of one component, by level, each with when it
/// was last used.
pub type LevelCounters = [Option<(IntCounter, f64)>; 5];

/// The handles of the series of a version as a whole, and their stamps.
pub struct Series {
    pub(super) requests: Option<(IntCounter, IntCounter)>,
    pub(super) duration: Option<Histogram>,
    pub(super) prediction: Option<Histogram>,
    pub(super) confidence: Option<Histogram>,
    pub(super) resources: Option<(Gauge, Gauge)>,
    pub(super) feedback: Option<IntCounter>,
    pub(super) last_event: Option<Gauge>,
    /// `model_version_retired`.
    pub(super) retired: Option<Gauge>,
    /// When an event of this version last arrived (aggregator clock).
    pub(super) seen: f64,
    /// At or before every stamp of this version's series (a lower bound),
    /// so that an expiry sweep skips the version until something is due.
    pub(super) oldest: f64,
    /// Its series expired (`--metrics.ttl`): the version only keeps its
    /// place under `--limits.versions` until its windows are dropped too,
    /// and comes back to life with the next event.
    pub(super) expired: bool,
}

impl Series {
    /// Series of a version that has none yet, stamped `now`.
    fn new(now: f64) -> Series {
        Series {
            requests: None,
            duration: None,
            prediction: None,
            confidence: None,
            resources: None,
            feedback: None,
            last_event: None,
            retired: None,
            seen: now,
            oldest: now,
            expired: false,
        }
    }

    /// What is left of the series of a version once they expired: its
    /// place, and when it was last seen.
    pub(super) fn expired(seen: f64) -> Series {
        Series {
            expired: true,
            ..Series::new(seen)
        }
    }
}

/// One model version. See the [module documentation](self).
#[derive(Default)]
pub struct Version {
    /// Its series, while it holds a place under `--limits.versions`. A
    /// version without is one whose windows alone are kept: restored from a
    /// snapshot, or given a label joined after its series were forgotten.
    pub(super) series: Option<Series>,
    /// Its windows as a whole; `None` until it sends something other than
    /// feedback, and once they are dropped.
    pub(super) windows: Option<Windows>,
    pub(super) features: Capped<Feature>,
    /// For each position of the last inference's features, where that
    /// feature's own entry is in `features` (`usize::MAX`: it has none):
    /// the next event, which usually sends the same features in the same
    /// order, compares names instead of hashing.
    feature_order: Vec<usize>,
    /// For each feature an event must carry ([`Expectations::required`]),
    /// the number of the last inference that carried it: an event carries
    /// them all when it stamped as many as there are.
    required_seen: Vec<u64>,
    /// Inferences applied, to stamp `required_seen` with.
    inferences: u64,
    pub(super) classes: Capped<Slot<IntCounter, SlidingWindow<u64>>>,
    pub(super) counters: Capped<Slot<Counter, SlidingWindow<Moments>>>,
    pub(super) errors: Capped<Slot<IntCounter>>,
    pub(super) logs: Capped<Slot<LevelCounters>>,
    /// A newer version of the model superseded this one
    /// ([`Version::retire`]).
    pub(super) retired: bool,
    /// The Holm-adjusted drift p-values of its features, worked out once
    /// per method, window and time read; dropped whenever the version is
    /// changed ([`Parts::changing`]).
    pub(super) adjusted: RefCell<AdjustedPvalues>,
}

impl Parts for Version {
    fn has_series(&self) -> bool {
        self.series.is_some()
    }

    fn has_windows(&self) -> bool {
        self.windows.is_some()
    }

    fn changing(&mut self) {
        self.adjusted.get_mut().clear();
    }
}

/// What applying an event to a version needs besides the event.
pub struct Context<'a> {
    /// Where the series are.
    pub metrics: &'a Metrics,
    /// The caps.
    pub limits: &'a Limits,
    /// The model's expectations.
    pub cfg: &'a ModelConfig,
    /// The model's configured references.
    pub refs: &'a ModelReferences,
    /// The model's data-quality expectations.
    pub expect: &'a Expectations,
    /// The shapes of the rings.
    pub spec: &'a WindowSpec,
    /// The model's declared features (admitted whatever the cap).
    pub declared: &'a super::declared::Names,
}

impl Context<'_> {
    /// Counts a label value folded into the overflow label.
    fn dropped(&self, label: &str) {
        self.metrics
            .series_dropped
            .with_label_values(&[label])
            .inc();
    }
}

/// The per-feature count indices of a verdict (the kind, and the reason of
/// an invalid value when it is counted apart), and its numeric value.
fn classify(validity: Validity) -> ([Option<usize>; 2], Option<f64>) {
    match validity {
        Validity::Valid(x) => ([Some(fidx::SEEN), None], x),
        Validity::Missing => ([Some(fidx::MISSING), None], None),
        Validity::Invalid(reason, x) => {
            let apart = match reason {
                InvalidReason::OutOfRange => Some(fidx::OUT_OF_RANGE),
                InvalidReason::UnseenCategory => Some(fidx::UNSEEN),
                InvalidReason::WrongType => None,
            };
            ([Some(fidx::INVALID), apart], x)
        }
    }
}

/// The bin of a value in a reference: categories by name, numbers (and
/// booleans, as 0/1) by value.
fn bin_in(reference: &Reference, value: &FeatureValue, numeric: Option<f64>) -> Option<usize> {
    match value {
        FeatureValue::Category(c) => reference.bin_category(c),
        _ => numeric.and_then(|x| reference.bin_number(x)),
    }
}

/// Notes that the feature at position `p` of an event is entry `i` (or
/// none: `usize::MAX`).
fn remember_position(order: &mut Vec<usize>, p: usize, i: usize) {
    if order.len() <= p {
        order.resize(p + 1, usize::MAX);
    }
    order[p] = i;
}

impl Version {
    /// Gives the version live series stamped `now`: a place under
    /// `--limits.versions` if it had none, and fresh handles if its series
    /// had expired.
    pub(super) fn stamp(&mut self, now: f64) {
        match &mut self.series {
            Some(s) if !s.expired => s.seen = now,
            _ => self.series = Some(Series::new(now)),
        }
    }

    /// Notes that the version sent something at `now`, giving it windows if
    /// it had none.
    pub(super) fn touch(&mut self, spec: &WindowSpec, now: f64) {
        self.windows_mut(spec).touch(now);
    }

    /// Its windows, given if it had none.
    pub(super) fn windows_mut(&mut self, spec: &WindowSpec) -> &mut Windows {
        self.windows.get_or_insert_with(|| Windows::new(spec))
    }

    /// Drops its windows, and those of its features, classes and counters.
    pub(super) fn drop_windows(&mut self) {
        self.windows = None;
        self.features.drop_windows();
        self.classes.drop_windows();
        self.counters.drop_windows();
    }

    fn series_mut(&mut self) -> &mut Series {
        self.series
            .as_mut()
            .expect("stamped before an event is applied")
    }

    /// Sets `model_last_event_timestamp_seconds` of the version `mv` to
    /// `now`, the time the event was received; a version that sends
    /// something is current again if it was retired.
    pub(super) fn set_last_event(&mut self, m: &Metrics, mv: [&str; 2], now: f64) {
        let was_retired = std::mem::take(&mut self.retired);
        let s = self.series_mut();
        s.last_event
            .get_or_insert_with(|| m.last_event.with_label_values(&mv))
            .set(now);
        if was_retired || s.retired.is_none() {
            s.retired
                .get_or_insert_with(|| m.retired.with_label_values(&mv))
                .set(0.0);
        }
    }

    /// Whether the version has sent nothing yet (or nothing since its
    /// windows were dropped): its next event makes it the current version.
    pub(super) fn is_new(&self) -> bool {
        self.windows
            .as_ref()
            .is_none_or(|w| !w.last_event.is_finite())
    }

    /// Retires the version `mv`: a newer version of its model superseded
    /// it. Silence rules no longer read it, and `model_version_retired`
    /// says so, until it sends something again.
    pub(super) fn retire(&mut self, m: &Metrics, mv: [&str; 2]) {
        if self.retired {
            return;
        }
        self.retired = true;
        if let Some(s) = self.series.as_mut().filter(|s| !s.expired) {
            s.retired
                .get_or_insert_with(|| m.retired.with_label_values(&mv))
                .set(1.0);
        }
    }

    /// Counts a feedback event sent with the version `mv`.
    pub(super) fn count_feedback(&mut self, m: &Metrics, mv: [&str; 2]) {
        self.series_mut()
            .feedback
            .get_or_insert_with(|| m.feedback.with_label_values(&mv))
            .inc();
    }

    /// Applies a log event of the version `mv`, stamped and touched, at
    /// `now`.
    pub(super) fn record_log(
        &mut self,
        cx: &Context,
        [model, version]: [&str; 2],
        l: &LogLine,
        now: f64,
    ) {
        let m = cx.metrics;
        let i = self.logs.series_index(
            &l.component,
            (cx.limits.components, false),
            now,
            || cx.dropped("component"),
            |_| LevelCounters::default(),
        );
        let (component, slot) = self.logs.at_mut(i);
        let (counter, seen) = slot.series_mut()[l.level as usize].get_or_insert_with(|| {
            let c = m.log_events.with_label_values(&[
                model,
                version,
                l.level.as_str(),
                component.as_str(),
            ]);
            (c, now)
        });
        *seen = now;
        counter.inc();
        let w = self
            .windows
            .as_mut()
            .expect("touched before a log is applied");
        *w.logs[l.level as usize].current_mut(now) += 1;
    }

    /// Applies an inference of the version `mv`, stamped and touched, at
    /// `now`. The aggregator that owns the model is the only writer of its
    /// series (see [`shards`](super::shards)), so the hot ones are written
    /// with the `_owned` methods: a load and a store, no locked
    /// instruction.
    pub(super) fn record_inference(
        &mut self,
        cx: &Context,
        mv: [&str; 2],
        i: &Inference,
        now: f64,
    ) {
        let (m, limits, cfg) = (cx.metrics, cx.limits, cx.cfg);
        let [model, version] = mv;
        let series = self
            .series
            .as_mut()
            .expect("stamped before an event is applied");
        let w = self
            .windows
            .as_mut()
            .expect("touched before an inference is applied");
        let c = w.counts.current_mut(now);
        c.incr(idx::REQUESTS);
        let (ok, err) = series.requests.get_or_insert_with(|| {
            (
                m.requests.with_label_values(&[model, version, "ok"]),
                m.requests.with_label_values(&[model, version, "error"]),
            )
        });
        if i.ok {
            ok.inc_owned();
        } else {
            err.inc();
            c.incr(idx::ERRORS);
            let class = i.error.as_deref().unwrap_or("unknown");
            self.errors
                .series(
                    class,
                    limits.errors,
                    now,
                    || cx.dropped("error"),
                    |e| m.request_errors.with_label_values(&[model, version, e]),
                )
                .inc();
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
            series
                .duration
                .get_or_insert_with(|| m.request_duration.with_label_values(&mv))
                .observe_owned(l);
            w.latency.current_mut(now).insert(l);
        }
        match &i.prediction {
            Some(Outcome::Number(p)) => {
                series
                    .prediction
                    .get_or_insert_with(|| m.prediction_value.with_label_values(&mv))
                    .observe_owned(*p);
                w.prediction.current_mut(now).insert(*p);
            }
            Some(Outcome::Class(class)) => {
                let (s, win) = self.classes.both(
                    class,
                    (limits.classes, limits.features, false),
                    now,
                    || cx.dropped("class"),
                    |c| m.predictions.with_label_values(&[model, version, c]),
                    || cx.spec.ring(),
                );
                self.classes.at_mut(s).1.series_mut().inc();
                if let Some(win) = win {
                    *self.classes.at_mut(win).1.windows_mut().current_mut(now) += 1;
                }
            }
            None => {}
        }
        if let Some(conf) = i.confidence {
            series
                .confidence
                .get_or_insert_with(|| m.prediction_confidence.with_label_values(&mv))
                .observe_owned(conf);
            w.confidence.current_mut(now).insert(conf);
        }
        if let (Some(r), Some(p)) = (&cx.refs.prediction, &i.prediction) {
            let bin = match p {
                Outcome::Number(x) => r.bin_number(*x),
                Outcome::Class(c) => r.bin_category(c),
            };
            if let Some(b) = bin {
                w.prediction_bins.current_mut(now).add(b, 1);
                w.prediction_recent.push(b);
            }
        }
        if i.cpu_ratio.is_some() || i.memory_ratio.is_some() {
            let (cpu, mem) = series.resources.get_or_insert_with(|| {
                (
                    m.resource.with_label_values(&[model, version, "cpu"]),
                    m.resource.with_label_values(&[model, version, "memory"]),
                )
            });
            if let Some(x) = i.cpu_ratio {
                cpu.set(x);
                w.resources[0].current_mut(now).insert(x);
            }
            if let Some(x) = i.memory_ratio {
                mem.set(x);
                w.resources[1].current_mut(now).insert(x);
            }
        }
        let required = cx.expect.required();
        self.inferences += 1;
        if self.required_seen.len() != required.len() {
            self.required_seen.resize(required.len(), 0);
        }
        let mut carried = 0;
        for (p, (name, value)) in i.features.iter().enumerate() {
            let known = self
                .features
                .at_position(self.feature_order.get(p), name)
                .filter(|&k| {
                    let f = self.features.at(k).1;
                    f.series.is_some() && f.windows.is_some()
                });
            let (s, win) = match known {
                Some(k) => {
                    self.features.at_mut(k).1.stamp(now);
                    (k, Some(k))
                }
                None => self.find_feature(cx, p, name, now),
            };
            let expect = cx.expect.get(name);
            if let Some(r) = expect.and_then(|e| e.required)
                && self.required_seen[r] != self.inferences
            {
                self.required_seen[r] = self.inferences;
                carried += 1;
            }
            self.record_feature(cx, mv, (s, win), (name, expect), value, now);
        }
        if carried < required.len() {
            for (r, name) in required.iter().enumerate() {
                if self.required_seen[r] != self.inferences {
                    self.record_absent(cx, mv, name, now);
                }
            }
        }
        for (name, v) in &i.counters {
            let (s, win) = self.counters.both(
                name,
                (limits.counters, limits.features, false),
                now,
                || cx.dropped("counter"),
                |n| m.counter.with_label_values(&[model, version, n]),
                || cx.spec.ring(),
            );
            self.counters.at_mut(s).1.series_mut().inc_by(*v);
            if let Some(win) = win {
                self.counters
                    .at_mut(win)
                    .1
                    .windows_mut()
                    .current_mut(now)
                    .insert(*v);
            }
        }
    }

    /// Where the series and the windows of feature `name` are (see
    /// [`Capped::both`]), given if there is room under the cap on features
    /// or the feature is declared.
    fn feature_entries(&mut self, cx: &Context, name: &str, now: f64) -> (usize, Option<usize>) {
        let cap = cx.limits.features;
        self.features.both(
            name,
            (cap, cap, cx.declared.contains(name)),
            now,
            || cx.dropped("feature"),
            |_| FeatureHandles::default(),
            || FeatureWindows::new(cx.spec),
        )
    }

    /// Counts feature `name`, which the event should have carried, as
    /// missing.
    #[cold]
    fn record_absent(&mut self, cx: &Context, [model, version]: [&str; 2], name: &str, now: f64) {
        let (s, win) = self.feature_entries(cx, name, now);
        let (key, slot) = self.features.at_mut(s);
        slot.series_mut()
            .missing
            .get_or_insert_with(|| {
                cx.metrics
                    .feature_missing
                    .with_label_values(&[model, version, key.as_str()])
            })
            .inc();
        if let Some(win) = win {
            let f = self.features.at_mut(win).1.windows_mut();
            f.counts.current_mut(now).incr(fidx::MISSING);
        }
    }

    /// Where the series and the windows of feature `name`, at position `p`
    /// of the event, are (see [`Capped::both`]); remembers where its own
    /// entry is for the next event.
    #[cold]
    fn find_feature(
        &mut self,
        cx: &Context,
        p: usize,
        name: &str,
        now: f64,
    ) -> (usize, Option<usize>) {
        let (s, win) = self.feature_entries(cx, name, now);
        let own = match win {
            Some(win) => win,
            None if self.features.at(s).0.as_str() == name => s,
            None => usize::MAX,
        };
        remember_position(&mut self.feature_order, p, own);
        (s, win)
    }

    /// Records one feature value, checked against `expect`: into the
    /// series of entry `s` (the feature's own, or the overflow entry) and
    /// the windows of entry `win` (the feature's own, if it is windowed).
    fn record_feature(
        &mut self,
        cx: &Context,
        [model, version]: [&str; 2],
        (s, win): (usize, Option<usize>),
        (name, expect): (&str, Option<&Expectation>),
        value: &FeatureValue,
        now: f64,
    ) {
        let m = cx.metrics;
        let validity = validate(value, expect);
        let (counts, numeric) = classify(validity);
        let configured = cx.refs.features.get(name);
        let bin = configured.and_then(|r| bin_in(r, value, numeric));
        let (key, slot) = self.features.at_mut(s);
        let labels = [model, version, key.as_str()];
        let f = slot.series_mut();
        if let Validity::Invalid(reason, _) = validity {
            f.invalid[reason as usize]
                .get_or_insert_with(|| {
                    m.feature_invalid.with_label_values(&[
                        labels[0],
                        labels[1],
                        labels[2],
                        reason.as_str(),
                    ])
                })
                .inc();
        }
        match (value, validity) {
            (_, Validity::Missing) => f
                .missing
                .get_or_insert_with(|| m.feature_missing.with_label_values(&labels))
                .inc(),
            (FeatureValue::Category(c), _) => f
                .categories
                .series(
                    c,
                    cx.limits.categories,
                    now,
                    || cx.dropped("category"),
                    |c| {
                        m.feature_category
                            .with_label_values(&[labels[0], labels[1], labels[2], c])
                    },
                )
                .inc(),
            (_, Validity::Valid(Some(x)) | Validity::Invalid(_, Some(x))) => f
                .value
                .get_or_insert_with(|| {
                    // The reference's bins, so that Prometheus can compare
                    // (and sum across pods) bin by bin.
                    let buckets = configured
                        .and_then(|r| r.edges())
                        .filter(|e| crate::export::metrics::validate_buckets(e).is_ok())
                        .unwrap_or(&m.feature_buckets);
                    m.feature_value.member(&labels, buckets)
                })
                .observe_owned(x),
            _ => {}
        }
        // Not into the overflow entry: its values have other references.
        if let (Some(b), Some(r)) = (bin, configured)
            && labels[2] == name
        {
            if f.bins.is_empty() {
                f.bins = (0..r.bins())
                    .map(|i| {
                        let bin = i.to_string();
                        m.feature_bin
                            .with_label_values(&[labels[0], labels[1], labels[2], &bin])
                    })
                    .collect();
            }
            if let Some(c) = f.bins.get(b) {
                c.inc_owned();
            }
        }
        let Some(win) = win else { return };
        let f = self.features.at_mut(win).1.windows_mut();
        let slice = f.counts.current_mut(now);
        for i in counts.into_iter().flatten() {
            slice.incr(i);
        }
        if let Some(x) = numeric {
            f.values.current_mut(now).insert(x);
        }
        let bin = match (configured, &f.learned) {
            (Some(_), _) => bin,
            (None, Some(learned)) => bin_in(learned, value, numeric),
            (None, None) => {
                if let (Some(n), Some(x)) = (cx.cfg.learn_reference, numeric) {
                    f.learn(x, n);
                }
                None
            }
        };
        if let Some(b) = bin {
            let spec = cx.spec;
            f.bins
                .get_or_insert_with(|| spec.feature_ring())
                .current_mut(now)
                .add(b, 1);
            f.recent.push(b);
        }
    }

    /// Forgets the series shaped by the reference of each feature whose
    /// configured reference differs between `before` and `after` (its bin
    /// counters, and its value histogram, whose buckets are the reference's
    /// edges), so that they start again, from zero, shaped by the new
    /// reference at the feature's next value.
    pub(super) fn forget_reference_series(
        &mut self,
        m: &Metrics,
        [model, version]: [&str; 2],
        (before, after): (&ModelReferences, &ModelReferences),
    ) {
        self.features.retain(|name, slot| {
            let Some(f) = &mut slot.series else { return };
            if before.features.get(name.as_str()) == after.features.get(name.as_str()) {
                return;
            }
            forget_bins(m, [model, version, name.as_str()], &mut f.v);
            if let Some(h) = f.v.value.take() {
                m.feature_value.remove(&h);
            }
        });
    }
}

/// Removes the bin counters of one feature (`labels`: model, version,
/// feature).
pub(super) fn forget_bins(m: &Metrics, labels: [&str; 3], f: &mut FeatureHandles) {
    for i in 0..std::mem::take(&mut f.bins).len() {
        let bin = i.to_string();
        let _ = m
            .feature_bin
            .remove_label_values(&[labels[0], labels[1], labels[2], &bin]);
    }
}

impl<S, W> Slot<S, W> {
    /// Stamps the series, if any, with `now`.
    fn stamp(&mut self, now: f64) {
        if let Some(Stamped { seen, .. }) = &mut self.series {
            *seen = now;
        }
    }

    /// The series, which the caller found or gave.
    fn series_mut(&mut self) -> &mut S {
        &mut self.series.as_mut().expect("found or given").v
    }

    /// The windows, which the caller found or gave.
    fn windows_mut(&mut self) -> &mut W {
        self.windows.as_mut().expect("found or given")
    }
}

impl<S, W> Capped<Slot<S, W>> {
    /// Where the series and the windows of `key` are, with the caps
    /// `(series, windows, declared)` (a declared key passes both):
    /// [`Capped::series_index`] and
    /// [`Capped::windows_index`], found with one lookup when the entry has
    /// both.
    fn both(
        &mut self,
        key: &str,
        (series_cap, windows_cap, declared): (usize, usize, bool),
        now: f64,
        dropped: impl FnOnce(),
        make_series: impl FnOnce(&str) -> S,
        make_windows: impl FnOnce() -> W,
    ) -> (usize, Option<usize>) {
        let found = self.index_of(key);
        let (has_series, has_windows) = match found {
            Some(i) => {
                let slot = self.at_mut(i).1;
                slot.stamp(now);
                (slot.series.is_some(), slot.windows.is_some())
            }
            None => (false, false),
        };
        let s = match found {
            Some(i) if has_series => i,
            _ => self.series_index(key, (series_cap, declared), now, dropped, make_series),
        };
        let w = match found {
            Some(i) if has_windows => Some(i),
            _ => self.windows_index(key, (windows_cap, declared), make_windows),
        };
        (s, w)
    }
}
