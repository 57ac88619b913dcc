//! Metric families of the model metrics, with a direct text encoder.
//!
//! The prometheus crate's vecs can only be read through `collect()`, which
//! builds a protobuf `Metric` per series (label pairs cloned as `String`s),
//! after which `Registry::gather()` sorts every family by label values and
//! the text encoder formats them: about 3 µs a series, 0.5 s for 100,000
//! series. The families here keep the same API subset the aggregator uses
//! (`with_label_values`, `remove_label_values`, `inc`, `set`, `observe`,
//! ...) with the same type names, but each series stores its label set
//! already rendered and escaped (`a="x",b="y"`) next to its atomic value,
//! so that a scrape only reads atomics and copies bytes.
//!
//! Concurrency: handles are atomics and are updated without any lock. The
//! lock of a family is taken for writing only when a series is created or
//! removed, and a scrape holds it for reading for at most
//! [`LINES_PER_LOCK`] lines at a time, so the aggregator (the single writer)
//! never waits for more than a few microseconds on a scrape, whatever the
//! number of series. Series keep their slot for their whole life (removed
//! ones leave an empty slot that a later series reuses), and a scrape skips
//! series created after it started, so one scrape never shows a series twice
//! and never skips one that existed throughout.
//!
//! Series appear in creation order within a family (the crate sorted them by
//! label values; the text format does not require an order). Label names
//! are written sorted, `le` last, exactly as the crate does.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Most sample lines a scrape writes while holding a family's lock.
pub const LINES_PER_LOCK: usize = 1024;

/// The value of one series, and how it is written.
pub trait Cell: Send + Sync + 'static {
    /// Sample lines this cell writes (for sizing lock-held chunks).
    fn lines(&self) -> usize {
        1
    }
    /// Writes the cell's sample lines; `labels` is the rendered label set
    /// without braces (possibly empty).
    fn write(&self, name: &str, labels: &str, out: &mut Vec<u8>);
}

/// An integer counter (`IntCounter` of the prometheus crate).
#[derive(Clone, Default)]
pub struct IntCounter(Arc<AtomicU64>);

impl IntCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `v`.
    pub fn inc_by(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    /// [`inc`](Self::inc) for a series this thread alone writes (scrapes
    /// may read it meanwhile): a load and a store instead of a locked
    /// read-modify-write. Another thread writing the same series at the
    /// same time could lose counts, so only a series' single writer (the
    /// aggregator that owns its model) may call it.
    pub fn inc_owned(&self) {
        add_owned(&self.0, 1);
    }
    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Adds `v` to `c` by a plain load and store: for a counter one thread
/// alone writes. Readers see the old or the new value, never a torn one.
#[inline]
fn add_owned(c: &AtomicU64, v: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

impl Cell for AtomicU64 {
    fn write(&self, name: &str, labels: &str, out: &mut Vec<u8>) {
        line_start(out, name, "", labels, None);
        write_u64(out, self.load(Ordering::Relaxed));
        out.push(b'\n');
    }
}

/// An f64 held in an `AtomicU64` (bits).
#[derive(Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// [`add`](Self::add) by a plain load and store, for a value one
    /// thread alone writes.
    fn add_owned(&self, v: f64) {
        self.set(self.get() + v);
    }
    fn add(&self, v: f64) {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(old) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(x) => old = x,
            }
        }
    }
}

impl Cell for AtomicF64 {
    fn write(&self, name: &str, labels: &str, out: &mut Vec<u8>) {
        line_start(out, name, "", labels, None);
        write_f64(out, self.get());
        out.push(b'\n');
    }
}

