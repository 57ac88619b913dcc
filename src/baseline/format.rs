//! The baseline file: a versioned JSON document describing the training data
//! of a model, feature by feature.
//!
//! # Format (version 2)
//!
//! ```json
//! {
//!   "format": "model-exporter-baseline",
//!   "version": 2,
//!   "created_at": "2026-11-01T00:00:00.000Z",
//!   "source": "train.csv",
//!   "rows": 100000,
//!   "features": {
//!     "age": {"type": "numeric", "count": 99000, "missing": 1000, "missing_rate": 0.01,
//!             "mean": 35.1, "std": 10.0, "min": -3.2, "max": 77.0,
//!             "edges": [-3.2, 22.2, 26.6, ..., 77.0],
//!             "proportions": [0.00001, 0.1, 0.1, ..., 0.1, 0.0]},
//!     "country": {"type": "categorical", "count": 100000, "missing": 0, "missing_rate": 0.0,
//!                 "categories": {"DE": 0.3, "FR": 0.2, "US": 0.4}, "other": 0.1}
//!   },
//!   "prediction": {"type": "numeric", ...}
//! }
//! ```
//!
//! * `rows`: rows (or inference events) the baseline was made from.
//! * `count`: rows in which the feature has a value; `missing`: rows in which
//!   it is empty, `null` or absent; `missing_rate = missing / (count + missing)`.
//!   Proportions are over the `count` present values only.
//! * Numeric (`mean`, `std`: population standard deviation, `min`, `max`):
//!   `edges` are `k + 1` strictly increasing numbers (`k ≥ 0`),
//!   `edges[0] = min` and `edges[k] = max`. `proportions` has `k + 2`
//!   entries, one per bin of
//!   [`bin_index`](crate::stats::drift::bin_index) (docs/drift.md, "Bins"):
//!
//!   | index | values |
//!   |---|---|
//!   | `0` | `x <= edges[0]` (in training: the values equal to the minimum) |
//!   | `i` (`1..=k`) | `edges[i-1] < x <= edges[i]` |
//!   | `k + 1` (overflow) | `x > edges[k]` (0 in training) |
//!
//!   Every bin is closed on the right, like Prometheus `le` buckets, so the
//!   edges are the feature's histogram bucket bounds. A constant feature has
//!   the one edge `[v]`.
//!
//! # Version 1
//!
//! Version 1 files, whose first bin was `x < edges[0]` and second
//! `edges[0] <= x <= edges[1]`, still load: their first edge is moved to
//! the largest number below it (`f64::next_down`), which gives exactly the
//! same bins in the version 2 convention. Their values equal to the
//! minimum therefore stay merged into the next bin; build the baseline again
//! to give a point mass at the minimum its own bin.
//! * Categorical: `categories` maps the most frequent values (top K) to their
//!   proportion, `other` is the proportion of every other value.
//!
//! Readers ignore fields they do not know, so fields may be added within a
//! version; a change of meaning increases `version`. [`Baseline::load`]
//! checks every rule above and reports the first violation with the file and
//! the JSON path of the offending value.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ingest::timestamp::parse_rfc3339;
use crate::stats::reference::Reference;

/// Value of the `format` field.
pub const FORMAT_NAME: &str = "model-exporter-baseline";

/// The version this build writes (it also reads version 1, see the
/// [module documentation](self)).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest version this build reads.
pub const OLDEST_VERSION: u32 = 1;

/// Largest baseline file [`Baseline::load`] reads.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Tolerance on sums of proportions and on `missing_rate`.
const SUM_TOLERANCE: f64 = 1e-6;

/// A reference description of a model's training data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`]: older files are converted when read.
    pub version: u32,
    /// When the baseline was made (RFC 3339).
    pub created_at: String,
    /// Where the data came from (the input path as given).
    pub source: String,
    /// Rows (or inference events) the baseline was made from.
    pub rows: u64,
    /// One entry per feature, by name.
    pub features: BTreeMap<String, FeatureBaseline>,
    /// The model output, when the data had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureBaseline>,
}

/// Reference distribution of one feature (or of the prediction).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeatureBaseline {
    /// Numbers (booleans count as 0 and 1).
    Numeric(NumericBaseline),
    /// Text values.
    Categorical(CategoricalBaseline),
}

