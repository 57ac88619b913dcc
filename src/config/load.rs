//! Loading a rules file: [`load`] parses the text into a positioned YAML
//! tree and walks it once, building the typed [`Config`].
//!
//! Each mapping of the file has a table of its keys ([`Keys`]) giving the
//! one function that reads each key; a key not in the table is reported as
//! unknown, with a "did you mean". The functions are called in the order of
//! the table, so a key may use what the keys before it have read (a group's
//! `rules` use its `interval`, a rule's `annotations` its `labels` and
//! `expr`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::{ConfigError, ConfigErrors};
use super::reader::{FeatureUse, Keys, Loader};
use super::types::{Config, Defaults, FeatureSpec, ModelConfig};
use super::yaml::{self, Node, NodeKind};
use crate::baseline::format::Baseline;
use crate::rules::duration::format_duration;
use crate::rules::expr::Expr;
use crate::rules::rule::{Group, Matchers, Rule, Severity};
use crate::rules::signal::{FeatureSel, Signal};
use crate::rules::suggest::{closest, did_you_mean};
use crate::rules::template::{Template, is_label_name};

/// Loads a rules file from text. `file_name` is used in error messages only.
///
/// # Errors
/// Every problem found, sorted by position.
pub fn load(file_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let parsed = yaml::parse(text);
    let mut loader = Loader::new(file_name, text);
    for e in parsed.errors {
        loader.error_at(e.line, e.column, e.message);
    }
    let config = parsed.root.map(|root| loader.config(&root));
    let mut warnings = std::mem::take(&mut loader.warnings);
    let mut errors = loader.into_errors();
    match config {
        Some(mut config) if errors.is_empty() => {
            warnings.sort_by_key(|e| (e.line, e.column));
            warnings.dedup();
            config.warnings = warnings;
            Ok(config)
        }
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}

/// Reads and loads a rules file of at most
/// [`DEFAULT_MAX_BYTES`](crate::files::DEFAULT_MAX_BYTES); see
/// [`load_file_limited`].
///
/// # Errors
/// Every problem found, sorted by position.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_limited(path, crate::files::DEFAULT_MAX_BYTES)
}

/// Reads and loads a rules file, which must be a regular file of at most
/// `max_bytes` (`--config.max-bytes`); a FIFO, a device or a directory in
/// its place is an error, not a wait (see [`crate::files`]). Read errors
/// are reported as a [`ConfigError`] without position.
///
/// # Errors
/// Every problem found, sorted by position.
pub fn load_file_limited(path: &Path, max_bytes: u64) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    match crate::files::read_regular_to_string(path, max_bytes) {
        Ok(text) => load(&name, &text),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: name,
            line: 0,
            column: 0,
            message: format!("cannot read the rules file: {e}"),
        }])),
    }
}

/// 1-based column, in chars, of an expression's threshold: the first
/// character after the comparison operator and its spaces (the signal
/// before it may contain operator characters only inside quotes, and the
/// number after it none).
fn threshold_column(text: &str) -> usize {
    let after_op = text.rfind(['<', '>', '=']).map_or(0, |i| i + 1);
    let start = text[after_op..]
        .find(|c: char| !c.is_whitespace())
        .map_or(after_op, |i| after_op + i);
    text[..start].chars().count() + 1
}

impl Config {
    /// The rules.yaml compiled into the binary.
    ///
    /// # Panics
    /// If the built-in file does not load (a test guards against that).
    pub fn default_rules() -> Config {
        match load(crate::DEFAULT_RULES_NAME, crate::DEFAULT_RULES_YAML) {
            Ok(c) => c,
            Err(e) => panic!("the built-in rules.yaml is invalid:\n{e}"),
        }
    }
}

/// The top-level keys; `defaults` first, since groups use them.
const TOP_KEYS: &Keys<Config> = &[
    ("defaults", Loader::defaults),
    ("models", Loader::models),
    ("groups", Loader::groups),
];

/// `defaults` while its keys are read.
#[derive(Default)]
struct DefaultsDraft {
    defaults: Defaults,
    /// `window` was given, and is valid.
    window_given: bool,
}

const DEFAULTS_KEYS: &Keys<DefaultsDraft> = &[
    ("window", Loader::defaults_window),
    ("evaluation_interval", Loader::defaults_evaluation_interval),
    ("min_samples", Loader::defaults_min_samples),
];

/// A model's entry while its keys are read.
pub(super) struct ModelDraft {
    /// The model's name (`*` for every model).
    pub(super) name: String,
    pub(super) model: ModelConfig,
}

const MODEL_KEYS: &Keys<ModelDraft> = &[
    ("baseline", Loader::model_baseline),
    ("positive_threshold", Loader::model_positive_threshold),
    (
        "low_confidence_threshold",
        Loader::model_low_confidence_threshold,
    ),
    ("learn_reference", Loader::model_learn_reference),
    ("features", Loader::model_features),
    ("inference_logger", Loader::model_inference_logger),
];

const FEATURE_KEYS: &Keys<FeatureSpec> = &[
    ("min", Loader::feature_min),
    ("max", Loader::feature_max),
    ("required", Loader::feature_required),
    ("mean", Loader::feature_mean),
    ("std", Loader::feature_std),
    ("categories", Loader::feature_categories),
];

/// A group while its keys are read.
struct GroupDraft {
    defaults: Defaults,
    name: Option<String>,
    interval: Duration,
    rules: Vec<Rule>,
}

/// `rules` last: they use the group's `interval`.
const GROUP_KEYS: &Keys<GroupDraft> = &[
    ("name", Loader::group_name),
    ("interval", Loader::group_interval),
    ("rules", Loader::group_rules),
];

