//! Which shard an aggregator is ([`ShardSlot`]): a leaf of the aggregate
//! module that both the aggregator and the shard router use, so that neither
//! imports the other.

use std::sync::{Arc, Mutex};

use crate::export::metrics::Metrics;

/// Which shard an aggregator is, and what it shares with the other shards.
#[derive(Clone, Default)]
pub struct ShardSlot {
    index: usize,
    /// Each shard's last evaluation round, in seconds; `None` with one shard.
    durations: Option<Arc<Mutex<Vec<f64>>>>,
}

impl ShardSlot {
    /// The slots of `n` shards.
    pub fn all(n: usize) -> Vec<ShardSlot> {
        let durations = (n > 1).then(|| Arc::new(Mutex::new(vec![0.0; n])));
        (0..n)
            .map(|index| ShardSlot {
                index,
                durations: durations.clone(),
            })
            .collect()
    }

    /// This shard's index, which is also its slot in the rule families.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this shard keeps the per-round self-metrics (shard 0).
    pub fn is_leader(&self) -> bool {
        self.index == 0
    }

    /// Name of the aggregator's thread.
    pub fn thread_name(&self) -> String {
        match self.durations {
            None => "aggregator".into(),
            Some(_) => format!("aggregator-{}", self.index),
        }
    }

    /// Sets `model_exporter_rule_evaluation_duration_seconds` after this
    /// shard's round: the sum of every shard's last round.
    pub fn set_evaluation_duration(&self, metrics: &Metrics, seconds: f64) {
        match &self.durations {
            None => metrics.rule_evaluation_duration.set(seconds),
            Some(d) => {
                let mut d = d.lock().unwrap_or_else(|e| e.into_inner());
                d[self.index] = seconds;
                metrics.rule_evaluation_duration.set(d.iter().sum());
            }
        }
    }
}
