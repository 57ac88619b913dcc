//! The windows in a snapshot (`--storage.path`): what is written, and how
//! it is put back so that readings after a restart are those before it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FeatureWindows, WindowSpec, Windows, fidx};
use crate::aggregate::capped::{Capped, Slot};
use crate::aggregate::join::{FeedbackJoiner, JoinerState};
use crate::aggregate::quality::QualityState;
use crate::aggregate::snapshot::RestoreReport;
use crate::aggregate::store::Store;
use crate::aggregate::version::Version;
use crate::ingest::name::Name;
use crate::stats::F64;
use crate::stats::reference::{ModelReferences, Reference};
use crate::stats::sketch::SketchState;
use crate::stats::window::{Moments, MomentsState, RingState, SliceState, SlidingWindow};

/// A learned numeric reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceState {
    /// `k + 1` edges.
    pub edges: Vec<F64>,
    /// `k + 2` proportions.
    pub proportions: Vec<F64>,
    /// Mean of the values it was learned from.
    pub mean: F64,
    /// Their standard deviation.
    pub std: F64,
    /// How many values it was learned from (absent in older snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The windows of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureState {
    /// Moments of its numeric values.
    #[serde(default)]
    pub values: Option<RingState<MomentsState>>,
    /// Seen, missing and invalid counts, then the invalid ones out of
    /// range and unseen (three counters in snapshots written before those
    /// two were counted).
    #[serde(default)]
    pub counts: Option<RingState<Vec<u64>>>,
    /// Live bins against its reference.
    #[serde(default)]
    pub bins: Option<RingState<Vec<u64>>>,
    /// Values collected towards a learned reference.
    #[serde(default)]
    pub learning: Vec<F64>,
    /// The learned reference.
    #[serde(default)]
    pub learned: Option<ReferenceState>,
}

/// The windows of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelWindowsState {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Fingerprint of the configured references the drift bins were counted
    /// against; bins are dropped on restore if the references changed.
    pub references: u64,
    /// When it last sent anything; `None` for never.
    #[serde(default)]
    pub last_event: Option<F64>,
    /// When it was trained.
    #[serde(default)]
    pub trained_at: Option<F64>,
    /// Requests, errors, predictions, confidences and their breakdowns.
    #[serde(default)]
    pub counts: Option<RingState<Vec<u64>>>,
    /// Latency sketches.
    #[serde(default)]
    pub latency: Option<RingState<SketchState>>,
    /// Numeric predictions.
    #[serde(default)]
    pub prediction: Option<RingState<MomentsState>>,
    /// Confidences.
    #[serde(default)]
    pub confidence: Option<RingState<MomentsState>>,
    /// Per prediction class.
    #[serde(default)]
    pub classes: BTreeMap<String, RingState<u64>>,
    /// Per feature.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureState>,
    /// Per business counter.
    #[serde(default)]
    pub counters: BTreeMap<String, RingState<MomentsState>>,
    /// Per log level, debug to critical.
    #[serde(default)]
    pub logs: Vec<Option<RingState<u64>>>,
    /// CPU and memory.
    #[serde(default)]
    pub resources: Vec<Option<RingState<MomentsState>>>,
    /// Prediction quality of joined labels.
    #[serde(default)]
    pub quality: Option<RingState<QualityState>>,
    /// Live bins of the prediction against its reference.
    #[serde(default)]
    pub prediction_bins: Option<RingState<Vec<u64>>>,
}

/// Every window, and the feedback awaiting its join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreState {
    /// Width of the slices, in seconds. Windows of another width are not
    /// restored.
    pub slice_seconds: f64,
    /// Longest window a rule reads, in seconds.
    pub span_seconds: f64,
    /// Longest window of a latency rule, in seconds.
    pub latency_span_seconds: f64,
    /// Every model version, sorted.
    pub models: Vec<ModelWindowsState>,
    /// Predictions awaiting their label.
    pub feedback: JoinerState,
}

/// A copy of the windows, taken on the aggregator thread and turned into a
/// [`StoreState`] elsewhere.
pub struct StoreCapture {
    spec: WindowSpec,
    models: Vec<VersionCapture>,
    feedback: FeedbackJoiner,
}

/// A copy of the windows of one model version.
struct VersionCapture {
    model: String,
    version: String,
    /// [`fingerprint`] of the model's configured references.
    references: u64,
    windows: Windows,
    features: Vec<(Name, FeatureWindows)>,
    classes: Vec<(Name, SlidingWindow<u64>)>,
    counters: Vec<(Name, SlidingWindow<Moments>)>,
}

impl StoreCapture {
    /// The state to write.
    pub fn to_state(&self) -> StoreState {
        StoreState {
            slice_seconds: self.spec.slice.as_secs_f64(),
            span_seconds: self.spec.span.as_secs_f64(),
            latency_span_seconds: self.spec.latency_span.as_secs_f64(),
            models: self.models.iter().map(VersionCapture::to_state).collect(),
            feedback: self.feedback.to_state(),
        }
    }
}