/// A rule while its keys are read, starting from the defaults.
struct RuleDraft {
    /// The group's evaluation interval, which `window` may not be shorter than.
    interval: Duration,
    alert: Option<String>,
    /// Where the expression is, for warnings about it.
    expr_at: (usize, usize),
    /// The parsed expression, its text, and where its threshold is in
    /// the file (line, column).
    expr: Option<(Expr, String, (usize, usize))>,
    window: Duration,
    for_: Duration,
    keep_firing_for: Duration,
    severity: Severity,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, Template>,
    matchers: Matchers,
    min_samples: u64,
    /// `max_samples`, and where it is written (line, column).
    max_samples: Option<(u64, usize, usize)>,
    /// `significance`, and where it is written (line, column).
    significance: Option<(f64, usize, usize)>,
    /// False once a value is unusable: the rule is then left out.
    ok: bool,
}

/// `annotations` after `expr` and `labels`: the templates may use only the
/// labels the alert will carry.
const RULE_KEYS: &Keys<RuleDraft> = &[
    ("alert", Loader::rule_alert),
    ("expr", Loader::rule_expr),
    ("window", Loader::rule_window),
    ("for", Loader::rule_for),
    ("keep_firing_for", Loader::rule_keep_firing_for),
    ("severity", Loader::rule_severity),
    ("labels", Loader::rule_labels),
    ("annotations", Loader::rule_annotations),
    ("match", Loader::rule_match),
    ("min_samples", Loader::rule_min_samples),
    ("max_samples", Loader::rule_max_samples),
    ("significance", Loader::rule_significance),
];

/// The largest `max_samples`: each feature keeps that many bin indices
/// (4 bytes each) for the rules that read its newest values.
pub const MAX_SAMPLES_LIMIT: u64 = 1_000_000;

/// The keys of a rule's `match`.
const MATCH_KEYS: [&str; 2] = ["model", "version"];

/// Labels set by the sidecar itself, which `labels:` may not override.
const RESERVED_LABELS: [&str; 6] = [
    "alertname",
    "alertstate",
    "severity",
    "model",
    "version",
    "feature",
];

/// The labels every alert has, which annotations may use.
const ALERT_LABELS: [&str; 4] = ["alertname", "severity", "model", "version"];

impl Loader {
    /// The whole file.
    pub(super) fn config(&mut self, root: &Node) -> Config {
        let mut config = Config::default();
        self.fields(root, "the rules file", TOP_KEYS, &mut config);
        self.check_feature_uses(&config);
        config
    }

    /// Warns of a rule naming a feature that no baseline of its models
    /// has: drift needs a reference, so such a rule never fires, and the
    /// name is most often a typo. Models without a baseline are not judged.
    fn check_feature_uses(&mut self, config: &Config) {
        for u in std::mem::take(&mut self.feature_uses) {
            let models: Vec<(&String, &ModelConfig)> = match &u.model {
                Some(m) => config
                    .models
                    .get_key_value(m)
                    .or_else(|| config.models.get_key_value("*"))
                    .into_iter()
                    .collect(),
                None => config.models.iter().collect(),
            };
            let with_baseline: Vec<_> = models
                .iter()
                .filter(|(_, m)| m.reference.is_some())
                .collect();
            if with_baseline.is_empty() {
                continue;
            }
            let known: std::collections::BTreeSet<&str> = with_baseline
                .iter()
                .flat_map(|(_, m)| {
                    let baseline = m.reference.as_deref().into_iter();
                    baseline
                        .flat_map(|b| b.features.keys())
                        .chain(m.features.keys())
                        .map(String::as_str)
                })
                .collect();
            if known.contains(u.feature.as_str()) {
                continue;
            }
            let names: Vec<String> = with_baseline
                .iter()
                .map(|(name, m)| match &m.baseline {
                    Some(path) => format!("'{name}' ({})", path.display()),
                    None => format!("'{name}'"),
                })
                .collect();
            let hint = match closest(&u.feature, known.iter().copied()) {
                Some(near) => format!("; did you mean '{near}'?"),
                None => String::new(),
            };
            self.warn_at(
                u.line,
                u.column,
                format!(
                    "feature '{}' is not in the baseline of {}: this rule has no reference to compare it with{hint}",
                    u.feature,
                    names.join(", ")
                ),
            );
        }
    }

    /// `defaults`.
    fn defaults(&mut self, node: &Node, config: &mut Config) {
        let mut d = DefaultsDraft::default();
        let fields = self.fields(node, "defaults", DEFAULTS_KEYS, &mut d);
        let defaults = d.defaults;
        if defaults.window < defaults.evaluation_interval {
            let at = match fields.get("window") {
                Some(window) if d.window_given => window,
                _ => node,
            };
            self.error(
                at,
                format!(
                    "defaults.window ({}) is shorter than defaults.evaluation_interval ({})",
                    format_duration(defaults.window),
                    format_duration(defaults.evaluation_interval)
                ),
            );
        }
        config.defaults = defaults;
    }

    fn defaults_window(&mut self, v: &Node, d: &mut DefaultsDraft) {
        if let Some(w) = self.positive_duration(v, "defaults.window") {
            d.defaults.window = w;
            d.window_given = true;
        }
    }

    fn defaults_evaluation_interval(&mut self, v: &Node, d: &mut DefaultsDraft) {
        if let Some(i) = self.positive_duration(v, "defaults.evaluation_interval") {
            d.defaults.evaluation_interval = i;
        }
    }

    fn defaults_min_samples(&mut self, v: &Node, d: &mut DefaultsDraft) {
        if let Some(n) = self.count(v, "defaults.min_samples") {
            d.defaults.min_samples = n;
        }
    }

    /// `models`: a mapping from model name to its entry.
    fn models(&mut self, node: &Node, config: &mut Config) {
        for (k, name, v) in self.entries(node, "models") {
            if name.is_empty() {
                self.error(
                    k,
                    "model name must not be empty (use \"*\" for every model)",
                );
                continue;
            }
            let model = self.model(v, name);
            config.models.insert(name.to_string(), model);
        }
        self.check_inference_logger_services(node);
    }