/// A float counter (`Counter` of the prometheus crate).
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicF64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.add(1.0);
    }
    /// Adds `v`, which must not be negative (a counter only goes up); a
    /// negative `v` is ignored.
    pub fn inc_by(&self, v: f64) {
        if v >= 0.0 {
            self.0.add(v);
        }
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// A float gauge (`Gauge` of the prometheus crate).
#[derive(Clone, Default)]
pub struct Gauge(Arc<AtomicF64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }
    /// Adds `v` (may be negative).
    pub fn add(&self, v: f64) {
        self.0.add(v);
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// An integer gauge (`IntGauge` of the prometheus crate).
#[derive(Clone, Default)]
pub struct IntGauge(Arc<AtomicI64>);

impl IntGauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Cell for AtomicI64 {
    fn write(&self, name: &str, labels: &str, out: &mut Vec<u8>) {
        line_start(out, name, "", labels, None);
        let v = self.load(Ordering::Relaxed);
        if v < 0 {
            out.push(b'-');
        }
        write_u64(out, v.unsigned_abs());
        out.push(b'\n');
    }
}

/// Upper bounds of a histogram's buckets, with their `le` label values.
pub struct Bounds {
    values: Vec<f64>,
    le: Vec<String>,
}

impl Bounds {
    /// Bounds must be finite and strictly increasing (checked by callers,
    /// see `metrics::validate_buckets`); `+Inf` is always added.
    pub fn new(values: &[f64]) -> Arc<Bounds> {
        Arc::new(Bounds {
            values: values.to_vec(),
            le: values.iter().map(|v| le_label(*v)).collect(),
        })
    }
}

/// The `le` label value of a bucket bound, as every histogram here writes
/// it (and the prometheus crate did): f64's `Display`, so `1`, `0.5`,
/// `1000000`. Series meant to be joined on `le` with a histogram's buckets
/// must write their bounds with this function.
pub fn le_label(bound: f64) -> String {
    bound.to_string()
}

/// The state of one histogram: a count per bucket (not cumulative; the
/// last one is `+Inf`) and the sum.
pub struct HistogramCell {
    bounds: Arc<Bounds>,
    counts: Box<[AtomicU64]>,
    sum: AtomicF64,
}

impl HistogramCell {
    fn new(bounds: Arc<Bounds>) -> Self {
        let n = bounds.values.len() + 1;
        HistogramCell {
            bounds,
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicF64::default(),
        }
    }
}

impl Cell for HistogramCell {
    fn lines(&self) -> usize {
        self.counts.len() + 2
    }

    fn write(&self, name: &str, labels: &str, out: &mut Vec<u8>) {
        // The count is the sum of the buckets read, so that `_count` always
        // equals the `+Inf` bucket even while observations land.
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self.bounds.le.get(i).map_or("+Inf", String::as_str);
            line_start(out, name, "_bucket", labels, Some(le));
            write_u64(out, cumulative);
            out.push(b'\n');
        }
        line_start(out, name, "_sum", labels, None);
        write_f64(out, self.sum.get());
        out.push(b'\n');
        line_start(out, name, "_count", labels, None);
        write_u64(out, cumulative);
        out.push(b'\n');
    }
}

/// A histogram (`Histogram` of the prometheus crate).
#[derive(Clone)]
pub struct Histogram(Arc<HistogramCell>);

impl Histogram {
    /// Counts `v` in the first bucket whose bound is at least `v` (NaN in
    /// `+Inf`), the bin of [`bin_index`](crate::stats::drift::bin_index),
    /// and adds it to the sum.
    pub fn observe(&self, v: f64) {
        let b = &self.0.bounds.values;
        let i = crate::stats::drift::bin_index(b, v);
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum.add(v);
    }
    /// [`observe`](Self::observe) for a series this thread alone writes
    /// (scrapes may read it meanwhile): loads and stores instead of locked
    /// read-modify-writes (a compare-and-swap loop for the sum). Another
    /// thread writing the same series at the same time could lose
    /// observations, so only a series' single writer (the aggregator that
    /// owns its model) may call it. A scrape may read a bucket before the
    /// sum is updated, as with [`observe`](Self::observe).
    pub fn observe_owned(&self, v: f64) {
        let b = &self.0.bounds.values;
        let i = crate::stats::drift::bin_index(b, v);
        add_owned(&self.0.counts[i], 1);
        self.0.sum.add_owned(v);
    }
    /// Observations so far.
    pub fn get_sample_count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
    /// Sum of the observations so far.
    pub fn get_sample_sum(&self) -> f64 {
        self.0.sum.get()
    }
}

/// A live series: its label values, rendered labels and value.
struct Entry<C> {
    values: Box<[Box<str>]>,
    labels: Box<str>,
    seq: u64,
    cell: Arc<C>,
}

struct Slots<C> {
    entries: Vec<Option<Entry<C>>>,
    free: Vec<usize>,
    /// Hash of the label values -> slots with that hash.
    index: HashMap<u64, Vec<usize>>,
    next_seq: u64,
    live: usize,
}

/// The type of a family, for its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Why a series could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// Not as many label values as the family has labels.
    #[error("{family}: {values} label values for labels {labels:?}")]
    Arity {
        /// The family's name.
        family: String,
        /// How many values were given.
        values: usize,
        /// The family's labels.
        labels: Vec<String>,
    },
    /// No series has these label values.
    #[error("{family}: no series with label values {values:?}")]
    Absent {
        /// The family's name.
        family: String,
        /// The values.
        values: Vec<String>,
    },
}

struct Inner<C> {
    name: String,
    help: String,
    kind: Kind,
    header: String,
    label_names: Vec<String>,
    /// Positions of `label_names` in name order.
    sorted: Vec<usize>,
    hasher: RandomState,
    slots: RwLock<Slots<C>>,
}