/// Reference distribution of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumericBaseline {
    /// Rows with a value.
    pub count: u64,
    /// Rows without a value (empty, `null` or absent).
    pub missing: u64,
    /// `missing / (count + missing)`.
    pub missing_rate: f64,
    /// Mean of the values.
    pub mean: f64,
    /// Population standard deviation of the values.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// `k + 1` strictly increasing bin edges from `min` to `max` (`[v]` for
    /// a constant feature; a version 1 file's first edge is just below
    /// `min`).
    pub edges: Vec<f64>,
    /// `k + 2` proportions, one per bin: `x <= edges[0]`, the `k` bins
    /// `(edges[i-1], edges[i]]`, overflow. See [`NumericBaseline::bin_of`].
    pub proportions: Vec<f64>,
    /// The mean of the training values in each bin (`None` for an empty
    /// bin), where Wasserstein places the bin's mass. Absent from files
    /// made before it was added; the bins' midpoints stand in then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means: Option<Vec<Option<f64>>>,
}

/// Reference distribution of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoricalBaseline {
    /// Rows with a value.
    pub count: u64,
    /// Rows without a value (empty, `null` or absent).
    pub missing: u64,
    /// `missing / (count + missing)`.
    pub missing_rate: f64,
    /// The most frequent values and their proportions.
    pub categories: BTreeMap<String, f64>,
    /// Proportion of all other values.
    pub other: f64,
}

impl NumericBaseline {
    /// Number of bins between the first and the last edge, `k`
    /// (`edges.len() - 1`).
    pub fn bins(&self) -> usize {
        self.edges.len().saturating_sub(1)
    }

    /// Index into [`Self::proportions`] of the bin holding `x`, by
    /// [`bin_index`](crate::stats::drift::bin_index): `0` for
    /// `x <= edges[0]`, `k + 1` above the last edge, otherwise the bin
    /// `(edges[i-1], edges[i]]`. `None` for `NaN`.
    pub fn bin_of(&self, x: f64) -> Option<usize> {
        (!x.is_nan()).then(|| crate::stats::drift::bin_index(&self.edges, x))
    }
}

impl CategoricalBaseline {
    /// Proportion of `value` in the reference: its own if it is one of the
    /// top values, otherwise `None` (it belongs to `other`).
    pub fn proportion_of(&self, value: &str) -> Option<f64> {
        self.categories.get(value).copied()
    }
}

impl FeatureBaseline {
    /// The reference distribution drift is measured against: the same bins
    /// and proportions, made of `count` values (what the sidecar uses for a
    /// baseline in rules.yaml).
    pub fn reference(&self) -> Option<Reference> {
        match self {
            FeatureBaseline::Numeric(n) => {
                Reference::numeric(n.edges.clone(), n.proportions.clone(), n.mean, n.std).map(|r| {
                    match &n.means {
                        Some(means) => r.with_means(means),
                        None => r,
                    }
                })
            }
            FeatureBaseline::Categorical(c) => {
                Reference::categorical(c.categories.iter().map(|(k, p)| (k.as_str(), *p)), c.other)
            }
        }
        .map(|r| r.with_count(self.count()))
    }

    /// Rows with a value.
    pub fn count(&self) -> u64 {
        match self {
            FeatureBaseline::Numeric(n) => n.count,
            FeatureBaseline::Categorical(c) => c.count,
        }
    }

    /// Rows without a value.
    pub fn missing(&self) -> u64 {
        match self {
            FeatureBaseline::Numeric(n) => n.missing,
            FeatureBaseline::Categorical(c) => c.missing,
        }
    }

    /// `numeric` or `categorical`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FeatureBaseline::Numeric(_) => "numeric",
            FeatureBaseline::Categorical(_) => "categorical",
        }
    }
}

