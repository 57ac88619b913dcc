//! Builds a [`Baseline`] from training data in two streaming passes.
//!
//! # Passes
//!
//! 1. Every row is validated and each column summarised in bounded memory:
//!    count, mean, standard deviation, min and max ([`Moments`]), a quantile
//!    sketch ([`SignedQuantiles`]) and the distinct values while there are at
//!    most `bins` of them for numbers; a bounded [`CategoryCounter`] for text.
//!    The type of a column is fixed by its first value: numbers and booleans
//!    make it numeric, text categorical. A value of the other kind later is a
//!    bad row.
//! 2. The bin edges and the top K categories are chosen from the summaries,
//!    and the input is read again to count exactly how many values fall in
//!    each bin and each top category. Proportions are therefore exact for the
//!    chosen edges; only *where* the edges lie is approximate.
//!
//! # Bins
//!
//! A numeric column with at most `bins` distinct values (booleans, ratings)
//! gets one bin per value, with edges halfway between neighbouring values
//! (`[0, 0.5, 1]` for a boolean). Otherwise the inner edges are the
//! quantiles `i / bins` (`i = 1 .. bins − 1`) estimated by the sketch, each
//! within 0.75 % of `max − min` of the exact quantile; repeated edges (heavy
//! ties) are merged, so a column can end up with fewer bins. See
//! [`super::format`] for which bin a value belongs to.
//!
//! # Memory
//!
//! Retained state does not grow with the number of rows
//! ([`Builder::approx_bytes`]): per numeric column at most two sketches of
//! 16 KiB plus 64 pivot values and `bins` distinct values; per categorical
//! column at most [`CATEGORY_CAP`] values of at most [`MAX_CATEGORY_LEN`]
//! bytes, and all categorical tables together stop growing past
//! [`CATEGORY_BUDGET_BYTES`] (each may still hold `4 × top_k` values). At most
//! [`MAX_FEATURES`] features are accepted, and a row is at most
//! [`MAX_ROW_BYTES`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::csv::{CsvError, CsvReader};
use super::format::{
    Baseline, CategoricalBaseline, FORMAT_NAME, FORMAT_VERSION, FeatureBaseline, NumericBaseline,
    bin_index,
};
use super::stats::{CategoryCounter, SignedQuantiles, SmallDistinct};
use crate::ingest::event::{Body, FeatureValue, Outcome};
use crate::ingest::parse::{is_blank, parse_event};
use crate::ingest::timestamp::format_rfc3339;
use crate::stats::window::Moments;

/// Bins per numeric feature unless `--bins` says otherwise.
pub const DEFAULT_BINS: usize = 10;
/// Most bins accepted.
pub const MAX_BINS: usize = 1000;
/// Categories kept per categorical feature unless `--top-k` says otherwise.
pub const DEFAULT_TOP_K: usize = 20;
/// Largest `--top-k` accepted.
pub const MAX_TOP_K: usize = 1000;
/// Most features (columns or keys) accepted.
pub const MAX_FEATURES: usize = 10_000;
/// Distinct values of one categorical feature counted exactly.
pub const CATEGORY_CAP: usize = 10_000;
/// Size of all categorical tables together beyond which they stop growing.
pub const CATEGORY_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Text values longer than this are not tracked individually: they always
/// count as `other`.
pub const MAX_CATEGORY_LEN: usize = 1024;
/// Longest row (CSV record or JSON line) accepted.
pub const MAX_ROW_BYTES: usize = super::csv::DEFAULT_MAX_RECORD_BYTES;

/// How the input is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line: flat rows or inference events.
    Jsonl,
}

impl InputFormat {
    /// The format a file name implies: `.csv`, or `.jsonl`, `.ndjson` and
    /// `.json` (case-insensitive).
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(InputFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(InputFormat::Jsonl),
            _ => None,
        }
    }
}

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Name of the input in messages and in the `source` field.
    pub source: String,
    /// Layout of the input.
    pub format: InputFormat,
    /// Bins per numeric feature (`1 ..= MAX_BINS`).
    pub bins: usize,
    /// Categories kept per categorical feature (`1 ..= MAX_TOP_K`).
    pub top_k: usize,
    /// Column (or key of a flat JSON row) holding the prediction; `None`
    /// means `prediction` if there is one. Inference events always use their
    /// `prediction` field.
    pub prediction_column: Option<String>,
    /// Columns (or keys, or event feature names) to leave out.
    pub exclude: Vec<String>,
    /// Count and skip bad rows instead of stopping at the first.
    pub skip_bad_rows: bool,
}

impl BuildOptions {
    /// The defaults for an input.
    pub fn new(source: impl Into<String>, format: InputFormat) -> Self {
        BuildOptions {
            source: source.into(),
            format,
            bins: DEFAULT_BINS,
            top_k: DEFAULT_TOP_K,
            prediction_column: None,
            exclude: Vec::new(),
            skip_bad_rows: false,
        }
    }

    fn prediction_name(&self) -> &str {
        self.prediction_column.as_deref().unwrap_or("prediction")
    }
}

/// Where the builder is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// `1` or `2`.
    pub pass: u8,
    /// Bytes of the input read in this pass.
    pub bytes: u64,
    /// Size of the input, when known.
    pub total_bytes: Option<u64>,
    /// Rows read in this pass.
    pub rows: u64,
}

/// What happened besides the baseline itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildReport {
    /// Rows in the baseline.
    pub rows: u64,
    /// Bad rows skipped (`skip_bad_rows`).
    pub skipped_rows: u64,
    /// The error of the first skipped row.
    pub first_skipped: Option<String>,
    /// Events of other types than `inference` (not rows).
    pub other_events: u64,
    /// Features that never had a value, left out of the baseline.
    pub empty_features: Vec<String>,
    /// Categorical features with more distinct values than could be counted
    /// exactly: their top K are the most frequent values of a Misra–Gries
    /// summary (proportions are still exact counts).
    pub approximate_categories: Vec<String>,
    /// `exclude` names that matched nothing.
    pub unused_excludes: Vec<String>,
}