    /// One model's entry.
    fn model(&mut self, node: &Node, name: &str) -> ModelConfig {
        let mut m = ModelDraft {
            name: name.to_owned(),
            model: ModelConfig::default(),
        };
        self.fields(node, &format!("model '{name}'"), MODEL_KEYS, &mut m);
        m.model
    }

    fn model_baseline(&mut self, v: &Node, m: &mut ModelDraft) {
        let Some(p) = self.string(v, "baseline") else {
            return;
        };
        if p.is_empty() {
            self.error(v, "baseline must be a file path, found an empty string");
            return;
        }
        m.model.baseline = Some(PathBuf::from(&p));
        // Relative paths are relative to the rules file.
        let path = Path::new(&self.file)
            .parent()
            .unwrap_or(Path::new(""))
            .join(p);
        match Baseline::load(&path) {
            Ok(b) => m.model.reference = Some(Arc::new(b)),
            Err(e) => self.error(v, format!("cannot use the baseline: {e}")),
        }
    }

    fn model_positive_threshold(&mut self, v: &Node, m: &mut ModelDraft) {
        if let Some(t) = self.number(v, "positive_threshold") {
            m.model.positive_threshold = t;
        }
    }

    fn model_low_confidence_threshold(&mut self, v: &Node, m: &mut ModelDraft) {
        let Some(t) = self.number(v, "low_confidence_threshold") else {
            return;
        };
        if (0.0..=1.0).contains(&t) {
            m.model.low_confidence_threshold = t;
        } else {
            self.error(
                v,
                format!("low_confidence_threshold must be between 0 and 1, found {t}"),
            );
        }
    }

    fn model_learn_reference(&mut self, v: &Node, m: &mut ModelDraft) {
        let Some(n) = self.count(v, "learn_reference") else {
            return;
        };
        if (10..=1_000_000).contains(&n) {
            m.model.learn_reference = Some(n as usize);
        } else {
            self.error(
                v,
                format!("learn_reference must be between 10 and 1000000 events, found {n}"),
            );
        }
    }

    /// `features`: a mapping from feature name to its expectations.
    fn model_features(&mut self, v: &Node, m: &mut ModelDraft) {
        let what = format!("features of model '{}'", m.name);
        for (k, name, fv) in self.entries(v, &what) {
            if name.is_empty() {
                self.error(k, "feature name must not be empty");
                continue;
            }
            let spec = self.feature(fv, name);
            m.model.features.insert(name.to_string(), spec);
        }
    }

    /// One feature's expectations, and the constraints between its keys.
    fn feature(&mut self, node: &Node, name: &str) -> FeatureSpec {
        let what = format!("feature '{name}'");
        let mut f = FeatureSpec::default();
        let fields = self.fields(node, &what, FEATURE_KEYS, &mut f);
        if let (Some(lo), Some(hi)) = (f.min, f.max)
            && lo > hi
            && let Some(at) = fields.get("max")
        {
            self.error(at, format!("max ({hi}) is less than min ({lo}) of {what}"));
        }
        if f.mean.is_some() != f.std.is_some()
            && let Some(at) = fields.get("mean").or(fields.get("std"))
        {
            self.error(
                at,
                format!("{what}: mean and std go together (the inline reference needs both)"),
            );
        }
        if f.categories.is_some()
            && let Some(at) = ["min", "max", "mean", "std"]
                .iter()
                .find_map(|k| fields.get(k))
        {
            self.error(
                at,
                format!("{what} has categories, so it is categorical: min, max, mean and std do not apply"),
            );
        }
        f
    }

    fn feature_min(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.min = self.number(v, "min");
    }

    fn feature_max(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.max = self.number(v, "max");
    }

    fn feature_required(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.required = self.boolean(v, "required").unwrap_or(false);
    }

    fn feature_mean(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.mean = self.number(v, "mean");
    }

    fn feature_std(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.std = self.number(v, "std");
        if let Some(s) = f.std
            && s <= 0.0
        {
            self.error(v, format!("std must be greater than 0, found {s}"));
        }
    }

    fn feature_categories(&mut self, v: &Node, f: &mut FeatureSpec) {
        f.categories = self.distinct_strings(v, "categories", "category");
    }

    /// `groups`: a list of groups with distinct names.
    fn groups(&mut self, node: &Node, config: &mut Config) {
        let items = match &node.kind {
            NodeKind::Seq(items) => items.as_slice(),
            NodeKind::Null => &[],
            _ => {
                self.error(
                    node,
                    format!("groups must be a list, found {}", node.type_name()),
                );
                &[]
            }
        };
        let mut names: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for item in items {
            let Some(g) = self.group(item, &config.defaults) else {
                continue;
            };
            if let Some((l, c)) = names.get(&g.name) {
                let msg = format!("duplicate group name '{}' (first used at {l}:{c})", g.name);
                self.error(item, msg);
            } else {
                names.insert(g.name.clone(), (item.line, item.column));
            }
            config.groups.push(g);
        }
    }

