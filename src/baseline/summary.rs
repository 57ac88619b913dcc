//! The column summariser of the baseline builder: what is kept of each
//! column in bounded memory over the first pass, the bins and top
//! categories chosen from it, and the exact counts of the second pass.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::format::{CategoricalBaseline, FeatureBaseline, NumericBaseline};
use super::stats::{CategoryCounter, SignedQuantiles, SmallDistinct};
use crate::stats::drift::bin_index;
use crate::stats::window::Moments;

/// Most features (columns or keys) accepted.
pub const MAX_FEATURES: usize = 10_000;
/// Distinct values of one categorical feature counted exactly.
pub const CATEGORY_CAP: usize = 10_000;
/// Size of all categorical tables together beyond which they stop growing.
pub const CATEGORY_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Text values longer than this are not tracked individually: they always
/// count as `other`.
pub const MAX_CATEGORY_LEN: usize = 1024;

/// A problem with one row, before the file and line are attached.
#[derive(Debug)]
pub(super) struct RowError {
    /// The column concerned, if one is.
    pub(super) column: Option<String>,
    /// What is wrong.
    pub(super) message: String,
}

impl RowError {
    /// A problem with the row as a whole.
    pub(super) fn new(message: impl Into<String>) -> Self {
        RowError {
            column: None,
            message: message.into(),
        }
    }

    /// A problem with the value of `column`.
    pub(super) fn at(column: &str, message: impl Into<String>) -> Self {
        RowError {
            column: Some(column.to_owned()),
            message: message.into(),
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'a> {
    /// No value (empty, `NaN` or `null`).
    Missing,
    /// A number; booleans are 1 and 0.
    Number(f64),
    /// Text.
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
    /// Sum of the values in each bin, for its mean.
    bin_sums: Vec<f64>,
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
            bin_sums: Vec::new(),
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
            + (self.edges.capacity()
                + self.bin_counts.capacity()
                + self.bin_sums.capacity()
                + self.top_counts.capacity())
                * 8
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
            // One bin per value: each value is the edge closing its bin.
            edges.extend_from_slice(values);
        } else {
            edges.push(min);
            for i in 1..bins {
                if let Some(q) = self.quantiles.quantile(i as f64 / bins as f64) {
                    edges.push(q.clamp(min, max));
                }
            }
            edges.push(max);
        }
        // Strictly increasing, from min to max.
        edges.dedup_by(|b, a| *b <= *a);
        if edges.last() != Some(&max) {
            edges.pop();
            edges.push(max);
        }
        self.bin_counts = vec![0; edges.len() + 1];
        self.bin_sums = vec![0.0; edges.len() + 1];
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

    /// Counts a value of the second pass in its bin or category.
    fn add_second(&mut self, cell: &Cell<'_>) {
        match (self.kind, cell) {
            (Kind::Numeric, Cell::Number(x)) => {
                let i = bin_index(&self.edges, *x);
                if let (Some(c), Some(s)) = (self.bin_counts.get_mut(i), self.bin_sums.get_mut(i)) {
                    *c += 1;
                    *s += *x;
                }
                self.second_count += 1;
            }
            (Kind::Categorical, Cell::Text(t)) => {
                if let Some(&i) = self.top_index.get(t.as_ref()) {
                    self.top_counts[i] += 1;
                }
                self.second_count += 1;
            }
            // A value for a column that had none in the first pass: counted so
            // that the comparison of counts reports the change.
            _ => self.second_count += 1,
        }
    }

    /// The mean of each bin's values, kept within the bin against rounding;
    /// `None` for an empty bin.
    fn bin_means(&self, min: f64) -> Vec<Option<f64>> {
        let e = &self.edges;
        if e.is_empty() {
            return vec![None; self.bin_counts.len()];
        }
        self.bin_counts
            .iter()
            .zip(&self.bin_sums)
            .enumerate()
            .map(|(i, (&c, &sum))| {
                let (lo, hi) = match i {
                    0 => (min.min(e[0]), e[0]),
                    _ if i < e.len() => (e[i - 1], e[i]),
                    _ => (e[e.len() - 1], f64::MAX),
                };
                (c > 0).then(|| (sum / c as f64).clamp(lo, hi))
            })
            .collect()
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
                    means: Some(self.bin_means(min)),
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

/// Why a feature has no column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoColumn {
    /// A new feature in the second pass.
    NotInFirstPass,
    /// A new feature beyond [`MAX_FEATURES`].
    TooMany,
}

/// What the columns make: the baseline's features and prediction, and what
/// the report says about them.
pub(super) struct Results {
    /// The features' baselines.
    pub(super) features: BTreeMap<String, FeatureBaseline>,
    /// The prediction's baseline.
    pub(super) prediction: Option<FeatureBaseline>,
    /// Features that never had a value.
    pub(super) empty_features: Vec<String>,
    /// Categorical features whose top categories are approximate.
    pub(super) approximate_categories: Vec<String>,
    /// Excluded names that matched nothing, sorted.
    pub(super) unused_excludes: Vec<String>,
}

/// Every column, by feature name, and the prediction's.
pub(super) struct Columns {
    columns: Vec<Column>,
    /// Feature name -> column.
    by_name: HashMap<String, usize>,
    /// The prediction's column (not in `by_name`).
    prediction: Option<usize>,
    /// The prediction's column name.
    prediction_name: String,
    excluded: HashSet<String>,
    excludes_used: HashSet<String>,
    /// Serial of the row being recorded.
    serial: u64,
    /// Heap bytes of all categorical tables.
    category_bytes: usize,
    bins: usize,
    top_k: usize,
}

impl Columns {
    /// No columns yet: `bins` per numeric feature, `top_k` categories per
    /// categorical one, the names in `exclude` left out.
    pub(super) fn new(
        bins: usize,
        top_k: usize,
        prediction_name: &str,
        exclude: &[String],
    ) -> Self {
        Columns {
            columns: Vec::new(),
            by_name: HashMap::new(),
            prediction: None,
            prediction_name: prediction_name.to_owned(),
            excluded: exclude.iter().cloned().collect(),
            excludes_used: HashSet::new(),
            serial: 0,
            category_bytes: 0,
            bins,
            top_k,
        }
    }

    /// The number of columns.
    pub(super) fn len(&self) -> usize {
        self.columns.len()
    }

    /// Approximate heap bytes: the column summaries and the name table.
    pub(super) fn heap_bytes(&self) -> usize {
        let names: usize = self
            .by_name
            .keys()
            .map(|k| k.capacity() + std::mem::size_of::<String>() + 16)
            .sum();
        self.columns.iter().map(Column::heap_bytes).sum::<usize>()
            + self.columns.capacity() * std::mem::size_of::<Column>()
            + names
    }

    /// Column of feature `name`, created in the first pass when new;
    /// `Ok(None)` for excluded names.
    pub(super) fn feature(
        &mut self,
        name: &str,
        first_pass: bool,
    ) -> Result<Option<usize>, NoColumn> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(Some(i));
        }
        if self.excluded.contains(name) {
            if !self.excludes_used.contains(name) {
                self.excludes_used.insert(name.to_owned());
            }
            return Ok(None);
        }
        if !first_pass {
            return Err(NoColumn::NotInFirstPass);
        }
        if self.by_name.len() >= MAX_FEATURES {
            return Err(NoColumn::TooMany);
        }
        let i = self.columns.len();
        self.columns.push(Column::new(name));
        self.by_name.insert(name.to_owned(), i);
        Ok(Some(i))
    }