/// Why a baseline file could not be loaded (or written).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read or written.
    #[error("{file}: {error}")]
    Io {
        /// The file.
        file: String,
        /// What went wrong.
        #[source]
        error: std::io::Error,
    },
    /// The directory to write the file into does not exist.
    #[error("cannot write {file}: the directory {dir} does not exist (create it first)")]
    NoDirectory {
        /// The file.
        file: String,
        /// Its missing directory.
        dir: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{file}: {bytes} bytes is larger than the {MAX_FILE_BYTES} a baseline may have")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// The file is not JSON.
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The JSON does not describe a valid baseline.
    #[error("{file}: {path}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// JSON path of the offending value, e.g. `features.age.edges[3]`
        /// (`$` for the whole document).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A validation failure: JSON path and message, before the file is known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    /// JSON path of the offending value.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain identifier.
fn child(parent: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent, plain) {
        ("$", true) => key.to_owned(),
        ("$", false) => format!("$[{}]", Value::from(key)),
        (_, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

impl Baseline {
    /// Reads and validates a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let file = path.display().to_string();
        let io = |error| BaselineError::Io {
            file: file.clone(),
            error,
        };
        let bytes = std::fs::metadata(path).map_err(io)?.len();
        if bytes > MAX_FILE_BYTES {
            return Err(BaselineError::TooLarge { file, bytes });
        }
        let text = std::fs::read(path).map_err(io)?;
        Self::from_slice(&file, &text)
    }

    /// Parses and validates a baseline held in memory; `file` names it in
    /// errors.
    pub fn from_slice(file: &str, bytes: &[u8]) -> Result<Baseline, BaselineError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| BaselineError::Syntax {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Self::from_value(&value).map_err(|i| BaselineError::Invalid {
            file: file.to_owned(),
            path: i.path,
            message: i.message,
        })
    }

    /// Converts a parsed JSON document, checking every rule of the format.
    pub fn from_value(value: &Value) -> Result<Baseline, Invalid> {
        let root = Obj::new(value, "$")?;
        let format = root.string("format")?;
        if format != FORMAT_NAME {
            return Err(invalid(
                "format",
                format!("is {format:?}, expected {FORMAT_NAME:?}"),
            ));
        }
        let version = root.integer("version")?;
        if !(u64::from(OLDEST_VERSION)..=u64::from(FORMAT_VERSION)).contains(&version) {
            return Err(invalid(
                "version",
                format!(
                    "version {version} is not supported (this build reads versions {OLDEST_VERSION} to {FORMAT_VERSION})"
                ),
            ));
        }
        let created_at = root.string("created_at")?;
        if parse_rfc3339(&created_at).is_none() {
            return Err(invalid(
                "created_at",
                format!("{created_at:?} is not an RFC 3339 date-time"),
            ));
        }
        let source = root.string("source")?;
        let rows = root.integer("rows")?;
        let features_path = child("$", "features");
        let features_value = root.required("features")?;
        let Value::Object(map) = features_value else {
            return Err(invalid(&features_path, "must be an object"));
        };
        let mut features = BTreeMap::new();
        for (name, v) in map {
            let path = child(&features_path, name);
            if name.is_empty() {
                return Err(invalid(&path, "a feature name must not be empty"));
            }
            features.insert(name.clone(), feature_from_value(v, &path, rows, version)?);
        }
        let prediction = match root.optional("prediction") {
            None | Some(Value::Null) => None,
            Some(v) => Some(feature_from_value(v, "prediction", rows, version)?),
        };
        Ok(Baseline {
            format,
            version: FORMAT_VERSION,
            created_at,
            source,
            rows,
            features,
            prediction,
        })
    }

    /// Checks every rule of the format (what [`Self::load`] checks).
    pub fn validate(&self) -> Result<(), Invalid> {
        let value = serde_json::to_value(self)
            .map_err(|e| invalid("$", format!("cannot be represented as JSON: {e}")))?;
        Self::from_value(&value).map(|_| ())
    }

    /// The baseline as pretty-printed JSON, with a final newline.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, maps and finite numbers cannot fail;
        // non-finite numbers would become null and fail `validate`.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Validates and writes the baseline to `path`, atomically: it is
    /// written to a temporary file next to it and renamed over it, so a
    /// reader never sees half a file.
    pub fn write(&self, path: &Path) -> Result<(), BaselineError> {
        let file = path.display().to_string();
        self.validate().map_err(|i| BaselineError::Invalid {
            file: file.clone(),
            path: i.path,
            message: i.message,
        })?;
        let io = |error| BaselineError::Io {
            file: file.clone(),
            error,
        };
        let name = path.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Path::new("."),
            Some(d) => d,
            None => Path::new("/"),
        };
        if !dir.is_dir() {
            return Err(BaselineError::NoDirectory {
                file,
                dir: dir.display().to_string(),
            });
        }
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result =
            std::fs::write(&tmp, self.to_json()).and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// The reference of one feature.
    pub fn feature(&self, name: &str) -> Option<&FeatureBaseline> {
        self.features.get(name)
    }
}

/// serde_json appends " at line L column C"; the position is reported apart.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// An object being read, with its path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &'a str) -> Result<Self, Invalid> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(invalid(
                path,
                format!("must be an object, found {}", kind(other)),
            )),
        }
    }

    fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn required(&self, key: &str) -> Result<&'a Value, Invalid> {
        self.map
            .get(key)
            .ok_or_else(|| invalid(self.path, format!("missing field `{key}`")))
    }

    fn string(&self, key: &str) -> Result<String, Invalid> {
        match self.required(key)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(invalid(
                &child(self.path, key),
                format!("must be a string, found {}", kind(other)),
            )),
        }
    }

    fn integer(&self, key: &str) -> Result<u64, Invalid> {
        let v = self.required(key)?;
        v.as_u64().ok_or_else(|| {
            invalid(
                &child(self.path, key),
                format!("must be a non-negative integer, found {}", describe(v)),
            )
        })
    }

    fn number(&self, key: &str) -> Result<f64, Invalid> {
        number_at(self.required(key)?, &child(self.path, key))
    }

    fn numbers(&self, key: &str) -> Result<Vec<f64>, Invalid> {
        let path = child(self.path, key);
        match self.required(key)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| number_at(v, &index(&path, i)))
                .collect(),
            other => Err(invalid(
                &path,
                format!("must be an array of numbers, found {}", kind(other)),
            )),
        }
    }
}

