//! State across restarts (`--storage.path`): snapshots of the windows, the
//! alert states and the feedback awaiting its join.
//!
//! The aggregator thread, the single writer that owns the state, takes a
//! [`Capture`] every `--storage.snapshot-interval` and once more at shutdown,
//! after the queue has been drained. A capture is a plain copy of the
//! in-memory windows (no serialisation, no I/O), handed to a writer thread
//! that turns it into a [`Snapshot`], serialises it as JSON and writes it
//! atomically: a temporary file in the same directory, `fsync`, `rename` over
//! `snapshot.json`, `fsync` of the directory. While a write is still running
//! the next periodic capture is skipped (and counted), so at most one copy is
//! held besides the live state.
//!
//! At start, before any event is applied, the snapshot is read and restored.
//! A file that cannot be restored (not JSON, truncated, another format or
//! format version) is logged with the reason, moved aside to
//! `snapshot.json.corrupt-<unix seconds>`, counted in
//! `model_exporter_storage_snapshot_failures_total{op="load"}`, and the
//! exporter starts empty. Failed writes are counted, logged at most every
//! five minutes, and never stop the exporter.
//!
//! See docs/storage.md for the format, what is kept, and the costs.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregate::signals::{StoreCapture, StoreState};
use crate::rules::eval::AlertRecord;

/// Name of the snapshot file in `--storage.path`.
pub const FILE_NAME: &str = "snapshot.json";

/// Name of the temporary file a snapshot is written to before the rename.
const TMP_NAME: &str = "snapshot.json.tmp";

/// The `format` field of every snapshot.
pub const FORMAT: &str = "model-exporter-snapshot";

/// The format version this build writes and reads.
pub const VERSION: u64 = 1;

/// Shortest time between two log lines about failed writes.
const LOG_EVERY: Duration = Duration::from_secs(300);

/// An `f64` that survives JSON: finite values are numbers, the others the
/// strings `"NaN"`, `"+Inf"` and `"-Inf"` (JSON has no such numbers, and a
/// `null` in their place would make the whole snapshot unreadable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64(pub f64);