/// Why no baseline could be built.
#[derive(Debug)]
pub enum BuildError {
    /// The options are not usable.
    Options(String),
    /// Reading the input failed.
    Io {
        /// The input.
        file: String,
        /// What went wrong.
        error: io::Error,
    },
    /// A row (or the header) is bad.
    Row {
        /// The input.
        file: String,
        /// 1-based line where the row starts.
        line: u64,
        /// The column concerned, if one is.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// More than [`MAX_FEATURES`] features.
    TooManyFeatures {
        /// The input.
        file: String,
        /// Line where the limit was passed.
        line: u64,
    },
    /// The second pass did not see what the first saw.
    Changed {
        /// The input.
        file: String,
        /// The difference.
        message: String,
    },
    /// No usable row.
    NoRows {
        /// The input.
        file: String,
    },
    /// The methods of [`Builder`] were called out of order.
    Usage(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Options(m) => f.write_str(m),
            BuildError::Io { file, error } => write!(f, "{file}: {error}"),
            BuildError::Row {
                file,
                line,
                column: Some(c),
                message,
            } => write!(f, "{file}:{line}: column {c:?}: {message}"),
            BuildError::Row {
                file,
                line,
                column: None,
                message,
            } => write!(f, "{file}:{line}: {message}"),
            BuildError::TooManyFeatures { file, line } => write!(
                f,
                "{file}:{line}: more than {MAX_FEATURES} features; leave some out with --exclude"
            ),
            BuildError::Changed { file, message } => {
                write!(f, "{file}: the input changed while it was read: {message}")
            }
            BuildError::NoRows { file } => write!(f, "{file}: no rows to make a baseline from"),
            BuildError::Usage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A problem with one row, before the file and line are attached.
struct RowError {
    column: Option<String>,
    message: String,
}

impl RowError {
    fn new(message: impl Into<String>) -> Self {
        RowError {
            column: None,
            message: message.into(),
        }
    }

    fn at(column: &str, message: impl Into<String>) -> Self {
        RowError {
            column: Some(column.to_owned()),
            message: message.into(),
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Missing,
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Numeric,
    Categorical,
}

/// Everything known about one column.
#[derive(Debug)]
struct Column {
    name: String,
    kind: Kind,
    /// Line of the value that fixed the kind.
    kind_line: u64,
    count: u64,
    moments: Moments,
    quantiles: SignedQuantiles,
    distinct: SmallDistinct,
    categories: CategoryCounter,
    /// Row serial of the last value, to catch a key given twice in a row.
    stamp: u64,
    // Chosen between the passes, counted in the second.
    edges: Vec<f64>,
    bin_counts: Vec<u64>,
    top: Vec<String>,
    top_index: HashMap<String, usize>,
    top_counts: Vec<u64>,
    second_count: u64,
}

impl Column {
    fn new(name: &str) -> Self {
        Column {
            name: name.to_owned(),
            kind: Kind::Unknown,
            kind_line: 0,
            count: 0,
            moments: Moments::new(),
            quantiles: SignedQuantiles::default(),
            distinct: SmallDistinct::default(),
            categories: CategoryCounter::default(),
            stamp: u64::MAX,
            edges: Vec::new(),
            bin_counts: Vec::new(),
            top: Vec::new(),
            top_index: HashMap::new(),
            top_counts: Vec::new(),
            second_count: 0,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.name.capacity()
            + self.quantiles.heap_bytes()
            + self.distinct.heap_bytes()
            + self.categories.heap_bytes()
            + (self.edges.capacity() + self.bin_counts.capacity() + self.top_counts.capacity()) * 8
            + self
                .top
                .iter()
                .map(|s| s.capacity() * 2 + 64)
                .sum::<usize>()
    }

    /// Checks that `cell` fits the column's kind.
    fn check(&self, cell: &Cell<'_>) -> Result<(), RowError> {
        let what = match (self.kind, cell) {
            (Kind::Numeric, Cell::Text(t)) => format!("text value {:?}", preview(t)),
            (Kind::Categorical, Cell::Number(x)) => format!("number {x}"),
            _ => return Ok(()),
        };
        let (kind, first) = match self.kind {
            Kind::Numeric => ("numeric", "a number"),
            _ => ("categorical", "text"),
        };
        Err(RowError::at(
            &self.name,
            format!(
                "{what} in a {kind} column (its first value, at line {}, was {first})",
                self.kind_line
            ),
        ))
    }

    fn choose_edges(&mut self, bins: usize) {
        let (Some(min), Some(max)) = (self.moments.min(), self.moments.max()) else {
            return;
        };
        let mut edges = Vec::with_capacity(bins + 1);
        if let Some(values) = self.distinct.values().filter(|v| !v.is_empty()) {
            if values.len() == 1 {
                edges = vec![min, max];
            } else {
                edges.push(values[0]);
                for w in values.windows(2) {
                    edges.push(w[0] / 2.0 + w[1] / 2.0);
                }
                edges.push(values[values.len() - 1]);
            }
        } else {
            edges.push(min);
            for i in 1..bins {
                if let Some(q) = self.quantiles.quantile(i as f64 / bins as f64) {
                    edges.push(q.clamp(min, max));
                }
            }
            edges.push(max);
        }
        if !(edges.len() == 2 && min == max) {
            // Strictly increasing, from min to max.
            edges.dedup_by(|b, a| *b <= *a);
            if edges.last() != Some(&max) {
                edges.pop();
                edges.push(max);
            }
        }
        self.bin_counts = vec![0; edges.len() + 1];
        self.edges = edges;
    }

    fn choose_top(&mut self, top_k: usize) {
        self.top = self
            .categories
            .top(top_k)
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        self.top_index = self
            .top
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect();
        self.top_counts = vec![0; self.top.len()];
    }

    fn result(&self, rows: u64) -> Option<FeatureBaseline> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let missing = rows - self.count;
        let missing_rate = missing as f64 / rows as f64;
        Some(match self.kind {
            Kind::Numeric => {
                let (min, max) = (self.moments.min()?, self.moments.max()?);
                FeatureBaseline::Numeric(NumericBaseline {
                    count: self.count,
                    missing,
                    missing_rate,
                    mean: self.moments.mean()?.clamp(min, max),
                    std: self.moments.stddev()?,
                    min,
                    max,
                    edges: self.edges.clone(),
                    proportions: self.bin_counts.iter().map(|&c| c as f64 / n).collect(),
                })
            }
            Kind::Categorical => {
                let top: u64 = self.top_counts.iter().sum();
                FeatureBaseline::Categorical(CategoricalBaseline {
                    count: self.count,
                    missing,
                    missing_rate,
                    categories: self
                        .top
                        .iter()
                        .zip(&self.top_counts)
                        .map(|(v, &c)| (v.clone(), c as f64 / n))
                        .collect(),
                    other: (self.count - top) as f64 / n,
                })
            }
            Kind::Unknown => return None,
        })
    }
}

fn preview(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// What a CSV field is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Skip,
    Column(usize),
}

/// Shape of a JSON-lines file, fixed by its first non-blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonShape {
    Flat,
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    First,
    Second,
    Done,
}

/// A progress callback.
pub type ProgressFn = Box<dyn FnMut(&Progress)>;

struct ProgressSink {
    every: Duration,
    total: Option<u64>,
    last: Instant,
    f: ProgressFn,
}

/// The two-pass baseline builder. See the [module documentation](self).
///
/// ```no_run
/// # use model_exporter::baseline::build::*;
/// let options = BuildOptions::new("train.csv", InputFormat::Csv);
/// let mut b = Builder::new(options).unwrap();
/// b.first_pass(std::fs::File::open("train.csv").unwrap()).unwrap();
/// b.second_pass(std::fs::File::open("train.csv").unwrap()).unwrap();
/// let (baseline, report) = b.finish().unwrap();
/// ```
pub struct Builder {
    options: BuildOptions,
    columns: Vec<Column>,
    /// Feature name -> column.
    by_name: HashMap<String, usize>,
    /// The prediction's column (not in `by_name`).
    prediction: Option<usize>,
    excluded: HashSet<String>,
    excludes_used: HashSet<String>,
    stage: Stage,
    rows: u64,
    skipped: u64,
    first_skipped: Option<String>,
    other_events: u64,
    second_rows: u64,
    second_skipped: u64,
    serial: u64,
    category_bytes: usize,
    csv_header: Vec<String>,
    csv_roles: Vec<Role>,
    json_shape: Option<JsonShape>,
    progress: Option<ProgressSink>,
    peak_bytes: usize,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("source", &self.options.source)
            .field("stage", &self.stage)
            .field("rows", &self.rows)
            .field("columns", &self.columns.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder for `options`; fails if `bins` or `top_k` is out of range.
    pub fn new(options: BuildOptions) -> Result<Builder, BuildError> {
        if !(1..=MAX_BINS).contains(&options.bins) {
            return Err(BuildError::Options(format!(
                "--bins must be between 1 and {MAX_BINS}, got {}",
                options.bins
            )));
        }
        if !(1..=MAX_TOP_K).contains(&options.top_k) {
            return Err(BuildError::Options(format!(
                "--top-k must be between 1 and {MAX_TOP_K}, got {}",
                options.top_k
            )));
        }
        Ok(Builder {
            excluded: options.exclude.iter().cloned().collect(),
            options,
            columns: Vec::new(),
            by_name: HashMap::new(),
            prediction: None,
            excludes_used: HashSet::new(),
            stage: Stage::First,
            rows: 0,
            skipped: 0,
            first_skipped: None,
            other_events: 0,
            second_rows: 0,
            second_skipped: 0,
            serial: 0,
            category_bytes: 0,
            csv_header: Vec::new(),
            csv_roles: Vec::new(),
            json_shape: None,
            progress: None,
            peak_bytes: 0,
        })
    }

    /// Calls `f` about every `every` while a pass runs; `total_bytes` is the
    /// input size, if known.
    pub fn on_progress(
        &mut self,
        every: Duration,
        total_bytes: Option<u64>,
        f: impl FnMut(&Progress) + 'static,
    ) {
        self.progress = Some(ProgressSink {
            every,
            total: total_bytes,
            last: Instant::now(),
            f: Box::new(f),
        });
    }

    /// Approximate heap bytes of the state kept between rows: the column
    /// summaries and the name table. Does not grow with the number of rows.
    pub fn approx_bytes(&self) -> usize {
        let names: usize = self
            .by_name
            .keys()
            .map(|k| k.capacity() + std::mem::size_of::<String>() + 16)
            .sum();
        let header: usize = self.csv_header.iter().map(|h| h.capacity() + 24).sum();
        self.columns.iter().map(Column::heap_bytes).sum::<usize>()
            + self.columns.capacity() * std::mem::size_of::<Column>()
            + names
            + header
            + self.csv_roles.capacity() * std::mem::size_of::<Role>()
    }

    /// Largest [`Self::approx_bytes`] seen so far, sampled every 4096 rows
    /// and at the end of each pass.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.max(self.approx_bytes())
    }

    /// Rows accepted so far (first pass).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads the input for the first time.
    pub fn first_pass(&mut self, input: impl Read) -> Result<(), BuildError> {
        if self.stage != Stage::First {
            return Err(BuildError::Usage("first_pass must come first, and once"));
        }
        self.read(input)?;
        self.peak_bytes = self.peak_bytes();
        if self.rows == 0 {
            return Err(BuildError::NoRows {
                file: self.options.source.clone(),
            });
        }
        let (bins, top_k) = (self.options.bins, self.options.top_k);
        for c in &mut self.columns {
            match c.kind {
                Kind::Numeric => c.choose_edges(bins),
                Kind::Categorical => c.choose_top(top_k),
                Kind::Unknown => {}
            }
            // The first-pass summaries are no longer needed.
            c.quantiles = SignedQuantiles::default();
            c.distinct = SmallDistinct::default();
        }
        self.stage = Stage::Second;
        Ok(())
    }

    /// Reads the same input again to count the bins.
    pub fn second_pass(&mut self, input: impl Read) -> Result<(), BuildError> {
        if self.stage != Stage::Second {
            return Err(BuildError::Usage(
                "second_pass must follow a successful first_pass, once",
            ));
        }
        self.read(input)?;
        self.peak_bytes = self.peak_bytes();
        let changed = |message: String| BuildError::Changed {
            file: self.options.source.clone(),
            message,
        };
        if (self.second_rows, self.second_skipped) != (self.rows, self.skipped) {
            return Err(changed(format!(
                "{} rows ({} skipped) in the first pass, {} ({} skipped) in the second",
                self.rows, self.skipped, self.second_rows, self.second_skipped
            )));
        }
        if let Some(c) = self.columns.iter().find(|c| c.second_count != c.count) {
            return Err(changed(format!(
                "column {:?} had {} values in the first pass, {} in the second",
                c.name, c.count, c.second_count
            )));
        }
        self.stage = Stage::Done;
        Ok(())
    }

    /// The baseline, stamped with the current time.
    pub fn finish(self) -> Result<(Baseline, BuildReport), BuildError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.finish_at(now)
    }

    /// The baseline, stamped with `created_at` (seconds since the epoch).
    pub fn finish_at(self, created_at: f64) -> Result<(Baseline, BuildReport), BuildError> {
        if self.stage != Stage::Done {
            return Err(BuildError::Usage("finish needs both passes"));
        }
        let mut report = BuildReport {
            rows: self.rows,
            skipped_rows: self.skipped,
            first_skipped: self.first_skipped.clone(),
            other_events: self.other_events,
            ..BuildReport::default()
        };
        let mut features = std::collections::BTreeMap::new();
        let mut prediction = None;
        for (i, c) in self.columns.iter().enumerate() {
            let result = c.result(self.rows);
            if c.kind == Kind::Categorical && !c.categories.is_exact() {
                report.approximate_categories.push(c.name.clone());
            }
            if Some(i) == self.prediction {
                prediction = result;
            } else if let Some(r) = result {
                features.insert(c.name.clone(), r);
            } else {
                report.empty_features.push(c.name.clone());
            }
        }
        let mut unused: Vec<String> = self
            .excluded
            .difference(&self.excludes_used)
            .cloned()
            .collect();
        unused.sort();
        report.unused_excludes = unused;
        let baseline = Baseline {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            created_at: format_rfc3339(created_at),
            source: self.options.source.clone(),
            rows: self.rows,
            features,
            prediction,
        };
        Ok((baseline, report))
    }

    fn read(&mut self, input: impl Read) -> Result<(), BuildError> {
        let reader = BufReader::with_capacity(256 * 1024, input);
        if let Some(p) = &mut self.progress {
            p.last = Instant::now();
        }
        match self.options.format {
            InputFormat::Csv => self.read_csv(reader),
            InputFormat::Jsonl => self.read_jsonl(reader),
        }
    }

    fn io_error(&self, error: io::Error) -> BuildError {
        BuildError::Io {
            file: self.options.source.clone(),
            error,
        }
    }

    fn row_error(&self, line: u64, e: RowError) -> BuildError {
        BuildError::Row {
            file: self.options.source.clone(),
            line,
            column: e.column,
            message: e.message,
        }
    }

    fn tick(&mut self, bytes: u64) {
        let pass = if self.stage == Stage::First { 1 } else { 2 };
        let rows = if pass == 1 {
            self.rows + self.skipped
        } else {
            self.second_rows + self.second_skipped
        };
        if rows % 1024 != 0 {
            return;
        }
        if rows % 4096 == 0 {
            self.peak_bytes = self.peak_bytes.max(self.approx_bytes());
        }
        if let Some(p) = &mut self.progress
            && p.last.elapsed() >= p.every
        {
            p.last = Instant::now();
            (p.f)(&Progress {
                pass,
                bytes,
                total_bytes: p.total,
                rows,
            });
        }
    }

    /// Records the outcome of one row: accepted, skipped, or fatal.
    fn outcome(&mut self, line: u64, result: Result<(), RowError>) -> Result<(), BuildError> {
        let first = self.stage == Stage::First;
        match result {
            Ok(()) => {
                if first {
                    self.rows += 1;
                } else {
                    self.second_rows += 1;
                }
                Ok(())
            }
            Err(e) if self.options.skip_bad_rows => {
                if first {
                    self.skipped += 1;
                    if self.first_skipped.is_none() {
                        self.first_skipped = Some(self.row_error(line, e).to_string());
                    }
                } else {
                    self.second_skipped += 1;
                }
                Ok(())
            }
            Err(e) => Err(self.row_error(line, e)),
        }
    }

    /// Column of feature `name`, created in the first pass when new.
    /// `Ok(None)` for excluded names.
    fn feature_column(&mut self, name: &str, line: u64) -> Result<Option<usize>, BuildError> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(Some(i));
        }
        if self.excluded.contains(name) {
            if !self.excludes_used.contains(name) {
                self.excludes_used.insert(name.to_owned());
            }
            return Ok(None);
        }
        if self.stage != Stage::First {
            return Err(BuildError::Changed {
                file: self.options.source.clone(),
                message: format!("line {line}: feature {name:?} was not there in the first pass"),
            });
        }
        if self.by_name.len() >= MAX_FEATURES {
            return Err(BuildError::TooManyFeatures {
                file: self.options.source.clone(),
                line,
            });
        }
        let i = self.columns.len();
        self.columns.push(Column::new(name));
        self.by_name.insert(name.to_owned(), i);
        Ok(Some(i))
    }

    /// The prediction's column, created when first needed.
    fn prediction_column(&mut self) -> Option<usize> {
        let name = self.options.prediction_name().to_owned();
        if self.excluded.contains(&name) {
            self.excludes_used.insert(name);
            return None;
        }
        if self.prediction.is_none() && self.stage == Stage::First {
            self.prediction = Some(self.columns.len());
            self.columns.push(Column::new(&name));
        }
        self.prediction
    }

    /// Validates then records one row of `(column, value)` pairs.
    fn record(&mut self, line: u64, cells: &[(usize, Cell<'_>)]) -> Result<(), RowError> {
        self.serial += 1;
        for (c, cell) in cells {
            let col = &self.columns[*c];
            if col.stamp == self.serial {
                return Err(RowError::at(&col.name, "given twice in the same row"));
            }
            self.columns[*c].stamp = self.serial;
            self.columns[*c].check(cell)?;
        }
        let first = self.stage == Stage::First;
        for (c, cell) in cells {
            if first {
                self.add_first(*c, cell, line);
            } else {
                add_second(&mut self.columns[*c], cell);
            }
        }
        Ok(())
    }

    fn add_first(&mut self, c: usize, cell: &Cell<'_>, line: u64) {
        let bins = self.options.bins;
        let min_table = 4 * self.options.top_k;
        let budget_left = self.category_bytes < CATEGORY_BUDGET_BYTES;
        let col = &mut self.columns[c];
        match cell {
            Cell::Missing => {}
            Cell::Number(x) => {
                if col.kind == Kind::Unknown {
                    col.kind = Kind::Numeric;
                    col.kind_line = line;
                }
                col.count += 1;
                col.moments.insert(*x);
                col.quantiles.insert(*x);
                col.distinct.insert(*x, bins);
            }
            Cell::Text(t) => {
                if col.kind == Kind::Unknown {
                    col.kind = Kind::Categorical;
                    col.kind_line = line;
                }
                col.count += 1;
                let len = col.categories.len();
                let may_grow = len < CATEGORY_CAP && (budget_left || len < min_table);
                let before = col.categories.heap_bytes();
                col.categories.insert(t, may_grow, MAX_CATEGORY_LEN);
                let after = col.categories.heap_bytes();
                self.category_bytes = (self.category_bytes + after).saturating_sub(before);
            }
        }
    }

    fn read_csv(&mut self, input: impl BufRead) -> Result<(), BuildError> {
        let mut csv = CsvReader::new(input);
        let csv_fail = |b: &Self, e: CsvError| match e {
            CsvError::Io(e) => b.io_error(e),
            CsvError::Syntax { line, message } => b.row_error(line, RowError::new(message)),
        };
        match csv.read_record() {
            Ok(true) => {}
            Ok(false) => {
                return Err(BuildError::NoRows {
                    file: self.options.source.clone(),
                });
            }
            Err(e) => return Err(csv_fail(self, e)),
        }
        self.csv_header_row(&csv)?;
        let header_len = self.csv_roles.len();
        loop {
            match csv.read_record() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_fail(self, e)),
            }
            let line = csv.line();
            let result = if csv.len() != header_len {
                Err(RowError::new(format!(
                    "row has {} fields, header has {header_len}",
                    csv.len()
                )))
            } else {
                self.csv_row(&csv, line)
            };
            self.outcome(line, result)?;
            self.tick(csv.bytes_read());
        }
        Ok(())
    }

    fn csv_row<R: BufRead>(&mut self, csv: &CsvReader<R>, line: u64) -> Result<(), RowError> {
        let mut cells = Vec::with_capacity(csv.len());
        for (i, field) in csv.fields().enumerate() {
            if let Role::Column(c) = self.csv_roles[i] {
                match csv_cell(field) {
                    Ok(Cell::Missing) => {}
                    Ok(cell) => cells.push((c, cell)),
                    Err(m) => return Err(RowError::at(&self.columns[c].name, m)),
                }
            }
        }
        self.record(line, &cells)
    }

    fn csv_header_row<R: BufRead>(&mut self, csv: &CsvReader<R>) -> Result<(), BuildError> {
        let line = csv.line();
        let mut names = Vec::with_capacity(csv.len());
        let mut seen = HashSet::new();
        for (i, field) in csv.fields().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                self.row_error(
                    line,
                    RowError::new(format!("header: column {} is not UTF-8", i + 1)),
                )
            })?;
            if name.is_empty() {
                return Err(self.row_error(
                    line,
                    RowError::new(format!("header: column {} has no name", i + 1)),
                ));
            }
            if !seen.insert(name) {
                return Err(self.row_error(
                    line,
                    RowError::at(name, "header: the name is used by two columns"),
                ));
            }
            names.push(name.to_owned());
        }
        if self.stage == Stage::Second {
            if names != self.csv_header {
                return Err(BuildError::Changed {
                    file: self.options.source.clone(),
                    message: "the header is different".to_owned(),
                });
            }
            return Ok(());
        }
        if let Some(p) = &self.options.prediction_column
            && !names.contains(p)
        {
            return Err(BuildError::Options(format!(
                "--prediction-column {p:?}: {} has no such column (it has {})",
                self.options.source,
                names.join(", ")
            )));
        }
        let prediction = self.options.prediction_name().to_owned();
        let mut roles = Vec::with_capacity(names.len());
        for name in &names {
            let role = if *name == prediction {
                self.prediction_column().map_or(Role::Skip, Role::Column)
            } else {
                self.feature_column(name, line)?
                    .map_or(Role::Skip, Role::Column)
            };
            roles.push(role);
        }
        self.csv_roles = roles;
        self.csv_header = names;
        Ok(())
    }

    fn read_jsonl(&mut self, mut input: impl BufRead) -> Result<(), BuildError> {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        let mut bytes = 0u64;
        loop {
            let (n, too_long) =
                read_line(&mut input, &mut buf, MAX_ROW_BYTES).map_err(|e| self.io_error(e))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            line_no += 1;
            if !too_long && is_blank(&buf) {
                continue;
            }
            let result = if too_long {
                Some(Err(RowError::new(format!(
                    "line is longer than {MAX_ROW_BYTES} bytes"
                ))))
            } else {
                self.json_line(&buf, line_no)?
            };
            if let Some(result) = result {
                self.outcome(line_no, result)?;
                self.tick(bytes);
            }
        }
        Ok(())
    }

    /// One non-blank JSON line. `Ok(None)` when it is not a row (an event of
    /// another type); `Ok(Some(Err))` for a bad row.
    fn json_line(
        &mut self,
        line: &[u8],
        line_no: u64,
    ) -> Result<Option<Result<(), RowError>>, BuildError> {
        let shape = match self.json_shape {
            Some(s) => s,
            None => {
                let s = detect_shape(line);
                self.json_shape = Some(s);
                s
            }
        };
        match shape {
            JsonShape::Flat => {
                let row: FlatRow<'_> = match serde_json::from_slice(line) {
                    Ok(r) => r,
                    Err(e) => return Ok(Some(Err(json_error(&e)))),
                };
                let prediction = self.options.prediction_name().to_owned();
                let mut cells = Vec::with_capacity(row.0.len());
                for (key, value) in row.0 {
                    let cell = match value {
                        FlatValue::Missing => continue,
                        FlatValue::Number(x) => Cell::Number(x),
                        FlatValue::Text(t) => Cell::Text(t),
                        FlatValue::Nested(kind) => {
                            return Ok(Some(Err(RowError::at(
                                &key,
                                format!(
                                    "{kind} is not a feature value (a number, string, bool or null); \
                                     an events file must start with an event"
                                ),
                            ))));
                        }
                    };
                    let column = if key == prediction {
                        self.prediction_column()
                    } else {
                        self.feature_column(&key, line_no)?
                    };
                    if let Some(c) = column {
                        cells.push((c, cell));
                    }
                }
                Ok(Some(self.record(line_no, &cells)))
            }
            JsonShape::Events => {
                let event = match parse_event(line) {
                    Ok(e) => e,
                    Err(r) => {
                        return Ok(Some(Err(RowError::new(format!(
                            "event rejected ({}): {}",
                            r.reason.as_str(),
                            r.detail
                        )))));
                    }
                };
                let Body::Inference(inference) = event.body else {
                    if self.stage == Stage::First {
                        self.other_events += 1;
                    }
                    return Ok(None);
                };
                let mut cells = Vec::with_capacity(inference.features.len() + 1);
                for (name, value) in &inference.features {
                    let cell = match value {
                        FeatureValue::Missing => continue,
                        FeatureValue::Number(x) => Cell::Number(*x),
                        FeatureValue::Bool(b) => Cell::Number(f64::from(u8::from(*b))),
                        FeatureValue::Category(s) => Cell::Text(s.as_str().into()),
                    };
                    if !cell_is_finite(&cell) {
                        return Ok(Some(Err(RowError::at(name, "not a finite number"))));
                    }
                    if let Some(c) = self.feature_column(name, line_no)? {
                        cells.push((c, cell));
                    }
                }
                if let Some(p) = &inference.prediction {
                    let cell = match p {
                        Outcome::Number(x) => Cell::Number(*x),
                        Outcome::Class(s) => Cell::Text(s.as_str().into()),
                    };
                    if !cell_is_finite(&cell) {
                        return Ok(Some(Err(RowError::at("prediction", "not a finite number"))));
                    }
                    if let Some(c) = self.prediction_column() {
                        cells.push((c, cell));
                    }
                }
                Ok(Some(self.record(line_no, &cells)))
            }
        }
    }
}

