//! Series expiry (`--metrics.ttl`): what received no event for the ttl is
//! forgotten, like statsd_exporter's `ttl`. Off by default.
//!
//! Run on the aggregator thread at every tick
//! ([`Aggregator::evaluate`](super::Aggregator::evaluate)), with the
//! injected clock, as one sweep over the [`Store`]'s tree, each version in
//! turn:
//!
//! * A **model version** that received no event of any type for the ttl
//!   loses every series carrying its `model` and `version` labels: counters,
//!   histograms, `model_last_event_timestamp_seconds`, `model_info` and the
//!   timestamps of its `model` event, and the gauges computed from its
//!   windows (`model_window_*`, drift, `model_age_seconds`,
//!   `model_feedback_pending`). Its cached handles go with them. Counted once as `label="version"` (and `label="model"` when
//!   it was the model's last version with series).
//! * Within a version that is still alive, a **label value** (error class,
//!   class, feature, category, business counter, log component, and each
//!   level of a component) that received no event for the ttl loses its
//!   series and its handles, and frees its place under its cap. A feature
//!   goes as a whole (value histogram, missing, invalid and bin counters); its
//!   categories also go one by one. Series of the version itself
//!   (`model_requests_total`, the latency, prediction and confidence
//!   histograms, resources, feedback) live as long as the version.
//! * The **windows** the rules read are dropped once the version recorded
//!   nothing for the ttl and nothing is left in
//!   them for a rule to read, except for the newest version of a model while
//!   a rule reads `time_since_last_event`. Until then the rules read the
//!   version as before, so its `model_alerts` and `model_rule_signal_value`
//!   series follow the rules, not the ttl. Then the rules stop seeing the
//!   version, and its alerts resolve the usual way (a pending alert is
//!   dropped; a firing one resolves after its `keep_firing_for`).
//! * A version keeps its **place under `--limits.versions`** (and its model
//!   under `--limits.models`) until its series expired *and* its windows
//!   were dropped, so that the windows held in memory stay within the caps.
//!
//! An event for a forgotten series brings it back from zero (Prometheus
//! takes that as a counter reset). The sweep costs one comparison per model
//! version when nothing is due: each version keeps a lower bound of the
//! stamps of its handles and is only looked into once that bound is older
//! than the ttl. If the clock goes backwards a stamp can fall below that
//! bound; the handle is then forgotten up to that much late.

use std::time::Duration;

use super::capped::Stamped;
use super::store::{Model, Store};
use super::validity::InvalidReason;
use super::version::{FeatureHandles, Series, Version, forget_bins};
use crate::export::metrics::Metrics;
use crate::export::series::Histogram;
use crate::ingest::event::LogLevel;
use crate::rules::signal::Signal;

/// Values of the `label` label of `model_exporter_series_expired_total`.
pub const LABELS: [&str; 9] = [
    "model",
    "version",
    "feature",
    "class",
    "error",
    "category",
    "counter",
    "component",
    "level",
];

/// Indices into [`LABELS`].
mod l {
    pub const MODEL: usize = 0;
    pub const VERSION: usize = 1;
    pub const FEATURE: usize = 2;
    pub const CLASS: usize = 3;
    pub const ERROR: usize = 4;
    pub const CATEGORY: usize = 5;
    pub const COUNTER: usize = 6;
    pub const COMPONENT: usize = 7;
    pub const LEVEL: usize = 8;
}

/// What one sweep forgets, counted, and the feature histograms to remove
/// from their family in one pass.
#[derive(Default)]
struct Sweep {
    counts: [u64; 9],
    histograms: Vec<Histogram>,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq)]
pub struct Expired {
    /// Whether the series of a version expired (the gauges computed from
    /// windows are then published again).
    pub series: bool,
    /// The versions whose windows were dropped.
    pub windows: Vec<(String, String)>,
}

