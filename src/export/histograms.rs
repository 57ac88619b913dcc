//! A histogram family whose members have buckets of their own.
//!
//! `model_feature_value` uses, for each feature, the bin edges of the
//! feature's reference baseline, so that Prometheus can sum a feature's
//! histogram across pods and compare it with the reference bin by bin.
//! Features without a reference use the default buckets. The prometheus
//! crate's `HistogramVec` gives every member the same buckets, so this
//! collector keeps individual histograms, each with constant labels, and
//! serves them as one family.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts};

/// Histograms of one name with per-member buckets.
#[derive(Clone)]
pub struct HistogramFamily {
    name: String,
    help: String,
    label_names: Vec<String>,
    desc: Vec<Desc>,
    members: Arc<Mutex<Vec<Histogram>>>,
}

impl HistogramFamily {
    /// An empty family; members carry values for `label_names`.
    pub fn new(name: &str, help: &str, label_names: &[&str]) -> Self {
        HistogramFamily {
            name: name.to_owned(),
            help: help.to_owned(),
            label_names: label_names.iter().map(|s| s.to_string()).collect(),
            desc: vec![
                Desc::new(name.to_owned(), help.to_owned(), vec![], HashMap::new())
                    .expect("valid metric name"),
            ],
            members: Arc::default(),
        }
    }

    /// Creates a member with these label values and bucket bounds. The
    /// caller keeps the handle and observes into it; nothing is locked then.
    /// Bounds must be finite and strictly increasing (checked by the caller).
    pub fn member(&self, values: &[&str], buckets: &[f64]) -> Histogram {
        let labels: HashMap<String, String> = self
            .label_names
            .iter()
            .cloned()
            .zip(values.iter().map(|v| v.to_string()))
            .collect();
        let opts = HistogramOpts::new(self.name.clone(), self.help.clone())
            .const_labels(labels)
            .buckets(buckets.to_vec());
        let h = Histogram::with_opts(opts).expect("buckets validated by the caller");
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h.clone());
        h
    }

    /// Removes a member (its series disappears from the next scrape).
    pub fn remove(&self, h: &Histogram) {
        let id = h.desc()[0].id;
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = members.iter().position(|m| m.desc()[0].id == id) {
            members.swap_remove(i);
        }
    }
}

impl HistogramFamily {
    /// Removes several members in one pass over the family.
    pub fn remove_all(&self, hs: &[Histogram]) {
        if hs.is_empty() {
            return;
        }
        let ids: std::collections::HashSet<u64> = hs.iter().map(|h| h.desc()[0].id).collect();
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|m| !ids.contains(&m.desc()[0].id));
    }
}

impl Collector for HistogramFamily {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let members = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut family: Option<MetricFamily> = None;
        for h in members {
            for mut f in h.collect() {
                match family.as_mut() {
                    None => family = Some(f),
                    Some(all) => all.mut_metric().append(f.mut_metric()),
                }
            }
        }
        family.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_own_buckets() {
        let fam = HistogramFamily::new("x_value", "help", &["model", "feature"]);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(fam.clone())).unwrap();
        let a = fam.member(&["m", "age"], &[18.0, 65.0]);
        let b = fam.member(&["m", "income"], &[1e4, 1e5]);
        a.observe(30.0);
        b.observe(5e4);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .unwrap();
        assert_eq!(
            text.matches("# TYPE x_value histogram").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains(r#"x_value_bucket{feature="age",model="m",le="65"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x_value_bucket{feature="income",model="m",le="100000"} 1"#),
            "{text}"
        );
        fam.remove(&a);
        let after = registry.gather();
        assert_eq!(after[0].get_metric().len(), 1);
        let c = fam.member(&["m", "c"], &[1.0]);
        fam.remove_all(&[b, c]);
        assert!(registry.gather().is_empty());
    }
}