/// Series of one name, each with its own label values.
pub struct Family<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for Family<C> {
    fn clone(&self) -> Self {
        Family {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Cell> Family<C> {
    /// An empty family. `name` and `label_names` must be valid Prometheus
    /// names (they are fixed in the code).
    pub fn new(name: &str, help: &str, kind: Kind, label_names: &[&str]) -> Self {
        let mut sorted: Vec<usize> = (0..label_names.len()).collect();
        sorted.sort_by_key(|&i| label_names[i]);
        let header = format!(
            "# HELP {name} {}\n# TYPE {name} {}\n",
            escape(help, false),
            kind.as_str()
        );
        Family {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                help: help.to_owned(),
                kind,
                header,
                label_names: label_names.iter().map(|s| s.to_string()).collect(),
                sorted,
                hasher: RandomState::new(),
                slots: RwLock::new(Slots {
                    entries: Vec::new(),
                    free: Vec::new(),
                    index: HashMap::new(),
                    next_seq: 0,
                    live: 0,
                }),
            }),
        }
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The family's help text.
    pub fn help(&self) -> &str {
        &self.inner.help
    }

    /// The family's type.
    pub fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// The family's label names, in the order values are given.
    pub fn label_names(&self) -> &[String] {
        &self.inner.label_names
    }

    fn check_arity(&self, values: &[&str]) {
        assert_eq!(
            values.len(),
            self.inner.label_names.len(),
            "{}: {} label values for labels {:?}",
            self.inner.name,
            values.len(),
            self.inner.label_names
        );
    }

    fn hash(&self, values: &[&str]) -> u64 {
        let mut h = self.inner.hasher.build_hasher();
        for v in values {
            v.hash(&mut h);
        }
        h.finish()
    }

    fn find(slots: &Slots<C>, hash: u64, values: &[&str]) -> Option<usize> {
        slots.index.get(&hash)?.iter().copied().find(|&i| {
            slots.entries[i].as_ref().is_some_and(|e| {
                e.values.len() == values.len()
                    && e.values.iter().zip(values).all(|(a, b)| &**a == *b)
            })
        })
    }

    fn render(&self, values: &[&str]) -> Box<str> {
        let mut s = String::new();
        for (n, &i) in self.inner.sorted.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push_str(&self.inner.label_names[i]);
            s.push_str("=\"");
            s.push_str(&escape(values[i], true));
            s.push('"');
        }
        s.into_boxed_str()
    }

    /// The series with these label values (in the order of the label names
    /// given to [`Family::new`]), created with `make` if it does not exist.
    /// Panics if the number of values is not the number of labels.
    pub fn get_or_create(&self, values: &[&str], make: impl FnOnce() -> C) -> Arc<C> {
        self.check_arity(values);
        let hash = self.hash(values);
        {
            let slots = self.inner.slots.read().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = Self::find(&slots, hash, values) {
                return slots.entries[i].as_ref().expect("found").cell.clone();
            }
        }
        let labels = self.render(values);
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = Self::find(&slots, hash, values) {
            return slots.entries[i].as_ref().expect("found").cell.clone();
        }
        let cell = Arc::new(make());
        Self::insert(&mut slots, hash, values, labels, cell.clone());
        cell
    }

    /// Adds or replaces the series with these label values by `cell`.
    pub fn put(&self, values: &[&str], cell: Arc<C>) {
        self.check_arity(values);
        let hash = self.hash(values);
        let labels = self.render(values);
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = Self::find(&slots, hash, values) {
            Self::take(&mut slots, hash, i);
        }
        Self::insert(&mut slots, hash, values, labels, cell);
    }

    fn insert(slots: &mut Slots<C>, hash: u64, values: &[&str], labels: Box<str>, cell: Arc<C>) {
        let seq = slots.next_seq;
        slots.next_seq += 1;
        let entry = Entry {
            values: values.iter().map(|v| Box::from(*v)).collect(),
            labels,
            seq,
            cell,
        };
        let i = match slots.free.pop() {
            Some(i) => {
                slots.entries[i] = Some(entry);
                i
            }
            None => {
                slots.entries.push(Some(entry));
                slots.entries.len() - 1
            }
        };
        slots.index.entry(hash).or_default().push(i);
        slots.live += 1;
    }

    fn take(slots: &mut Slots<C>, hash: u64, i: usize) {
        slots.entries[i] = None;
        slots.free.push(i);
        slots.live -= 1;
        if let Some(list) = slots.index.get_mut(&hash) {
            list.retain(|&x| x != i);
            if list.is_empty() {
                slots.index.remove(&hash);
            }
        }
    }

    /// Removes the series with these label values; the next scrape no
    /// longer shows it. Handles to it keep working but are not exported.
    pub fn remove_label_values(&self, values: &[&str]) -> Result<(), RemoveError> {
        if values.len() != self.inner.label_names.len() {
            return Err(RemoveError::Arity {
                family: self.inner.name.clone(),
                values: values.len(),
                labels: self.inner.label_names.clone(),
            });
        }
        let hash = self.hash(values);
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        match Self::find(&slots, hash, values) {
            Some(i) => {
                Self::take(&mut slots, hash, i);
                Ok(())
            }
            None => Err(RemoveError::Absent {
                family: self.inner.name.clone(),
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            }),
        }
    }

    /// Removes the series holding one of `cells`, in one pass.
    pub fn remove_cells(&self, cells: &[&Arc<C>]) {
        if cells.is_empty() {
            return;
        }
        let wanted: std::collections::HashSet<*const C> =
            cells.iter().map(|c| Arc::as_ptr(c)).collect();
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        let found: Vec<(usize, Vec<String>)> = slots
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref()
                    .filter(|e| wanted.contains(&Arc::as_ptr(&e.cell)))
                    .map(|e| (i, e.values.iter().map(|v| v.to_string()).collect()))
            })
            .collect();
        for (i, values) in found {
            let hash = self.hash(&strs(&values));
            Self::take(&mut slots, hash, i);
        }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.inner
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .live
    }

    /// True when the family has no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the family in the text format (nothing when it has no
    /// series). The lock is released every [`LINES_PER_LOCK`] lines.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (limit, mut len) = {
            let slots = self.inner.slots.read().unwrap_or_else(|e| e.into_inner());
            if slots.live == 0 {
                return;
            }
            (slots.next_seq, slots.entries.len())
        };
        out.extend_from_slice(self.inner.header.as_bytes());
        let name = self.inner.name.as_str();
        let mut i = 0;
        while i < len {
            let slots = self.inner.slots.read().unwrap_or_else(|e| e.into_inner());
            // Slots only grow; series added since the start are skipped.
            len = len.min(slots.entries.len());
            let mut lines = 0;
            while i < len && lines < LINES_PER_LOCK {
                if let Some(e) = &slots.entries[i]
                    && e.seq < limit
                {
                    e.cell.write(name, &e.labels, out);
                    lines += e.cell.lines();
                }
                i += 1;
            }
        }
    }
}