    /// One group; `None` when it is not a mapping.
    fn group(&mut self, node: &Node, defaults: &Defaults) -> Option<Group> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.error(
                node,
                format!(
                    "a group must be a mapping with name and rules, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
        let mut g = GroupDraft {
            defaults: defaults.clone(),
            name: None,
            interval: defaults.evaluation_interval,
            rules: Vec::new(),
        };
        let fields = self.fields(node, "a group", GROUP_KEYS, &mut g);
        for required in ["name", "rules"] {
            if !fields.has(required) {
                self.error(node, format!("group is missing required key '{required}'"));
            }
        }
        Some(Group {
            name: g.name.unwrap_or_default(),
            interval: g.interval,
            rules: g.rules,
        })
    }

    fn group_name(&mut self, v: &Node, g: &mut GroupDraft) {
        if let Some(n) = self.string(v, "group name") {
            if n.trim().is_empty() {
                self.error(v, "group name must not be empty");
            }
            g.name = Some(n);
        }
    }

    fn group_interval(&mut self, v: &Node, g: &mut GroupDraft) {
        if let Some(i) = self.positive_duration(v, "group interval") {
            g.interval = i;
        }
    }

    fn group_rules(&mut self, v: &Node, g: &mut GroupDraft) {
        match &v.kind {
            NodeKind::Seq(items) => {
                for item in items {
                    if let Some(r) = self.rule(item, &g.defaults, g.interval) {
                        g.rules.push(r);
                    }
                }
            }
            NodeKind::Null => {}
            _ => self.error(v, format!("rules must be a list, found {}", v.type_name())),
        }
    }

    /// One rule, with the defaults applied; `None` when it is not usable.
    fn rule(&mut self, node: &Node, defaults: &Defaults, interval: Duration) -> Option<Rule> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.error(
                node,
                format!(
                    "a rule must be a mapping with alert and expr, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
        let mut r = RuleDraft {
            interval,
            alert: None,
            expr_at: (node.line, node.column),
            expr: None,
            window: defaults.window,
            for_: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            severity: Severity::default(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            matchers: Matchers::default(),
            min_samples: defaults.min_samples,
            max_samples: None,
            significance: None,
            ok: true,
        };
        let fields = self.fields(node, "a rule", RULE_KEYS, &mut r);
        for required in ["alert", "expr"] {
            if !fields.has(required) {
                self.error(node, format!("rule is missing required key '{required}'"));
                r.ok = false;
            }
        }
        if !r.ok {
            return None;
        }
        let (expr, expr_text, threshold_at) = r.expr?;
        if let Some((_, line, column)) = r.significance
            && !matches!(expr.signal, Signal::Drift { .. })
        {
            self.error_at(
                line,
                column,
                format!(
                    "significance applies to drift rules only (psi, ks, js, wasserstein, chi2_pvalue), not to '{}'",
                    expr.signal
                ),
            );
            return None;
        }
        if let Some((n, line, column)) = r.max_samples {
            if !matches!(
                expr.signal,
                Signal::Drift { .. } | Signal::DriftPvalue { .. }
            ) {
                self.error_at(
                    line,
                    column,
                    format!(
                        "max_samples applies to drift rules only (psi, ks, js, wasserstein, chi2_pvalue, drift_pvalue), not to '{}'",
                        expr.signal
                    ),
                );
                return None;
            }
            if n < r.min_samples {
                self.error_at(
                    line,
                    column,
                    format!(
                        "max_samples ({n}) is below min_samples ({}): the rule could never have enough samples for a verdict",
                        r.min_samples
                    ),
                );
                return None;
            }
        }
        if let Some(FeatureSel::Named(feature)) = expr.signal.feature() {
            let (line, column) = r.expr_at;
            self.feature_uses.push(FeatureUse {
                line,
                column,
                feature: feature.clone(),
                model: r.matchers.model.clone(),
            });
        }
        Some(Rule {
            alert: r.alert?,
            expr,
            expr_text,
            window: r.window,
            for_: r.for_,
            keep_firing_for: r.keep_firing_for,
            severity: r.severity,
            labels: r.labels,
            annotations: r.annotations,
            matchers: r.matchers,
            min_samples: r.min_samples,
            max_samples: r.max_samples.map(|(n, _, _)| n),
            significance: r.significance.map(|(a, _, _)| a),
            line: node.line,
            threshold_at,
        })
    }

    fn rule_alert(&mut self, v: &Node, r: &mut RuleDraft) {
        match self.string(v, "alert") {
            Some(a) if is_label_name(&a) => r.alert = Some(a),
            Some(a) => {
                self.error(
                    v,
                    format!("alert name '{a}' is invalid: use letters, digits and '_', not starting with a digit"),
                );
                r.ok = false;
            }
            None => r.ok = false,
        }
    }

    fn rule_expr(&mut self, v: &Node, r: &mut RuleDraft) {
        let Some(text) = self.string(v, "expr") else {
            r.ok = false;
            return;
        };
        match Expr::parse(&text) {
            Ok(e) => {
                // At the feature's name when it can be placed.
                r.expr_at = match text.find("feature.") {
                    Some(byte) => {
                        let column = text[..byte].chars().count() + 1 + "feature.".len();
                        let (l, c, note) = self.locate(v, &text, column);
                        if note.is_empty() {
                            (l, c)
                        } else {
                            (v.line, v.column)
                        }
                    }
                    None => (v.line, v.column),
                };
                let (line, column, _) = self.locate(v, &text, threshold_column(&text));
                r.expr = Some((e, text, (line, column)));
            }
            Err(e) => {
                let (line, column, note) = self.locate(v, &text, e.column);
                self.error_at(line, column, format!("in expr: {}{note}", e.message));
                r.ok = false;
            }
        }
    }

    fn rule_window(&mut self, v: &Node, r: &mut RuleDraft) {
        let Some(w) = self.positive_duration(v, "window") else {
            r.ok = false;
            return;
        };
        if w < r.interval {
            self.error(
                v,
                format!(
                    "window ({}) is shorter than the evaluation interval ({})",
                    format_duration(w),
                    format_duration(r.interval)
                ),
            );
        }
        r.window = w;
    }

    fn rule_for(&mut self, v: &Node, r: &mut RuleDraft) {
        match self.duration(v, "for") {
            Some(d) => r.for_ = d,
            None => r.ok = false,
        }
    }

    fn rule_keep_firing_for(&mut self, v: &Node, r: &mut RuleDraft) {
        match self.duration(v, "keep_firing_for") {
            Some(d) => r.keep_firing_for = d,
            None => r.ok = false,
        }
    }

    fn rule_severity(&mut self, v: &Node, r: &mut RuleDraft) {
        let Some(s) = self.string(v, "severity") else {
            r.ok = false;
            return;
        };
        match Severity::ALL.into_iter().find(|sev| sev.as_str() == s) {
            Some(severity) => r.severity = severity,
            None => {
                self.error(
                    v,
                    format!(
                        "unknown severity '{s}', expected info, warning or critical{}",
                        did_you_mean(&s, Severity::ALL.map(Severity::as_str))
                    ),
                );
                r.ok = false;
            }
        }
    }

    fn rule_labels(&mut self, v: &Node, r: &mut RuleDraft) {
        for (k, name, value) in self.string_map(v, "labels") {
            if !is_label_name(&name) {
                self.error(
                    &k,
                    format!("invalid label name '{name}': expected [a-zA-Z_][a-zA-Z0-9_]*"),
                );
            } else if name.starts_with("__") {
                self.error(&k, format!("label name '{name}' is reserved: names starting with '__' are internal to Prometheus"));
            } else if RESERVED_LABELS.contains(&name.as_str()) {
                self.error(
                    &k,
                    format!(
                        "label '{name}' is set by model-exporter and cannot be overridden here"
                    ),
                );
            } else {
                r.labels.insert(name, value);
            }
        }
    }

    fn rule_annotations(&mut self, v: &Node, r: &mut RuleDraft) {
        for (k, name, tv) in self.entries(v, "annotations") {
            if !is_label_name(name) {
                self.error(
                    k,
                    format!("invalid annotation name '{name}': expected [a-zA-Z_][a-zA-Z0-9_]*"),
                );
                continue;
            }
            let Some(text) = self.string(tv, &format!("annotation '{name}'")) else {
                continue;
            };
            match Template::parse(&text) {
                Ok(t) => {
                    self.annotation_labels(name, tv, &t, r);
                    r.annotations.insert(name.to_string(), t);
                }
                Err(e) => {
                    let (line, column, note) = self.locate(tv, &text, e.column);
                    self.error_at(
                        line,
                        column,
                        format!("in annotation '{name}': {}{note}", e.message),
                    );
                }
            }
        }
    }

    /// Reports each label annotation `name` uses that the alert will not
    /// have.
    fn annotation_labels(&mut self, name: &str, tv: &Node, t: &Template, r: &RuleDraft) {
        let per_feature = r
            .expr
            .as_ref()
            .is_some_and(|(e, _, _)| e.signal.feature().is_some());
        for label in t.labels_used() {
            let known = ALERT_LABELS.contains(&label)
                || (label == "feature" && per_feature)
                || r.labels.contains_key(label);
            if known {
                continue;
            }
            let mut avail: Vec<&str> = ALERT_LABELS.to_vec();
            if per_feature {
                avail.push("feature");
            }
            avail.extend(r.labels.keys().map(String::as_str));
            let offset = t
                .source()
                .find(&format!("$labels.{label}"))
                .map(|b| t.source()[..b].chars().count() + 1);
            let (line, column, _) = match offset {
                Some(c) => self.locate(tv, t.source(), c),
                None => (tv.line, tv.column, String::new()),
            };
            let hint = if label == "feature" {
                " (the signal names no feature)".to_string()
            } else {
                did_you_mean(label, avail.iter().copied())
            };
            self.error_at(
                line,
                column,
                format!(
                    "annotation '{name}' uses label '{label}', which this alert does not have{hint}; available: {}",
                    avail.join(", ")
                ),
            );
        }
    }

    fn rule_match(&mut self, v: &Node, r: &mut RuleDraft) {
        for (k, name, value) in self.entries(v, "match") {
            let Some(value) = self.string(value, &format!("match.{name}")) else {
                continue;
            };
            match name {
                "model" => r.matchers.model = Some(value),
                "version" => r.matchers.version = Some(value),
                _ => self.error(
                    k,
                    format!(
                        "cannot match on '{name}': only 'model' and 'version' are known when a rule is evaluated{}",
                        did_you_mean(name, MATCH_KEYS)
                    ),
                ),
            }
        }
    }

    /// `significance: 1%` or `0.01`: a level strictly between 0 and 1.
    fn rule_significance(&mut self, v: &Node, r: &mut RuleDraft) {
        let text = v.as_scalar().unwrap_or_default();
        let level = match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().ok().map(|p| p / 100.0),
            None => self.number(v, "significance"),
        };
        match level {
            Some(a) if a > 0.0 && a < 1.0 => r.significance = Some((a, v.line, v.column)),
            _ => {
                self.error(
                    v,
                    format!(
                        "significance must be a level between 0 and 1, e.g. 1% or 0.01, found '{text}'"
                    ),
                );
                r.ok = false;
            }
        }
    }

    fn rule_min_samples(&mut self, v: &Node, r: &mut RuleDraft) {
        match self.count(v, "min_samples") {
            Some(n) => r.min_samples = n,
            None => r.ok = false,
        }
    }

    /// `max_samples: N`, a whole number from 1 to [`MAX_SAMPLES_LIMIT`].
    fn rule_max_samples(&mut self, v: &Node, r: &mut RuleDraft) {
        match self.count_between(v, "max_samples", 1, MAX_SAMPLES_LIMIT) {
            Some(n) => r.max_samples = Some((n, v.line, v.column)),
            None => r.ok = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::rules::expr::CmpOp;
    use crate::rules::signal::Signal;

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        match load("r.yaml", text) {
            Ok(c) => panic!("loaded: {c:?}"),
            Err(e) => {
                e.0.into_iter()
                    .map(|e| (e.line, e.column, e.message))
                    .collect()
            }
        }
    }

    /// Asserts exactly these errors (line, column, message fragment), in order.
    fn assert_errors(text: &str, want: &[(usize, usize, &str)]) {
        let got = errors(text);
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0, g.1), (w.0, w.1), "{g:?} vs {w:?}");
            assert!(g.2.contains(w.2), "{:?} lacks {:?}", g.2, w.2);
        }
    }