/// 64-bit FNV-1a, stable across builds (unlike the standard hasher).
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    fn floats(&mut self, xs: &[f64]) {
        self.u64(xs.len() as u64);
        for x in xs {
            self.u64(x.to_bits());
        }
    }

    fn reference(&mut self, r: &Reference) {
        match r {
            Reference::Numeric {
                edges, proportions, ..
            } => {
                self.u64(1);
                self.floats(edges);
                self.floats(proportions);
            }
            Reference::Categorical {
                index, proportions, ..
            } => {
                self.u64(2);
                let mut cats: Vec<(&String, &usize)> = index.iter().collect();
                cats.sort();
                self.u64(cats.len() as u64);
                for (c, i) in cats {
                    self.str(c);
                    self.u64(*i as u64);
                }
                self.floats(proportions);
            }
        }
    }
}

/// A fingerprint of the bins of a model's configured references: equal
/// fingerprints mean that drift bins counted against one line up with the
/// other.
pub fn fingerprint(r: &ModelReferences) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    let mut names: Vec<&String> = r.features.keys().collect();
    names.sort();
    h.u64(names.len() as u64);
    for n in names {
        h.str(n);
        h.reference(&r.features[n]);
    }
    match &r.prediction {
        Some(p) => {
            h.u64(1);
            h.reference(p);
        }
        None => h.u64(0),
    }
    h.0
}

fn finite(x: f64) -> Option<F64> {
    x.is_finite().then_some(F64(x))
}

fn reference_state(r: &Reference) -> Option<ReferenceState> {
    match r {
        Reference::Numeric {
            edges,
            proportions,
            mean,
            std,
            ..
        } => Some(ReferenceState {
            edges: edges.iter().map(|&x| F64(x)).collect(),
            proportions: proportions.iter().map(|&x| F64(x)).collect(),
            mean: F64(*mean),
            std: F64(*std),
            count: r.count(),
        }),
        Reference::Categorical { .. } => None,
    }
}

/// Restores one ring, noting why if it cannot be.
fn put<T: SliceState>(
    ring: &mut SlidingWindow<T>,
    state: Option<RingState<T::State>>,
    now: f64,
    what: impl FnOnce() -> String,
    report: &mut RestoreReport,
) {
    let Some(state) = state else { return };
    match ring.restore(state, now) {
        Ok(n) => report.slices += n,
        Err(e) => report.drop_note(format!("{}: {e}", what())),
    }
}

/// What restoring one model version needs to know besides its state.
struct RestoreContext<'a> {
    spec: WindowSpec,
    refs: &'a ModelReferences,
    /// Whether the configured references are those the bins were counted
    /// against.
    same_refs: bool,
    cap: usize,
    /// The model's declared features, restored whatever the cap.
    declared: &'a crate::aggregate::declared::Names,
    learn: Option<usize>,
    now: f64,
    label: &'a str,
}

/// The windows of a capped map, copied.
fn copy<S, W: Clone>(map: &Capped<Slot<S, W>>) -> Vec<(Name, W)> {
    map.iter()
        .filter_map(|(k, s)| Some((k.clone(), s.windows.clone()?)))
        .collect()
}

impl VersionCapture {
    fn new(model: &str, version: &str, references: u64, v: &Version, w: &Windows) -> Self {
        VersionCapture {
            model: model.to_owned(),
            version: version.to_owned(),
            references,
            windows: w.clone(),
            features: copy(&v.features),
            classes: copy(&v.classes),
            counters: copy(&v.counters),
        }
    }

    fn to_state(&self) -> ModelWindowsState {
        fn map<T: SliceState>(
            m: &[(Name, SlidingWindow<T>)],
        ) -> BTreeMap<String, RingState<T::State>> {
            m.iter()
                .filter_map(|(k, w)| Some((k.to_string(), w.to_state()?)))
                .collect()
        }
        let w = &self.windows;
        ModelWindowsState {
            model: self.model.clone(),
            version: self.version.clone(),
            references: self.references,
            last_event: finite(w.last_event),
            trained_at: w.trained_at.map(F64),
            counts: w.counts.to_state(),
            latency: w.latency.to_state(),
            prediction: w.prediction.to_state(),
            confidence: w.confidence.to_state(),
            classes: map(&self.classes),
            features: self
                .features
                .iter()
                .map(|(name, f)| {
                    let state = FeatureState {
                        values: f.values.to_state(),
                        counts: f.counts.to_state(),
                        bins: f.bins.as_ref().and_then(SlidingWindow::to_state),
                        learning: f.learning.iter().map(|&x| F64(x)).collect(),
                        learned: f.learned.as_ref().and_then(reference_state),
                    };
                    (name.to_string(), state)
                })
                .collect(),
            counters: map(&self.counters),
            logs: w.logs.iter().map(SlidingWindow::to_state).collect(),
            resources: w.resources.iter().map(SlidingWindow::to_state).collect(),
            quality: w.quality.to_state(),
            prediction_bins: w.prediction_bins.to_state(),
        }
    }
}

