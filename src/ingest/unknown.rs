//! Counting the top-level event keys the protocol does not know
//! (`"latency"` meant as `latency_ms`): such an event is accepted with the
//! field ignored, so without a count a typo would silently lose a signal.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{IntCounterVec, Opts, Registry};

/// Distinct key names counted under their own label; later ones are
/// counted as [`OTHER`].
pub const MAX_NAMES: usize = 32;

/// The label of keys past [`MAX_NAMES`].
pub const OTHER: &str = "__other__";

/// Longest key kept as a label value, in chars; longer ones are cut.
const MAX_NAME_CHARS: usize = 64;

/// `model_exporter_events_unknown_fields_total{field}`, and the first
/// sighting of each name logged.
#[derive(Debug)]
pub struct UnknownFields {
    counter: IntCounterVec,
    names: Mutex<HashSet<String>>,
}

impl UnknownFields {
    /// Registers the counter in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<UnknownFields> {
        let counter = IntCounterVec::new(
            Opts::new(
                "model_exporter_events_unknown_fields_total",
                "Top-level keys of accepted events that the protocol does not define (ignored), by key; a typo such as \"latency\" for \"latency_ms\" shows here.",
            ),
            &["field"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(UnknownFields {
            counter,
            names: Mutex::new(HashSet::new()),
        })
    }

    /// Counts one unknown key of an accepted event from `source`; logs the
    /// first event with each name (of the first [`MAX_NAMES`]).
    pub fn note(&self, key: &str, source: &str) {
        let key: String = key.chars().take(MAX_NAME_CHARS).collect();
        let label = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            if names.contains(&key) {
                key
            } else if names.len() < MAX_NAMES {
                names.insert(key.clone());
                tracing::warn!(
                    field = %key,
                    source,
                    "event with an unknown field (ignored; counted in model_exporter_events_unknown_fields_total)"
                );
                key
            } else {
                OTHER.to_owned()
            }
        };
        self.counter.with_label_values(&[&label]).inc();
    }

    /// The count for one label (for tests).
    pub fn count(&self, label: &str) -> u64 {
        self.counter.with_label_values(&[label]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_counted_and_capped() {
        let u = UnknownFields::new(&Registry::new()).unwrap();
        u.note("latency", "test");
        u.note("latency", "test");
        for i in 0..MAX_NAMES + 10 {
            u.note(&format!("k{i}"), "test");
        }
        assert_eq!(u.count("latency"), 2);
        // "latency" took one of the MAX_NAMES places.
        assert_eq!(u.count(&format!("k{}", MAX_NAMES - 2)), 1);
        assert_eq!(u.count(&format!("k{}", MAX_NAMES - 1)), 0);
        assert_eq!(u.count(OTHER), 11);
        u.note("latency", "test");
        assert_eq!(u.count("latency"), 3);
        let long = "x".repeat(1000);
        u.note(&long, "test");
        assert_eq!(u.count(OTHER), 12);
    }
}
