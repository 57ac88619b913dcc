//! The caps on label values (`--limits.*`), and what they do to an
//! event's names before it is applied.

use crate::export::metrics::Metrics;
use crate::ingest::event::{Body, Event, FeatureValue, Name, Outcome};

/// Label value that stands for every value past a cap.
pub const OVERFLOW_LABEL: &str = "__other__";

/// Caps on distinct label values per model, so that a client cannot grow
/// the number of series without bound. Values past a cap are counted under
/// the label value [`OVERFLOW_LABEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Distinct error classes per model version.
    pub errors: usize,
    /// Distinct prediction classes per model version.
    pub classes: usize,
    /// Distinct features per model version.
    pub features: usize,
    /// Distinct categories per categorical feature.
    pub categories: usize,
    /// Distinct business counter names per model version.
    pub counters: usize,
    /// Distinct log components per model version.
    pub components: usize,
    /// Distinct models.
    pub models: usize,
    /// Distinct versions per model.
    pub versions: usize,
    /// Longest label value, in bytes; longer values are cut.
    pub label_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            errors: 50,
            classes: 100,
            features: 200,
            categories: 50,
            counters: 50,
            components: 50,
            models: 100,
            versions: 20,
            label_length: 128,
        }
    }
}

/// Cuts the label values of an event longer than `--limits.label-length`,
/// each cut counted.
pub fn cut_values(metrics: &Metrics, limits: &Limits, event: &mut Event) {
    let max = limits.label_length;
    // Where a value longer than the limit is cut, counted.
    let cut_at = |s: &str| {
        if s.len() <= max {
            return None;
        }
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        metrics
            .series_dropped
            .with_label_values(&["label_length"])
            .inc();
        Some(end)
    };
    let cut = |s: &mut String| {
        if let Some(end) = cut_at(s) {
            s.truncate(end);
        }
    };
    let cut_name = |s: &mut Name| {
        if let Some(end) = cut_at(s) {
            s.truncate(end);
        }
    };
    cut_name(&mut event.model);
    cut_name(&mut event.version);
    match &mut event.body {
        Body::Inference(i) => {
            if let Some(e) = &mut i.error {
                cut(e);
            }
            if let Some(Outcome::Class(c)) = &mut i.prediction {
                cut(c);
            }
            for (name, value) in &mut i.features {
                cut_name(name);
                if let FeatureValue::Category(c) = value {
                    cut(c);
                }
            }
            for (name, _) in &mut i.counters {
                cut(name);
            }
        }
        Body::Log(l) => cut(&mut l.component),
        Body::Feedback(_) | Body::Model(_) | Body::Client(_) => {}
    }
}

/// What the caps on models and versions do to an event's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Both keep their place.
    Keep,
    /// The model is past `--limits.models`: counted under the overflow label.
    Model,
    /// The version is past `--limits.versions`: likewise.
    Version,
}

impl Fold {
    /// Renames the model or version of `event` to the overflow label, as
    /// decided, and counts it.
    pub fn apply(self, metrics: &Metrics, event: &mut Event) {
        let (label, name) = match self {
            Fold::Keep => return,
            Fold::Model => ("model", &mut event.model),
            Fold::Version => ("version", &mut event.version),
        };
        metrics.series_dropped.with_label_values(&[label]).inc();
        *name = Name::new(OVERFLOW_LABEL);
    }
}