/// `IntCounterVec` of the prometheus crate.
pub type IntCounterVec = ScalarVec<AtomicU64, IntCounter>;
/// `CounterVec` of the prometheus crate.
pub type CounterVec = ScalarVec<AtomicF64, Counter>;
/// `GaugeVec` of the prometheus crate.
pub type GaugeVec = ScalarVec<AtomicF64, Gauge>;
/// `IntGaugeVec` of the prometheus crate.
pub type IntGaugeVec = ScalarVec<AtomicI64, IntGauge>;

/// A family of scalar series handing out handles of type `H`.
pub struct ScalarVec<C, H> {
    family: Family<C>,
    _handle: std::marker::PhantomData<fn() -> H>,
}

impl<C, H> Clone for ScalarVec<C, H> {
    fn clone(&self) -> Self {
        ScalarVec {
            family: self.family.clone(),
            _handle: std::marker::PhantomData,
        }
    }
}

/// Conversion between a handle and its shared cell.
pub trait Handle<C> {
    /// Wraps a cell.
    fn from_cell(c: Arc<C>) -> Self;
}

impl Handle<AtomicU64> for IntCounter {
    fn from_cell(c: Arc<AtomicU64>) -> Self {
        IntCounter(c)
    }
}
impl Handle<AtomicF64> for Counter {
    fn from_cell(c: Arc<AtomicF64>) -> Self {
        Counter(c)
    }
}
impl Handle<AtomicF64> for Gauge {
    fn from_cell(c: Arc<AtomicF64>) -> Self {
        Gauge(c)
    }
}
impl Handle<AtomicI64> for IntGauge {
    fn from_cell(c: Arc<AtomicI64>) -> Self {
        IntGauge(c)
    }
}

impl<C: Cell + Default, H: Handle<C>> ScalarVec<C, H> {
    /// An empty family of this name, help, type and label names.
    pub fn new(name: &str, help: &str, kind: Kind, label_names: &[&str]) -> Self {
        ScalarVec {
            family: Family::new(name, help, kind, label_names),
            _handle: std::marker::PhantomData,
        }
    }

    /// The series with these label values, created at zero if new.
    pub fn with_label_values<V: AsRef<str>>(&self, values: &[V]) -> H {
        H::from_cell(self.family.get_or_create(&strs(values), C::default))
    }

    /// Removes the series with these label values.
    pub fn remove_label_values<V: AsRef<str>>(&self, values: &[V]) -> Result<(), RemoveError> {
        self.family.remove_label_values(&strs(values))
    }

    /// The underlying family (for encoding).
    pub fn family(&self) -> &Family<C> {
        &self.family
    }
}

/// `HistogramVec` of the prometheus crate, plus members with buckets of
/// their own ([`HistogramVec::member`]).
#[derive(Clone)]
pub struct HistogramVec {
    family: Family<HistogramCell>,
    bounds: Arc<Bounds>,
}

impl HistogramVec {
    /// An empty family whose series have the bucket bounds `buckets` unless
    /// created with [`HistogramVec::member`]. Bounds must be finite and
    /// strictly increasing (checked by the caller).
    pub fn new(name: &str, help: &str, label_names: &[&str], buckets: &[f64]) -> Self {
        HistogramVec {
            family: Family::new(name, help, Kind::Histogram, label_names),
            bounds: Bounds::new(buckets),
        }
    }

    /// The series with these label values, created empty if new.
    pub fn with_label_values<V: AsRef<str>>(&self, values: &[V]) -> Histogram {
        let b = &self.bounds;
        Histogram(
            self.family
                .get_or_create(&strs(values), || HistogramCell::new(b.clone())),
        )
    }

    /// A series with these label values and its own bucket bounds,
    /// replacing any series with the same label values.
    pub fn member<V: AsRef<str>>(&self, values: &[V], buckets: &[f64]) -> Histogram {
        let cell = Arc::new(HistogramCell::new(Bounds::new(buckets)));
        self.family.put(&strs(values), cell.clone());
        Histogram(cell)
    }

    /// Removes the series `h` (its series disappears from the next scrape).
    pub fn remove(&self, h: &Histogram) {
        self.remove_all(std::slice::from_ref(h));
    }

