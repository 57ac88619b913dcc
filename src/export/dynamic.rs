//! Families rebuilt after every rule evaluation: alert states, rule signal
//! values, windowed signal gauges and the references' distributions. Their
//! label sets vary from rule to rule, so they are kept as ready-made
//! families and swapped in whole.
//! With several aggregator shards each stores its own families in its own
//! slot; a scrape concatenates the slots family by family.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::series::{escape, write_f64};

/// Whatever families were last stored, one list per aggregator shard; a
/// scrape copies the latest snapshot (the lock is held only to clone
/// `Arc`s).
#[derive(Clone, Default)]
pub struct DynamicFamilies {
    /// One list of families per shard.
    slots: Arc<Mutex<Vec<Arc<Vec<RenderedFamily>>>>>,
}

impl DynamicFamilies {
    /// An empty set. The names and help texts the families will have are
    /// reserved in the registry by [`Metrics`](super::metrics::Metrics).
    pub fn new(_names: &[(&str, &str)]) -> Self {
        DynamicFamilies::default()
    }

    /// Replaces what is served (slot 0, the only one without shards).
    pub fn store(&self, families: Vec<RenderedFamily>) {
        self.store_slot(0, families);
    }

    /// Replaces what shard `slot` serves; the other slots are left alone.
    pub fn store_slot(&self, slot: usize, families: Vec<RenderedFamily>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() <= slot {
            slots.resize_with(slot + 1, Arc::default);
        }
        slots[slot] = Arc::new(families);
    }

    /// What was last stored (empty families included; they write nothing).
    /// With several slots, a family's samples are the concatenation of the
    /// slots' (the shards' label sets are disjoint).
    pub fn snapshot(&self) -> Arc<Vec<RenderedFamily>> {
        let slots: Vec<Arc<Vec<RenderedFamily>>> =
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match slots.len() {
            0 => Arc::default(),
            1 => slots[0].clone(),
            _ => {
                let mut out: Vec<RenderedFamily> = Vec::new();
                for f in slots.iter().flat_map(|s| s.iter()) {
                    match out.iter_mut().find(|o| o.name == f.name) {
                        Some(o) => {
                            o.text.extend_from_slice(&f.text);
                            o.samples += f.samples;
                        }
                        None => out.push(f.clone()),
                    }
                }
                Arc::new(out)
            }
        }
    }
}

/// A gauge (or histogram) family already in the text format, built once
/// per evaluation so that scrapes only copy it.
#[derive(Debug, Clone)]
pub struct RenderedFamily {
    name: String,
    help: String,
    /// `gauge` or `histogram`, for the `# TYPE` line.
    kind: &'static str,
    samples: usize,
    text: Vec<u8>,
}

impl RenderedFamily {
    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Appends HELP, TYPE and the samples (nothing without samples).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.samples == 0 {
            return;
        }
        let name = self.name.as_bytes();
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(escape(&self.help, false).as_bytes());
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(self.kind.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&self.text);
    }

    fn new(name: &str, help: &str, kind: &'static str) -> Self {
        RenderedFamily {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            samples: 0,
            text: Vec::new(),
        }
    }

    /// Appends one sample line: `NAME SUFFIX{labels[,le="LE"]} value`, the
    /// labels in name order (`le` last, as the histograms of
    /// [`series`](super::series) write it) and escaped.
    fn line(
        &mut self,
        suffix: &str,
        labels: &BTreeMap<String, String>,
        le: Option<&str>,
        value: f64,
    ) {
        let out = &mut self.text;
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(suffix.as_bytes());
        let pairs = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(le.map(|le| ("le", le)));
        let mut sep = b'{';
        for (k, v) in pairs {
            out.push(sep);
            sep = b',';
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            out.extend_from_slice(escape(v, true).as_bytes());
            out.push(b'"');
        }
        if sep == b',' {
            out.push(b'}');
        }
        out.push(b' ');
        write_f64(out, value);
        out.push(b'\n');
        self.samples += 1;
    }
}

/// Builds one gauge family sample by sample, straight into the text format.
pub struct GaugeFamily {
    family: RenderedFamily,
}

