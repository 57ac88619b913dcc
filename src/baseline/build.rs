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
//! gets one bin per value: the values themselves are the edges (`[0, 1]` for
//! a boolean: the bins `x <= 0` and `0 < x <= 1`). Otherwise the inner edges are the
//! quantiles `i / bins` (`i = 1 .. bins − 1`) estimated by the sketch, each
//! within 0.75 % of `max − min` of the exact quantile; repeated edges (heavy
//! ties) are merged, so a column can end up with fewer bins; a value
//! repeated at the minimum (a zero-inflated column) fills the first bin,
//! `x <= min`, alone. See
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
//!
//! [`Moments`]: crate::stats::window::Moments
//! [`SignedQuantiles`]: super::stats::SignedQuantiles
//! [`CategoryCounter`]: super::stats::CategoryCounter
//! [`CATEGORY_CAP`]: super::summary::CATEGORY_CAP
//! [`MAX_CATEGORY_LEN`]: super::summary::MAX_CATEGORY_LEN
//! [`CATEGORY_BUDGET_BYTES`]: super::summary::CATEGORY_BUDGET_BYTES
//! [`MAX_FEATURES`]: super::summary::MAX_FEATURES
//! [`MAX_ROW_BYTES`]: super::rows::MAX_ROW_BYTES
//!
//! # Files
//!
//! The readers of CSV and JSON lines are in [`rows`](super::rows), the
//! column summaries in [`summary`](super::summary); the builder drives the
//! passes, counts the rows and reports progress.

use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::BuildError;
use super::format::{Baseline, FORMAT_NAME, FORMAT_VERSION};
use super::rows::{RowReader, RowSink};
use super::summary::{Cell, Columns, NoColumn, RowError};
use crate::ingest::timestamp::format_rfc3339;

/// Bins per numeric feature unless `--bins` says otherwise.
pub const DEFAULT_BINS: usize = 10;
/// Most bins accepted.
pub const MAX_BINS: usize = 1000;
/// Categories kept per categorical feature unless `--top-k` says otherwise.
pub const DEFAULT_TOP_K: usize = 20;
/// Largest `--top-k` accepted.
pub const MAX_TOP_K: usize = 1000;
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
    /// Reads the rows, keeping what the second pass needs from the first.
    reader: RowReader,
    /// Takes the rows.
    tally: Tally,
}