fn cell_is_finite(cell: &Cell<'_>) -> bool {
    !matches!(cell, Cell::Number(x) if !x.is_finite())
}

fn add_second(col: &mut Column, cell: &Cell<'_>) {
    match (col.kind, cell) {
        (Kind::Numeric, Cell::Number(x)) => {
            if let Some(i) = bin_index(&col.edges, *x) {
                col.bin_counts[i] += 1;
            }
            col.second_count += 1;
        }
        (Kind::Categorical, Cell::Text(t)) => {
            if let Some(&i) = col.top_index.get(t.as_ref()) {
                col.top_counts[i] += 1;
            }
            col.second_count += 1;
        }
        // A value for a column that had none in the first pass: counted so
        // that the comparison of counts reports the change.
        _ => col.second_count += 1,
    }
}

/// Interprets one CSV field: empty or `NaN` is missing, `true`/`false` (any
/// case) are 1 and 0, a finite number is a number, anything else is text.
fn csv_cell(field: &[u8]) -> Result<Cell<'_>, String> {
    if field.is_empty() {
        return Ok(Cell::Missing);
    }
    let text = std::str::from_utf8(field)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.valid_up_to()))?;
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        return Ok(Cell::Number(1.0));
    }
    if trimmed.eq_ignore_ascii_case("false") {
        return Ok(Cell::Number(0.0));
    }
    if trimmed.eq_ignore_ascii_case("nan") {
        return Ok(Cell::Missing);
    }
    match trimmed.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Cell::Number(x)),
        Ok(_) => Err(format!("{trimmed:?} is not a finite number")),
        Err(_) => Ok(Cell::Text(text.into())),
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max`
/// bytes. Returns the bytes consumed (0 at the end) and whether the line
/// was longer than `max`.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<(usize, bool)> {
    buf.clear();
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = &chunk[..if done { take - 1 } else { take }];
        if buf.len() + content.len() > max {
            too_long = true;
        } else if !too_long {
            buf.extend_from_slice(content);
        }
        input.consume(take);
        consumed += take;
        if done {
            break;
        }
    }
    if too_long {
        buf.clear();
    } else if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok((consumed, too_long))
}

/// Events files start with an object that has a `features` object or a
/// `type` naming an event type; anything else is a flat row.
fn detect_shape(line: &[u8]) -> JsonShape {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        features: Option<serde_json::Value>,
        #[serde(rename = "type", default)]
        kind: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(line) {
        Ok(p) => {
            let features = matches!(p.features, Some(serde_json::Value::Object(_)));
            let typed = matches!(
                p.kind.as_ref().and_then(|k| k.as_str()),
                Some("inference" | "feedback" | "model" | "log")
            );
            if features || typed {
                JsonShape::Events
            } else {
                JsonShape::Flat
            }
        }
        Err(_) => JsonShape::Flat,
    }
}

fn json_error(e: &serde_json::Error) -> RowError {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    match e.column() {
        0 => RowError::new(format!("invalid JSON: {msg}")),
        c => RowError::new(format!("invalid JSON: {msg} (at character {c})")),
    }
}

/// A flat JSON row: keys and scalar values, borrowed where possible.
struct FlatRow<'a>(Vec<(std::borrow::Cow<'a, str>, FlatValue<'a>)>);

enum FlatValue<'a> {
    Missing,
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
    Nested(&'static str),
}

struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for FlatValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlatValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string, bool or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(v as f64))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Number(f64::from(u8::from(v))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Text(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Text(v.to_owned().into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FlatValue<'de>, E> {
                Ok(FlatValue::Missing)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlatValue<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FlatValue::Nested("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatValue<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FlatValue::Nested("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FlatRow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlatRow<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object (one row)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatRow<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Key<'de>, FlatValue<'de>>()? {
                    out.push((k.0, v));
                }
                Ok(FlatRow(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Builds a baseline from an input that can be opened twice: `open` is
/// called once per pass.
/// `total_bytes` (the input size, if known) and `progress` (how often and
/// whom to tell) serve a progress display.
pub fn build<R: Read>(
    mut open: impl FnMut() -> io::Result<R>,
    options: BuildOptions,
    total_bytes: Option<u64>,
    progress: Option<(Duration, ProgressFn)>,
) -> Result<(Baseline, BuildReport), BuildError> {
    let file = options.source.clone();
    let io = |error| BuildError::Io {
        file: file.clone(),
        error,
    };
    let mut b = Builder::new(options)?;
    if let Some((every, f)) = progress {
        b.on_progress(every, total_bytes, f);
    }
    b.first_pass(open().map_err(io)?)?;
    b.second_pass(open().map_err(io)?)?;
    b.finish()
}

/// Builds a baseline from a file (read twice).
pub fn build_file(
    path: &Path,
    options: BuildOptions,
    progress: Option<(Duration, ProgressFn)>,
) -> Result<(Baseline, BuildReport), BuildError> {
    let total = std::fs::metadata(path).ok().map(|m| m.len());
    build(|| std::fs::File::open(path), options, total, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::format::FeatureBaseline as F;

    fn options(format: InputFormat) -> BuildOptions {
        let source = match format {
            InputFormat::Csv => "train.csv",
            InputFormat::Jsonl => "data.jsonl",
        };
        BuildOptions::new(source, format)
    }

    fn build_with(
        text: &str,
        options: BuildOptions,
    ) -> Result<(Baseline, BuildReport), BuildError> {
        let bytes = text.as_bytes().to_vec();
        build(|| Ok(io::Cursor::new(bytes.clone())), options, None, None)
    }

    fn csv(text: &str) -> Result<(Baseline, BuildReport), BuildError> {
        build_with(text, options(InputFormat::Csv))
    }

    fn jsonl(text: &str) -> Result<(Baseline, BuildReport), BuildError> {
        build_with(text, options(InputFormat::Jsonl))
    }

    fn numeric<'a>(b: &'a Baseline, name: &str) -> &'a NumericBaseline {
        match b.feature(name) {
            Some(F::Numeric(n)) => n,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn categorical<'a>(b: &'a Baseline, name: &str) -> &'a CategoricalBaseline {
        match b.feature(name) {
            Some(F::Categorical(c)) => c,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn types_are_inferred_per_column() {
        let (b, report) = csv("n,flag,word,empty,mixed_missing\n\
             1.5,true,x,,\n\
             -2,False,y,,NaN\n\
             3e2,TRUE,x,,4\n")
        .unwrap();
        b.validate().unwrap();
        assert_eq!(b.rows, 3);
        let n = numeric(&b, "n");
        assert_eq!((n.count, n.min, n.max), (3, -2.0, 300.0));
        assert!(close(n.mean, (1.5 - 2.0 + 300.0) / 3.0));
        let flag = numeric(&b, "flag");
        assert_eq!(flag.edges, vec![0.0, 0.5, 1.0]);
        assert!(close(flag.proportions[1], 1.0 / 3.0));
        assert!(close(flag.proportions[2], 2.0 / 3.0));
        let word = categorical(&b, "word");
        assert!(close(word.categories["x"], 2.0 / 3.0));
        // NaN and empty are missing.
        let m = numeric(&b, "mixed_missing");
        assert_eq!((m.count, m.missing), (1, 2));
        assert!(close(m.missing_rate, 2.0 / 3.0));
        assert_eq!(m.edges, vec![4.0, 4.0]);
        assert_eq!(m.proportions, vec![0.0, 1.0, 0.0]);
        // A column without values is left out and reported.
        assert!(b.feature("empty").is_none());
        assert_eq!(report.empty_features, vec!["empty"]);
        assert!(b.prediction.is_none());
    }

    #[test]
    fn a_mixed_column_is_an_error_naming_feature_and_row() {
        let e = csv("id,age\n1,30\n2,31\n3,unknown\n4,33\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "train.csv:4: column \"age\": text value \"unknown\" in a numeric column \
             (its first value, at line 2, was a number)"
        );
        let e = jsonl("{\"c\":\"a\"}\n{\"c\":7}\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "data.jsonl:2: column \"c\": number 7 in a categorical column \
             (its first value, at line 1, was text)"
        );
    }

    /// Values 0..n in a scrambled order.
    fn scrambled(n: u64) -> Vec<u64> {
        // 7919 is prime and does not divide n for the sizes used.
        (0..n).map(|i| (i * 7919 + 13) % n).collect()
    }

    #[test]
    fn uniform_data_gives_equal_bins() {
        for order in [(0..1000).collect::<Vec<u64>>(), scrambled(1000)] {
            let mut text = String::from("x\n");
            for v in order {
                text.push_str(&format!("{v}\n"));
            }
            let (b, _) = csv(&text).unwrap();
            let x = numeric(&b, "x");
            assert_eq!(x.edges.len(), 11);
            assert_eq!((x.edges[0], x.edges[10]), (0.0, 999.0));
            assert_eq!(x.proportions.len(), 12);
            assert_eq!((x.proportions[0], x.proportions[11]), (0.0, 0.0));
            // Each edge within 0.75 % of the range of the exact quantile,
            // hence each bin within 2 × 7.5 values of 100.
            for (i, &e) in x.edges.iter().enumerate().take(10).skip(1) {
                let exact = (i as f64 * 999.0 / 10.0).floor();
                assert!((e - exact).abs() <= 0.0075 * 999.0, "edge {i}: {e}");
            }
            for &p in &x.proportions[1..11] {
                assert!((p - 0.1).abs() <= 0.016, "{:?}", x.proportions);
            }
            let sum: f64 = x.proportions.iter().sum();
            assert!(close(sum, 1.0));
            assert!(close(x.mean, 499.5));
            assert!((x.std - 288.675).abs() < 0.01);
        }
    }

    #[test]
    fn negative_values_and_ties_make_strictly_increasing_edges() {
        let mut text = String::from("x,zeros\n");
        for i in 0..2000 {
            // Symmetric around zero; the second column is 0 for 70 % of rows.
            let x = (i as f64 - 1000.0) / 10.0;
            let z = if i % 10 < 7 { 0.0 } else { f64::from(i % 97) };
            text.push_str(&format!("{x},{z}\n"));
        }
        let (b, _) = csv(&text).unwrap();
        b.validate().unwrap();
        let x = numeric(&b, "x");
        assert_eq!(x.edges.len(), 11);
        assert_eq!((x.min, x.max), (-100.0, 99.9));
        assert!(x.edges.windows(2).all(|w| w[0] < w[1]));
        let z = numeric(&b, "zeros");
        assert!(z.edges.windows(2).all(|w| w[0] < w[1]));
        assert!(z.edges.len() < 11, "ties merge bins: {:?}", z.edges);
        // The first bin holds the zeros.
        assert!(z.proportions[1] >= 0.7);
        assert!(close(z.proportions.iter().sum(), 1.0));
    }

    #[test]
    fn low_cardinality_numbers_get_a_bin_per_value() {
        let mut text = String::from("rating\n");
        for i in 0..100 {
            text.push_str(&format!("{}\n", [1, 2, 2, 3, 5][i % 5]));
        }
        let (b, _) = csv(&text).unwrap();
        let r = numeric(&b, "rating");
        assert_eq!(r.edges, vec![1.0, 1.5, 2.5, 4.0, 5.0]);
        assert_eq!(r.proportions, vec![0.0, 0.2, 0.4, 0.2, 0.2, 0.0]);
    }

    #[test]
    fn categorical_top_k_and_other() {
        let mut text = String::from("c\n");
        // a: 40, b: 30, c: 20, d: 6, e: 4.
        for (v, n) in [("a", 40), ("b", 30), ("c", 20), ("d", 6), ("e", 4)] {
            for _ in 0..n {
                text.push_str(v);
                text.push('\n');
            }
        }
        let mut o = options(InputFormat::Csv);
        o.top_k = 3;
        let (b, report) = build_with(&text, o).unwrap();
        let c = categorical(&b, "c");
        assert_eq!(c.categories.len(), 3);
        assert!(close(c.categories["a"], 0.4));
        assert!(close(c.categories["b"], 0.3));
        assert!(close(c.categories["c"], 0.2));
        assert!(close(c.other, 0.1));
        assert!(report.approximate_categories.is_empty());
        // With K larger than the values, other is 0.
        let (b, _) = csv(&text).unwrap();
        assert_eq!(categorical(&b, "c").categories.len(), 5);
        assert_eq!(categorical(&b, "c").other, 0.0);
    }

    #[test]
    fn high_cardinality_categories_stay_bounded_and_exact_in_proportion() {
        // 30 % "hot", the rest unique: the table fills, Misra–Gries runs.
        let mut text = String::from("c\n");
        let n = 3 * CATEGORY_CAP;
        for i in 0..n {
            if i % 10 < 3 {
                text.push_str("hot\n");
            } else {
                text.push_str(&format!("id{i}\n"));
            }
        }
        let (b, report) = csv(&text).unwrap();
        let c = categorical(&b, "c");
        assert!(close(c.categories["hot"], 0.3));
        assert_eq!(c.categories.len(), DEFAULT_TOP_K);
        // Every other kept value occurs once: exact counts from the second pass.
        for (v, p) in &c.categories {
            if v != "hot" {
                assert!(close(*p, 1.0 / n as f64), "{v}: {p}");
            }
        }
        assert!(close(c.other, 1.0 - 0.3 - 19.0 / n as f64));
        assert_eq!(report.approximate_categories, vec!["c"]);
    }

    #[test]
    fn prediction_and_excluded_columns() {
        let text = "id,age,label,prediction\n1,30,0,0.2\n2,40,1,0.8\n";
        let mut o = options(InputFormat::Csv);
        o.exclude = vec!["id".into(), "label".into(), "nothing".into()];
        let (b, report) = build_with(text, o).unwrap();
        assert_eq!(b.features.keys().collect::<Vec<_>>(), vec!["age"]);
        let Some(F::Numeric(p)) = &b.prediction else {
            panic!("{:?}", b.prediction);
        };
        assert_eq!(p.edges, vec![0.2, 0.5, 0.8]);
        assert_eq!(report.unused_excludes, vec!["nothing"]);
        // Another column as the prediction.
        let mut o = options(InputFormat::Csv);
        o.prediction_column = Some("label".into());
        let (b, _) = build_with(text, o).unwrap();
        assert!(b.feature("label").is_none());
        assert!(b.feature("prediction").is_some());
        assert_eq!(b.prediction.as_ref().unwrap().count(), 2);
        // A prediction column that does not exist.
        let mut o = options(InputFormat::Csv);
        o.prediction_column = Some("score".into());
        let e = build_with(text, o).unwrap_err().to_string();
        assert!(e.starts_with("--prediction-column \"score\": train.csv has no such column"));
    }

    #[test]
    fn jsonl_flat_rows() {
        let text = "{\"age\": 30, \"country\": \"DE\", \"vip\": true, \"prediction\": \"fraud\"}\n\
                    \n\
                    {\"age\": null, \"country\": \"FR\", \"prediction\": \"ok\"}\r\n\
                    {\"age\": 50, \"new\": 1.5, \"prediction\": \"ok\"}\n";
        let (b, _) = jsonl(text).unwrap();
        b.validate().unwrap();
        assert_eq!(b.rows, 3);
        let age = numeric(&b, "age");
        assert_eq!((age.count, age.missing), (2, 1));
        assert_eq!(numeric(&b, "vip").missing, 2);
        // A key first seen late is missing in the rows before.
        assert_eq!(numeric(&b, "new").missing, 2);
        assert_eq!(categorical(&b, "country").missing, 1);
        let Some(F::Categorical(p)) = &b.prediction else {
            panic!("{:?}", b.prediction);
        };
        assert!(close(p.categories["ok"], 2.0 / 3.0));
    }

    #[test]
    fn jsonl_events() {
        let text = r#"{"type":"model","model":"fraud","version":"v3","trained_at":"2026-11-01T00:00:00Z"}
{"model":"fraud","id":"r-1","latency_ms":52.3,"prediction":1,"confidence":0.9,"features":{"age":35,"income":51000,"country":"DE","vip":false}}
{"model":"fraud","id":"r-2","prediction":0,"features":{"age":45,"income":null,"country":"US","vip":true}}
{"type":"feedback","model":"fraud","id":"r-1","actual":0}
{"model":"fraud","id":"r-3","features":{"age":25,"country":"DE"}}
"#;
        let (b, report) = jsonl(text).unwrap();
        b.validate().unwrap();
        assert_eq!(b.rows, 3);
        assert_eq!(report.other_events, 2);
        assert_eq!(numeric(&b, "age").edges, vec![25.0, 30.0, 40.0, 45.0]);
        assert_eq!(numeric(&b, "income").missing, 2);
        assert!(close(
            categorical(&b, "country").categories["DE"],
            2.0 / 3.0
        ));
        assert_eq!(numeric(&b, "vip").edges, vec![0.0, 0.5, 1.0]);
        let p = b.prediction.as_ref().unwrap();
        assert_eq!((p.count(), p.missing()), (2, 1));
        // An event the sidecar would reject is a bad row.
        let bad = format!("{text}{{\"features\":{{\"a\":1}},\"confidence\":7}}\n");
        let e = jsonl(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "data.jsonl:6: event rejected (invalid_value): confidence must be in [0, 1], got 7"
        );
    }

    #[test]
    fn bad_rows_are_fatal_or_counted_and_skipped() {
        let text = "a,b\n1,x\n2\n3,y,z\n4,w\n";
        let e = csv(text).unwrap_err().to_string();
        assert_eq!(e, "train.csv:3: row has 1 fields, header has 2");
        let mut o = options(InputFormat::Csv);
        o.skip_bad_rows = true;
        let (b, report) = build_with(text, o).unwrap();
        assert_eq!((b.rows, report.skipped_rows), (2, 2));
        assert_eq!(
            report.first_skipped.as_deref(),
            Some("train.csv:3: row has 1 fields, header has 2")
        );
        assert_eq!(numeric(&b, "a").count, 2);

        let text = "{\"a\":1}\n{\"a\":2,}\n{\"a\":[1]}\n[1]\n{\"a\":3,\"a\":4}\n{\"a\":5}\n";
        let mut o = options(InputFormat::Jsonl);
        o.skip_bad_rows = true;
        let (b, report) = build_with(text, o).unwrap();
        assert_eq!((b.rows, report.skipped_rows), (2, 4));
        for (i, expected) in [
            (
                1,
                "data.jsonl:2: invalid JSON: trailing comma (at character 8)",
            ),
            (
                2,
                "data.jsonl:2: column \"a\": an array is not a feature value",
            ),
            (
                3,
                "data.jsonl:2: invalid JSON: invalid type: sequence, expected a JSON object (one row)",
            ),
            (4, "data.jsonl:2: column \"a\": given twice in the same row"),
        ] {
            let bad = text.lines().nth(i).unwrap();
            let e = jsonl(&format!("{{\"a\":1}}\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(expected), "line {i}: {e}");
        }
    }

    #[test]
    fn fatal_input_problems() {
        assert_eq!(
            csv("").unwrap_err().to_string(),
            "train.csv: no rows to make a baseline from"
        );
        assert_eq!(
            csv("a,b\n").unwrap_err().to_string(),
            "train.csv: no rows to make a baseline from"
        );
        assert_eq!(
            csv("a,a\n1,2\n").unwrap_err().to_string(),
            "train.csv:1: column \"a\": header: the name is used by two columns"
        );
        assert_eq!(
            csv("a,,c\n1,2,3\n").unwrap_err().to_string(),
            "train.csv:1: header: column 2 has no name"
        );
        assert_eq!(
            csv("a,b\n1,\"2\n").unwrap_err().to_string(),
            "train.csv:2: quoted field is not closed before the end of the file"
        );
        assert_eq!(
            csv("a\ninf\n").unwrap_err().to_string(),
            "train.csv:2: column \"a\": \"inf\" is not a finite number"
        );
        assert_eq!(
            build(
                || Ok(&b"a\n\xff\n"[..]),
                options(InputFormat::Csv),
                None,
                None
            )
            .unwrap_err()
            .to_string(),
            "train.csv:2: column \"a\": not UTF-8 (at byte 0)"
        );
        let mut o = options(InputFormat::Csv);
        o.bins = 0;
        assert!(
            Builder::new(o)
                .unwrap_err()
                .to_string()
                .starts_with("--bins")
        );
        let mut o = options(InputFormat::Csv);
        o.top_k = MAX_TOP_K + 1;
        assert!(
            Builder::new(o)
                .unwrap_err()
                .to_string()
                .starts_with("--top-k")
        );
        // Too many features.
        let header: Vec<String> = (0..=MAX_FEATURES).map(|i| format!("f{i}")).collect();
        let text = format!("{}\n", header.join(","));
        let e = csv(&text).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "train.csv:1: more than {MAX_FEATURES} features; leave some out with --exclude"
            )
        );
        // A line over the limit.
        let long = format!("{{\"a\":\"{}\"}}\n", "x".repeat(MAX_ROW_BYTES));
        let e = jsonl(&long).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("data.jsonl:1: line is longer than {MAX_ROW_BYTES} bytes")
        );
    }

    #[test]
    fn an_input_that_changes_between_passes_is_an_error() {
        let mut calls = 0;
        let e = build(
            || {
                calls += 1;
                let text = if calls == 1 {
                    "a\n1\n2\n"
                } else {
                    "a\n1\n2\n3\n"
                };
                Ok(io::Cursor::new(text.as_bytes().to_vec()))
            },
            options(InputFormat::Csv),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "train.csv: the input changed while it was read: \
             2 rows (0 skipped) in the first pass, 3 (0 skipped) in the second"
        );
        // Out-of-order calls are refused, not panicked on.
        let mut b = Builder::new(options(InputFormat::Csv)).unwrap();
        assert!(matches!(
            b.second_pass(io::empty()),
            Err(BuildError::Usage(_))
        ));
        let b = Builder::new(options(InputFormat::Csv)).unwrap();
        assert!(matches!(b.finish(), Err(BuildError::Usage(_))));
    }

    /// Generates a CSV of `rows` rows on the fly: an id (unique text), three
    /// normal-ish numbers, a country and a boolean.
    struct Generated {
        rows: u64,
        next: u64,
        line: Vec<u8>,
        pos: usize,
    }

    impl Generated {
        fn new(rows: u64) -> Self {
            Generated {
                rows,
                next: 0,
                line: b"id,age,income,amount,country,vip\n".to_vec(),
                pos: 0,
            }
        }
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.line.len() {
                if self.next == self.rows {
                    return Ok(0);
                }
                let i = self.next;
                self.next += 1;
                let u = |k: u64| {
                    let x = (i * 4 + k + 1)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .rotate_left(29)
                        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    (x >> 11) as f64 / (1u64 << 53) as f64
                };
                // Sum of three uniforms: roughly normal, centred.
                let z = (u(0) + u(1) + u(2) - 1.5) * 2.0;
                self.line = format!(
                    "tx{i},{:.1},{:.2},{:.2},{},{}\n",
                    35.0 + 10.0 * z,
                    50_000.0 + 20_000.0 * z,
                    100.0 + 50.0 * (u(3) - 0.5),
                    ["DE", "FR", "US", "IT", "ES"][(i % 5) as usize],
                    i.is_multiple_of(3)
                )
                .into_bytes();
                self.pos = 0;
            }
            let n = out.len().min(self.line.len() - self.pos);
            out[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn b_peak_is_sampled(peak: usize) -> bool {
        // Six sketches alone make more than a few KiB: the peak saw them.
        peak > 6 * 1024
    }

    #[test]
    fn retained_state_is_bounded_whatever_the_number_of_rows() {
        // The builder samples its own accounting every 4096 rows.
        const BOUND: usize = 2 * 1024 * 1024;
        let mut sizes = Vec::new();
        for rows in [50_000, 300_000] {
            let mut b = Builder::new(options(InputFormat::Csv)).unwrap();
            b.first_pass(Generated::new(rows)).unwrap();
            let after_first = b.peak_bytes();
            b.second_pass(Generated::new(rows)).unwrap();
            let after_second = b.peak_bytes();
            assert!(after_first <= BOUND, "{rows} rows: {after_first} bytes");
            assert!(after_second <= BOUND, "{rows} rows: {after_second} bytes");
            let (baseline, report) = b.finish().unwrap();
            assert_eq!(baseline.rows, rows);
            assert!(b_peak_is_sampled(after_first));
            // The id column filled its table and went approximate.
            assert_eq!(report.approximate_categories, vec!["id"]);
            let age = numeric(&baseline, "age");
            assert!((age.mean - 35.0).abs() < 0.2, "{}", age.mean);
            sizes.push(after_first);
        }
        // Six times the rows, about the same state.
        assert!(sizes[1] < sizes[0] * 3 / 2, "{sizes:?}");
    }

    #[test]
    fn progress_is_reported() {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        build(
            || Ok(Generated::new(20_000)),
            options(InputFormat::Csv),
            Some(1_000_000),
            Some((
                Duration::ZERO,
                Box::new(move |p: &Progress| sink.lock().unwrap().push(*p)),
            )),
        )
        .unwrap();
        let seen = seen.lock().unwrap();
        assert!(seen.iter().any(|p| p.pass == 1) && seen.iter().any(|p| p.pass == 2));
        assert!(
            seen.iter()
                .all(|p| p.total_bytes == Some(1_000_000) && p.rows > 0)
        );
        assert!(
            seen.windows(2)
                .all(|w| w[0].pass < w[1].pass || w[0].bytes <= w[1].bytes)
        );
    }

    #[test]
    fn format_from_extension() {
        for (name, f) in [
            ("a.csv", Some(InputFormat::Csv)),
            ("a.CSV", Some(InputFormat::Csv)),
            ("a.jsonl", Some(InputFormat::Jsonl)),
            ("a.ndjson", Some(InputFormat::Jsonl)),
            ("a.json", Some(InputFormat::Jsonl)),
            ("a.parquet", None),
            ("a", None),
        ] {
            assert_eq!(InputFormat::from_path(Path::new(name)), f, "{name}");
        }
    }
}
