//! Reading rules.yaml values out of the positioned YAML tree: typed scalars,
//! mappings checked against their known keys, and file positions inside
//! scalars, every problem collected as a located [`ConfigError`].

use std::time::Duration;

use super::error::ConfigError;
use super::yaml::{Node, NodeKind, ScalarStyle};
use crate::rules::duration::parse_duration;
use crate::rules::suggest::did_you_mean;

/// Reads the value of one key into the `T` being built.
pub(super) type ReadKey<T> = fn(&mut Loader, &Node, &mut T);

/// The keys a mapping may have, each with the function that reads it, in
/// the order they are read.
pub(super) type Keys<T> = [(&'static str, ReadKey<T>)];

/// The known keys present in a mapping, with their values.
pub(super) struct Fields<'n>(Vec<(&'static str, &'n Node)>);

impl<'n> Fields<'n> {
    /// The value of `key`, if the mapping has it.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// True when the mapping has `key`.
    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// The validation pass: source lines (for mapping positions inside scalars)
/// and the errors collected so far.
pub(super) struct Loader {
    /// The file name, for messages.
    pub(super) file: String,
    lines: Vec<Vec<char>>,
    errors: Vec<ConfigError>,
    /// Problems that do not stop the file from loading.
    pub(super) warnings: Vec<ConfigError>,
    /// Rules about one named feature, checked against the models'
    /// baselines once the whole file is read.
    pub(super) feature_uses: Vec<FeatureUse>,
}

/// A rule's expression naming one feature, e.g. `psi(feature.amount)`.
pub(super) struct FeatureUse {
    /// Where the name is (or the expression, when it cannot be placed).
    pub(super) line: usize,
    pub(super) column: usize,
    /// The feature's name.
    pub(super) feature: String,
    /// The rule's `match: {model: …}`; `None` applies to every model.
    pub(super) model: Option<String>,
}

impl Loader {
    /// A loader for `text`, named `file` in messages.
    pub(super) fn new(file: &str, text: &str) -> Loader {
        Loader {
            file: file.to_owned(),
            lines: super::yaml::lines(text)
                .into_iter()
                .map(|l| l.chars().collect())
                .collect(),
            errors: Vec::new(),
            warnings: Vec::new(),
            feature_uses: Vec::new(),
        }
    }

    /// The errors collected, in the order they were found.
    pub(super) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// Records an error at a position.
    pub(super) fn error_at(&mut self, line: usize, column: usize, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Records a warning at a position.
    pub(super) fn warn_at(&mut self, line: usize, column: usize, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Records an error at a node.
    pub(super) fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.error_at(node.line, node.column, message);
    }

    /// The entries of a mapping; null is an empty mapping. Reports keys
    /// that are not plain scalars.
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
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
            match k.as_scalar() {
                Some(key) => out.push((k, key, v)),
                None => self.error(
                    k,
                    format!("keys of {what} must be strings, found {}", k.type_name()),
                ),
            }
        }
        out
    }

    /// Reads a mapping whose keys are `keys`: reports keys that are not
    /// strings, and keys not in `keys` (with a "did you mean"); then calls
    /// the function of each key present, in the order of `keys`, so that a
    /// key may use what the keys before it have read.
    pub(super) fn fields<'n, T>(
        &mut self,
        node: &'n Node,
        what: &str,
        keys: &Keys<T>,
        target: &mut T,
    ) -> Fields<'n> {
        let mut present = Vec::new();
        for (k, key, v) in self.entries(node, what) {
            match keys.iter().find(|(name, _)| *name == key) {
                Some((name, _)) => present.push((*name, v)),
                None => self.error(
                    k,
                    format!(
                        "unknown key '{key}' in {what}{}",
                        did_you_mean(key, keys.iter().map(|(name, _)| *name))
                    ),
                ),
            }
        }
        let fields = Fields(present);
        for (name, read) in keys {
            if let Some(v) = fields.get(name) {
                read(self, v, target);
            }
        }
        fields
    }

    /// A scalar's text (any style).
    pub(super) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
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

    /// A non-empty list of distinct strings (`what` names the list in
    /// messages, `item` one of its elements); `None` when it is not one.
    pub(super) fn distinct_strings(
        &mut self,
        v: &Node,
        what: &str,
        item: &str,
    ) -> Option<Vec<String>> {
        let NodeKind::Seq(items) = &v.kind else {
            self.error(
                v,
                format!("{what} must be a list of strings, found {}", v.type_name()),
            );
            return None;
        };
        if items.is_empty() {
            self.error(v, format!("{what} must not be empty"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut seen = std::collections::BTreeSet::new();
        for node in items {
            if let Some(s) = self.string(node, &format!("a {item}")) {
                if !seen.insert(s.clone()) {
                    self.error(node, format!("duplicate {item} '{s}'"));
                }
                out.push(s);
            }
        }
        Some(out)
    }

    /// A finite number, written as a plain scalar.
    pub(super) fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
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

    /// A whole number >= 0, written as a plain scalar.
    pub(super) fn count(&mut self, node: &Node, what: &str) -> Option<u64> {
        match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } if text.parse::<u64>().is_ok() => text.parse().ok(),
            _ => {
                let found = found(node);
                self.error(
                    node,
                    format!("{what} must be a whole number >= 0, found {found}"),
                );
                None
            }
        }
    }

    /// A whole number from `lo` to `hi`, written as a plain scalar; one
    /// message names the range whether the value is out of it or no number.
    pub(super) fn count_between(
        &mut self,
        node: &Node,
        what: &str,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } => text.parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                let found = found(node);
                self.error(
                    node,
                    format!("{what} must be a whole number from {lo} to {hi}, found {found}"),
                );
                None
            }
        }
    }

    /// `true` or `false`, written as a plain scalar.
    pub(super) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar {
                text,
                style: ScalarStyle::Plain,
            } if text == "true" || text == "false" => Some(text == "true"),
            _ => {
                let found = found(node);
                self.error(node, format!("{what} must be true or false, found {found}"));
                None
            }
        }
    }

    /// A duration ([`parse_duration`]).
    pub(super) fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node, format!("{what}: {e}"));
                None
            }
        }
    }

    /// A mapping of strings to strings: each key node, key and value.
    pub(super) fn string_map(&mut self, node: &Node, what: &str) -> Vec<(Node, String, String)> {
        let mut out = Vec::new();
        for (k, key, v) in self.entries(node, what) {
            if let Some(value) = self.string(v, &format!("value of '{key}' in {what}")) {
                out.push((k.clone(), key.to_string(), value));
            }
        }
        out
    }

    /// A duration greater than zero.
    pub(super) fn positive_duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let d = self.duration(node, what)?;
        if d.is_zero() {
            self.error(node, format!("{what} must be greater than 0"));
            return None;
        }
        Some(d)
    }

    /// File position of the char at 1-based `column` of a scalar's text.
    /// Exact for single-line plain and quoted scalars and for literal (`|`)
    /// blocks; otherwise the scalar's start, with a note naming the column
    /// inside the text.
    pub(super) fn locate(&self, node: &Node, text: &str, column: usize) -> (usize, usize, String) {
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

/// A value as a message quotes it: a scalar in quotes, else its type.
fn found(node: &Node) -> String {
    node.as_scalar()
        .map_or_else(|| node.type_name().to_string(), |t| format!("'{t}'"))
}