    /// `max_samples` is read on drift rules, and each misuse is reported at
    /// its value, all of them in one pass.
    #[test]
    fn max_samples_is_checked_at_its_place() {
        let text = "groups:\n  - name: g\n    rules:\n\
                    \x20     - {alert: A, expr: error_rate > 5%, max_samples: 10}\n\
                    \x20     - {alert: B, expr: psi(feature.*) > 0.2, max_samples: 0}\n\
                    \x20     - {alert: C, expr: psi(feature.*) > 0.2, max_samples: 2.5}\n\
                    \x20     - {alert: D, expr: ks(prediction) > 0.2, min_samples: 40, max_samples: 39}\n\
                    \x20     - {alert: E, expr: js(feature.x) > 0.2, max_samples: 2000000}\n";
        assert_errors(
            text,
            &[
                (4, 56, "max_samples applies to drift rules only"),
                (
                    5,
                    61,
                    "max_samples must be a whole number from 1 to 1000000, found '0'",
                ),
                (
                    6,
                    61,
                    "max_samples must be a whole number from 1 to 1000000, found '2.5'",
                ),
                (7, 78, "max_samples (39) is below min_samples (40)"),
                (
                    8,
                    60,
                    "max_samples must be a whole number from 1 to 1000000, found '2000000'",
                ),
            ],
        );
        let ok = "groups:\n  - name: g\n    rules:\n      - {alert: A, expr: 'drift_pvalue_adjusted(feature.*, psi) < 1%', max_samples: 30}\n      - {alert: B, expr: psi(prediction) > 0.2}\n";
        let c = load("r.yaml", ok).unwrap();
        assert_eq!(c.groups[0].rules[0].max_samples, Some(30));
        assert_eq!(c.groups[0].rules[1].max_samples, None);
    }

