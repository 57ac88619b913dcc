//! Families rebuilt after every rule evaluation: alert states, rule signal
//! values and windowed signal gauges. Their label sets vary from rule to
//! rule, so they are kept as ready-made families and swapped in whole.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Whatever families were last stored; a scrape encodes the latest
/// snapshot without copying it (the lock is held only to clone an `Arc`).
#[derive(Clone, Default)]
pub struct DynamicFamilies {
    families: Arc<Mutex<Arc<Vec<MetricFamily>>>>,
}

impl DynamicFamilies {
    /// An empty set. The names and help texts the families will have are
    /// reserved in the registry by [`Metrics`](super::metrics::Metrics).
    pub fn new(_names: &[(&str, &str)]) -> Self {
        DynamicFamilies::default()
    }

    /// Replaces what is served.
    pub fn store(&self, families: Vec<MetricFamily>) {
        *self.families.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(families);
    }

    /// What was last stored (empty families included; the encoder skips
    /// them).
    pub fn snapshot(&self) -> Arc<Vec<MetricFamily>> {
        self.families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Builds one gauge family sample by sample.
pub struct GaugeFamily {
    family: MetricFamily,
}

impl GaugeFamily {
    /// An empty gauge family.
    pub fn new(name: &str, help: &str) -> Self {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(MetricType::GAUGE);
        GaugeFamily { family }
    }

    /// Adds a sample; non-finite values are skipped.
    pub fn push(&mut self, labels: &BTreeMap<String, String>, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.clone());
                    l.set_value(v.clone());
                    l
                })
                .collect(),
        );
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
        self.family.mut_metric().push(m);
    }

    /// The finished family.
    pub fn finish(self) -> MetricFamily {
        self.family
    }
}