    /// Removes several series in one pass over the family.
    pub fn remove_all(&self, hs: &[Histogram]) {
        let cells: Vec<&Arc<HistogramCell>> = hs.iter().map(|h| &h.0).collect();
        self.family.remove_cells(&cells);
    }

    /// Removes the series with these label values.
    pub fn remove_label_values<V: AsRef<str>>(&self, values: &[V]) -> Result<(), RemoveError> {
        self.family.remove_label_values(&strs(values))
    }

    /// The underlying family (for encoding).
    pub fn family(&self) -> &Family<HistogramCell> {
        &self.family
    }
}

/// Something that writes one family in the text format.
pub trait Encode: Send + Sync {
    /// The family's name (families are written in name order).
    fn family_name(&self) -> &str;
    /// The family's help text.
    fn family_help(&self) -> &str;
    /// Appends the family's text (nothing when it is empty).
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl<C: Cell> Encode for Family<C> {
    fn family_name(&self) -> &str {
        self.name()
    }
    fn family_help(&self) -> &str {
        self.help()
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
}

fn strs<V: AsRef<str>>(values: &[V]) -> Vec<&str> {
    values.iter().map(AsRef::as_ref).collect()
}

/// Escapes a label value (`\`, newline and `"`) or help text (`\` and
/// newline) as the text format requires.
pub fn escape(s: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    let special = |c: char| c == '\\' || c == '\n' || (quote && c == '"');
    if !s.contains(special) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.into()
}

/// Writes `name` `suffix` `{labels,le="…"}` and the space before the value.
fn line_start(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &str, le: Option<&str>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    match (labels.is_empty(), le) {
        (true, None) => {}
        (false, None) => {
            out.push(b'{');
            out.extend_from_slice(labels.as_bytes());
            out.push(b'}');
        }
        (empty, Some(le)) => {
            out.push(b'{');
            out.extend_from_slice(labels.as_bytes());
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(b"le=\"");
            out.extend_from_slice(le.as_bytes());
            out.push(b'"');
            out.push(b'}');
        }
    }
    out.push(b' ');
}

/// Writes an unsigned integer in decimal.
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes a sample value: `+Inf`, `-Inf`, `NaN`, integers without a
/// fraction, anything else as Rust's shortest round-trip decimal (as the
/// prometheus crate does).
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        if v.is_sign_negative() {
            out.push(b'-');
        }
        write_u64(out, v.abs() as u64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes families of the prometheus crate's protobuf form (the rule
/// families, the self-metrics), without copying them.
pub fn encode_protos(families: &[prometheus::proto::MetricFamily], out: &mut Vec<u8>) {
    use prometheus::proto::MetricType;
    for f in families.iter().filter(|f| !f.get_metric().is_empty()) {
        let kind = f.get_field_type();
        if kind != MetricType::GAUGE && kind != MetricType::COUNTER {
            // Histograms and summaries: the crate's own encoder.
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                std::slice::from_ref(f),
                out,
            )
            .expect("encoding into a Vec cannot fail");
            continue;
        }
        let name = f.name();
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(escape(f.help(), false).as_bytes());
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(if kind == MetricType::GAUGE {
            b" gauge\n"
        } else {
            b" counter\n"
        });
        for m in f.get_metric() {
            out.extend_from_slice(name.as_bytes());
            let mut sep = b'{';
            for l in m.get_label() {
                out.push(sep);
                sep = b',';
                out.extend_from_slice(l.name().as_bytes());
                out.extend_from_slice(b"=\"");
                out.extend_from_slice(escape(l.value(), true).as_bytes());
                out.push(b'"');
            }
            if sep == b',' {
                out.push(b'}');
            }
            out.push(b' ');
            let v = if kind == MetricType::GAUGE {
                m.get_gauge().get_value()
            } else {
                m.get_counter().get_value()
            };
            write_f64(out, v);
            if m.timestamp_ms() != 0 {
                let _ = write!(out, " {}", m.timestamp_ms());
            }
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A sample's name and label pairs.
    pub(crate) type Key = (String, Vec<(String, String)>);

    /// One parsed exposition: HELP and TYPE per family, and every sample
    /// keyed by name and its label pairs (sorted), with the value's bits.
    #[derive(Debug, Default, PartialEq)]
    pub(crate) struct Parsed {
        pub help: BTreeMap<String, String>,
        pub types: BTreeMap<String, String>,
        pub samples: BTreeMap<Key, u64>,
        /// Samples in the order they were written.
        pub order: Vec<Key>,
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                other => panic!("bad escape \\{other:?} in {s:?}"),
            }
        }
        out
    }

    fn value(s: &str) -> f64 {
        match s {
            "+Inf" | "inf" | "+inf" | "Inf" => f64::INFINITY,
            "-Inf" | "-inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
        }
    }

    /// Parses the text format strictly enough for these tests: panics on
    /// anything malformed and on a sample seen twice.
    pub(crate) fn parse(text: &str) -> Parsed {
        let mut p = Parsed::default();
        assert!(text.is_empty() || text.ends_with('\n'), "no final newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (n, h) = rest.split_once(' ').expect("HELP name text");
                assert!(
                    p.help.insert(n.into(), h.into()).is_none(),
                    "HELP twice {n}"
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, t) = rest.split_once(' ').expect("TYPE name type");
                assert!(
                    p.types.insert(n.into(), t.into()).is_none(),
                    "TYPE twice {n}"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "{line}");
            let (name, labels, rest) = match line.find('{') {
                Some(b) => {
                    let name = &line[..b];
                    let mut labels = Vec::new();
                    let mut s = &line[b + 1..];
                    loop {
                        if let Some(r) = s.strip_prefix('}') {
                            s = r;
                            break;
                        }
                        let eq = s.find("=\"").expect("label=\"");
                        let lname = &s[..eq];
                        let mut end = eq + 2;
                        let bytes = s.as_bytes();
                        while bytes[end] != b'"' {
                            end += if bytes[end] == b'\\' { 2 } else { 1 };
                        }
                        labels.push((lname.to_owned(), unescape(&s[eq + 2..end])));
                        s = &s[end + 1..];
                        s = s.strip_prefix(',').unwrap_or(s);
                    }
                    (name, labels, s)
                }
                None => {
                    let sp = line.find(' ').expect("name value");
                    (&line[..sp], Vec::new(), &line[sp..])
                }
            };
            let v = rest.strip_prefix(' ').expect("space before value");
            let v = value(v.split(' ').next().unwrap());
            let mut sorted = labels.clone();
            sorted.sort();
            let key = (name.to_owned(), sorted);
            p.order.push((name.to_owned(), labels));
            assert!(
                p.samples.insert(key.clone(), v.to_bits()).is_none(),
                "sample twice: {key:?}"
            );
        }
        p
    }

    /// Histogram invariants: buckets in increasing `le` order ending with
    /// `+Inf`, cumulative counts that never fall, `_count` equal to `+Inf`.
    pub(crate) fn check_histograms(p: &Parsed) {
        let mut series: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
        for (name, labels) in &p.order {
            let Some(base) = name.strip_suffix("_bucket") else {
                continue;
            };
            let le = labels.iter().find(|(n, _)| n == "le").expect("le");
            assert_eq!(labels.last().map(|l| &l.0), Some(&"le".to_owned()));
            let mut rest: Vec<_> = labels.iter().filter(|(n, _)| n != "le").cloned().collect();
            rest.sort();
            let mut key_labels = labels.clone();
            key_labels.sort();
            let v = f64::from_bits(p.samples[&(name.clone(), key_labels)]);
            series
                .entry((base.to_owned(), rest))
                .or_default()
                .push((value(&le.1), v));
        }
        for ((base, labels), buckets) in series {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            );
            assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
            let count = p.samples[&(format!("{base}_count"), labels.clone())];
            assert_eq!(f64::from_bits(count), buckets.last().unwrap().1);
            assert!(p.samples.contains_key(&(format!("{base}_sum"), labels)));
        }
    }

    const AWKWARD: &[&str] = &[
        "plain",
        "with \"quotes\"",
        "back\\slash",
        "new\nline",
        "ünïcödé ✓",
        "{braces},commas=",
    ];

    /// Every kind of family, filled the same way through the prometheus
    /// crate and through this module: both expositions must parse to the
    /// same samples, help and types.
    #[test]
    fn same_samples_as_the_crate_encoder() {
        let r = prometheus::Registry::new();
        let help = "Help with a \\ backslash\nand a newline.";
        let c_ic = prometheus::IntCounterVec::new(
            prometheus::Opts::new("t_requests_total", help),
            &["model", "outcome"],
        )
        .unwrap();
        let c_fc = prometheus::CounterVec::new(
            prometheus::Opts::new("t_counts_total", "Float counts."),
            &["zeta", "alpha"],
        )
        .unwrap();
        let c_g =
            prometheus::GaugeVec::new(prometheus::Opts::new("t_ratio", "A gauge."), &["resource"])
                .unwrap();
        let c_ig = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("t_info", "An int gauge."),
            &["model", "version"],
        )
        .unwrap();
        let bounds = [-1.5, 0.0, 0.001, 0.25, 1.0, 2.5, 1e4, 123456789.0];
        let c_h = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("t_seconds", "A histogram.").buckets(bounds.to_vec()),
            &["model", "feature"],
        )
        .unwrap();
        r.register(Box::new(c_ic.clone())).unwrap();
        r.register(Box::new(c_fc.clone())).unwrap();
        r.register(Box::new(c_g.clone())).unwrap();
        r.register(Box::new(c_ig.clone())).unwrap();
        r.register(Box::new(c_h.clone())).unwrap();

