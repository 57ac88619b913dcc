//! Families rebuilt after every rule evaluation: alert states, rule signal
//! values and windowed signal gauges. Their label sets vary from rule to
//! rule, so they are kept as ready-made families and swapped in whole.
//! With several aggregator shards each stores its own families in its own
//! slot; a scrape concatenates the slots family by family.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// A collector serving whatever families were last stored in it.
#[derive(Clone)]
pub struct DynamicFamilies {
    descs: Vec<Desc>,
    /// One list of families per shard.
    families: Arc<Mutex<Vec<Vec<MetricFamily>>>>,
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

    /// Replaces what is served (slot 0, the only one without shards).
    pub fn store(&self, families: Vec<MetricFamily>) {
        self.store_slot(0, families);
    }

    /// Replaces what shard `slot` serves; the other slots are left alone.
    pub fn store_slot(&self, slot: usize, families: Vec<MetricFamily>) {
        let mut slots = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() <= slot {
            slots.resize_with(slot + 1, Vec::new);
        }
        slots[slot] = families;
    }
}

impl Collector for DynamicFamilies {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let slots = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<MetricFamily> = Vec::new();
        for f in slots.iter().flatten() {
            if f.get_metric().is_empty() {
                continue;
            }
            // The shards' label sets are disjoint: a family's samples are
            // the concatenation of the slots'.
            match out.iter_mut().find(|o| o.name() == f.name()) {
                Some(o) => o.mut_metric().extend(f.get_metric().iter().cloned()),
                None => out.push(f.clone()),
            }
        }
        out
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
