//! rules.yaml, loaded strictly with every error located.
//!
//! [`load`] parses the text into a positioned YAML tree ([`yaml`]), then
//! walks it once, building the typed [`Config`] and collecting every problem
//! (unknown keys with a "did you mean", wrong types, bad durations, bad
//! expressions and templates, violated constraints) as a [`ConfigError`]
//! with file, line and column. Errors are sorted by position. The format is
//! described in `docs/rules.md`.

pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rules::expr::Expr;
use crate::rules::suggest::did_you_mean;
use crate::rules::template::{Template, is_label_name};
use yaml::{Node, NodeKind, ScalarStyle};

/// One problem in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to [`load`].
    pub file: String,
    /// 1-based line; 0 when the error concerns the whole file (I/O).
    pub line: usize,
    /// 1-based column in chars; 0 when the error concerns the whole file.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// `file:line:column: message`, or `file: message` for errors without position.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// All problems found in a rules file, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// One error per line.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

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
    pub reference: Option<std::sync::Arc<crate::baseline::format::Baseline>>,
    /// A numeric prediction at or above this is positive (default 0.5).
    pub positive_threshold: f64,
    /// A confidence below this is low (default 0.5).
    pub low_confidence_threshold: f64,
    /// Without a baseline or inline reference for a numeric feature, learn
    /// one from this many first values of each model version.
    pub learn_reference: Option<usize>,
    /// Per-feature expectations.
    pub features: BTreeMap<String, FeatureSpec>,
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
    /// The allowed spellings.
    pub const NAMES: [&'static str; 3] = ["info", "warning", "critical"];

    /// The label value.
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

    /// The expectations for `model`: its own entry, else `"*"`, else defaults.
    pub fn model(&self, model: &str) -> Option<&ModelConfig> {
        self.models.get(model).or_else(|| self.models.get("*"))
    }
}

/// Loads a rules file from text. `file_name` is used in error messages only.
///
/// # Errors
/// Every problem found, sorted by position.
pub fn load(file_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let parsed = yaml::parse(text);
    let mut cx = Cx {
        file: file_name,
        lines: yaml::lines(text)
            .into_iter()
            .map(|l| l.chars().collect())
            .collect(),
        errors: Vec::new(),
    };
    for e in parsed.errors {
        cx.errors.push(ConfigError {
            file: file_name.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        });
    }
    let config = parsed.root.map(|root| cx.config(&root));
    let mut errors = cx.errors;
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}

/// Reads and loads a rules file; I/O errors are reported as a [`ConfigError`]
/// without position.
///
/// # Errors
/// Every problem found, sorted by position.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load(&name, &text),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: name,
            line: 0,
            column: 0,
            message: format!("cannot read the rules file: {e}"),
        }])),
    }
}

/// Parses a Prometheus-style duration: one or more `NUMBER UNIT` pairs with
/// integer numbers and units `y w d h m s ms` in that order, each at most
/// once (`500ms`, `1h30m`, `2d`). `0` alone is the zero duration.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.parse::<f64>().is_ok() {
        return Err(format!(
            "duration '{text}' has no unit; write e.g. '{text}s' (units: ms, s, m, h, d, w, y)"
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(format!(
                "invalid duration '{text}': expected a whole number at '{}' (e.g. 500ms, 10s, 5m, 1h30m)",
                chars[i..].iter().collect::<String>()
            ));
        }
        let digits: String = chars[start..i].iter().collect();
        if chars.get(i) == Some(&'.') {
            return Err(format!(
                "invalid duration '{text}': fractions are not allowed; use a smaller unit (e.g. 1m30s, 1500ms)"
            ));
        }
        let ustart = i;
        while i < chars.len() && chars[i].is_alphabetic() {
            i += 1;
        }
        let unit: String = chars[ustart..i].iter().collect();
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            if unit.is_empty() {
                return Err(format!(
                    "invalid duration '{text}': '{digits}' has no unit (ms, s, m, h, d, w, y)"
                ));
            }
            return Err(format!(
                "invalid duration '{text}': unknown unit '{unit}' (expected ms, s, m, h, d, w or y){}",
                did_you_mean(&unit, UNITS.iter().map(|(u, _)| *u))
            ));
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(format!(
                "invalid duration '{text}': units must go from largest to smallest, each once (e.g. 1h30m)"
            ));
        }
        last_unit = Some(idx);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid duration '{text}': number too large"))?;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration '{text}': too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `500ms`,