        let ic = IntCounterVec::new(
            "t_requests_total",
            help,
            Kind::Counter,
            &["model", "outcome"],
        );
        let fc = CounterVec::new(
            "t_counts_total",
            "Float counts.",
            Kind::Counter,
            &["zeta", "alpha"],
        );
        let g = GaugeVec::new("t_ratio", "A gauge.", Kind::Gauge, &["resource"]);
        let ig = IntGaugeVec::new(
            "t_info",
            "An int gauge.",
            Kind::Gauge,
            &["model", "version"],
        );
        let h = HistogramVec::new("t_seconds", "A histogram.", &["model", "feature"], &bounds);

        let gauge_values = [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.1,
            1e-9,
            1.5e300,
            -2.5e-300,
            123456789012.5,
            9.1e15,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ];
        let observations = [
            -2.0, -1.5, 0.0, 0.0005, 0.001, 0.3, 1.0, 2.4999, 2.5, 9999.0, 1e9, 0.1, 0.2,
        ];
        for (i, a) in AWKWARD.iter().enumerate() {
            for (j, b) in AWKWARD.iter().enumerate() {
                let n = (i * 7 + j) as u64;
                c_ic.with_label_values(&[a, b]).inc_by(n * 1000 + 1);
                ic.with_label_values(&[a, b]).inc_by(n * 1000 + 1);
                c_fc.with_label_values(&[a, b]).inc_by(n as f64 * 0.37);
                fc.with_label_values(&[a, b]).inc_by(n as f64 * 0.37);
                c_ig.with_label_values(&[a, b]).set(n as i64 - 20);
                ig.with_label_values(&[a, b]).set(n as i64 - 20);
                let (ch, mh) = (c_h.with_label_values(&[a, b]), h.with_label_values(&[a, b]));
                for x in observations.iter().skip((i + j) % 5) {
                    ch.observe(*x);
                    mh.observe(*x);
                }
            }
            for (k, v) in gauge_values.iter().enumerate() {
                let label = format!("{a}{k}");
                c_g.with_label_values(&[&label]).set(*v);
                g.with_label_values(&[&label]).set(*v);
            }
        }
        // The empty value (alone: the crate would mix up ("a", "") and
        // ("", "a"), see `label_values_are_not_concatenated`).
        c_g.with_label_values(&[""]).set(2.0);
        g.with_label_values(&[""]).set(2.0);
        // A series removed, then one re-created: gone in both, and back.
        for vals in [["plain", "plain"], ["back\\slash", "plain"]] {
            c_ic.remove_label_values(&vals).unwrap();
            ic.remove_label_values(&vals).unwrap();
        }
        c_ic.with_label_values(&["back\\slash", "plain"]).inc();
        ic.with_label_values(&["back\\slash", "plain"]).inc();
        assert!(ic.remove_label_values(&["nope", "nope"]).is_err());
        assert!(ic.remove_label_values(&["one"]).is_err());
        // Same handle for the same label values.
        ic.with_label_values(&["plain", "new\nline"]).inc();
        c_ic.with_label_values(&["plain", "new\nline"]).inc();