impl Store {
    /// Forgets the series, handles and windows that received no event for
    /// the ttl (nothing without one). See the [module documentation](self).
    pub fn expire(&mut self, now: f64) -> Expired {
        let Some(ttl) = self.ttl() else {
            return Expired::default();
        };
        self.sweep(ttl, now)
    }

    /// [`Store::expire`] with the ttl `ttl`.
    pub(super) fn sweep(&mut self, ttl: Duration, now: f64) -> Expired {
        let cutoff = now - ttl.as_secs_f64();
        // Windows go once nothing recorded within the longest rule window
        // and one slice is left in them.
        let empty_after = (self.spec.span + self.spec.slice).as_secs_f64();
        let windows_cutoff = now - ttl.as_secs_f64().max(empty_after);
        // While a rule reads `time_since_last_event`, the newest version of
        // each model (by last event) keeps its windows, so that a model that
        // went silent altogether keeps being reported silent.
        let keep_newest = self
            .config
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .any(|r| r.expr.signal == Signal::TimeSinceLastEvent);
        let metrics = &self.metrics;
        let mut sweep = Sweep::default();
        let mut out = Expired::default();
        self.models.retain(|model, m| {
            let Model { versions, loaded } = m;
            // Cheap when nothing is due: one comparison per version.
            let windows_due = versions.iter().any(|(_, v)| {
                v.windows
                    .as_ref()
                    .is_some_and(|w| w.last_write <= windows_cutoff)
            });
            let newest = if windows_due {
                versions
                    .iter()
                    .filter_map(|(_, v)| Some(v.windows.as_ref()?.last_event))
                    .fold(f64::NEG_INFINITY, f64::max)
            } else {
                f64::NEG_INFINITY
            };
            let (mut had_series, mut has_series) = (false, false);
            versions.retain(|version, v| {
                let mv = [model.as_str(), version.as_str()];
                if let Some(s) = &mut v.series
                    && !s.expired
                {
                    had_series = true;
                    if s.seen <= cutoff {
                        v.forget_series(metrics, mv, &mut sweep);
                        if loaded.as_deref() == Some(mv[1]) {
                            *loaded = None;
                        }
                        sweep.counts[l::VERSION] += 1;
                    } else {
                        has_series = true;
                        if s.oldest <= cutoff {
                            let oldest = v.forget_values(metrics, mv, cutoff, &mut sweep);
                            v.series.as_mut().expect("checked above").oldest = oldest;
                        }
                    }
                }
                if windows_due && let Some(w) = &v.windows {
                    let keep = w.last_write > windows_cutoff
                        || (keep_newest && newest.is_finite() && w.last_event >= newest);
                    if !keep {
                        v.drop_windows();
                        out.windows.push((mv[0].to_owned(), mv[1].to_owned()));
                    }
                }
                // A version whose series expired and whose windows are gone
                // frees its place under the cap.
                if v.windows.is_none() && v.series.as_ref().is_some_and(|s| s.expired) {
                    v.series = None;
                }
            });
            if had_series && !has_series {
                sweep.counts[l::MODEL] += 1;
            }
        });
        metrics.feature_value.remove_all(&sweep.histograms);
        for (label, n) in LABELS.iter().zip(sweep.counts) {
            if n > 0 {
                metrics.series_expired.with_label_values(&[label]).inc_by(n);
            }
        }
        out.series = sweep.counts[l::VERSION] > 0;
        out
    }
}