/// `0s`), using units up to days.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

const TOP_KEYS: [&str; 3] = ["defaults", "models", "groups"];
const DEFAULTS_KEYS: [&str; 3] = ["window", "evaluation_interval", "min_samples"];
const MODEL_KEYS: [&str; 5] = [
    "baseline",
    "positive_threshold",
    "low_confidence_threshold",
    "learn_reference",
    "features",
];
const FEATURE_KEYS: [&str; 6] = ["min", "max", "required", "mean", "std", "categories"];
const GROUP_KEYS: [&str; 3] = ["name", "interval", "rules"];
const RULE_KEYS: [&str; 10] = [
    "alert",
    "expr",
    "window",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
    "match",
    "min_samples",
];
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

/// The validation pass: source lines (for mapping positions inside scalars)
/// and the errors collected so far.
struct Cx<'a> {
    file: &'a str,
    lines: Vec<Vec<char>>,
    errors: Vec<ConfigError>,
}

impl Cx<'_> {
    fn error_at(&mut self, line: usize, column: usize, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.error_at(node.line, node.column, message);
    }

    /// The entries of a mapping; null is an empty mapping. Reports keys
    /// that are not plain scalars and keys not in `allowed` (when given).
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: Option<&[&str]>,
    ) -> Vec<(&'n Node, &'n str, &'n Node)> {
        let entries = match &node.kind {
            NodeKind::Map(e) => e,
            NodeKind::Null => return Vec::new(),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_scalar() else {
                self.error(
                    k,
                    format!("keys of {what} must be strings, found {}", k.type_name()),
                );
                continue;
            };
            if let Some(allowed) = allowed
                && !allowed.contains(&key)
            {
                self.error(
                    k,
                    format!(
                        "unknown key '{key}' in {what}{}",
                        did_you_mean(key, allowed.iter().copied())
                    ),
                );
                continue;
            }
            out.push((k, key, v));
        }
        out
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } => match parse_yaml_float(text) {
                Some(v) if v.is_finite() => Some(v),
                Some(_) => {
                    self.error(
                        node,
                        format!("{what} must be a finite number, found '{text}'"),
                    );
                    None
                }
                None => {
                    self.error(node, format!("{what} must be a number, found '{text}'"));
                    None
                }
            },
            NodeKind::Scalar { text, .. } => {
                self.error(
                    node,
                    format!("{what} must be a number, found the quoted string '{text}'"),
                );
                None
            }
            _ => {
                self.error(
                    node,
                    format!("{what} must be a number, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn count(&mut self, node: &Node, what: &str) -> Option<u64> {
        match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } if text.parse::<u64>().is_ok() => text.parse().ok(),
            _ => {
                let found = node
                    .as_scalar()
                    .map_or_else(|| node.type_name().to_string(), |t| format!("'{t}'"));
                self.error(
                    node,
                    format!("{what} must be a whole number >= 0, found {found}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } if text == "true" || text == "false" => Some(text == "true"),
            _ => {
                let found = node
                    .as_scalar()
                    .map_or_else(|| node.type_name().to_string(), |t| format!("'{t}'"));
                self.error(node, format!("{what} must be true or false, found {found}"));
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node, format!("{what}: {e}"));
                None
            }
        }
    }

    fn string_map(&mut self, node: &Node, what: &str) -> Vec<(Node, String, String)> {
        let mut out = Vec::new();
        for (k, key, v) in self.entries(node, what, None) {
            if let Some(value) = self.string(v, &format!("value of '{key}' in {what}")) {
                out.push((k.clone(), key.to_string(), value));
            }
        }
        out
    }

    fn config(&mut self, root: &Node) -> Config {
        let mut config = Config::default();
        let top = self.entries(root, "the rules file", Some(&TOP_KEYS));
        // Defaults first: groups and rules depend on them.
        for (_, key, v) in &top {
            if *key == "defaults" {
                config.defaults = self.defaults(v);
            }
        }
        for (_, key, v) in &top {
            match *key {
                "models" => config.models = self.models(v),
                "groups" => config.groups = self.groups(v, &config.defaults),
                _ => {}
            }
        }
        config
    }

    fn defaults(&mut self, node: &Node) -> Defaults {
        let mut d = Defaults::default();
        let mut window_node = None;
        for (_, key, v) in self.entries(node, "defaults", Some(&DEFAULTS_KEYS)) {
            match key {
                "window" => {
                    if let Some(w) = self.positive_duration(v, "defaults.window") {
                        d.window = w;
                        window_node = Some(v);
                    }
                }
                "evaluation_interval" => {
                    if let Some(i) = self.positive_duration(v, "defaults.evaluation_interval") {
                        d.evaluation_interval = i;
                    }
                }
                _ => {
                    if let Some(n) = self.count(v, "defaults.min_samples") {
                        d.min_samples = n;
                    }
                }
            }
        }
        if d.window < d.evaluation_interval {
            let at = window_node.unwrap_or(node);
            self.error(
                at,
                format!(
                    "defaults.window ({}) is shorter than defaults.evaluation_interval ({})",
                    format_duration(d.window),
                    format_duration(d.evaluation_interval)
                ),
            );
        }
        d
    }

    fn positive_duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let d = self.duration(node, what)?;
        if d.is_zero() {
            self.error(node, format!("{what} must be greater than 0"));
            return None;
        }
        Some(d)
    }

    fn models(&mut self, node: &Node) -> BTreeMap<String, ModelConfig> {
        let mut out = BTreeMap::new();
        for (k, name, v) in self.entries(node, "models", None) {
            if name.is_empty() {
                self.error(
                    k,
                    "model name must not be empty (use \"*\" for every model)",
                );
                continue;
            }
            out.insert(name.to_string(), self.model(v, name));
        }
        out
    }

    fn model(&mut self, node: &Node, name: &str) -> ModelConfig {
        let mut m = ModelConfig::default();
        let what = format!("model '{name}'");
        for (_, key, v) in self.entries(node, &what, Some(&MODEL_KEYS)) {
            match key {
                "baseline" => {
                    if let Some(p) = self.string(v, "baseline") {
                        if p.is_empty() {
                            self.error(v, "baseline must be a file path, found an empty string");
                        } else {
                            m.baseline = Some(PathBuf::from(&p));
                            // Relative paths are relative to the rules file.
                            let dir = Path::new(self.file).parent().unwrap_or(Path::new(""));
                            let path = dir.join(p);
                            match crate::baseline::format::Baseline::load(&path) {
                                Ok(b) => m.reference = Some(std::sync::Arc::new(b)),
                                Err(e) => self.error(v, format!("cannot use the baseline: {e}")),
                            }
                        }
                    }
                }
                "positive_threshold" => {
                    if let Some(t) = self.number(v, "positive_threshold") {
                        m.positive_threshold = t;
                    }
                }
                "learn_reference" => {
                    if let Some(n) = self.count(v, "learn_reference") {
                        if (10..=1_000_000).contains(&n) {
                            m.learn_reference = Some(n as usize);
                        } else {
                            self.error(
                                v,
                                format!("learn_reference must be between 10 and 1000000 events, found {n}"),
                            );
                        }
                    }
                }
                "low_confidence_threshold" => {
                    if let Some(t) = self.number(v, "low_confidence_threshold") {
                        if (0.0..=1.0).contains(&t) {
                            m.low_confidence_threshold = t;
                        } else {
                            self.error(
                                v,
                                format!(
                                    "low_confidence_threshold must be between 0 and 1, found {t}"
                                ),
                            );
                        }
                    }
                }
                _ => {
                    for (fk, fname, fv) in self.entries(v, &format!("features of {what}"), None) {
                        if fname.is_empty() {
                            self.error(fk, "feature name must not be empty");
                            continue;
                        }
                        let spec = self.feature(fv, fname);
                        m.features.insert(fname.to_string(), spec);
                    }
                }
            }
        }
        m
    }

    fn feature(&mut self, node: &Node, name: &str) -> FeatureSpec {
        let mut f = FeatureSpec::default();
        let what = format!("feature '{name}'");
        let mut nodes: BTreeMap<&str, &Node> = BTreeMap::new();
        for (_, key, v) in self.entries(node, &what, Some(&FEATURE_KEYS)) {
            nodes.insert(key, v);
            match key {
                "min" => f.min = self.number(v, "min"),
                "max" => f.max = self.number(v, "max"),
                "mean" => f.mean = self.number(v, "mean"),
                "std" => {
                    f.std = self.number(v, "std");
                    if let Some(s) = f.std
                        && s <= 0.0
                    {
                        self.error(v, format!("std must be greater than 0, found {s}"));
                    }
                }
                "required" => f.required = self.boolean(v, "required").unwrap_or(false),
                _ => f.categories = self.categories(v),
            }
        }
        if let (Some(lo), Some(hi)) = (f.min, f.max)
            && lo > hi
            && let Some(at) = nodes.get("max")
        {
            self.error(at, format!("max ({hi}) is less than min ({lo}) of {what}"));
        }
        if f.mean.is_some() != f.std.is_some()
            && let Some(at) = nodes.get("mean").or(nodes.get("std"))
        {
            self.error(
                at,
                format!("{what}: mean and std go together (the inline reference needs both)"),
            );
        }
        if f.categories.is_some()
            && let Some(at) = ["min", "max", "mean", "std"]
                .iter()
                .find_map(|k| nodes.get(k))
        {
            self.error(
                at,
                format!("{what} has categories, so it is categorical: min, max, mean and std do not apply"),
            );
        }
        f
    }

    fn categories(&mut self, node: &Node) -> Option<Vec<String>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(
                node,
                format!(
                    "categories must be a list of strings, found {}",
                    node.type_name()
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.error(node, "categories must not be empty");
            return None;
        }
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for item in items {
            if let Some(c) = self.string(item, "a category") {
                if !seen.insert(c.clone()) {
                    self.error(item, format!("duplicate category '{c}'"));
                }
                out.push(c);
            }
        }
        Some(out)
    }

    fn groups(&mut self, node: &Node, defaults: &Defaults) -> Vec<Group> {
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
        let mut out = Vec::new();
        let mut names: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for item in items {
            let Some(g) = self.group(item, defaults) else {
                continue;
            };
            if let Some((l, c)) = names.get(&g.name) {
                let msg = format!("duplicate group name '{}' (first used at {l}:{c})", g.name);
                self.error(item, msg);
            } else {
                names.insert(g.name.clone(), (item.line, item.column));
            }
            out.push(g);
        }
        out
    }

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
        let entries = self.entries(node, "a group", Some(&GROUP_KEYS));
        let mut name = None;
        let mut interval = defaults.evaluation_interval;
        let mut rules_node = None;
        for (_, key, v) in &entries {
            match *key {
                "name" => {
                    if let Some(n) = self.string(v, "group name") {
                        if n.trim().is_empty() {
                            self.error(v, "group name must not be empty");
                        }
                        name = Some(n);
                    }
                }
                "interval" => {
                    if let Some(i) = self.positive_duration(v, "group interval") {
                        interval = i;
                    }
                }
                _ => rules_node = Some(*v),
            }
        }
        let has = |k: &str| entries.iter().any(|(_, key, _)| *key == k);
        if !has("name") {
            self.error(node, "group is missing required key 'name'");
        }
        if !has("rules") {
            self.error(node, "group is missing required key 'rules'");
        }
        let mut rules = Vec::new();
        if let Some(rn) = rules_node {
            match &rn.kind {
                NodeKind::Seq(items) => {
                    for item in items {
                        if let Some(r) = self.rule(item, defaults, interval) {
                            rules.push(r);
                        }
                    }
                }
                NodeKind::Null => {}
                _ => self.error(
                    rn,
                    format!("rules must be a list, found {}", rn.type_name()),
                ),
            }
        }
        Some(Group {
            name: name.unwrap_or_default(),
            interval,
            rules,
        })
    }

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
        let entries = self.entries(node, "a rule", Some(&RULE_KEYS));
        let mut alert = None;
        let mut expr: Option<(Expr, String)> = None;
        let mut window = None;
        let mut for_ = Duration::ZERO;
        let mut keep_firing_for = Duration::ZERO;
        let mut severity = Severity::default();
        let mut labels = BTreeMap::new();
        let mut annotation_nodes = Vec::new();
        let mut matchers = Matchers::default();
        let mut min_samples = defaults.min_samples;
        let mut ok = true;
        for (_, key, v) in &entries {
            match *key {
                "alert" => match self.string(v, "alert") {
                    Some(a) if is_label_name(&a) => alert = Some(a),
                    Some(a) => {
                        self.error(
                            v,
                            format!("alert name '{a}' is invalid: use letters, digits and '_', not starting with a digit"),
                        );
                        ok = false;
                    }
                    None => ok = false,
                },
                "expr" => match self.string(v, "expr") {
                    Some(text) => match Expr::parse(&text) {
                        Ok(e) => expr = Some((e, text)),
                        Err(e) => {
                            let (line, column, note) = self.locate(v, &text, e.column);
                            self.error_at(line, column, format!("in expr: {}{note}", e.message));
                            ok = false;
                        }
                    },
                    None => ok = false,
                },
                "window" => match self.positive_duration(v, "window") {
                    Some(w) => {
                        if w < interval {
                            self.error(
                                v,
                                format!(
                                    "window ({}) is shorter than the evaluation interval ({})",
                                    format_duration(w),
                                    format_duration(interval)
                                ),
                            );
                        }
                        window = Some(w);
                    }
                    None => ok = false,
                },
                "for" => match self.duration(v, "for") {
                    Some(d) => for_ = d,
                    None => ok = false,
                },
                "keep_firing_for" => match self.duration(v, "keep_firing_for") {
                    Some(d) => keep_firing_for = d,
                    None => ok = false,
                },
                "severity" => match self.string(v, "severity") {
                    Some(s) => match s.as_str() {
                        "info" => severity = Severity::Info,
                        "warning" => severity = Severity::Warning,
                        "critical" => severity = Severity::Critical,
                        _ => {
                            self.error(
                                v,
                                format!(
                                    "unknown severity '{s}', expected info, warning or critical{}",
                                    did_you_mean(&s, Severity::NAMES)
                                ),
                            );
                            ok = false;
                        }
                    },
                    None => ok = false,
                },
                "labels" => {
                    for (k, name, value) in self.string_map(v, "labels") {
                        if !is_label_name(&name) {
                            self.error(
                                &k,
                                format!(
                                    "invalid label name '{name}': expected [a-zA-Z_][a-zA-Z0-9_]*"
                                ),
                            );
                        } else if name.starts_with("__") {
                            self.error(&k, format!("label name '{name}' is reserved: names starting with '__' are internal to Prometheus"));
                        } else if RESERVED_LABELS.contains(&name.as_str()) {
                            self.error(&k, format!("label '{name}' is set by model-exporter and cannot be overridden here"));
                        } else {
                            labels.insert(name, value);
                        }
                    }
                }
                "annotations" => {
                    for (k, name, tv) in self.entries(v, "annotations", None) {
                        if !is_label_name(name) {
                            self.error(k, format!("invalid annotation name '{name}': expected [a-zA-Z_][a-zA-Z0-9_]*"));
                            continue;
                        }
                        if let Some(text) = self.string(tv, &format!("annotation '{name}'")) {
                            match Template::parse(&text) {
                                Ok(t) => annotation_nodes.push((name.to_string(), tv, t)),
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
                }
                "match" => {
                    for (k, name, value) in self.entries(v, "match", None) {
                        let Some(value) = self.string(value, &format!("match.{name}")) else {
                            continue;
                        };
                        match name {
                            "model" => matchers.model = Some(value),
                            "version" => matchers.version = Some(value),
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
                _ => match self.count(v, "min_samples") {
                    Some(n) => min_samples = n,
                    None => ok = false,
                },
            }
        }
        let has = |k: &str| entries.iter().any(|(_, key, _)| *key == k);
        for required in ["alert", "expr"] {
            if !has(required) {
                self.error(node, format!("rule is missing required key '{required}'"));
                ok = false;
            }
        }
        // Templates may only use labels the alert will carry.
        let per_feature = expr
            .as_ref()
            .is_some_and(|(e, _)| e.signal.feature().is_some());
        let mut annotations = BTreeMap::new();
        for (name, tv, t) in annotation_nodes {
            for label in t.labels_used() {
                let known = matches!(label, "alertname" | "severity" | "model" | "version")
                    || (label == "feature" && per_feature)
                    || labels.contains_key(label);
                if !known {
                    let mut avail: Vec<&str> = vec!["alertname", "severity", "model", "version"];
                    if per_feature {
                        avail.push("feature");
                    }
                    avail.extend(labels.keys().map(String::as_str));
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
            annotations.insert(name, t);
        }
        if !ok {
            return None;
        }
        let (expr, expr_text) = expr?;
        Some(Rule {
            alert: alert?,
            expr,
            expr_text,
            window: window.unwrap_or(defaults.window),
            for_,
            keep_firing_for,
            severity,
            labels,
            annotations,
            matchers,
            min_samples,
            line: node.line,
        })
    }

    /// File position of the char at 1-based `column` of a scalar's text.
    /// Exact for single-line plain and quoted scalars and for literal (`|`)
    /// blocks; otherwise the scalar's start, with a note naming the column
    /// inside the text.
    fn locate(&self, node: &Node, text: &str, column: usize) -> (usize, usize, String) {
        if let Some((l, c)) = self.locate_exact(node, text, column) {
            return (l, c, String::new());
        }
        (
            node.line,
            node.column,
            format!(" (at column {column} of the value)"),
        )
    }

    fn locate_exact(&self, node: &Node, text: &str, column: usize) -> Option<(usize, usize)> {
        let NodeKind::Scalar { style, .. } = &node.kind else {
            return None;
        };
        let chars: Vec<char> = text.chars().collect();
        let idx = column.checked_sub(1)?;
        let line = self.lines.get(node.line.checked_sub(1)?)?;
        let start = node.column.checked_sub(1)?;
        // Raw column (0-based) of each text char, plus one past the end.
        let mut cols: Vec<usize> = Vec::with_capacity(chars.len() + 1);
        match style {
            ScalarStyle::Plain => {
                if chars.contains(&'\n')
                    || line.get(start..start + chars.len())? != chars.as_slice()
                {
                    return None;
                }
                cols.extend(start..=start + chars.len());
            }
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let quote = if *style == ScalarStyle::SingleQuoted {
                    '\''
                } else {
                    '"'
                };
                if line.get(start) != Some(&quote) {
                    return None;
                }
                let mut i = start + 1;
                loop {
                    let c = *line.get(i)?;
                    if c == quote {
                        if quote == '\'' && line.get(i + 1) == Some(&'\'') {
                            cols.push(i);
                            i += 2;
                            continue;
                        }
                        cols.push(i);
                        break;
                    }
                    cols.push(i);
                    if quote == '"' && c == '\\' {
                        i += match line.get(i + 1) {
                            Some('x') => 4,
                            Some('u') => 6,
                            Some('U') => 10,
                            _ => 2,
                        };
                    } else {
                        i += 1;
                    }
                }
                if cols.len() != chars.len() + 1 {
                    return None;
                }
            }
            ScalarStyle::Literal | ScalarStyle::Folded => {
                if *style == ScalarStyle::Folded
                    && chars[..chars.len().saturating_sub(1)].contains(&'\n')
                {
                    return None;
                }
                let before = &chars[..idx.min(chars.len())];
                let nl = before.iter().filter(|c| **c == '\n').count();
                let line_start = before.iter().rposition(|c| *c == '\n').map_or(0, |p| p + 1);
                let l = node.line + nl;
                let c = start + (idx - line_start);
                let src = self.lines.get(l - 1)?;
                let want = chars.get(idx);
                if want.is_some_and(|w| *w != '\n' && src.get(c) != Some(w)) {
                    return None;
                }
                return Some((l, c + 1));
            }
        }
        cols.get(idx).map(|c| (node.line, c + 1))
    }
}

/// A YAML 1.2 core-schema float or integer (`1`, `-0.5`, `1e3`, `.5`, `0x1f`).
fn parse_yaml_float(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if text.eq_ignore_ascii_case(".inf") || text.eq_ignore_ascii_case("+.inf") {
        return Some(f64::INFINITY);
    }
    if text.eq_ignore_ascii_case("-.inf") {
        return Some(f64::NEG_INFINITY);
    }
    if text.eq_ignore_ascii_case(".nan") {
        return Some(f64::NAN);
    }
    if text
        .chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::expr::{CmpOp, Signal};

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
                "        expr: |\n          error_rate > 5\n          5",
                7,
                11,
                "unexpected '5'",
            ),
            (
                "        expr: >-\n          error_rate >\n          5 x",
                6,
                11,
                "(at column 16 of the value)",
            ),
            (
                "        expr: error_rate >\n          5 x",
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
    fn durations() {
        let ok = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        let bad = [
            ("", "empty"),
            ("10", "has no unit; write e.g. '10s'"),
            ("1.5h", "fractions are not allowed"),
            ("5 m", "'5' has no unit"),
            ("5mn", "unknown unit 'mn'"),
            ("5sec", "unknown unit 'sec'"),
            ("30m1h", "largest to smallest"),
            ("1m1m", "largest to smallest"),
            ("m", "expected a whole number"),
            ("-5m", "expected a whole number"),
            ("99999999999999999999s", "too large"),
            ("9999999999999y", "too large"),
        ];
        for (text, fragment) in bad {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains(fragment), "{text}: {e}");
        }
        for ms in [0, 1, 500, 1000, 90_500, 5_400_000, 86_400_000, 90_061_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
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