        let mut want = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut want)
            .unwrap();
        let mut got = Vec::new();
        // In name order, as the registry writes them.
        h.family().encode(&mut got);
        fc.family().encode(&mut got);
        ig.family().encode(&mut got);
        g.family().encode(&mut got);
        ic.family().encode(&mut got);
        let (want, got) = (
            String::from_utf8(want).unwrap(),
            String::from_utf8(got).unwrap(),
        );
        let (pw, pg) = (parse(&want), parse(&got));
        assert_eq!(pg.help, pw.help);
        assert_eq!(pg.types, pw.types);
        assert_eq!(pg.samples.len(), pw.samples.len());
        for (k, v) in &pw.samples {
            assert_eq!(pg.samples.get(k), Some(v), "{k:?}\n{got}");
        }
        assert_eq!(pg.samples, pw.samples);
        check_histograms(&pg);
        // Label names in the same (sorted, le last) order on every line.
        let names = |p: &Parsed| -> std::collections::BTreeSet<(String, Vec<String>)> {
            p.order
                .iter()
                .map(|(n, l)| (n.clone(), l.iter().map(|x| x.0.clone()).collect()))
                .collect()
        };
        assert_eq!(names(&pg), names(&pw));
        // The canonical spellings of the special values.
        assert!(
            got.contains("t_ratio{resource=\"plain10\"} +Inf\n"),
            "{got}"
        );
        assert!(
            got.contains("t_ratio{resource=\"plain11\"} -Inf\n"),
            "{got}"
        );
        assert!(got.contains("t_ratio{resource=\"plain12\"} NaN\n"), "{got}");
        assert!(got.contains(r#"{model="with \"quotes\"",outcome="back\\slash"}"#));
        assert!(got.contains(r#"{model="new\nline",outcome="plain"}"#));
    }

    /// The crate hashes the concatenated label values, so ("ab", "c") and
    /// ("a", "bc") are one series there; here they are two.
    #[test]
    fn label_values_are_not_concatenated() {
        let c = IntCounterVec::new("t_total", "x", Kind::Counter, &["a", "b"]);
        c.with_label_values(&["ab", "c"]).inc();
        c.with_label_values(&["a", "bc"]).inc_by(2);
        c.with_label_values(&["", "abc"]).inc_by(3);
        assert_eq!(c.family().len(), 3);
        let mut out = Vec::new();
        c.family().encode(&mut out);
        let p = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(p.samples.len(), 3);
        let get = |a: &str, b: &str| {
            let key = (
                "t_total".to_owned(),
                vec![
                    ("a".to_owned(), a.to_owned()),
                    ("b".to_owned(), b.to_owned()),
                ],
            );
            f64::from_bits(p.samples[&key])
        };
        assert_eq!(
            (get("ab", "c"), get("a", "bc"), get("", "abc")),
            (1.0, 2.0, 3.0)
        );
    }

    #[test]
    fn empty_families_write_nothing() {
        let c = IntCounterVec::new("t_total", "x", Kind::Counter, &["a"]);
        let mut out = Vec::new();
        c.family().encode(&mut out);
        assert!(out.is_empty());
        c.with_label_values(&["x"]);
        c.remove_label_values(&["x"]).unwrap();
        c.family().encode(&mut out);
        assert!(out.is_empty());
        assert!(c.family().is_empty());
    }

    #[test]
    fn unlabelled_series_and_slot_reuse() {
        let g = IntGaugeVec::new("t_up", "x", Kind::Gauge, &[]);
        g.with_label_values::<&str>(&[]).set(-7);
        let mut out = Vec::new();
        g.family().encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP t_up x\n# TYPE t_up gauge\nt_up -7\n"
        );
        let h = HistogramVec::new("t_h", "x", &[], &[1.0]);
        h.with_label_values::<&str>(&[]).observe(3.0);
        let mut out = Vec::new();
        h.family().encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP t_h x\n# TYPE t_h histogram\nt_h_bucket{le=\"1\"} 0\nt_h_bucket{le=\"+Inf\"} 1\nt_h_sum 3\nt_h_count 1\n"
        );
        // A removed series' slot is reused; the old handle is not exported.
        let c = IntCounterVec::new("t_total", "x", Kind::Counter, &["a"]);
        let old = c.with_label_values(&["a"]);
        old.inc_by(5);
        c.remove_label_values(&["a"]).unwrap();
        let new = c.with_label_values(&["b"]);
        new.inc();
        old.inc();
        assert_eq!(c.family().len(), 1);
        let mut out = Vec::new();
        c.family().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("t_total{a=\"b\"} 1\n"), "{text}");
        assert!(!text.contains("a=\"a\""), "{text}");
    }

    /// A scrape running while series are created and removed shows every
    /// series that existed throughout, each once, and never one twice.
    #[test]
    fn concurrent_changes_never_duplicate_or_drop_stable_series() {
        let c = IntCounterVec::new("t_total", "x", Kind::Counter, &["k"]);
        let stable: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
        for s in &stable {
            c.with_label_values(&[s]).inc();
        }
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for round in 0..200 {
                    for i in 0..50 {
                        let k = format!("churn{i}");
                        c.with_label_values(&[&k]).inc();
                        if round % 2 == 1 {
                            c.remove_label_values(&[&k]).unwrap();
                        }
                    }
                }
            })
        };
        for _ in 0..20 {
            let mut out = Vec::new();
            c.family().encode(&mut out);
            let p = parse(std::str::from_utf8(&out).unwrap());
            for s in &stable {
                let key = ("t_total".to_owned(), vec![("k".to_owned(), s.clone())]);
                assert!(p.samples.contains_key(&key), "{s} missing");
            }
        }
        writer.join().unwrap();
    }

    #[test]
    fn values_are_formatted_as_the_text_format_wants() {
        let f = |v: f64| {
            let mut o = Vec::new();
            write_f64(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(42.0), "42");
        assert_eq!(f(-42.0), "-42");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(1e300), 1e300.to_string());
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(f64::NAN), "NaN");
        for v in [0.1, 1.0 / 3.0, 123456.789, 9.5e15, 2f64.powi(60), -1e-7] {
            assert_eq!(f(v).parse::<f64>().unwrap(), v);
        }
        let mut o = Vec::new();
        write_u64(&mut o, u64::MAX);
        assert_eq!(o, u64::MAX.to_string().as_bytes());
        assert_eq!(escape("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("a\"b", false), "a\"b");
    }

    /// The single writer's `_owned` methods count exactly what the atomic
    /// ones do.
    #[test]
    fn owned_writes_count_as_atomic_ones_do() {
        let bounds = [0.001, 0.1, 1.0, 2.5, 10.0];
        let h = HistogramVec::new("t_h", "x", &["w"], &bounds);
        let c = IntCounterVec::new("t_total", "x", Kind::Counter, &["w"]);
        let (atomic, owned) = (h.with_label_values(&["a"]), h.with_label_values(&["o"]));
        let (ca, co) = (c.with_label_values(&["a"]), c.with_label_values(&["o"]));
        for x in [
            -2.0,
            0.0,
            0.001,
            0.05,
            1.0,
            2.4999,
            2.5,
            9999.0,
            f64::NAN,
            0.3,
        ] {
            atomic.observe(x);
            owned.observe_owned(x);
            ca.inc();
            co.inc_owned();
        }
        assert_eq!(owned.get_sample_count(), 10);
        assert!(owned.get_sample_sum().is_nan() && atomic.get_sample_sum().is_nan());
        assert_eq!(co.get(), ca.get());
        let mut out = Vec::new();
        h.family().encode(&mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let of = |w: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains(&format!("w=\"{w}\"")) && l.contains("_bucket"))
                .map(|l| l.replace(&format!("w=\"{w}\""), "w"))
                .collect()
        };
        assert_eq!(of("a"), of("o"), "{text}");
        assert_eq!(of("o").len(), bounds.len() + 1);
    }
}