    /// The prediction's column, created in the first pass when first
    /// needed; `None` when it is excluded.
    pub(super) fn prediction(&mut self, first_pass: bool) -> Option<usize> {
        if self.excluded.contains(&self.prediction_name) {
            self.excludes_used.insert(self.prediction_name.clone());
            return None;
        }
        if self.prediction.is_none() && first_pass {
            self.prediction = Some(self.columns.len());
            self.columns.push(Column::new(&self.prediction_name));
        }
        self.prediction
    }

    /// Validates then records one row of `(column, value)` pairs.
    pub(super) fn record(
        &mut self,
        line: u64,
        cells: &[(usize, Cell<'_>)],
        first_pass: bool,
    ) -> Result<(), RowError> {
        self.serial += 1;
        for (c, cell) in cells {
            let col = &self.columns[*c];
            if col.stamp == self.serial {
                return Err(RowError::at(&col.name, "given twice in the same row"));
            }
            self.columns[*c].stamp = self.serial;
            self.columns[*c].check(cell)?;
        }
        for (c, cell) in cells {
            if first_pass {
                self.add_first(*c, cell, line);
            } else {
                self.columns[*c].add_second(cell);
            }
        }
        Ok(())
    }

    /// Adds a value of the first pass to the summaries, fixing the
    /// column's kind with its first value.
    fn add_first(&mut self, c: usize, cell: &Cell<'_>, line: u64) {
        let bins = self.bins;
        let min_table = 4 * self.top_k;
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

    /// Between the passes: chooses each column's bins or top categories,
    /// and drops the first pass's summaries, no longer needed.
    pub(super) fn choose_bins(&mut self) {
        let (bins, top_k) = (self.bins, self.top_k);
        for c in &mut self.columns {
            match c.kind {
                Kind::Numeric => c.choose_edges(bins),
                Kind::Categorical => c.choose_top(top_k),
                Kind::Unknown => {}
            }
            c.quantiles = SignedQuantiles::default();
            c.distinct = SmallDistinct::default();
        }
    }

    /// After the second pass: how a column's count of values differs
    /// between the passes, if one does.
    pub(super) fn recount_mismatch(&self) -> Option<String> {
        let c = self.columns.iter().find(|c| c.second_count != c.count)?;
        Some(format!(
            "column {:?} had {} values in the first pass, {} in the second",
            c.name, c.count, c.second_count
        ))
    }

    /// The baselines of the columns, out of `rows` rows.
    pub(super) fn results(&self, rows: u64) -> Results {
        let mut out = Results {
            features: BTreeMap::new(),
            prediction: None,
            empty_features: Vec::new(),
            approximate_categories: Vec::new(),
            unused_excludes: Vec::new(),
        };
        for (i, c) in self.columns.iter().enumerate() {
            let result = c.result(rows);
            if c.kind == Kind::Categorical && !c.categories.is_exact() {
                out.approximate_categories.push(c.name.clone());
            }
            if Some(i) == self.prediction {
                out.prediction = result;
            } else if let Some(r) = result {
                out.features.insert(c.name.clone(), r);
            } else {
                out.empty_features.push(c.name.clone());
            }
        }
        out.unused_excludes = self
            .excluded
            .difference(&self.excludes_used)
            .cloned()
            .collect();
        out.unused_excludes.sort();
        out
    }
}
