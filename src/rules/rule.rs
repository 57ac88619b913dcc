//! The rule definitions: alert rules, their groups, severities and
//! matchers, as rules.yaml declares them (with defaults applied) and as
//! the evaluator and the Prometheus-rule export read them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::expr::Expr;
use super::signal::{DriftTarget, Signal};
use super::template::Template;

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
    /// `max_samples: N` of a drift rule: its drift values and p-values are
    /// those of the newest `N` values of the window (fewer when the window
    /// holds fewer), not of the whole window (docs/drift.md, "Recent
    /// values"). `None`: the whole window.
    pub max_samples: Option<u64>,
    /// `significance: α` of a drift rule: its condition also requires the
    /// drift to be significant, the method's p-value adjusted across the
    /// model version's features (Holm) below `α`
    /// (`drift_pvalue_adjusted(…) < α`; docs/drift.md).
    pub significance: Option<f64>,
    /// 1-based line of the rule in the file.
    pub line: usize,
    /// 1-based line and column of the expression's threshold in the file,
    /// for messages about the threshold itself.
    pub threshold_at: (usize, usize),
}

impl Rule {
    /// `Some(true)` for a drift signal of the prediction, `Some(false)` for
    /// one of a feature, `None` for any other signal.
    pub fn drift_of_prediction(&self) -> Option<bool> {
        match &self.expr.signal {
            Signal::Drift { target, .. } | Signal::DriftPvalue { target, .. } => {
                Some(matches!(target, DriftTarget::Prediction))
            }
            _ => None,
        }
    }
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