fn number_at(v: &Value, path: &str) -> Result<f64, Invalid> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(invalid(
            path,
            format!("must be a finite number, found {}", describe(v)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_owned(),
    }
}

fn proportion_at(p: f64, path: &str) -> Result<f64, Invalid> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(invalid(path, format!("proportion {p} is not in [0, 1]")))
    }
}

fn check_sum(sum: f64, path: &str, what: &str) -> Result<(), Invalid> {
    if (sum - 1.0).abs() <= SUM_TOLERANCE {
        Ok(())
    } else {
        Err(invalid(path, format!("{what} sum to {sum}, not 1")))
    }
}

/// The `means` of a numeric entry: one per bin, a number within the bin
/// (`[min, edges[0]]` for the first) where the bin holds values, `null`
/// where it holds none.
fn means_at(
    v: &Value,
    path: &str,
    edges: &[f64],
    proportions: &[f64],
    min: f64,
) -> Result<Vec<Option<f64>>, Invalid> {
    let Value::Array(items) = v else {
        return Err(invalid(
            path,
            format!("must be an array of numbers and nulls, found {}", kind(v)),
        ));
    };
    if items.len() != proportions.len() {
        return Err(invalid(
            path,
            format!(
                "has {} entries; there are {} bins",
                items.len(),
                proportions.len()
            ),
        ));
    }
    let mut means = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = index(path, i);
        if proportions[i] == 0.0 {
            if !item.is_null() {
                return Err(invalid(&at, "must be null: the bin holds no value"));
            }
            means.push(None);
            continue;
        }
        let mean = number_at(item, &at)?;
        let (lo, hi) = match i {
            0 => (min.min(edges[0]), edges[0]),
            _ if i < edges.len() => (edges[i - 1], edges[i]),
            // Values above the last edge: a mean above it.
            _ => (edges[edges.len() - 1], f64::MAX),
        };
        // A computed mean may stray from its bin by rounding.
        let slack = 1e-9 * lo.abs().max(hi.abs()).max(1.0);
        if !(mean >= lo - slack && mean <= hi + slack) {
            return Err(invalid(
                &at,
                format!("mean {mean} lies outside its bin [{lo}, {hi}]"),
            ));
        }
        means.push(Some(mean));
    }
    Ok(means)
}

