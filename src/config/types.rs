//! The typed contents of a rules.yaml: defaults, per-model expectations and
//! the alert rules, as [`load`](super::load) builds them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::baseline::format::Baseline;
use crate::rules::expr::Expr;
use crate::rules::template::Template;

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
    pub inference_logger: Option<InferenceLogger>,
}

/// `inference_logger`: how CloudEvents of an inference logger (KServe,
/// Seldon Core) become this model's events (docs/integrations.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InferenceLogger {
    /// The events' name (`ISVC`, or `ISVC/COMPONENT`) that is this model's;
    /// `None`: the model's own name.
    pub service: Option<String>,
    /// The version label; `None`: from the payload or the `endpoint`
    /// attribute.
    pub version: Option<String>,
    /// Names of positional feature values (v1 rows, wide v2 tensors), in
    /// order.
    pub features: Vec<String>,
    /// Names of the columns of a row of class scores, in order.
    pub classes: Vec<String>,
    /// The output tensor (or object row key) holding the prediction.
    pub prediction: Option<String>,
    /// The output tensor (or object row key) holding the confidence.
    pub confidence: Option<String>,
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

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Severity {
    /// `info`
    Info,
    /// `warning` (the default)
    #[default]
    Warning,
    /// `critical`
    Critical,
}

impl Severity {
    /// Every severity, from the least to the most severe.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// The label value, as written in rules.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Restricts a rule to some models/versions (exact string equality).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matchers {
    /// Only this model.
    pub model: Option<String>,
    /// Only this model version.
    pub version: Option<String>,
}

impl Matchers {
    /// True when a series with these model and version labels is selected.
    pub fn matches(&self, model: &str, version: &str) -> bool {
        self.model.as_deref().is_none_or(|m| m == model)
            && self.version.as_deref().is_none_or(|v| v == version)
    }
}

/// One alert rule, with defaults already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Alert name (`alertname` label).
    pub alert: String,
    /// The parsed expression.
    pub expr: Expr,
    /// The expression as written in the file.
    pub expr_text: String,
    /// Window of the signal (rule's own, else `defaults.window`).
    pub window: Duration,
    /// How long the expression must hold before firing (default 0).
    pub for_: Duration,
    /// How long to keep firing after it stops holding (default 0).
    pub keep_firing_for: Duration,
    /// Severity (default warning).
    pub severity: Severity,
    /// Extra labels on the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, Template>,
    /// Which models/versions the rule applies to.
    pub matchers: Matchers,
    /// Minimum samples in the window (rule's own, else `defaults.min_samples`).
    pub min_samples: u64,
    /// 1-based line of the rule in the file.
    pub line: usize,
}

/// A named group of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Unique group name.
    pub name: String,
    /// Evaluation interval (group's own, else `defaults.evaluation_interval`).
    pub interval: Duration,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
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
}

impl Config {
    /// The expectations for `model`: its own entry, else `"*"`, else defaults.
    pub fn model(&self, model: &str) -> Option<&ModelConfig> {
        self.models.get(model).or_else(|| self.models.get("*"))
    }
}