/// What the reader hands the rows to: the column summaries, the counts of
/// each pass and the progress display.
struct Tally {
    options: BuildOptions,
    columns: Columns,
    stage: Stage,
    rows: u64,
    skipped: u64,
    first_skipped: Option<String>,
    other_events: u64,
    second_rows: u64,
    second_skipped: u64,
    progress: Option<ProgressSink>,
    /// Largest heap size of the columns seen at a sample.
    peak_columns_bytes: usize,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("source", &self.tally.options.source)
            .field("stage", &self.tally.stage)
            .field("rows", &self.tally.rows)
            .field("columns", &self.tally.columns.len())
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
        let source = options.source.as_str();
        let named = options.prediction_column.as_deref();
        let reader = match options.format {
            InputFormat::Csv => RowReader::csv(source, named),
            InputFormat::Jsonl => RowReader::jsonl(source, named),
        };
        let columns = Columns::new(
            options.bins,
            options.top_k,
            named.unwrap_or("prediction"),
            &options.exclude,
        );
        Ok(Builder {
            reader,
            tally: Tally {
                options,
                columns,
                stage: Stage::First,
                rows: 0,
                skipped: 0,
                first_skipped: None,
                other_events: 0,
                second_rows: 0,
                second_skipped: 0,
                progress: None,
                peak_columns_bytes: 0,
            },
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
        self.tally.progress = Some(ProgressSink {
            every,
            total: total_bytes,
            last: Instant::now(),
            f: Box::new(f),
        });
    }

    /// Approximate heap bytes of the state kept between rows: the column
    /// summaries, the name table and the CSV header. Does not grow with the
    /// number of rows.
    pub fn approx_bytes(&self) -> usize {
        self.tally.columns.heap_bytes() + self.reader.heap_bytes()
    }

    /// Largest [`Self::approx_bytes`] seen so far, sampled every 4096 rows
    /// and at the end of each pass.
    pub fn peak_bytes(&self) -> usize {
        // The reader's part is its header, the same at every sample.
        (self.tally.peak_columns_bytes + self.reader.heap_bytes()).max(self.approx_bytes())
    }

    /// Rows accepted so far (first pass).
    pub fn rows(&self) -> u64 {
        self.tally.rows
    }

    /// Reads the input for the first time.
    pub fn first_pass(&mut self, input: impl Read) -> Result<(), BuildError> {
        if self.tally.stage != Stage::First {
            return Err(BuildError::Usage("first_pass must come first, and once"));
        }
        self.read(input)?;
        if self.tally.rows == 0 {
            return Err(BuildError::NoRows {
                file: self.tally.options.source.clone(),
            });
        }
        self.tally.columns.choose_bins();
        self.tally.stage = Stage::Second;
        Ok(())
    }

    /// Reads the same input again to count the bins.
    pub fn second_pass(&mut self, input: impl Read) -> Result<(), BuildError> {
        if self.tally.stage != Stage::Second {
            return Err(BuildError::Usage(
                "second_pass must follow a successful first_pass, once",
            ));
        }
        self.read(input)?;
        let t = &self.tally;
        let changed = |message: String| BuildError::Changed {
            file: t.options.source.clone(),
            message,
        };
        if (t.second_rows, t.second_skipped) != (t.rows, t.skipped) {
            return Err(changed(format!(
                "{} rows ({} skipped) in the first pass, {} ({} skipped) in the second",
                t.rows, t.skipped, t.second_rows, t.second_skipped
            )));
        }
        if let Some(message) = t.columns.recount_mismatch() {
            return Err(changed(message));
        }
        self.tally.stage = Stage::Done;
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
        let t = self.tally;
        if t.stage != Stage::Done {
            return Err(BuildError::Usage("finish needs both passes"));
        }
        let results = t.columns.results(t.rows);
        let report = BuildReport {
            rows: t.rows,
            skipped_rows: t.skipped,
            first_skipped: t.first_skipped,
            other_events: t.other_events,
            empty_features: results.empty_features,
            approximate_categories: results.approximate_categories,
            unused_excludes: results.unused_excludes,
        };
        let baseline = Baseline {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            created_at: format_rfc3339(created_at),
            source: t.options.source,
            rows: t.rows,
            features: results.features,
            prediction: results.prediction,
        };
        Ok((baseline, report))
    }

    /// Reads the input once, in the current pass.
    fn read(&mut self, input: impl Read) -> Result<(), BuildError> {
        let input = BufReader::with_capacity(256 * 1024, input);
        if let Some(p) = &mut self.tally.progress {
            p.last = Instant::now();
        }
        let first_pass = self.tally.stage == Stage::First;
        self.reader.read(input, first_pass, &mut self.tally)?;
        let t = &mut self.tally;
        t.peak_columns_bytes = t.peak_columns_bytes.max(t.columns.heap_bytes());
        Ok(())
    }
}

impl Tally {
    fn first_pass(&self) -> bool {
        self.stage == Stage::First
    }

    /// Samples the memory every 4096 rows and reports progress when due.
    fn tick(&mut self, bytes: u64) {
        let pass = if self.first_pass() { 1 } else { 2 };
        let rows = if pass == 1 {
            self.rows + self.skipped
        } else {
            self.second_rows + self.second_skipped
        };
        if rows % 1024 != 0 {
            return;
        }
        if rows % 4096 == 0 {
            self.peak_columns_bytes = self.peak_columns_bytes.max(self.columns.heap_bytes());
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
        let first = self.first_pass();
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
                        let error = BuildError::row(&self.options.source, line, e);
                        self.first_skipped = Some(error.to_string());
                    }
                } else {
                    self.second_skipped += 1;
                }
                Ok(())
            }
            Err(e) => Err(BuildError::row(&self.options.source, line, e)),
        }
    }
}

impl RowSink for Tally {
    fn feature(&mut self, name: &str, line: u64) -> Result<Option<usize>, BuildError> {
        let file = || self.options.source.clone();
        self.columns
            .feature(name, self.stage == Stage::First)
            .map_err(|e| match e {
                NoColumn::NotInFirstPass => BuildError::Changed {
                    file: file(),
                    message: format!(
                        "line {line}: feature {name:?} was not there in the first pass"
                    ),
                },
                NoColumn::TooMany => BuildError::TooManyFeatures { file: file(), line },
            })
    }