impl Version {
    /// Gives the version (which has none) the windows of `s`, noting in
    /// `report` what is left out.
    fn restore_windows(
        &mut self,
        s: ModelWindowsState,
        cx: &RestoreContext,
        report: &mut RestoreReport,
    ) {
        let spec = cx.spec;
        let now = cx.now;
        let at = |what: &str| format!("{} {what}", cx.label);
        let w = self.windows_mut(&spec);
        w.last_event = s.last_event.map_or(f64::NEG_INFINITY, |t| t.0);
        // Series expiry (`--metrics.ttl`) reads the last write; the last
        // event stands for it, so a restored version ages from there.
        w.last_write = w.last_event;
        w.trained_at = s.trained_at.map(|t| t.0);
        put(&mut w.counts, s.counts, now, || at("counts"), report);
        put(&mut w.latency, s.latency, now, || at("latency"), report);
        put(
            &mut w.prediction,
            s.prediction,
            now,
            || at("prediction"),
            report,
        );
        put(
            &mut w.confidence,
            s.confidence,
            now,
            || at("confidence"),
            report,
        );
        put(&mut w.quality, s.quality, now, || at("quality"), report);
        for (i, ring) in s.logs.into_iter().enumerate().take(w.logs.len()) {
            put(&mut w.logs[i], ring, now, || at("logs"), report);
        }
        for (i, ring) in s.resources.into_iter().enumerate().take(w.resources.len()) {
            put(&mut w.resources[i], ring, now, || at("resources"), report);
        }
        let mut bins_dropped = false;
        if cx.same_refs {
            put(
                &mut w.prediction_bins,
                s.prediction_bins,
                now,
                || at("prediction drift bins"),
                report,
            );
        } else {
            bins_dropped |= s.prediction_bins.is_some();
        }
        let mut capped = 0usize;
        for (name, ring) in s.classes {
            match self.classes.windows(&name, (cx.cap, false), || spec.ring()) {
                Some(r) => put(r, Some(ring), now, || at(&format!("class {name}")), report),
                None => capped += 1,
            }
        }
        for (name, ring) in s.counters {
            match self
                .counters
                .windows(&name, (cx.cap, false), || spec.ring())
            {
                Some(r) => put(
                    r,
                    Some(ring),
                    now,
                    || at(&format!("counter {name}")),
                    report,
                ),
                None => capped += 1,
            }
        }
        for (name, fs) in s.features {
            let Some(f) =
                self.features
                    .windows(&name, (cx.cap, cx.declared.contains(&name)), || {
                        FeatureWindows::new(&spec)
                    })
            else {
                capped += 1;
                continue;
            };
            let what = |part: &str| at(&format!("feature {name} {part}"));
            put(&mut f.values, fs.values, now, || what("values"), report);
            let counts = fs.counts.map(widen_feature_counts);
            put(&mut f.counts, counts, now, || what("counts"), report);
            f.learned = fs.learned.and_then(|r| {
                let learned = Reference::numeric(
                    r.edges.iter().map(|x| x.0).collect(),
                    r.proportions.iter().map(|x| x.0).collect(),
                    r.mean.0,
                    r.std.0,
                )?;
                Some(match r.count {
                    Some(n) => learned.with_count(n),
                    None => learned,
                })
            });
            if f.learned.is_none()
                && let Some(n) = cx.learn
            {
                f.learning = fs
                    .learning
                    .iter()
                    .map(|x| x.0)
                    .take(n.saturating_sub(1))
                    .collect();
            }
            // Bins against a learned reference travel with it; bins against a
            // configured one only while it is unchanged.
            let configured = cx.refs.features.contains_key(&name);
            let usable = if configured {
                cx.same_refs
            } else {
                f.learned.is_some()
            };
            match fs.bins {
                Some(b) if usable => {
                    let ring = f.bins.get_or_insert_with(|| spec.feature_ring());
                    put(ring, Some(b), now, || what("drift bins"), report);
                }
                Some(_) => bins_dropped = true,
                None => {}
            }
        }
        if bins_dropped {
            report.drop_note(format!(
                "{}: drift bins (their reference changed or is missing)",
                cx.label
            ));
        }
        if capped > 0 {
            report.drop_note(format!(
                "{}: {capped} features, classes or counters past --limits.features",
                cx.label
            ));
        }
    }
}

impl Store {
    /// A copy of every window and of the feedback awaiting its join, for a
    /// snapshot. Costs about as much as the memory the windows hold.
    pub fn capture(&self) -> StoreCapture {
        let mut models = Vec::new();
        for (m, model) in self.models.iter() {
            let references = fingerprint(self.refs.of(m));
            for (v, version) in model.versions.iter() {
                if let Some(w) = &version.windows {
                    models.push(VersionCapture::new(m, v, references, version, w));
                }
            }
        }
        models.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
        StoreCapture {
            spec: self.spec,
            models,
            feedback: self.joiner.clone(),
        }
    }

    /// Puts back the windows and pending feedback of a snapshot, as of
    /// `now`, into a store that has recorded nothing yet. At most
    /// `max_models` models and `max_versions` versions of each are
    /// restored, and features, classes and counters within the store's cap.
    pub fn restore(
        &mut self,
        state: StoreState,
        max_models: usize,
        max_versions: usize,
        now: f64,
        report: &mut RestoreReport,
    ) {
        let join = self.joiner.restore(state.feedback);
        report.pending_feedback += join.pending;
        if join.dropped > 0 {
            report.drop_note(format!(
                "{} predictions awaiting their label or recent joins: their keys were made by another hash than {}",
                join.dropped,
                crate::aggregate::join::KEY_SCHEME
            ));
        }
        let width = self.spec.slice.as_secs_f64();
        if state.slice_seconds != width {
            report.drop_note(format!(
                "every window: the slice width changed from {}s to {width}s with the rules' windows",
                state.slice_seconds
            ));
            return;
        }
        let mut skipped = 0usize;
        for s in state.models {
            let model = self.models.get(&s.model);
            let known = model.is_some_and(|m| m.versions.windows_places() > 0);
            if !known
                && self.models.windows_places() >= max_models
                && !self.declared.model(&s.model)
            {
                skipped += 1;
                continue;
            }
            let full = model.is_some_and(|m| {
                m.versions
                    .get(&s.version)
                    .is_some_and(|v| v.windows.is_some())
                    || m.versions.windows_places() >= max_versions
            });
            if full || max_versions == 0 {
                skipped += 1;
                continue;
            }
            let refs = self.refs.of(&s.model);
            let label = format!("{}/{}", s.model, s.version);
            let cx = RestoreContext {
                spec: self.spec,
                same_refs: fingerprint(refs) == s.references,
                refs,
                cap: self.limits.features,
                declared: self.declared.features(&s.model),
                learn: self.config.model(&s.model).and_then(|c| c.learn_reference),
                now,
                label: &label,
            };
            let version = s.version.clone();
            let model = s.model.clone();
            crate::aggregate::store::enter(
                &mut self.models,
                &self.declared,
                &model,
                &version,
                |v| v.restore_windows(s, &cx, report),
            );
            report.series += 1;
        }
        if skipped > 0 {
            report.drop_note(format!(
                "{skipped} model versions past --limits.models or --limits.versions"
            ));
        }
    }
}