    #[test]
    fn built_in_rules_load_without_errors() {
        let c = match load(crate::DEFAULT_RULES_NAME, crate::DEFAULT_RULES_YAML) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c, Config::default_rules());
        assert_eq!(c.defaults, Defaults::default());
        assert_eq!(c.groups.len(), 2);
        assert!(c.models.contains_key("*"));
        let all: Vec<&Rule> = c.groups.iter().flat_map(|g| &g.rules).collect();
        assert!(all.len() >= 8);
        let drift = all
            .iter()
            .find(|r| r.alert == "FeatureDrift")
            .expect("FeatureDrift");
        assert!(drift.expr.signal.is_per_feature());
        assert_eq!(drift.window, Duration::from_secs(900));
        assert_eq!(drift.max_samples, Some(300));
        let latency = all
            .iter()
            .find(|r| r.alert == "HighLatency")
            .expect("HighLatency");
        assert_eq!(latency.expr.signal, Signal::Quantile { q: 0.99 });
        assert_eq!(latency.expr.threshold, 0.5);
        assert_eq!(latency.for_, Duration::from_secs(60));
        assert_eq!(latency.keep_firing_for, Duration::from_secs(120));
        assert_eq!(latency.window, Duration::from_secs(300));
        let silent = all
            .iter()
            .find(|r| r.alert == "ModelSilent")
            .expect("ModelSilent");
        assert_eq!(silent.min_samples, 0);
        let stale = all
            .iter()
            .find(|r| r.alert == "ModelStale")
            .expect("ModelStale");
        assert_eq!(stale.severity, Severity::Info);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        for text in ["", "# nothing\n", "defaults:\nmodels:\ngroups:\n"] {
            let c = load("r.yaml", text).expect("loads");
            assert_eq!(c, Config::default(), "{text:?}");
        }
    }

    #[test]
    fn the_spec_example_loads() {
        let text = r#"
defaults:
  window: 5m
  evaluation_interval: 10s
  min_samples: 30
models:
  fraud:
    baseline: baselines/fraud.json
    positive_threshold: 0.5
    low_confidence_threshold: 0.5
    features:
      age:    {min: 0, max: 120, required: true}
      amount: {mean: 100, std: 50}
      country: {categories: [DE, FR, US]}
groups:
  - name: operational
    rules:
      - alert: HighLatency
        expr: p99(latency) > 500ms
        for: 1m
        keep_firing_for: 2m
        severity: warning
        annotations:
          summary: "p99 latency of {{ $labels.model }} is {{ $value }}"
      - alert: HighErrorRate
        expr: error_rate > 5%
        severity: critical
  - name: ml
    interval: 30s
    rules:
      - alert: FeatureDrift
        expr: psi(feature.*) > 0.25
        window: 15m
        match: {model: fraud}
        labels: {team: risk}
"#;
        // The baseline it names, relative to the rules file.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("baselines")).unwrap();
        std::fs::write(
            dir.path().join("baselines/fraud.json"),
            r#"{"format":"model-exporter-baseline","version":1,"created_at":"2026-11-01T00:00:00Z",
                "source":"train.csv","rows":2,"features":{"age":{"type":"numeric","count":2,"missing":0,
                "missing_rate":0,"mean":35,"std":5,"min":30,"max":40,"edges":[30,35,40],
                "proportions":[0,0.5,0.5,0]}}}"#,
        )
        .unwrap();
        let name = dir.path().join("r.yaml").display().to_string();
        let c = load(&name, text).unwrap_or_else(|e| panic!("{e}"));
        let fraud = &c.models["fraud"];
        assert_eq!(fraud.reference.as_ref().unwrap().rows, 2);
        assert_eq!(
            fraud.baseline.as_deref(),
            Some(Path::new("baselines/fraud.json"))
        );
        assert_eq!(fraud.features["age"].max, Some(120.0));
        assert!(fraud.features["age"].required);
        assert_eq!(fraud.features["amount"].std, Some(50.0));
        assert_eq!(
            fraud.features["country"].categories.as_deref(),
            Some(&["DE".to_string(), "FR".into(), "US".into()][..])
        );
        assert_eq!(c.groups[0].interval, Duration::from_secs(10));
        assert_eq!(c.groups[1].interval, Duration::from_secs(30));
        let r = &c.groups[1].rules[0];
        assert_eq!(r.matchers.model.as_deref(), Some("fraud"));
        assert!(r.matchers.matches("fraud", "v1"));
        assert!(!r.matchers.matches("other", "v1"));
        assert_eq!(r.labels["team"], "risk");
        assert_eq!(r.line, 31);
        assert_eq!(r.expr.op, CmpOp::Gt);
        let hl = &c.groups[0].rules[0];
        let labels: BTreeMap<String, String> = [("model".to_string(), "fraud".to_string())].into();
        assert_eq!(
            hl.annotations["summary"].render(&labels, 0.75),
            "p99 latency of fraud is 0.75"
        );
        assert_eq!(c.model("fraud"), Some(fraud));
        assert_eq!(c.model("other"), None);
    }

    /// A file with many different mistakes: every one is reported, located.
    #[test]
    fn broken_file_reports_every_error_with_its_position() {
        let text = r#"defaults:
  window: 5 minutes
  evaluation_intervall: 10s
  min_samples: -3
models:
  fraud:
    positive_threshold: "high"
    features:
      age: {min: 10, max: 5}
      amount: {std: 0, mean: 1}
      country: {categories: [DE, DE]}
    baseline: [a, b]
groups:
  - name: ops
    rules:
      - alert: HighLatency
        expr: p99(latncy) > 500ms
        keep_fireing_for: 2m
        severity: critcal
      - alert: Bad Name
        expr: 'error_rate > 500ms'
        labels:
          model: x
          __x: y
          ok-no: z
        annotations:
          summary: "{{ $value }} {{ $labels.feature }}"
          description: "{{ $valeu }}"
        match: {modle: fraud}
      - expr: error_rate >
        for: 1.5m
      - just a string
  - name: ops
    rules: {}
unknown_top: 1
"#;
        assert_errors(
            text,
            &[
                (2, 11, "invalid duration '5 minutes'"),
                (
                    3,
                    3,
                    "unknown key 'evaluation_intervall' in defaults, did you mean 'evaluation_interval'?",
                ),
                (
                    4,
                    16,
                    "defaults.min_samples must be a whole number >= 0, found '-3'",
                ),
                (
                    7,
                    25,
                    "positive_threshold must be a number, found the quoted string 'high'",
                ),
                (9, 27, "max (5) is less than min (10) of feature 'age'"),
                (10, 21, "std must be greater than 0"),
                (11, 34, "duplicate category 'DE'"),
                (12, 15, "baseline must be a string, found a list"),
                (
                    17,
                    19,
                    "in expr: unknown argument 'latncy' for p99(), expected latency, did you mean 'latency'?",
                ),
                (
                    18,
                    9,
                    "unknown key 'keep_fireing_for' in a rule, did you mean 'keep_firing_for'?",
                ),
                (
                    19,
                    19,
                    "unknown severity 'critcal', expected info, warning or critical, did you mean 'critical'?",
                ),
                (20, 16, "alert name 'Bad Name' is invalid"),
                (
                    21,
                    32,
                    "in expr: duration unit 'ms' makes no sense for 'error_rate'",
                ),
                (23, 11, "label 'model' is set by model-exporter"),
                (24, 11, "label name '__x' is reserved"),
                (25, 11, "invalid label name 'ok-no'"),
                (
                    27,
                    37,
                    "annotation 'summary' uses label 'feature', which this alert does not have",
                ),
                (
                    28,
                    28,
                    "in annotation 'description': unsupported template expression '$valeu' (only {{ $labels.NAME }}, {{ $value }} and {{ $value | FUNCTION }} are supported), did you mean '$value'?",
                ),
                (
                    29,
                    17,
                    "cannot match on 'modle': only 'model' and 'version' are known when a rule is evaluated, did you mean 'model'?",
                ),
                (30, 9, "rule is missing required key 'alert'"),
                (30, 27, "in expr: missing threshold"),
                (
                    31,
                    14,
                    "for: invalid duration '1.5m': fractions are not allowed",
                ),
                (
                    32,
                    9,
                    "a rule must be a mapping with alert and expr, found a scalar",
                ),
                (33, 5, "duplicate group name 'ops' (first used at 14:5)"),
                (34, 12, "rules must be a list, found a mapping"),
                (35, 1, "unknown key 'unknown_top' in the rules file"),
            ],
        );
    }

    #[test]
    fn display_formats() {
        let e = load("r.yaml", "groups: 5\n").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "r.yaml:1:9: groups must be a list, found a scalar"
        );
        let e = load("r.yaml", "a: 1\nb: 2\nb: 3\nc: 4\n").expect_err("bad");
        let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
        assert_eq!(
            lines,
            [
                "r.yaml:1:1: unknown key 'a' in the rules file",
                "r.yaml:2:1: unknown key 'b' in the rules file",
                "r.yaml:3:1: duplicate key 'b' (first defined at 2:1)",
                "r.yaml:4:1: unknown key 'c' in the rules file",
            ]
        );
    }

    #[test]
    fn yaml_syntax_errors_are_located() {
        let e = errors("groups:\n  - name: a\n    rules: [\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].2.starts_with("YAML syntax error"), "{e:?}");
        assert!(e[0].0 >= 3);
        let e = errors("defaults:\n  window: 5m\n   min_samples: 3\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, 3, "{e:?}");
    }

    #[test]
    fn expr_positions_inside_scalars() {
        let rule = |expr_line: &str| {
            format!("groups:\n  - name: g\n    rules:\n      - alert: A\n{expr_line}\n")
        };
        // (expr line, expected line, column, message fragment)
        let cases: &[(&str, usize, usize, &str)] = &[
            (
                "        expr: eror_rate > 1",
                5,
                15,
                "did you mean 'error_rate'",
            ),
            (
                "        expr:   p99(latncy) > 1   # comment",
                5,
                21,
                "'latncy'",
            ),
            ("        expr: 'p99(latncy) > 1'", 5, 20, "'latncy'"),
            (
                "        expr: 'class_rate(''a'') > 1 5'",
                5,
                38,
                "unexpected '5'",
            ),
            ("        expr: \"p99(latncy) > 1\"", 5, 20, "'latncy'"),
            (
                "        expr: \"class_rate(\\\"a\\\") > 1 5\"",
                5,
                38,
                "unexpected '5'",
            ),
            (
                "        expr: {a: 1}",
                5,
                15,
                "expr must be a string, found a mapping",
            ),
            (
                "        expr: |\n          error_rate > 1\n          5",
                7,
                11,
                "unexpected '5'",
            ),
            (
                "        expr: >-\n          error_rate >\n          1 x",
                6,
                11,
                "(at column 16 of the value)",
            ),
            (
                "        expr: error_rate >\n          1 x",
                5,
                15,
                "(at column 16 of the value)",
            ),
        ];
        for &(line, l, c, fragment) in cases {
            let text = rule(line);
            let e = errors(&text);
            assert_eq!(e.len(), 1, "{line:?}: {e:?}");
            assert_eq!((e[0].0, e[0].1), (l, c), "{line:?}: {e:?}");
            assert!(e[0].2.contains(fragment), "{line:?}: {e:?}");
        }
    }

    #[test]
    fn constraints() {
        assert_errors(
            "defaults:\n  window: 5s\n  evaluation_interval: 10s\n",
            &[(
                2,
                11,
                "defaults.window (5s) is shorter than defaults.evaluation_interval (10s)",
            )],
        );
        assert_errors(
            "defaults:\n  evaluation_interval: 0s\n",
            &[(2, 24, "defaults.evaluation_interval must be greater than 0")],
        );
        assert_errors(
            "groups:\n  - name: g\n    interval: 1m\n    rules:\n      - alert: A\n        expr: mae > 1\n        window: 30s\n",
            &[(
                7,
                17,
                "window (30s) is shorter than the evaluation interval (1m)",
            )],
        );
        assert_errors(
            "models:\n  m:\n    low_confidence_threshold: 2\n    positive_threshold: .inf\n",
            &[
                (3, 31, "low_confidence_threshold must be between 0 and 1"),
                (4, 25, "positive_threshold must be a finite number"),
            ],
        );
        assert_errors(
            "models:\n  m:\n    features:\n      a: {mean: 1}\n      b: {categories: [x], min: 0}\n      c: {categories: []}\n      d: {required: yes}\n      e: [1]\n",
            &[
                (4, 17, "mean and std go together"),
                (5, 33, "has categories, so it is categorical"),
                (6, 23, "categories must not be empty"),
                (7, 21, "required must be true or false, found 'yes'"),
                (8, 10, "feature 'e' must be a mapping, found a list"),
            ],
        );
        assert_errors(
            "groups:\n  - name: g\n  - rules: []\n  - 3\n",
            &[
                (2, 5, "group is missing required key 'rules'"),
                (3, 5, "group is missing required key 'name'"),
                (4, 5, "a group must be a mapping"),
            ],
        );
    }

    #[test]
    fn rule_values_and_defaults() {
        let text = "defaults:\n  window: 10m\n  min_samples: 5\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: zscore(feature.amount) < -3\n        severity: info\n        for: 1h30m\n        annotations:\n          s: '{{ $labels.feature }} {{ $labels.team }}'\n        labels:\n          team: risk\n      - alert: B\n        expr: mae > 1\n        min_samples: 100\n        match:\n          version: v2\n";
        let c = load("r.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        let a = &c.groups[0].rules[0];
        assert_eq!(a.window, Duration::from_secs(600));
        assert_eq!(a.min_samples, 5);
        assert_eq!(a.severity, Severity::Info);
        assert_eq!(a.for_, Duration::from_secs(5400));
        assert_eq!(a.expr_text, "zscore(feature.amount) < -3");
        let b = &c.groups[0].rules[1];
        assert_eq!(b.min_samples, 100);
        assert_eq!(b.severity, Severity::Warning);
        assert!(b.matchers.matches("any", "v2"));
        assert!(!b.matchers.matches("any", "v1"));
    }

    #[test]
    fn load_file_reports_io_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.yaml");
        let e = load_file(&missing).expect_err("missing");
        assert_eq!(e.0.len(), 1);
        assert_eq!((e.0[0].line, e.0[0].column), (0, 0));
        assert!(e.to_string().starts_with(&format!(
            "{}: cannot read the rules file",
            missing.display()
        )));

        let good = dir.path().join("rules.yaml");
        std::fs::write(&good, crate::DEFAULT_RULES_YAML).expect("write");
        assert_eq!(load_file(&good), Ok(Config::default_rules()));

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "groups: 1\n").expect("write");
        let e = load_file(&bad).expect_err("bad");
        assert_eq!(e.0[0].file, bad.display().to_string());
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        // YAML counts a lone CR as a line break; positions inside scalars
        // are looked up in the same lines.
        let text = "groups:\r  - name: g\r    rules:\r      - expr: p99(latency) > 5 x\r";
        assert_errors(
            text,
            &[
                (4, 9, "missing required key 'alert'"),
                (4, 32, "unknown unit 'x'"),
            ],
        );
    }

    #[test]
    fn no_panic_on_odd_input() {
        let inputs = [
            "- a\n- b\n",
            "42",
            "groups:\n  - rules:\n      - [1, 2]\n",
            "groups:\n  - name: [x]\n    rules:\n      - alert: A\n        expr: [1]\n        for: {}\n",
            "models: [1]\n",
            "models:\n  ? [a]\n  : 1\n",
            "{a: *b}",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: \"\\u00e9rror_rate > 1\"\n",
            "\t",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n\n          x\n",
        ];
        for text in inputs {
            let _ = load("r.yaml", text);
        }
        assert!(load("r.yaml", "- a\n").is_err());
    }
}
