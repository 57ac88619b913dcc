//! The typed contents of a rules.yaml: defaults, per-model expectations and
//! the alert rules, as [`load`](super::load) builds them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::baseline::format::Baseline;
use crate::rules::rule::Group;

/// Settings that apply to every rule unless it overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Window a rule's signal is computed over (default 5m).
    pub window: Duration,
    /// How often rules are evaluated (default 10s).
    pub evaluation_interval: Duration,
    /// Fewer samples than this in the window gives no verdict (default 30).
    pub min_samples: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            window: Duration::from_secs(300),
            evaluation_interval: Duration::from_secs(10),
            min_samples: 30,
        }
    }
}

/// Expectations about one feature of a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureSpec {
    /// Smallest valid value.
    pub min: Option<f64>,
    /// Largest valid value.
    pub max: Option<f64>,
    /// The feature must be present in every event (default false).
    pub required: bool,
    /// Inline reference mean (with `std`), when there is no baseline file.
    pub mean: Option<f64>,
    /// Inline reference standard deviation (> 0).
    pub std: Option<f64>,
    /// The valid categories of a categorical feature.
    pub categories: Option<Vec<String>>,
}

/// Expectations about one model (or every model, under `"*"`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Baseline file made by `model-exporter baseline`, as written.
    pub baseline: Option<PathBuf>,
    /// That file, loaded (its path resolved against the rules file's
    /// directory).
    pub reference: Option<Arc<Baseline>>,
    /// A numeric prediction at or above this is positive (default 0.5).
    pub positive_threshold: f64,
    /// A confidence below this is low (default 0.5).
    pub low_confidence_threshold: f64,
    /// Without a baseline or inline reference for a numeric feature, learn
    /// one from this many first values of each model version.
    pub learn_reference: Option<usize>,
    /// Per-feature expectations.
    pub features: BTreeMap<String, FeatureSpec>,
    /// How the model's inference-logger CloudEvents (KServe, Seldon) are
    /// read, when given.
    pub inference_logger: Option<crate::ingest::cloudevents::InferenceLogger>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            baseline: None,
            reference: None,
            positive_threshold: 0.5,
            low_confidence_threshold: 0.5,
            learn_reference: None,
            features: BTreeMap::new(),
            inference_logger: None,
        }
    }
}

/// A loaded, validated rules.yaml.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Defaults for every rule.
    pub defaults: Defaults,
    /// Per-model expectations, by model name (`"*"` for all models).
    pub models: BTreeMap<String, ModelConfig>,
    /// Rule groups, in file order.
    pub groups: Vec<Group>,
    /// What loaded but is probably a mistake (a feature no baseline of the
    /// rule's models has), sorted by position: `check` prints these, the
    /// exporter logs them at each load.
    pub warnings: Vec<super::ConfigError>,
}

impl Config {
    /// The expectations for `model`: its own entry, else `"*"`, else defaults.
    pub fn model(&self, model: &str) -> Option<&ModelConfig> {
        self.models.get(model).or_else(|| self.models.get("*"))
    }

    /// The models' `inference_logger` blocks, as the `http://` event
    /// listener looks them up.
    pub fn inference_loggers(&self) -> crate::ingest::cloudevents::Mapping {
        crate::ingest::cloudevents::Mapping::new(
            self.models
                .iter()
                .map(|(name, m)| (name.clone(), m.inference_logger.clone()))
                .collect(),
        )
    }
}