/// A feature's counts as snapshots before `out_of_range` and `unseen` were
/// counted apart wrote them (seen, missing, invalid) get those two at 0, so
/// that such a snapshot restores; other lengths are left to be refused.
fn widen_feature_counts(mut ring: RingState<Vec<u64>>) -> RingState<Vec<u64>> {
    for (_, counts) in &mut ring.slices {
        if counts.len() == fidx::OUT_OF_RANGE {
            counts.resize(fidx::N, 0);
        }
    }
    ring
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::aggregate::Limits;
    use crate::config::{Config, load};
    use crate::export::metrics::{Buckets, Metrics};
    use crate::ingest::parse::parse_event;
    use crate::rules::signal::{DriftMethod, DriftTarget, FeatureSel, Signal};
    use crate::rules::source::SignalSource;

    /// One rule per kind of signal, so that every window is shaped as in a
    /// real configuration and every signal can be read back.
    const RULES: &str = "
defaults: {window: 1m, evaluation_interval: 10s, min_samples: 1}
models:
  fraud:
    features:
      amount: {mean: 100, std: 50}
  learner:
    learn_reference: 20
groups:
  - name: g
    rules:
      - {alert: a01, expr: request_rate > 0}
      - {alert: a02, expr: error_rate > 0}
      - {alert: a03, expr: p99(latency) > 1s, window: 5m}
      - {alert: a04, expr: p50(latency) > 1s}
      - {alert: a05, expr: mean(latency) > 1s}
      - {alert: a06, expr: max(latency) > 1s}
      - {alert: a07, expr: time_since_last_event > 1m}
      - {alert: a08, expr: positive_rate > 0}
      - {alert: a09, expr: low_confidence_rate > 0}
      - {alert: a10, expr: mean(prediction) > 0}
      - {alert: a11, expr: mean(confidence) > 0}
      - {alert: a12, expr: class_rate(spam) > 0}
      - {alert: a13, expr: mean(feature.amount) > 0}
      - {alert: a14, expr: stddev(feature.*) > 0}
      - {alert: a15, expr: zscore(feature.*) > 0}
      - {alert: a16, expr: missing_rate(feature.*) > 0}
      - {alert: a17, expr: invalid_rate(feature.*) > 0}
      - {alert: a18, expr: psi(feature.*) > 0}
      - {alert: a19, expr: ks(feature.*) > 0}
      - {alert: a20, expr: psi(prediction) > 0}
      - {alert: a21, expr: accuracy < 1}
      - {alert: a22, expr: mae > 0}
      - {alert: a23, expr: model_age > 0}
      - {alert: a24, expr: 'ratio(counter.clicks, counter.shown) > 0'}
      - {alert: a25, expr: rate(counter.shown) > 0}
      - {alert: a26, expr: rate(log.error) > 0}
      - {alert: a27, expr: mean(resource.cpu) > 0}
      - {alert: a28, expr: mean(resource.memory) > 0}
      - {alert: a29, expr: chi2_pvalue(feature.country) < 1}
      - {alert: a30, expr: out_of_range_rate(feature.*) > 0}
      - {alert: a31, expr: unseen_rate(feature.*) > 0}
";

    fn config(yaml: &str) -> Arc<Config> {
        Arc::new(load("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}")))
    }

    /// A store of `yaml` whose model `fraud` also has a prediction and a
    /// categorical reference.
    fn store(yaml: &str, cap: usize) -> Store {
        let mut s = Store::new(
            config(yaml),
            Limits {
                features: cap,
                ..Limits::default()
            },
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        );
        let mut refs = s.refs.of("fraud").clone();
        refs.prediction = Reference::normal(0.5, 0.2);
        refs.features.insert(
            "country".into(),
            Reference::categorical([("DE", 0.5), ("FR", 0.3)], 0.2).unwrap(),
        );
        s.refs.insert("fraud", refs);
        s
    }

    fn send(s: &mut Store, line: &str, now: f64) {
        s.record(&parse_event(line.as_bytes()).unwrap(), now);
    }

    /// Five minutes of varied traffic from `from`.
    fn traffic(s: &mut Store, from: f64, seconds: u32) {
        for i in 0..seconds * 4 {
            let t = from + f64::from(i) * 0.25;
            let k = f64::from(i % 17);
            send(
                s,
                &format!(
                    r#"{{"model":"fraud","version":"v1","id":"r{i}","latency_ms":{},"prediction":{},"confidence":{},"features":{{"amount":{},"country":"{}","age":{}}},"counters":{{"shown":3,"clicks":{}}},"resources":{{"cpu_percent":{}}}{}}}"#,
                    5.0 + k * 20.0,
                    k / 17.0,
                    1.0 - k / 20.0,
                    60.0 + k * 10.0,
                    ["DE", "FR", "US"][(i % 3) as usize],
                    if i % 5 == 0 {
                        "null".to_owned()
                    } else {
                        (20.0 + k).to_string()
                    },
                    i % 3,
                    10.0 + k,
                    if i % 7 == 0 {
                        r#","error":"timeout""#
                    } else {
                        ""
                    },
                ),
                t,
            );
            send(
                s,
                &format!(
                    r#"{{"model":"learner","prediction":"{}","features":{{"x":{k}}}}}"#,
                    if i % 4 == 0 { "spam" } else { "ham" }
                ),
                t,
            );
            if i % 3 == 0 {
                send(
                    s,
                    &format!(
                        r#"{{"type":"feedback","model":"fraud","id":"r{}","actual":{}}}"#,
                        i.saturating_sub(30),
                        i % 2
                    ),
                    t,
                );
                send(
                    s,
                    r#"{"type":"log","model":"fraud","version":"v1","level":"error"}"#,
                    t,
                );
            }
        }
        send(
            s,
            r#"{"type":"model","model":"fraud","version":"v1","trained_at":100}"#,
            from,
        );
    }

    /// Every reading of every rule's signal, per series and feature, over a
    /// few windows; NaN written as such so that equal readings compare equal.
    fn readings(s: &Store, now: f64) -> Vec<String> {
        let mut out = Vec::new();
        let rules: Vec<Signal> = s
            .config
            .groups
            .iter()
            .flat_map(|g| g.rules.iter().map(|r| r.expr.signal.clone()))
            .collect();
        for (m, v) in s.series() {
            for signal in &rules {
                let features: Vec<Option<String>> = if signal.is_per_feature() {
                    s.features(&m, &v).into_iter().map(Some).collect()
                } else {
                    vec![None]
                };
                for f in features {
                    for w in [10, 60, 300].map(Duration::from_secs) {
                        let r = s.read(&m, &v, signal, f.as_deref(), w, now);
                        out.push(format!("{m}/{v} {signal} {f:?} {w:?}: {r:?}"));
                    }
                }
            }
        }
        out
    }

    /// The state through JSON, as a snapshot file carries it.
    fn through_json(s: &Store) -> StoreState {
        let text = serde_json::to_string(&s.capture().to_state()).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// A reload whose rules need windows of another shape, but slices of
    /// the same width, carries every window over: each signal reads the
    /// same. Only a new slice width starts them afresh.
    #[test]
    fn a_reload_that_reshapes_the_windows_keeps_them() {
        // References from the configuration only, as a reload sees them.
        let mut s = Store::new(
            config(RULES),
            Limits {
                features: 100,
                ..Limits::default()
            },
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        );
        traffic(&mut s, 1000.0, 300);
        let now = 1300.0;
        let before = readings(&s, now);
        let pending = s.feedback_pending();
        let old = s.spec();
        let longer =
            format!("{RULES}      - {{alert: a32, expr: 'p50(latency) > 1s', window: 30m}}\n");
        s.set_config(config(&longer), now);
        assert_ne!(s.spec(), old);
        assert_eq!(s.spec().slice, old.slice);
        // a32 reads a signal a04 reads too: its readings come twice.
        let mut seen = std::collections::HashSet::new();
        let mut after = readings(&s, now);
        after.retain(|r| seen.insert(r.clone()));
        assert_eq!(after, before);
        assert!(
            before
                .iter()
                .any(|r| r.contains("psi(feature.*) Some(\"amount\")") && r.contains("value: Some")),
            "drift is compared too"
        );
        assert_eq!(s.feedback_pending(), pending);
        // Recording goes on into the reshaped windows.
        traffic(&mut s, 1310.0, 20);
        assert!(
            readings(&s, 1330.0)
                .iter()
                .any(|r| r.contains("request_rate") && r.contains("value: Some")),
        );
        // A shorter shortest window means narrower slices: afresh.
        let shorter =
            format!("{RULES}      - {{alert: a33, expr: 'request_rate > 0', window: 10s}}\n");
        s.set_config(config(&shorter), 1330.0);
        assert_ne!(s.spec().slice, old.slice);
        let r = s.read(
            "fraud",
            "v1",
            &Signal::ErrorRate,
            None,
            Duration::from_secs(60),
            1330.0,
        );
        assert_eq!(r.samples, 0, "{r:?}");
    }

    /// The bins of the newest values (`max_samples`) are not in the
    /// snapshot: after a restore a capped drift read is that of the whole
    /// restored window until the sidecar has seen `max_samples` values
    /// since, and from then on that of the newest ones, as if it had never
    /// stopped. The prediction's alike.
    #[test]
    fn capped_drift_reads_the_whole_window_after_a_restore_until_the_ring_fills() {
        const YAML: &str = "defaults: {window: 5m, evaluation_interval: 10s, min_samples: 0}
models:
  m:
    features:
      x: {mean: 0, std: 1}
groups:
  - name: g
    rules:
      - {alert: F, expr: psi(feature.*) > 0.2, max_samples: 50}
      - {alert: P, expr: psi(prediction) > 0.2, max_samples: 50}
";
        let mut a = store(YAML, 100);
        let mut refs = a.refs.of("m").clone();
        refs.prediction = Reference::normal(0.5, 0.2);
        a.refs.insert("m", refs.clone());
        let event = |i: u32, shift: f64| {
            let x = f64::from(i % 20) / 10.0 - 1.0 + shift;
            format!(
                r#"{{"model":"m","prediction":{},"features":{{"x":{x}}}}}"#,
                0.5 + x / 5.0
            )
        };
        for i in 0..200 {
            send(&mut a, &event(i, 0.0), 1000.0 + f64::from(i) * 0.5);
        }
        let mut b = store(YAML, 100);
        b.refs.insert("m", refs);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, 1100.0, &mut report);
        assert!(report.dropped.is_empty(), "{report:?}");
        let psi = |s: &Store, feature: bool, cap: Option<u64>, now: f64| {
            let target = if feature {
                DriftTarget::Feature(FeatureSel::Named("x".into()))
            } else {
                DriftTarget::Prediction
            };
            let signal = Signal::Drift {
                method: DriftMethod::Psi,
                target,
            };
            let w = Duration::from_secs(300);
            let r = s.read_capped("m", "", &signal, None, (w, cap), now);
            (r.value.unwrap(), r.samples)
        };
        for feature in [true, false] {
            // Right after the restore: the whole window, 200 values.
            assert_eq!(
                psi(&b, feature, Some(50), 1100.0),
                psi(&b, feature, None, 1100.0)
            );
            assert_eq!(psi(&b, feature, Some(50), 1100.0).1, 200);
            assert_eq!(psi(&a, feature, Some(50), 1100.0).1, 50);
        }
        // 49 drifted values since: the ring cannot hold the newest 50 yet.
        for i in 0..49 {
            for s in [&mut a, &mut b] {
                send(s, &event(i, 1.5), 1101.0 + f64::from(i) * 0.1);
            }
        }
        for feature in [true, false] {
            assert_eq!(
                psi(&b, feature, Some(50), 1110.0),
                psi(&b, feature, None, 1110.0)
            );
            assert_eq!(psi(&b, feature, Some(50), 1110.0).1, 249);
            assert_ne!(
                psi(&a, feature, Some(50), 1110.0),
                psi(&b, feature, Some(50), 1110.0)
            );
        }
        // The 50th: from now on both read the newest 50.
        for s in [&mut a, &mut b] {
            send(s, &event(49, 1.5), 1111.0);
        }
        for feature in [true, false] {
            let capped = psi(&a, feature, Some(50), 1112.0);
            assert_eq!(capped.1, 50);
            assert_eq!(psi(&b, feature, Some(50), 1112.0), capped);
            assert!(
                capped.0 > psi(&a, feature, None, 1112.0).0 * 2.0,
                "{capped:?}"
            );
        }
    }

    #[test]
    fn every_signal_reads_the_same_after_a_restore() {
        let mut a = store(RULES, 100);
        traffic(&mut a, 1000.0, 300);
        let now = 1300.0;
        let mut b = store(RULES, 100);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, now, &mut report);
        assert!(report.dropped.is_empty(), "{report:?}");
        assert_eq!(report.series, 2);
        assert!(report.slices > 500, "{report:?}");
        assert!(report.pending_feedback > 100, "{report:?}");
        let before = readings(&a, now);
        // Every kind of signal has a value to compare.
        for kind in [
            "p99(latency)",
            "psi(feature.*) Some(\"amount\")",
            "psi(feature.*) Some(\"x\")",
            "psi(prediction)",
            "chi2_pvalue(feature.country)",
            "accuracy",
            "model_age",
            "rate(log.error)",
            "mean(resource.cpu)",
            "ratio(counter.clicks, counter.shown)",
            "class_rate(spam)",
        ] {
            assert!(
                before
                    .iter()
                    .any(|r| r.contains(kind) && r.contains("value: Some")),
                "no value for {kind}:\n{}",
                before.join("\n")
            );
        }
        assert_eq!(readings(&b, now), before);
        // As time passes, and as both record the same events.
        for later in [1305.0, 1340.0, 1500.0] {
            assert_eq!(readings(&b, later), readings(&a, later), "at {later}");
        }
        traffic(&mut a, 1310.0, 20);
        traffic(&mut b, 1310.0, 20);
        assert_eq!(readings(&b, 1330.0), readings(&a, 1330.0));
        assert_eq!(
            b.feedback_stats().joined,
            a.feedback_stats().joined - {
                // The labels joined before the snapshot are not counted again.
                let mut c = store(RULES, 100);
                traffic(&mut c, 1000.0, 300);
                c.feedback_stats().joined
            }
        );
    }

    #[test]
    fn restored_versions_age_from_their_last_event_under_a_ttl() {
        // Without a silence rule, which would keep the newest version.
        let rules = RULES.replace("time_since_last_event > 1m", "request_rate > 1");
        let mut a = store(&rules, 100);
        traffic(&mut a, 1000.0, 300);
        let mut b = store(&rules, 100);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, 1310.0, &mut report);
        // Just after the restore nothing is idle long enough to go...
        let ttl = Duration::from_secs(60);
        assert!(b.sweep(ttl, 1310.0).windows.is_empty());
        assert!(b.get("fraud", "v1").is_some());
        // ...and once the version has been silent past the TTL and the
        // longest window, it goes as it would have without the restart.
        let later = 1300.0 + (b.spec().span + b.spec().slice).as_secs_f64() + 61.0;
        assert!(!b.sweep(ttl, later).windows.is_empty());
        assert!(b.get("fraud", "v1").is_none());
    }

    #[test]
    fn a_restore_long_after_the_snapshot_keeps_only_what_is_recent() {
        let mut a = store(RULES, 100);
        traffic(&mut a, 1000.0, 300);
        let mut b = store(RULES, 100);
        let mut report = RestoreReport::default();
        // Two minutes later: the 1m windows are empty, the 5m ones partly.
        b.restore(through_json(&a), 100, 20, 1420.0, &mut report);
        assert_eq!(readings(&b, 1420.0), readings(&a, 1420.0));
        let rate = |s: &Store, w: u64| {
            s.read(
                "fraud",
                "v1",
                &Signal::RequestRate,
                None,
                Duration::from_secs(w),
                1420.0,
            )
            .value
        };
        assert_eq!(rate(&b, 60), Some(0.0));
        assert!(rate(&b, 300).unwrap() > 0.0);
        // Much later: nothing of the windows is left, but the model's last
        // event and training time are.
        let mut c = store(RULES, 100);
        let mut report = RestoreReport::default();
        c.restore(through_json(&a), 100, 20, 9000.0, &mut report);
        assert_eq!(report.slices, 0);
        let since = c.read(
            "fraud",
            "v1",
            &Signal::TimeSinceLastEvent,
            None,
            Duration::from_secs(60),
            9000.0,
        );
        assert_eq!(since.value, Some(9000.0 - 1299.75));
    }

    #[test]
    fn feature_counts_of_older_snapshots_restore() {
        use crate::rules::signal::{FeatureSel, FeatureStat};
        let mut a = store(RULES, 100);
        traffic(&mut a, 1000.0, 60);
        // Snapshots written before out-of-range and unseen values were
        // counted apart had three counters a feature slice.
        let mut state = through_json(&a);
        for m in &mut state.models {
            for f in m.features.values_mut() {
                for (_, c) in f.counts.iter_mut().flat_map(|r| &mut r.slices) {
                    c.truncate(3);
                }
            }
        }
        let mut b = store(RULES, 100);
        let mut report = RestoreReport::default();
        b.restore(state, 100, 20, 1060.0, &mut report);
        assert!(report.dropped.is_empty(), "{report:?}");
        let read = |s: &Store, stat| {
            let signal = Signal::FeatureStat {
                stat,
                feature: FeatureSel::Named("age".into()),
            };
            s.read(
                "fraud",
                "v1",
                &signal,
                None,
                Duration::from_secs(60),
                1060.0,
            )
        };
        for stat in [FeatureStat::MissingRate, FeatureStat::InvalidRate] {
            assert_eq!(read(&b, stat), read(&a, stat), "{stat:?}");
        }
        assert!(read(&b, FeatureStat::MissingRate).value.unwrap() > 0.1);
        assert_eq!(read(&b, FeatureStat::OutOfRangeRate).value, Some(0.0));
    }

    #[test]
    fn changed_references_drop_only_the_drift_bins() {
        let mut a = store(RULES, 100);
        traffic(&mut a, 1000.0, 300);
        let changed = RULES.replace(
            "amount: {mean: 100, std: 50}",
            "amount: {mean: 200, std: 50}",
        );
        let mut b = store(&changed, 100);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, 1300.0, &mut report);
        assert_eq!(
            report.dropped,
            ["fraud/v1: drift bins (their reference changed or is missing)"]
        );
        let read = |s: &Store, sig: &str| {
            let signal = s
                .config
                .groups
                .iter()
                .flat_map(|g| &g.rules)
                .find(|r| r.expr.signal.to_string() == sig)
                .unwrap()
                .expr
                .signal
                .clone();
            s.read(
                "fraud",
                "v1",
                &signal,
                Some("amount"),
                Duration::from_secs(60),
                1300.0,
            )
        };
        assert_eq!(read(&b, "psi(feature.*)").samples, 0);
        assert!(read(&a, "psi(feature.*)").samples > 0);
        assert_eq!(
            read(&b, "mean(feature.amount)"),
            read(&a, "mean(feature.amount)")
        );
        // The learned reference of another model travels with its bins.
        let x = |s: &Store| {
            s.read(
                "learner",
                "",
                &Signal::Drift {
                    method: crate::rules::signal::DriftMethod::Psi,
                    target: crate::rules::signal::DriftTarget::Feature(
                        crate::rules::signal::FeatureSel::Named("x".into()),
                    ),
                },
                None,
                Duration::from_secs(60),
                1300.0,
            )
        };
        assert!(x(&a).value.is_some());
        assert_eq!(x(&b), x(&a));
    }

    #[test]
    fn other_slice_widths_and_limits_leave_windows_out() {
        let mut a = store(RULES, 100);
        traffic(&mut a, 1000.0, 30);
        // Shortest window 5m instead of 1m: slices of 10 s instead of 6 s.
        let wider = RULES.replace("window: 1m", "window: 5m");
        let mut b = store(&wider, 100);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, 1030.0, &mut report);
        assert_eq!(
            report.dropped,
            ["every window: the slice width changed from 6s to 10s with the rules' windows"]
        );
        assert!(b.series().is_empty());
        assert!(
            report.pending_feedback > 0,
            "feedback does not depend on windows"
        );
        // One model, one feature at most: the models and the feature the
        // rules declare pass the caps, the others are left out.
        let mut c = store(RULES, 1);
        let mut report = RestoreReport::default();
        c.restore(through_json(&a), 1, 20, 1030.0, &mut report);
        assert_eq!(
            c.series(),
            [
                ("fraud".to_owned(), "v1".to_owned()),
                ("learner".to_owned(), String::new())
            ]
        );
        assert_eq!(c.features("fraud", "v1"), ["age", "amount"]);
        assert_eq!(
            report.dropped,
            [
                "fraud/v1: 2 features, classes or counters past --limits.features",
                "learner/: 1 features, classes or counters past --limits.features"
            ]
        );
        // Without the declarations, the caps hold.
        let undeclared = RULES
            .replace("  fraud:\n", "  other:\n")
            .replace("  learner:\n", "  other2:\n");
        let mut d = store(&undeclared, 1);
        let mut report = RestoreReport::default();
        d.restore(through_json(&a), 1, 20, 1030.0, &mut report);
        assert_eq!(d.series(), [("fraud".to_owned(), "v1".to_owned())]);
        assert_eq!(d.features("fraud", "v1"), ["age"]);
        assert_eq!(
            report.dropped,
            [
                "fraud/v1: drift bins (their reference changed or is missing)",
                "fraud/v1: 3 features, classes or counters past --limits.features",
                "1 model versions past --limits.models or --limits.versions"
            ]
        );
    }

    /// The values of the signals no other test reads, worked out by hand
    /// for a minute of simple traffic, before and after a restore.
    #[test]
    fn signal_values_by_hand_survive_a_restore() {
        const SHOP: &str = "
defaults: {window: 1m, evaluation_interval: 10s, min_samples: 1}
models:
  shop:
    features:
      amount: {mean: 100, std: 50}
groups:
  - name: g
    rules:
      - {alert: zscore, expr: zscore(feature.amount) > 9}
      - {alert: stddev, expr: stddev(feature.amount) > 999}
      - {alert: mean, expr: mean(feature.amount) > 999}
      - {alert: invalid, expr: invalid_rate(feature.amount) > 1}
      - {alert: missing, expr: missing_rate(feature.amount) > 1}
      - {alert: spam, expr: class_rate(spam) > 1}
      - {alert: logs, expr: rate(log.error) > 99}
      - {alert: cpu, expr: mean(resource.cpu) > 1}
      - {alert: memory, expr: mean(resource.memory) > 1}
";
        // Slices are 6 s wide; the minute from 1200 (a slice boundary) to
        // 1260 is exactly the 1 m window at 1260.
        let mut a = store(SHOP, 100);
        let amounts = ["80", "100", "120", "140", r#""abc""#, "null"];
        let classes = ["spam", "ham", "ham", "spam", "ham", "ham"];
        for (k, (amount, class)) in amounts.iter().zip(classes).enumerate() {
            let t = 1200.0 + 10.0 * k as f64;
            send(
                &mut a,
                &format!(
                    r#"{{"model":"shop","version":"v1","prediction":"{class}","features":{{"amount":{amount}}},"resources":{{"cpu_percent":{},"memory_percent":50}}}}"#,
                    10 * (k + 1)
                ),
                t,
            );
            if k < 3 {
                send(
                    &mut a,
                    r#"{"type":"log","model":"shop","version":"v1","level":"error"}"#,
                    t + 1.0,
                );
            }
        }
        send(
            &mut a,
            r#"{"type":"log","model":"shop","version":"v1","level":"warning"}"#,
            1230.0,
        );
        let now = 1260.0;
        // Amounts 80, 100, 120, 140 (one a string, one null): mean 110,
        // population variance (30² + 10² + 10² + 30²) / 4 = 500.
        let want = [
            ("zscore", (110.0 - 100.0) / 50.0),
            ("stddev", 500f64.sqrt()),
            ("mean", 110.0),
            // Of the six events, "abc" is of the wrong type, null missing.
            ("invalid", 1.0 / 6.0),
            ("missing", 1.0 / 6.0),
            ("spam", 2.0 / 6.0),
            // Three error logs (the warning is another level) in 60 s.
            ("logs", 3.0 / 60.0),
            // 10 % to 60 %: a mean of 35 %, as a fraction.
            ("cpu", 0.35),
            ("memory", 0.5),
        ];
        let read = |s: &Store, alert: &str| {
            let rule = s.config.groups[0]
                .rules
                .iter()
                .find(|r| r.alert == alert)
                .unwrap();
            let signal = &rule.expr.signal;
            let feature = signal.is_per_feature().then_some("amount");
            s.read("shop", "v1", signal, feature, Duration::from_secs(60), now)
                .value
        };
        let mut b = store(SHOP, 100);
        let mut report = RestoreReport::default();
        b.restore(through_json(&a), 100, 20, now, &mut report);
        assert!(report.dropped.is_empty(), "{report:?}");
        for (alert, value) in want {
            for (which, s) in [("before", &a), ("restored", &b)] {
                let got = read(s, alert).unwrap_or_else(|| panic!("{alert}: no value {which}"));
                assert!(
                    (got - value).abs() <= 1e-12 * value.abs().max(1.0),
                    "{alert} {which}: {got}, want {value}"
                );
            }
        }
    }
}
