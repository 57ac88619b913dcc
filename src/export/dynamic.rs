//! Families rebuilt after every rule evaluation: alert states, rule signal
//! values and windowed signal gauges. Their label sets vary from rule to
//! rule, so they are kept as ready-made families and swapped in whole.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// A collector serving whatever families were last stored in it.
#[derive(Clone)]
pub struct DynamicFamilies {
    descs: Vec<Desc>,
    families: Arc<Mutex<Vec<MetricFamily>>>,
}

impl DynamicFamilies {
    /// A collector that will serve families with these names and help texts.
    pub fn new(names: &[(&str, &str)]) -> Self {
        DynamicFamilies {
            descs: names
                .iter()
                .map(|(n, h)| {
                    Desc::new(n.to_string(), h.to_string(), vec![], Default::default())
                        .expect("valid metric name")
                })
                .collect(),
            families: Arc::default(),
        }
    }

    /// Replaces what is served.
    pub fn store(&self, families: Vec<MetricFamily>) {
        *self.families.lock().unwrap_or_else(|e| e.into_inner()) = families;
    }
}

impl Collector for DynamicFamilies {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| !f.get_metric().is_empty())
            .cloned()
            .collect()
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