impl GaugeFamily {
    /// An empty gauge family.
    pub fn new(name: &str, help: &str) -> Self {
        GaugeFamily {
            family: RenderedFamily::new(name, help, "gauge"),
        }
    }

    /// Adds a sample (labels are written in name order, values escaped);
    /// non-finite values are skipped.
    pub fn push(&mut self, labels: &BTreeMap<String, String>, value: f64) {
        if value.is_finite() {
            self.family.line("", labels, None, value);
        }
    }

    /// The finished family.
    pub fn finish(self) -> RenderedFamily {
        self.family
    }
}

/// Builds one histogram family member by member, straight into the text
/// format: for distributions that are known as a whole rather than
/// observed value by value (a reference's shares).
pub struct HistogramFamily {
    family: RenderedFamily,
}

impl HistogramFamily {
    /// An empty histogram family.
    pub fn new(name: &str, help: &str) -> Self {
        HistogramFamily {
            family: RenderedFamily::new(name, help, "histogram"),
        }
    }

    /// Adds a member: its cumulative `buckets` as (`le` label value, count)
    /// in increasing order, then the `+Inf` bucket and `_count` (both
    /// `count`) and `_sum`. A member with a non-finite number is skipped.
    pub fn push(
        &mut self,
        labels: &BTreeMap<String, String>,
        buckets: &[(String, f64)],
        sum: f64,
        count: f64,
    ) {
        let finite = |x: f64| x.is_finite();
        if !(finite(sum) && finite(count) && buckets.iter().all(|(_, c)| finite(*c))) {
            return;
        }
        for (le, c) in buckets {
            self.family.line("_bucket", labels, Some(le), *c);
        }
        self.family.line("_bucket", labels, Some("+Inf"), count);
        self.family.line("_sum", labels, None, sum);
        self.family.line("_count", labels, None, count);
    }

    /// The finished family.
    pub fn finish(self) -> RenderedFamily {
        self.family
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_rendered_sorted_and_escaped() {
        let mut g = GaugeFamily::new("x_ratio", "Help \\ with\na newline.");
        let labels = BTreeMap::from([
            ("z".to_owned(), "q\"uote".to_owned()),
            ("a".to_owned(), "back\\slash\n".to_owned()),
        ]);
        g.push(&labels, 0.25);
        g.push(&BTreeMap::new(), -3.0);
        g.push(&labels, f64::NAN);
        g.push(&labels, f64::INFINITY);
        let f = g.finish();
        assert_eq!(f.len(), 2);
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP x_ratio Help \\\\ with\\na newline.\n# TYPE x_ratio gauge\n\
             x_ratio{a=\"back\\\\slash\\n\",z=\"q\\\"uote\"} 0.25\nx_ratio -3\n"
        );
        let mut out = Vec::new();
        GaugeFamily::new("y", "h").finish().encode(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn histograms_are_rendered_with_le_last() {
        let mut h = HistogramFamily::new("x_ref", "A reference.");
        let labels = BTreeMap::from([("model".to_owned(), "m".to_owned())]);
        h.push(
            &labels,
            &[("0.5".to_owned(), 0.25), ("2".to_owned(), 0.75)],
            1.5,
            1.0,
        );
        h.push(&labels, &[("1".to_owned(), f64::NAN)], 0.0, 1.0);
        h.push(&BTreeMap::new(), &[], 3.0, 2.0);
        let f = h.finish();
        assert_eq!(f.len(), 8);
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP x_ref A reference.\n# TYPE x_ref histogram\n\
             x_ref_bucket{model=\"m\",le=\"0.5\"} 0.25\n\
             x_ref_bucket{model=\"m\",le=\"2\"} 0.75\n\
             x_ref_bucket{model=\"m\",le=\"+Inf\"} 1\n\
             x_ref_sum{model=\"m\"} 1.5\nx_ref_count{model=\"m\"} 1\n\
             x_ref_bucket{le=\"+Inf\"} 2\nx_ref_sum 3\nx_ref_count 2\n"
        );
    }
}