fn feature_from_value(
    v: &Value,
    path: &str,
    rows: u64,
    version: u64,
) -> Result<FeatureBaseline, Invalid> {
    let obj = Obj::new(v, path)?;
    let type_name = obj.string("type")?;
    let count = obj.integer("count")?;
    let missing = obj.integer("missing")?;
    let missing_rate = obj.number("missing_rate")?;
    if count == 0 {
        return Err(invalid(
            &child(path, "count"),
            "must be at least 1: a reference needs values",
        ));
    }
    match count.checked_add(missing) {
        Some(n) if n <= rows => {
            let expected = missing as f64 / n as f64;
            if (missing_rate - expected).abs() > SUM_TOLERANCE {
                return Err(invalid(
                    &child(path, "missing_rate"),
                    format!("is {missing_rate}, but missing / (count + missing) is {expected}"),
                ));
            }
        }
        _ => {
            return Err(invalid(
                path,
                format!("count + missing ({count} + {missing}) exceeds rows ({rows})"),
            ));
        }
    }
    match type_name.as_str() {
        "numeric" => {
            let (mean, std) = (obj.number("mean")?, obj.number("std")?);
            let (min, max) = (obj.number("min")?, obj.number("max")?);
            if std < 0.0 {
                return Err(invalid(&child(path, "std"), format!("{std} is negative")));
            }
            if min > max {
                return Err(invalid(
                    &child(path, "min"),
                    format!("min {min} is greater than max {max}"),
                ));
            }
            let slack = 1e-9 * min.abs().max(max.abs());
            if mean < min - slack || mean > max + slack {
                return Err(invalid(
                    &child(path, "mean"),
                    format!("mean {mean} is outside [min, max] = [{min}, {max}]"),
                ));
            }
            let mut edges = obj.numbers("edges")?;
            let edges_path = child(path, "edges");
            let v1 = version == 1;
            let fewest = if v1 { 2 } else { 1 };
            if edges.len() < fewest {
                return Err(invalid(
                    &edges_path,
                    format!("needs at least {fewest} edges, has {}", edges.len()),
                ));
            }
            // A version 2 reader may be handed what it made of a version 1
            // file, whose first edge is just below min.
            if edges[0] != min && (v1 || edges[0].next_up() != min) {
                return Err(invalid(
                    &index(&edges_path, 0),
                    format!("the first edge {} must equal min {min}", edges[0]),
                ));
            }
            let last = edges.len() - 1;
            if edges[last] != max {
                return Err(invalid(
                    &index(&edges_path, last),
                    format!("the last edge {} must equal max {max}", edges[last]),
                ));
            }
            let constant = v1 && edges.len() == 2 && min == max;
            if !constant {
                for i in 1..edges.len() {
                    if edges[i] <= edges[i - 1] {
                        return Err(invalid(
                            &index(&edges_path, i),
                            format!(
                                "edges must be strictly increasing: {} follows {}",
                                edges[i],
                                edges[i - 1]
                            ),
                        ));
                    }
                }
            }
            let proportions = obj.numbers("proportions")?;
            let p_path = child(path, "proportions");
            if proportions.len() != edges.len() + 1 {
                return Err(invalid(
                    &p_path,
                    format!(
                        "has {} entries; {} edges need {} (at or below the first edge, {} bins, overflow)",
                        proportions.len(),
                        edges.len(),
                        edges.len() + 1,
                        edges.len() - 1
                    ),
                ));
            }
            for (i, &p) in proportions.iter().enumerate() {
                proportion_at(p, &index(&p_path, i))?;
            }
            check_sum(proportions.iter().sum(), &p_path, "proportions")?;
            let means = match obj.optional("means") {
                None | Some(Value::Null) => None,
                Some(v) => Some(means_at(
                    v,
                    &child(path, "means"),
                    &edges,
                    &proportions,
                    min,
                )?),
            };
            if v1 {
                // Version 1's first bin, `x < edges[0]`, is `x <= next_down(edges[0])`.
                let below = edges[0].next_down();
                if !below.is_finite() {
                    return Err(invalid(
                        &index(&edges_path, 0),
                        format!(
                            "a version 1 first edge must have a finite number below it, found {}",
                            edges[0]
                        ),
                    ));
                }
                edges[0] = below;
            }
            Ok(FeatureBaseline::Numeric(NumericBaseline {
                count,
                missing,
                missing_rate,
                mean,
                std,
                min,
                max,
                edges,
                proportions,
                means,
            }))
        }
        "categorical" => {
            let c_path = child(path, "categories");
            let Value::Object(map) = obj.required("categories")? else {
                return Err(invalid(&c_path, "must be an object of proportions"));
            };
            let mut categories = BTreeMap::new();
            let mut sum = 0.0;
            for (name, v) in map {
                let p_path = child(&c_path, name);
                let p = proportion_at(number_at(v, &p_path)?, &p_path)?;
                sum += p;
                categories.insert(name.clone(), p);
            }
            let other = proportion_at(obj.number("other")?, &child(path, "other"))?;
            check_sum(sum + other, path, "categories and other")?;
            Ok(FeatureBaseline::Categorical(CategoricalBaseline {
                count,
                missing,
                missing_rate,
                categories,
                other,
            }))
        }
        other => Err(invalid(
            &child(path, "type"),
            format!("unknown type {other:?} (expected \"numeric\" or \"categorical\")"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "format": "model-exporter-baseline",
            "version": 2,
            "created_at": "2026-11-01T00:00:00.000Z",
            "source": "train.csv",
            "rows": 10,
            "features": {
                "age": {
                    "type": "numeric", "count": 8, "missing": 2, "missing_rate": 0.2,
                    "mean": 30.0, "std": 5.0, "min": 20.0, "max": 40.0,
                    "edges": [20.0, 30.0, 40.0],
                    "proportions": [0.0, 0.5, 0.5, 0.0],
                    "means": [null, 25.0, 35.5, null]
                },
                "country": {
                    "type": "categorical", "count": 10, "missing": 0, "missing_rate": 0.0,
                    "categories": {"DE": 0.5, "US": 0.3}, "other": 0.2
                },
                "weird.name": {
                    "type": "numeric", "count": 10, "missing": 0, "missing_rate": 0.0,
                    "mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0,
                    "edges": [1.0], "proportions": [1.0, 0.0]
                }
            },
            "prediction": {
                "type": "numeric", "count": 10, "missing": 0, "missing_rate": 0.0,
                "mean": 0.5, "std": 0.5, "min": 0.0, "max": 1.0,
                "edges": [0.0, 0.5, 1.0], "proportions": [0.0, 0.5, 0.5, 0.0]
            }
        })
    }

    fn error_of(v: &Value) -> String {
        Baseline::from_value(v).unwrap_err().to_string()
    }

    /// Replaces the value at a JSON pointer and returns the error.
    fn error_with(pointer: &str, new: Value) -> String {
        let mut v = sample();
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = new;
        error_of(&v)
    }

    #[test]
    fn a_valid_baseline_loads_and_round_trips() {
        let b = Baseline::from_value(&sample()).unwrap();
        assert_eq!(b.rows, 10);
        assert_eq!(b.features.len(), 3);
        let FeatureBaseline::Numeric(age) = b.feature("age").unwrap() else {
            panic!("age is not numeric");
        };
        assert_eq!(age.bins(), 2);
        assert_eq!(age.means, Some(vec![None, Some(25.0), Some(35.5), None]));
        // Wasserstein places each bin at its mean; the empty bins keep
        // their edges.
        let r = b.feature("age").unwrap().reference().unwrap();
        assert_eq!(r.points(), Some(&[20.0, 25.0, 35.5, 40.0][..]));
        assert_eq!(r.count(), Some(8));
        // Without means (older files): midpoints.
        let mut v = sample();
        v["features"]["age"]
            .as_object_mut()
            .unwrap()
            .remove("means");
        let old = Baseline::from_value(&v).unwrap();
        let r = old.feature("age").unwrap().reference().unwrap();
        assert_eq!(r.points(), Some(&[20.0, 25.0, 35.0, 40.0][..]));
        assert!(!old.to_json().contains("means"));
        let FeatureBaseline::Categorical(country) = b.feature("country").unwrap() else {
            panic!("country is not categorical");
        };
        assert_eq!(country.proportion_of("DE"), Some(0.5));
        assert_eq!(country.proportion_of("FR"), None);
        // Written and read back: the same.
        let again = Baseline::from_slice("x.json", b.to_json().as_bytes()).unwrap();
        assert_eq!(again, b);
        b.validate().unwrap();
        // Through a real file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        b.write(&path).unwrap();
        assert_eq!(Baseline::load(&path).unwrap(), b);
        // Nothing but the file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unknown_fields_are_ignored_and_prediction_is_optional() {
        let mut v = sample();
        v["comment"] = json!("added later");
        v["features"]["age"]["added"] = json!([1, 2]);
        v.as_object_mut().unwrap().remove("prediction");
        let b = Baseline::from_value(&v).unwrap();
        assert!(b.prediction.is_none());
        assert!(!b.to_json().contains("prediction"));
        v["prediction"] = Value::Null;
        assert!(Baseline::from_value(&v).unwrap().prediction.is_none());
    }

    #[test]
    fn bins_of_values() {
        let n = NumericBaseline {
            count: 1,
            missing: 0,
            missing_rate: 0.0,
            mean: 0.0,
            std: 0.0,
            min: 0.0,
            max: 3.0,
            edges: vec![0.0, 1.0, 2.0, 3.0],
            proportions: vec![0.1, 0.3, 0.3, 0.3, 0.0],
            means: None,
        };
        let cases = [
            (-0.1, 0),
            // The minimum is in the first bin, `x <= edges[0]`.
            (0.0, 0),
            (0.5, 1),
            (1.0, 1),
            (1.0001, 2),
            (2.0, 2),
            (2.5, 3),
            (3.0, 3),
            (3.0001, 4),
            (f64::INFINITY, 4),
            (f64::NEG_INFINITY, 0),
        ];
        for (x, bin) in cases {
            assert_eq!(n.bin_of(x), Some(bin), "{x}");
        }
        assert_eq!(n.bin_of(f64::NAN), None);
        // The reference the sidecar makes of it bins the same way.
        let r = FeatureBaseline::Numeric(n.clone()).reference().unwrap();
        for x in [-0.1, 0.0, 0.5, 1.0, 2.0, 3.0, 3.5] {
            assert_eq!(r.bin_number(x), n.bin_of(x), "{x}");
        }
    }

    #[test]
    fn version_1_files_keep_their_bins() {
        // Version 1: `x < 20`, `20 <= x <= 30`, `30 < x <= 40`, `x > 40`;
        // a constant feature `[v, v]`.
        let mut v = sample();
        v["version"] = json!(1);
        v["features"]["weird.name"]["edges"] = json!([1.0, 1.0]);
        v["features"]["weird.name"]["proportions"] = json!([0.0, 1.0, 0.0]);
        let b = Baseline::from_value(&v).unwrap();
        assert_eq!(b.version, FORMAT_VERSION);
        let FeatureBaseline::Numeric(age) = b.feature("age").unwrap() else {
            panic!()
        };
        assert_eq!(age.edges, [20f64.next_down(), 30.0, 40.0]);
        for (x, bin) in [
            (19.9, 0),
            (20.0, 1),
            (30.0, 1),
            (30.5, 2),
            (40.0, 2),
            (41.0, 3),
        ] {
            assert_eq!(age.bin_of(x), Some(bin), "{x}");
        }
        let FeatureBaseline::Numeric(c) = b.feature("weird.name").unwrap() else {
            panic!()
        };
        assert_eq!(c.edges, [1f64.next_down(), 1.0]);
        assert_eq!(c.bin_of(1.0), Some(1));
        // What was read is a valid version 2 baseline, and round-trips.
        b.validate().unwrap();
        let again = Baseline::from_slice("x.json", b.to_json().as_bytes()).unwrap();
        assert_eq!(again, b);
        // Version 1 needs its two edges; version 2 takes one.
        v["features"]["weird.name"]["edges"] = json!([1.0]);
        v["features"]["weird.name"]["proportions"] = json!([1.0, 0.0]);
        assert!(error_of(&v).contains("needs at least 2 edges, has 1"));
        v["version"] = json!(2);
        Baseline::from_value(&v).unwrap();
        // Nothing finite lies below the smallest number.
        let mut v = sample();
        v["version"] = json!(1);
        v["features"]["weird.name"]["edges"] = json!([1.0, 1.0]);
        v["features"]["weird.name"]["proportions"] = json!([0.0, 1.0, 0.0]);
        v["features"]["age"]["min"] = json!(f64::MIN);
        v["features"]["age"]["mean"] = json!(0.0);
        v["features"]["age"]["edges"] = json!([f64::MIN, 30.0, 40.0]);
        v["features"]["age"]
            .as_object_mut()
            .unwrap()
            .remove("means");
        assert!(
            error_of(&v).starts_with("features.age.edges[0]: a version 1 first edge"),
            "{}",
            error_of(&v)
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/format", json!("other"), "format: is \"other\", expected"),
            ("/version", json!(3), "version: version 3 is not supported"),
            (
                "/version",
                json!("1"),
                "version: must be a non-negative integer, found a string",
            ),
            (
                "/created_at",
                json!("yesterday"),
                "created_at: \"yesterday\" is not an RFC 3339",
            ),
            (
                "/source",
                json!(3),
                "source: must be a string, found a number",
            ),
            (
                "/rows",
                json!(-1),
                "rows: must be a non-negative integer, found -1",
            ),
            (
                "/rows",
                json!(5),
                "features.age: count + missing (8 + 2) exceeds rows (5)",
            ),
            ("/features", json!([]), "features: must be an object"),
            (
                "/features/age",
                json!(3),
                "features.age: must be an object, found a number",
            ),
            (
                "/features/age/type",
                json!("text"),
                "features.age.type: unknown type \"text\"",
            ),
            (
                "/features/age/count",
                json!(0),
                "features.age.count: must be at least 1",
            ),
            (
                "/features/age/count",
                json!(1.5),
                "features.age.count: must be a non-negative integer, found 1.5",
            ),
            (
                "/features/age/missing_rate",
                json!(0.3),
                "features.age.missing_rate: is 0.3, but missing / (count + missing) is 0.2",
            ),
            (
                "/features/age/mean",
                json!(null),
                "features.age.mean: must be a finite number, found null",
            ),
            (
                "/features/age/mean",
                json!(50.0),
                "features.age.mean: mean 50 is outside [min, max]",
            ),
            (
                "/features/age/std",
                json!(-1.0),
                "features.age.std: -1 is negative",
            ),
            (
                "/features/age/min",
                json!(41.0),
                "features.age.min: min 41 is greater than max 40",
            ),
            (
                "/features/age/edges",
                json!([]),
                "features.age.edges: needs at least 1 edges, has 0",
            ),
            (
                "/features/age/edges",
                json!("x"),
                "features.age.edges: must be an array of numbers",
            ),
            (
                "/features/age/edges/0",
                json!(19.0),
                "features.age.edges[0]: the first edge 19 must equal min 20",
            ),
            (
                "/features/age/edges/2",
                json!(39.0),
                "features.age.edges[2]: the last edge 39 must equal max 40",
            ),
            (
                "/features/age/edges/1",
                json!(20.0),
                "features.age.edges[1]: edges must be strictly increasing: 20 follows 20",
            ),
            (
                "/features/age/edges/1",
                json!("30"),
                "features.age.edges[1]: must be a finite number, found a string",
            ),
            (
                "/features/age/proportions",
                json!([0.5, 0.5]),
                "features.age.proportions: has 2 entries; 3 edges need 4",
            ),
            (
                "/features/age/proportions/1",
                json!(1.5),
                "features.age.proportions[1]: proportion 1.5 is not in [0, 1]",
            ),
            (
                "/features/age/proportions/1",
                json!(0.4),
                "features.age.proportions: proportions sum to 0.9",
            ),
            (
                "/features/age/means",
                json!([null]),
                "features.age.means: has 1 entries; there are 4 bins",
            ),
            (
                "/features/age/means/1",
                json!(31.0),
                "features.age.means[1]: mean 31 lies outside its bin [20, 30]",
            ),
            (
                "/features/age/means/0",
                json!(20.0),
                "features.age.means[0]: must be null: the bin holds no value",
            ),
            (
                "/features/age/means/2",
                json!("x"),
                "features.age.means[2]: must be a finite number, found a string",
            ),
            (
                "/features/age/means",
                json!(3),
                "features.age.means: must be an array of numbers and nulls",
            ),
            (
                "/features/country/categories",
                json!(1),
                "features.country.categories: must be an object",
            ),
            (
                "/features/country/categories/DE",
                json!(0.6),
                "features.country: categories and other sum to 1.09",
            ),
            (
                "/features/country/categories/DE",
                json!(-0.1),
                "features.country.categories.DE: proportion -0.1 is not in [0, 1]",
            ),
            (
                "/features/country/other",
                json!("x"),
                "features.country.other: must be a finite number, found a string",
            ),
            (
                "/features/weird.name/edges",
                json!([1.0, 1.0]),
                "features[\"weird.name\"].edges[1]: edges must be strictly increasing",
            ),
            (
                "/prediction/type",
                json!(1),
                "prediction.type: must be a string, found a number",
            ),
        ];
        for (pointer, value, expected) in cases {
            let e = error_with(pointer, value.clone());
            assert!(
                e.starts_with(expected),
                "{pointer} = {value}: got {e:?}, expected {expected:?}"
            );
        }
        // Missing fields name the object and the field.
        let mut v = sample();
        v["features"]["age"]
            .as_object_mut()
            .unwrap()
            .remove("edges");
        assert_eq!(error_of(&v), "features.age: missing field `edges`");
        let mut v = sample();
        v.as_object_mut().unwrap().remove("rows");
        assert_eq!(error_of(&v), "$: missing field `rows`");
        assert_eq!(
            error_of(&json!([1])),
            "$: must be an object, found an array"
        );
        // An empty feature name, and a name needing quotes at the top.
        let mut v = sample();
        let age = v["features"]["age"].clone();
        v["features"][""] = age;
        assert!(error_of(&v).starts_with("features[\"\"]: a feature name must not be empty"));
        assert_eq!(child("$", "a b"), "$[\"a b\"]");
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        let shown = path.display().to_string();
        std::fs::write(&path, "{\n  \"format\": ,\n}").unwrap();
        let e = Baseline::load(&path).unwrap_err().to_string();
        assert_eq!(e, format!("{shown}:2:13: invalid JSON: expected value"));
        let mut v = sample();
        v["version"] = json!(7);
        std::fs::write(&path, v.to_string()).unwrap();
        let e = Baseline::load(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{shown}: version: version 7 is not supported (this build reads versions 1 to 2)"
            )
        );
        let e = Baseline::load(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(e, BaselineError::Io { .. }));
        assert!(e.to_string().contains("none.json"));
    }

    #[test]
    fn writing_refuses_an_invalid_baseline() {
        let mut b = Baseline::from_value(&sample()).unwrap();
        if let Some(FeatureBaseline::Numeric(n)) = b.features.get_mut("age") {
            n.mean = f64::NAN;
        }
        let dir = tempfile::tempdir().unwrap();
        let e = b.write(&dir.path().join("b.json")).unwrap_err().to_string();
        assert!(
            e.ends_with("features.age.mean: must be a finite number, found null"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