    fn prediction(&mut self) -> Option<usize> {
        let first = self.first_pass();
        self.columns.prediction(first)
    }

    fn row(
        &mut self,
        line: u64,
        bytes: u64,
        row: Result<&[(usize, Cell<'_>)], RowError>,
    ) -> Result<(), BuildError> {
        let first = self.first_pass();
        let result = row.and_then(|cells| self.columns.record(line, cells, first));
        self.outcome(line, result)?;
        self.tick(bytes);
        Ok(())
    }

    fn other_event(&mut self) {
        if self.first_pass() {
            self.other_events += 1;
        }
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
    use crate::baseline::format::{CategoricalBaseline, FeatureBaseline as F, NumericBaseline};
    use crate::baseline::rows::MAX_ROW_BYTES;
    use crate::baseline::summary::{CATEGORY_CAP, MAX_FEATURES};

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
        // A boolean: the bins `x <= 0` and `0 < x <= 1`.
        assert_eq!(flag.edges, vec![0.0, 1.0]);
        assert!(close(flag.proportions[0], 1.0 / 3.0));
        assert!(close(flag.proportions[1], 2.0 / 3.0));
        assert_eq!(flag.proportions[2], 0.0);
        let word = categorical(&b, "word");
        assert!(close(word.categories["x"], 2.0 / 3.0));
        // NaN and empty are missing.
        let m = numeric(&b, "mixed_missing");
        assert_eq!((m.count, m.missing), (1, 2));
        assert!(close(m.missing_rate, 2.0 / 3.0));
        assert_eq!(m.edges, vec![4.0]);
        assert_eq!(m.proportions, vec![1.0, 0.0]);
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
            // The minimum alone is in `x <= min`; nothing is above the maximum.
            assert_eq!((x.proportions[0], x.proportions[11]), (0.001, 0.0));
            // Each edge within 0.75 % of the range of the exact quantile,
            // hence each bin within 2 × 7.5 values of 100.
            for (i, &e) in x.edges.iter().enumerate().take(10).skip(1) {
                let exact = (i as f64 * 999.0 / 10.0).floor();
                assert!((e - exact).abs() <= 0.0075 * 999.0, "edge {i}: {e}");
            }
            for &p in &x.proportions[1..11] {
                assert!((p - 0.1).abs() <= 0.017, "{:?}", x.proportions);
            }
            let sum: f64 = x.proportions.iter().sum();
            assert!(close(sum, 1.0));
            // Each bin's mean is the mean of the integers in it.
            let means = x.means.as_ref().unwrap();
            assert_eq!(means.len(), 12);
            assert_eq!((means[0], means[11]), (Some(0.0), None));
            for i in 1..11 {
                let (lo, hi) = (x.edges[i - 1], x.edges[i]);
                let inside: Vec<f64> = (0..1000)
                    .map(f64::from)
                    .filter(|&v| v > lo && v <= hi)
                    .collect();
                let want = inside.iter().sum::<f64>() / inside.len() as f64;
                assert!(close(means[i].unwrap(), want), "bin {i}: {means:?}");
            }
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
        // The first bin, `x <= 0`, holds the zeros and nothing else.
        assert_eq!(z.edges[0], 0.0);
        let zeros = (0..2000).filter(|i| i % 10 < 7 || i % 97 == 0).count();
        assert!(
            close(z.proportions[0], zeros as f64 / 2000.0),
            "{:?}",
            z.proportions
        );
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
        assert_eq!(r.edges, vec![1.0, 2.0, 3.0, 5.0]);
        assert_eq!(r.proportions, vec![0.2, 0.4, 0.2, 0.2, 0.0]);
        // Each bin's mean is its value.
        assert_eq!(
            r.means,
            Some(vec![Some(1.0), Some(2.0), Some(3.0), Some(5.0), None])
        );
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
        assert_eq!(p.edges, vec![0.2, 0.8]);
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
        assert_eq!(numeric(&b, "age").edges, vec![25.0, 35.0, 45.0]);
        assert_eq!(numeric(&b, "income").missing, 2);
        assert!(close(
            categorical(&b, "country").categories["DE"],
            2.0 / 3.0
        ));
        assert_eq!(numeric(&b, "vip").edges, vec![0.0, 1.0]);
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