impl Version {
    /// Removes every series of the version `mv`; it keeps its place until
    /// its windows are dropped too.
    fn forget_series(&mut self, m: &Metrics, mv: [&str; 2], sweep: &mut Sweep) {
        let [model, version] = mv;
        let s = self.series.as_mut().expect("a version with series");
        if s.requests.is_some() {
            for outcome in ["ok", "error"] {
                let _ = m.requests.remove_label_values(&[model, version, outcome]);
            }
        }
        for (present, family) in [
            (s.duration.is_some(), &m.request_duration),
            (s.prediction.is_some(), &m.prediction_value),
            (s.confidence.is_some(), &m.prediction_confidence),
        ] {
            if present {
                let _ = family.remove_label_values(&mv);
            }
        }
        if s.resources.is_some() {
            for r in ["cpu", "memory"] {
                let _ = m.resource.remove_label_values(&[model, version, r]);
            }
        }
        if s.feedback.is_some() {
            let _ = m.feedback.remove_label_values(&mv);
        }
        if s.last_event.is_some() {
            let _ = m.last_event.remove_label_values(&mv);
        }
        if s.retired.is_some() {
            let _ = m.retired.remove_label_values(&mv);
        }
        // Set by `model` events, which are not cached: absent is fine.
        let _ = m.info.remove_label_values(&mv);
        let _ = m.trained.remove_label_values(&mv);
        let _ = m.loaded.remove_label_values(&mv);
        self.series = Some(Series::expired(s.seen));
        self.errors.retain(|e, slot| {
            if slot.series.take().is_some() {
                let _ = m
                    .request_errors
                    .remove_label_values(&[model, version, e.as_str()]);
            }
        });
        self.classes.retain(|c, slot| {
            if slot.series.take().is_some() {
                let _ = m
                    .predictions
                    .remove_label_values(&[model, version, c.as_str()]);
            }
        });
        self.features.retain(|name, slot| {
            if let Some(f) = slot.series.take() {
                forget_feature(m, [model, version, name.as_str()], f.v, sweep);
            }
        });
        self.counters.retain(|c, slot| {
            if slot.series.take().is_some() {
                let _ = m.counter.remove_label_values(&[model, version, c.as_str()]);
            }
        });
        self.logs.retain(|component, slot| {
            let Some(levels) = slot.series.take() else {
                return;
            };
            for (i, level) in levels.v.iter().enumerate() {
                if level.is_some() {
                    let _ = m.log_events.remove_label_values(&[
                        model,
                        version,
                        LogLevel::ALL[i].as_str(),
                        component.as_str(),
                    ]);
                }
            }
        });
    }

    /// Removes the label values of the live version `mv` that received no
    /// event since `cutoff`; returns the oldest stamp left.
    fn forget_values(&mut self, m: &Metrics, mv: [&str; 2], cutoff: f64, sweep: &mut Sweep) -> f64 {
        let [model, version] = mv;
        let mut oldest = self.series.as_ref().expect("a version with series").seen;
        self.errors.retain(|e, slot| {
            if stale(&slot.series, cutoff, &mut oldest) {
                slot.series = None;
                let _ = m
                    .request_errors
                    .remove_label_values(&[model, version, e.as_str()]);
                sweep.counts[l::ERROR] += 1;
            }
        });
        self.classes.retain(|c, slot| {
            if stale(&slot.series, cutoff, &mut oldest) {
                slot.series = None;
                let _ = m
                    .predictions
                    .remove_label_values(&[model, version, c.as_str()]);
                sweep.counts[l::CLASS] += 1;
            }
        });
        self.counters.retain(|c, slot| {
            if stale(&slot.series, cutoff, &mut oldest) {
                slot.series = None;
                let _ = m.counter.remove_label_values(&[model, version, c.as_str()]);
                sweep.counts[l::COUNTER] += 1;
            }
        });
        self.features.retain(|name, slot| {
            if stale(&slot.series, cutoff, &mut oldest) {
                let f = slot.series.take().expect("stale series");
                forget_feature(m, [model, version, name.as_str()], f.v, sweep);
                sweep.counts[l::FEATURE] += 1;
                return;
            }
            let Some(f) = &mut slot.series else { return };
            f.v.categories.retain(|c, slot| {
                if stale(&slot.series, cutoff, &mut oldest) {
                    slot.series = None;
                    let _ = m.feature_category.remove_label_values(&[
                        model,
                        version,
                        name.as_str(),
                        c.as_str(),
                    ]);
                    sweep.counts[l::CATEGORY] += 1;
                }
            });
        });
        self.logs.retain(|component, slot| {
            let Some(k) = &mut slot.series else { return };
            let alive = fresh(k.seen, cutoff, &mut oldest);
            for (i, level) in k.v.iter_mut().enumerate() {
                let Some((_, seen)) = level else { continue };
                if fresh(*seen, cutoff, &mut oldest) {
                    continue;
                }
                let _ = m.log_events.remove_label_values(&[
                    model,
                    version,
                    LogLevel::ALL[i].as_str(),
                    component.as_str(),
                ]);
                *level = None;
                if alive {
                    sweep.counts[l::LEVEL] += 1;
                }
            }
            if !alive {
                slot.series = None;
                sweep.counts[l::COMPONENT] += 1;
            }
        });
        oldest
    }
}