impl Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_finite() {
            s.serialize_f64(x)
        } else if x.is_nan() {
            s.serialize_str("NaN")
        } else if x > 0.0 {
            s.serialize_str("+Inf")
        } else {
            s.serialize_str("-Inf")
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = F64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<F64, E> {
                match v {
                    "NaN" => Ok(F64(f64::NAN)),
                    "+Inf" => Ok(F64(f64::INFINITY)),
                    "-Inf" => Ok(F64(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Everything a snapshot file holds. The first two fields identify it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u64,
    /// The version of the exporter that wrote it.
    pub exporter_version: String,
    /// When it was taken (seconds since the epoch, by the exporter's clock).
    pub written_at: f64,
    /// The windows of every model version, and the feedback awaiting its join.
    pub windows: StoreState,
    /// Pending and firing alerts.
    pub alerts: Vec<AlertRecord>,
}

/// What the aggregator thread copies out of its state for one snapshot;
/// turned into a [`Snapshot`] on the writer thread.
pub struct Capture {
    /// When it was taken.
    pub written_at: f64,
    /// A copy of the windows.
    pub windows: StoreCapture,
    /// The alert states.
    pub alerts: Vec<AlertRecord>,
}

impl Capture {
    /// The snapshot to write.
    pub fn into_snapshot(self) -> Snapshot {
        Snapshot {
            format: FORMAT.to_owned(),
            version: VERSION,
            exporter_version: crate::VERSION.to_owned(),
            written_at: self.written_at,
            windows: self.windows.to_state(),
            alerts: self.alerts,
        }
    }
}

/// Why a snapshot file could not be restored.
#[derive(Debug)]
pub enum LoadError {
    /// It could not be read.
    Io(io::Error),
    /// It is not valid JSON, is cut short, or does not have the snapshot's
    /// shape.
    Json(serde_json::Error),
    /// Its `format` field is not [`FORMAT`] (the value found, if a string).
    Foreign(Option<String>),
    /// Its format version is not [`VERSION`] (the value found).
    Version(Option<u64>),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read it: {e}"),
            LoadError::Json(e) if e.is_eof() => write!(f, "it is truncated: {e}"),
            LoadError::Json(e) => write!(f, "it is not a valid snapshot: {e}"),
            LoadError::Foreign(found) => write!(
                f,
                "it is not a model-exporter snapshot (\"format\" is {}, expected {FORMAT:?})",
                found
                    .as_deref()
                    .map_or_else(|| "missing".to_owned(), |s| format!("{s:?}"))
            ),
            LoadError::Version(found) => write!(
                f,
                "it has format version {}, this build reads version {VERSION}",
                found.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads the snapshot at `path`; `Ok(None)` when there is none.
pub fn read_file(path: &Path) -> Result<Option<Snapshot>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    decode(&bytes).map(Some)
}

/// Parses a snapshot: the header first, so that a foreign file or another
/// format version is named as such rather than as a shape mismatch.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, LoadError> {
    #[derive(Deserialize)]
    struct Header {
        format: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    }
    let h: Header = serde_json::from_slice(bytes).map_err(LoadError::Json)?;
    match h.format {
        Some(serde_json::Value::String(s)) if s == FORMAT => {}
        Some(serde_json::Value::String(s)) => return Err(LoadError::Foreign(Some(s))),
        _ => return Err(LoadError::Foreign(None)),
    }
    let version = h.version.as_ref().and_then(serde_json::Value::as_u64);
    if version != Some(VERSION) {
        return Err(LoadError::Version(version));
    }
    serde_json::from_slice(bytes).map_err(LoadError::Json)
}

/// The snapshot as written: compact JSON.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    // Serialising plain structs into memory cannot fail: every map key is a
    // string and every float goes through `F64` or is finite.
    serde_json::to_vec(snapshot).unwrap_or_default()
}

/// Writes `bytes` as `dir/snapshot.json` so that a crash at any point leaves
/// either the old file or the new one: temporary file, fsync, rename, fsync
/// of the directory.
pub fn write_atomic(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(FILE_NAME))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` if needed and checks that files can be written in it.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let name = dir.display();
    fs::create_dir_all(dir)
        .map_err(|e| format!("--storage.path {name}: cannot create the directory: {e}"))?;
    if !dir.is_dir() {
        return Err(format!("--storage.path {name}: not a directory"));
    }
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    let written = File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
    let _ = fs::remove_file(&probe);
    written.map_err(|e| format!("--storage.path {name}: cannot write in the directory: {e}"))
}

/// The storage self-metrics.
#[derive(Clone)]
pub struct StorageMetrics {
    /// `model_exporter_storage_snapshots_total{op}`.
    pub done: IntCounterVec,
    /// `model_exporter_storage_snapshot_failures_total{op}`.
    pub failures: IntCounterVec,
    /// `model_exporter_storage_snapshots_skipped_total`.
    pub skipped: IntCounter,
    /// `model_exporter_storage_last_snapshot_timestamp_seconds`.
    pub last: Gauge,
    /// `model_exporter_storage_snapshot_duration_seconds{phase}`.
    pub duration: GaugeVec,
    /// `model_exporter_storage_snapshot_bytes`.
    pub bytes: Gauge,
}

impl StorageMetrics {
    /// Creates and registers them.
    pub fn new(registry: &Registry) -> prometheus::Result<StorageMetrics> {
        let m = StorageMetrics {
            done: IntCounterVec::new(
                Opts::new(
                    "model_exporter_storage_snapshots_total",
                    "Snapshots written (op=save) and restored at start (op=load).",
                ),
                &["op"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "model_exporter_storage_snapshot_failures_total",
                    "Snapshots that could not be written (op=save) or restored (op=load).",
                ),
                &["op"],
            )?,
            skipped: IntCounter::new(
                "model_exporter_storage_snapshots_skipped_total",
                "Periodic snapshots skipped because the previous one was still being written.",
            )?,
            last: Gauge::new(
                "model_exporter_storage_last_snapshot_timestamp_seconds",
                "When the last snapshot that was written successfully was taken.",
            )?,
            duration: GaugeVec::new(
                Opts::new(
                    "model_exporter_storage_snapshot_duration_seconds",
                    "Duration of the last snapshot: copying the state on the aggregator thread (phase=capture), serialising and writing it on the writer thread (phase=write).",
                ),
                &["phase"],
            )?,
            bytes: Gauge::new(
                "model_exporter_storage_snapshot_bytes",
                "Size of the last snapshot written.",
            )?,
        };
        registry.register(Box::new(m.done.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        registry.register(Box::new(m.last.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        for op in ["load", "save"] {
            m.done.with_label_values(&[op]);
            m.failures.with_label_values(&[op]);
        }
        Ok(m)
    }
}

/// Snapshots in one directory: reads the one left by the previous run, and
/// writes new ones on its own thread.
pub struct Storage {
    dir: PathBuf,
    interval: Duration,
    metrics: StorageMetrics,
    /// Set while a capture is queued or being written.
    busy: Arc<AtomicBool>,
    tx: Option<SyncSender<Capture>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Snapshots in `dir` (created if missing, and checked to be writable)
    /// every `interval` (zero: only at shutdown), with their metrics in
    /// `registry`.
    pub fn open(dir: &Path, interval: Duration, registry: &Registry) -> Result<Storage, String> {
        check_dir(dir)?;
        let metrics = StorageMetrics::new(registry)
            .map_err(|e| format!("cannot register the storage metrics: {e}"))?;
        let busy = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(1);
        let writer = {
            let (dir, metrics, busy) = (dir.to_owned(), metrics.clone(), busy.clone());
            std::thread::Builder::new()
                .name("snapshot-writer".into())
                .spawn(move || write_loop(&dir, rx, &metrics, &busy))
                .map_err(|e| format!("cannot start the snapshot writer: {e}"))?
        };
        Ok(Storage {
            dir: dir.to_owned(),
            interval,
            metrics,
            busy,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// How often a snapshot is taken (zero: only at shutdown).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The metrics.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// Reads the snapshot left by the previous run. A file that cannot be
    /// restored is logged, counted and moved aside; `None` then, as when
    /// there is no file.
    pub fn load(&self) -> Option<Snapshot> {
        let path = self.path();
        match read_file(&path) {
            Ok(Some(s)) => {
                self.metrics.done.with_label_values(&["load"]).inc();
                Some(s)
            }
            Ok(None) => {
                tracing::info!(path = %path.display(), "no snapshot to restore; starting empty");
                None
            }
            Err(e) => {
                self.metrics.failures.with_label_values(&["load"]).inc();
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = self.dir.join(format!("{FILE_NAME}.corrupt-{secs}"));
                let moved = match fs::rename(&path, &aside) {
                    Ok(()) => format!("moved aside to {}", aside.display()),
                    Err(m) => format!("could not be moved aside ({m})"),
                };
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "{}: cannot restore the snapshot: {e}; it was {moved}; starting empty",
                    path.display()
                );
                None
            }
        }
    }

    /// Whether the previous snapshot is still being written.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Counts a periodic snapshot skipped because the writer was busy.
    pub fn skip(&self) {
        self.metrics.skipped.inc();
    }

    /// Hands a capture to the writer, which must not be busy (the capture is
    /// dropped and counted as skipped otherwise). `capture_seconds` is how
    /// long taking it stalled the aggregator.
    pub fn submit(&self, capture: Capture, capture_seconds: f64) {
        self.metrics
            .duration
            .with_label_values(&["capture"])
            .set(capture_seconds);
        let Some(tx) = &self.tx else { return };
        self.busy.store(true, Ordering::Release);
        match tx.try_send(capture) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.skip(),
            Err(TrySendError::Disconnected(_)) => {
                self.busy.store(false, Ordering::Release);
                self.metrics.failures.with_label_values(&["save"]).inc();
            }
        }
    }

    /// Writes a last capture, waiting for any write in progress, and stops
    /// the writer once it is on disk.
    pub fn finish(mut self, capture: Capture, capture_seconds: f64) {
        self.metrics
            .duration
            .with_label_values(&["capture"])
            .set(capture_seconds);
        if let Some(tx) = self.tx.take() {
            self.busy.store(true, Ordering::Release);
            let _ = tx.send(capture);
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: turns captures into files until the sender is gone.
fn write_loop(dir: &Path, rx: Receiver<Capture>, metrics: &StorageMetrics, busy: &AtomicBool) {
    let mut failing: Option<(Instant, u64)> = None;
    for capture in rx {
        let started = Instant::now();
        let written_at = capture.written_at;
        let bytes = encode(&capture.into_snapshot());
        match write_atomic(dir, &bytes) {
            Ok(()) => {
                metrics.done.with_label_values(&["save"]).inc();
                metrics.last.set(written_at);
                metrics.bytes.set(bytes.len() as f64);
                if failing.take().is_some() {
                    tracing::info!(path = %dir.join(FILE_NAME).display(), "snapshots are written again");
                }
            }
            Err(e) => {
                metrics.failures.with_label_values(&["save"]).inc();
                let path = dir.join(FILE_NAME);
                match &mut failing {
                    Some((last, missed)) if last.elapsed() < LOG_EVERY => *missed += 1,
                    _ => {
                        let missed = failing.map_or(0, |(_, m)| m);
                        tracing::error!(
                            path = %path.display(),
                            error = %e,
                            failures_not_logged = missed,
                            "cannot write the snapshot {}: {e}; the exporter keeps running on the state in memory",
                            path.display()
                        );
                        failing = Some((Instant::now(), 0));
                    }
                }
            }
        }
        metrics
            .duration
            .with_label_values(&["write"])
            .set(started.elapsed().as_secs_f64());
        busy.store(false, Ordering::Release);
    }
}

/// What restoring a snapshot brought back, and what it left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreReport {
    /// Model versions whose windows were restored.
    pub series: usize,
    /// Non-empty window slices restored.
    pub slices: usize,
    /// Predictions awaiting their label.
    pub pending_feedback: usize,
    /// Pending and firing alerts restored.
    pub alerts: usize,
    /// Alerts dropped because their rule is gone or changed.
    pub alerts_dropped: usize,
    /// What was left out and why (the first [`RestoreReport::MAX_NOTES`]).
    pub dropped: Vec<String>,
    /// Further notes not kept.
    pub more_dropped: usize,
}

impl RestoreReport {
    /// Most notes kept.
    pub const MAX_NOTES: usize = 20;

    /// Notes that something was left out.
    pub fn drop_note(&mut self, note: String) {
        if self.dropped.len() < Self::MAX_NOTES {
            self.dropped.push(note);
        } else {
            self.more_dropped += 1;
        }
    }
}