/// Removes the series of one feature (`labels`: model, version, feature).
fn forget_feature(m: &Metrics, labels: [&str; 3], mut f: FeatureHandles, sweep: &mut Sweep) {
    if let Some(h) = f.value.take() {
        sweep.histograms.push(h);
    }
    if f.missing.is_some() {
        let _ = m.feature_missing.remove_label_values(&labels);
    }
    for (i, invalid) in f.invalid.iter().enumerate() {
        if invalid.is_some() {
            let reason = InvalidReason::ALL[i].as_str();
            let _ = m
                .feature_invalid
                .remove_label_values(&[labels[0], labels[1], labels[2], reason]);
        }
    }
    for (c, _) in f.categories.iter() {
        let _ =
            m.feature_category
                .remove_label_values(&[labels[0], labels[1], labels[2], c.as_str()]);
    }
    forget_bins(m, labels, &mut f);
}

/// Whether a handle stamped `seen` is still alive at `cutoff`; if so,
/// lowers `oldest` to its stamp.
fn fresh(seen: f64, cutoff: f64, oldest: &mut f64) -> bool {
    let alive = seen > cutoff;
    if alive {
        *oldest = oldest.min(seen);
    }
    alive
}

/// Whether `series` are there and received no event since `cutoff` (see
/// [`fresh`]).
fn stale<S>(series: &Option<Stamped<S>>, cutoff: f64, oldest: &mut f64) -> bool {
    series
        .as_ref()
        .is_some_and(|s| !fresh(s.seen, cutoff, oldest))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::{Aggregator, Limits, Options};
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::export::metrics::Buckets;
    use crate::ingest::parse::parse_event;
    use crate::rules::eval::AlertState;
    use crate::rules::source::SignalSource;

    const T0: f64 = 1_000_000.0;

    /// An aggregator with `rules` (the built-in ones when `None`), a ttl in
    /// seconds (0: off) and a clock the test moves.
    fn setup(rules: Option<&str>, limits: Limits, ttl: u64) -> (Aggregator, Metrics, ManualClock) {
        let config = match rules {
            Some(yaml) => crate::config::load("t.yaml", yaml).unwrap(),
            None => Config::default_rules(),
        };
        let m = Metrics::new(&Buckets::default()).unwrap();
        let clock = ManualClock::new(T0);
        let a = Aggregator::new(Options {
            limits,
            source: "t".into(),
            ttl: Duration::from_secs(ttl),
            ..Options::new(m.clone(), Arc::new(clock.clone()), Arc::new(config))
        });
        (a, m, clock)
    }

    fn send(a: &mut Aggregator, lines: &[&str]) {
        a.apply(
            lines
                .iter()
                .map(|l| parse_event(l.as_bytes()).unwrap())
                .collect(),
        );
    }

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.encode()).unwrap()
    }

    /// Samples of `text` carrying `labels`, rule families left out.
    fn with<'t>(text: &'t str, labels: &str) -> Vec<&'t str> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(labels))
            .filter(|l| !l.starts_with("model_alerts") && !l.starts_with("model_rule_signal"))
            .collect()
    }

    fn expired(m: &Metrics, label: &str) -> u64 {
        m.series_expired.with_label_values(&[label]).get()
    }

    /// One event of every type, touching every family of a version.
    const EVERYTHING: &[&str] = &[
        r#"{"type":"model","model":"m","version":"v1","trained_at":100}"#,
        r#"{"model":"m","version":"v1","id":"a","latency_ms":20,"prediction":"cat","confidence":0.9,"features":{"age":35,"country":"DE","x":null},"counters":{"shown":1},"resources":{"cpu_percent":40}}"#,
        r#"{"model":"m","version":"v1","prediction":0.7,"error":"timeout"}"#,
        r#"{"type":"log","model":"m","version":"v1","level":"error","component":"io"}"#,
        r#"{"type":"feedback","model":"m","version":"v1","id":"a","actual":"cat"}"#,
    ];

    #[test]
    fn nothing_expires_without_a_ttl() {
        let (mut a, m, clock) = setup(None, Limits::default(), 0);
        send(&mut a, EVERYTHING);
        a.evaluate();
        let before = with(&text(&m), r#"version="v1""#).len();
        assert!(before > 20, "{}", text(&m));
        clock.advance(Duration::from_secs(30 * 24 * 3600));
        a.evaluate();
        let t = text(&m);
        // The window gauges were recomputed (rates are 0 now), no series went.
        assert!(
            t.contains(r#"model_requests_total{model="m",outcome="ok",version="v1"} 1"#),
            "{t}"
        );
        assert!(t.contains(r#"model_info{model="m",version="v1"} 1"#));
        assert!(!t.contains("model_exporter_series_expired_total"), "{t}");
        assert_eq!(a.tick(), Duration::from_secs(10));
    }

    #[test]
    fn a_silent_version_expires_and_comes_back_from_zero() {
        let (mut a, m, clock) = setup(None, Limits::default(), 60);
        assert_eq!(a.tick(), Duration::from_secs(10));
        send(&mut a, EVERYTHING);
        clock.advance(Duration::from_secs(30));
        send(&mut a, &[r#"{"model":"m","version":"v2","latency_ms":5}"#]);
        clock.advance(Duration::from_secs(29));
        a.evaluate();
        let t = text(&m);
        for want in [
            r#"model_requests_total{model="m",outcome="ok",version="v1"} 1"#,
            r#"model_request_errors_total{error="timeout",model="m",version="v1"} 1"#,
            r#"model_predictions_total{class="cat",model="m",version="v1"} 1"#,
            r#"model_feature_value_count{feature="age",model="m",version="v1"} 1"#,
            r#"model_feature_category_total{category="DE",feature="country",model="m",version="v1"} 1"#,
            r#"model_feature_missing_total{feature="x",model="m",version="v1"} 1"#,
            r#"model_business_counts_total{counter="shown",model="m",version="v1"} 1"#,
            r#"model_log_events_total{component="io",level="error",model="m",version="v1"} 1"#,
            r#"model_feedback_total{model="m",version="v1"} 1"#,
            r#"model_info{model="m",version="v1"} 1"#,
            r#"model_window_request_rate{model="m",version="v1",window="5m"}"#,
            r#"model_exporter_series_expired_total{label="version"} 0"#,
        ] {
            assert!(t.contains(want), "missing {want} before the ttl\n{t}");
        }

        clock.advance(Duration::from_secs(2));
        a.evaluate();
        let t = text(&m);
        assert_eq!(with(&t, r#"version="v1""#), Vec::<&str>::new(), "{t}");
        assert!(
            t.contains(r#"model_requests_total{model="m",outcome="ok",version="v2"} 1"#),
            "{t}"
        );
        assert!(t.contains(r#"model_window_request_rate{model="m",version="v2",window="5m"}"#));
        assert_eq!(expired(&m, "version"), 1);
        // The version went as a whole; m still has a version with series.
        assert_eq!(expired(&m, "feature"), 0);
        assert_eq!(expired(&m, "model"), 0);

        send(
            &mut a,
            &[r#"{"model":"m","version":"v1","error":"timeout"}"#],
        );
        let t = text(&m);
        for want in [
            r#"model_requests_total{model="m",outcome="ok",version="v1"} 0"#,
            r#"model_requests_total{model="m",outcome="error",version="v1"} 1"#,
            r#"model_request_errors_total{error="timeout",model="m",version="v1"} 1"#,
            r#"model_last_event_timestamp_seconds{model="m",version="v1"} 1000061"#,
        ] {
            assert!(t.contains(want), "missing {want} after coming back\n{t}");
        }
        assert!(!t.contains(r#"model_info{model="m",version="v1"}"#), "{t}");
    }

    #[test]
    fn a_features_bin_counters_expire_with_it() {
        let rules = "models:\n  m:\n    features:\n      age: {mean: 35, std: 10}\n";
        let (mut a, m, clock) = setup(Some(rules), Limits::default(), 60);
        send(&mut a, &[r#"{"model":"m","features":{"age":30,"x":1}}"#]);
        clock.advance(Duration::from_secs(40));
        send(&mut a, &[r#"{"model":"m","features":{"x":2}}"#]);
        let bins = |t: &str| {
            with(t, r#"feature="age""#)
                .into_iter()
                .filter(|l| l.starts_with("model_feature_bin_total"))
                .count()
        };
        assert_eq!(bins(&text(&m)), 12, "{}", text(&m));
        clock.advance(Duration::from_secs(21));
        a.evaluate();
        let t = text(&m);
        assert_eq!(bins(&t), 0, "{t}");
        assert!(
            t.contains(r#"model_feature_value_count{feature="x""#),
            "{t}"
        );
        assert_eq!(expired(&m, "feature"), 1);
        // Back from zero, with every bin.
        send(&mut a, &[r#"{"model":"m","features":{"age":30}}"#]);
        assert_eq!(bins(&text(&m)), 12);
    }

    #[test]
    fn label_values_expire_one_by_one_and_free_their_slot() {
        let limits = Limits {
            errors: 2,
            ..Limits::default()
        };
        let (mut a, m, clock) = setup(None, limits, 60);
        send(
            &mut a,
            &[
                r#"{"model":"m","error":"a"}"#,
                r#"{"model":"m","error":"b"}"#,
                r#"{"model":"m","error":"c"}"#,
                r#"{"model":"m","prediction":"x","features":{"f":1,"g":"u","k":"v"},"counters":{"c1":1}}"#,
                r#"{"type":"log","model":"m","level":"info","component":"io"}"#,
                r#"{"type":"log","model":"m","level":"error","component":"io"}"#,
                r#"{"type":"log","model":"m","level":"info","component":"db"}"#,
            ],
        );
        assert_eq!(m.series_dropped.with_label_values(&["error"]).get(), 1);
        clock.advance(Duration::from_secs(40));
        send(
            &mut a,
            &[
                r#"{"model":"m","error":"b","features":{"g":"w","k":"v"}}"#,
                r#"{"model":"m","error":"z"}"#,
                r#"{"type":"log","model":"m","level":"info","component":"io"}"#,
            ],
        );
        clock.advance(Duration::from_secs(21));
        a.evaluate();
        let t = text(&m);
        let v = r#"model="m",version="""#;
        for gone in [
            format!(r#"model_request_errors_total{{error="a",{v}}}"#),
            format!(r#"model_predictions_total{{class="x",{v}}}"#),
            format!(r#"model_feature_value_count{{feature="f",{v}}}"#),
            format!(r#"model_feature_category_total{{category="u",feature="g",{v}}}"#),
            format!(r#"model_business_counts_total{{counter="c1",{v}}}"#),
            format!(r#"model_log_events_total{{component="io",level="error",{v}}}"#),
            format!(r#"model_log_events_total{{component="db",level="info",{v}}}"#),
        ] {
            assert!(!t.contains(&gone), "{gone} did not expire\n{t}");
        }
        for kept in [
            format!(r#"model_request_errors_total{{error="b",{v}}} 2"#),
            format!(r#"model_request_errors_total{{error="__other__",{v}}} 2"#),
            r#"model_requests_total{model="m",outcome="error",version=""} 5"#.to_owned(),
            format!(r#"model_feature_category_total{{category="w",feature="g",{v}}} 1"#),
            format!(r#"model_feature_category_total{{category="v",feature="k",{v}}} 2"#),
            format!(r#"model_log_events_total{{component="io",level="info",{v}}} 2"#),
        ] {
            assert!(t.contains(&kept), "{kept} expired\n{t}");
        }
        for (label, n) in [
            ("error", 1),
            ("class", 1),
            ("feature", 1),
            ("category", 1),
            ("counter", 1),
            ("level", 1),
            ("component", 1),
            ("version", 0),
        ] {
            assert_eq!(expired(&m, label), n, "{label}");
        }
        // One place under the cap of 2 is free again (b holds the other;
        // __other__ holds none).
        send(
            &mut a,
            &[
                r#"{"model":"m","error":"d"}"#,
                r#"{"model":"m","error":"e"}"#,
            ],
        );
        let t = text(&m);
        assert!(
            t.contains(&format!(r#"model_request_errors_total{{error="d",{v}}} 1"#)),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                r#"model_request_errors_total{{error="__other__",{v}}} 3"#
            )),
            "{t}"
        );
        assert_eq!(m.series_dropped.with_label_values(&["error"]).get(), 3);
    }

    /// Rules that read no `time_since_last_event`, with windows of 1m.
    pub(super) const SHORT: &str = "defaults: {window: 1m, evaluation_interval: 10s, min_samples: 1}\ngroups:\n  - name: g\n    rules:\n      - alert: Errors\n        expr: error_rate > 50%\n        keep_firing_for: 30s\n";

    #[test]
    fn a_version_frees_its_place_once_its_windows_are_dropped() {
        let limits = Limits {
            versions: 1,
            models: 1,
            ..Limits::default()
        };
        let (mut a, m, clock) = setup(Some(SHORT), limits, 10);
        assert_eq!(a.tick(), Duration::from_millis(2500));
        send(
            &mut a,
            &[
                r#"{"model":"a","version":"v1"}"#,
                r#"{"model":"a","version":"v2"}"#,
                r#"{"model":"b"}"#,
            ],
        );
        let t = text(&m);
        assert!(
            t.contains(r#"model_requests_total{model="a",outcome="ok",version="__other__"} 1"#)
        );
        assert!(t.contains(r#"model_requests_total{model="__other__",outcome="ok",version=""} 1"#));
        // The series expire after the ttl, but the windows still hold the
        // last minute, so the places stay taken.
        clock.advance(Duration::from_secs(11));
        a.evaluate();
        assert_eq!(with(&text(&m), "model_requests_total"), Vec::<&str>::new());
        assert_eq!(expired(&m, "version"), 3);
        assert_eq!(expired(&m, "model"), 2);
        send(
            &mut a,
            &[r#"{"model":"a","version":"v3"}"#, r#"{"model":"c"}"#],
        );
        let t = text(&m);
        assert!(
            t.contains(r#"model_requests_total{model="a",outcome="ok",version="__other__"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"model_requests_total{model="__other__",outcome="ok",version=""} 1"#),
            "{t}"
        );
        // Once the windows are empty (1m and a slice of 6s), they go, and
        // so do the places.
        clock.advance(Duration::from_secs(67));
        a.evaluate();
        assert!(a.store.series().is_empty(), "{:?}", a.store.series());
        assert!(a.store.is_empty());
        send(
            &mut a,
            &[r#"{"model":"a","version":"v3"}"#, r#"{"model":"c"}"#],
        );
        let t = text(&m);
        assert!(
            t.contains(r#"model_requests_total{model="a",outcome="ok",version="v3"} 1"#),
            "{t}"
        );
        send(&mut a, &[r#"{"model":"c"}"#]);
        assert!(
            text(&m)
                .contains(r#"model_requests_total{model="__other__",outcome="ok",version=""} 2"#)
        );
    }

    #[test]
    fn the_newest_version_keeps_its_windows_for_silence_rules() {
        let (mut a, m, clock) = setup(None, Limits::default(), 60);
        send(&mut a, &[r#"{"model":"m","version":"v1"}"#]);
        clock.advance(Duration::from_secs(10));
        send(&mut a, &[r#"{"model":"m","version":"v2"}"#]);
        // Past the longest window of the built-in rules (1h), and past
        // ModelSilent's 10 minutes.
        clock.advance(Duration::from_secs(2 * 3600));
        a.evaluate();
        assert_eq!(a.store.series(), [("m".to_owned(), "v2".to_owned())]);
        let t = text(&m);
        assert!(
            t.contains(r#"model_alerts{alertname="ModelSilent",alertstate="firing",model="m",severity="warning",version="v2"} 1"#),
            "{t}"
        );
        assert!(!t.contains(r#"version="v1""#), "{t}");
        assert_eq!(with(&t, r#"model="m""#), Vec::<&str>::new(), "{t}");
        assert_eq!(expired(&m, "model"), 1);
    }

    #[test]
    fn alerts_of_an_expired_version_resolve() {
        let (mut a, m, clock) = setup(Some(SHORT), Limits::default(), 10);
        send(&mut a, &[r#"{"model":"m","version":"v1","error":"x"}"#]);
        let ev = a.evaluate();
        assert_eq!(ev.alerts.len(), 1);
        assert_eq!(ev.alerts[0].state, AlertState::Firing);
        let mut resolved = false;
        for _ in 0..20 {
            clock.advance(Duration::from_secs(10));
            let ev = a.evaluate();
            resolved |= ev
                .alerts
                .iter()
                .any(|x| x.state == AlertState::Resolved && x.labels["version"] == "v1");
        }
        assert!(resolved);
        let t = text(&m);
        assert!(!t.contains(r#"version="v1""#), "{t}");
        assert!(a.store.series().is_empty());
    }
}

#[cfg(test)]
mod store_tests {
    use crate::aggregate::{Limits, store::Store};
    use crate::export::metrics::{Buckets, Metrics};
    use crate::ingest::parse::parse_event;
    use crate::rules::source::SignalSource;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_joined_label_keeps_a_versions_windows() {
        let config = crate::config::load("t.yaml", super::tests::SHORT).unwrap();
        let mut s = Store::new(
            Arc::new(config),
            Limits {
                features: 100,
                ..Limits::default()
            },
            Metrics::new(&Buckets::default()).unwrap(),
            None,
        );
        let record =
            |s: &mut Store, line: &str, t: f64| s.record(&parse_event(line.as_bytes()).unwrap(), t);
        let t0 = 1000.0;
        record(
            &mut s,
            r#"{"model":"m","version":"v1","id":"a","prediction":1}"#,
            t0,
        );
        record(&mut s, r#"{"model":"m","version":"v2","prediction":1}"#, t0);
        record(
            &mut s,
            r#"{"type":"feedback","model":"m","id":"a","actual":1}"#,
            t0 + 50.0,
        );
        // Windows of 1m and slices of 6s: v2 is empty 66s after its event.
        let secs = Duration::from_secs;
        assert!(s.sweep(secs(10), t0 + 65.0).windows.is_empty());
        assert_eq!(
            s.sweep(secs(10), t0 + 70.0).windows,
            [("m".to_owned(), "v2".to_owned())]
        );
        // v1's label, joined at t0 + 50, is still in its window.
        assert_eq!(s.series(), [("m".to_owned(), "v1".to_owned())]);
        // A ttl longer than the windows decides.
        assert!(s.sweep(secs(200), t0 + 150.0).windows.is_empty());
        assert_eq!(s.sweep(secs(10), t0 + 150.0).windows.len(), 1);
        assert!(s.series().is_empty());
    }
}
