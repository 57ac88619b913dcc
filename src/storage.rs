//! State across restarts (`--storage.path`): snapshot files, whatever state
//! they hold (the aggregator's windows, alert states and feedback awaiting
//! its join: see `aggregate::snapshot`, which defines the body).
//!
//! The owner of the state (the aggregator thread, the single writer) takes
//! a [`Capture`] every `--storage.snapshot-interval` and once more at
//! shutdown, after the queue has been drained. A capture is a plain copy of
//! the in-memory state (no serialisation, no I/O), handed to a writer thread
//! that turns it into a [`Snapshot`]: the envelope (format name, format
//! version, exporter version, `written_at`) and the capture's body, whose
//! fields sit next to the envelope's in one JSON object. The writer
//! serialises it and writes it atomically: a temporary file in the same
//! directory, `fsync`, `rename` over `snapshot.json`, `fsync` of the
//! directory. While a write is still running the next periodic capture is
//! skipped (and counted), so at most one copy is held besides the live
//! state.
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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// Everything a snapshot file holds: the envelope, whose first two fields
/// identify the file, and the body `B`, a struct whose fields follow the
/// envelope's in the same JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot<B> {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u64,
    /// The version of the exporter that wrote it.
    pub exporter_version: String,
    /// When it was taken (seconds since the epoch, by the exporter's clock).
    pub written_at: f64,
    /// The state it holds.
    #[serde(flatten)]
    pub body: B,
}

impl<B> Snapshot<B> {
    /// A snapshot of this build's format, taken at `written_at`.
    pub fn new(written_at: f64, body: B) -> Snapshot<B> {
        Snapshot {
            format: FORMAT.to_owned(),
            version: VERSION,
            exporter_version: crate::VERSION.to_owned(),
            written_at,
            body,
        }
    }
}

/// What the owner of the state copies out of it for one snapshot; turned
/// into the snapshot's body on the writer thread, so that the owner only
/// pays for the copy.
pub trait Capture: Send + 'static {
    /// What the snapshot holds besides the envelope: a struct with named
    /// fields (serialised as a JSON object), none of them named like the
    /// envelope's.
    type Body: Serialize + DeserializeOwned;

    /// When the copy was taken.
    fn written_at(&self) -> f64;

    /// The body to write.
    fn into_body(self) -> Self::Body;

    /// The snapshot to write.
    fn into_snapshot(self) -> Snapshot<Self::Body>
    where
        Self: Sized,
    {
        Snapshot::new(self.written_at(), self.into_body())
    }
}

/// Why a snapshot file could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Io(io::Error),
    /// It is not valid JSON, is cut short, or does not have the snapshot's
    /// shape.
    #[error("{what}: {0}", what = if .0.is_eof() { "it is truncated" } else { "it is not a valid snapshot" })]
    Json(serde_json::Error),
    /// Its `format` field is not [`FORMAT`] (the value found, if a string).
    #[error(
        "it is not a model-exporter snapshot (\"format\" is {}, expected {FORMAT:?})",
        .0.as_deref().map_or_else(|| "missing".to_owned(), |s| format!("{s:?}"))
    )]
    Foreign(Option<String>),
    /// Its format version is not [`VERSION`] (the value found).
    #[error(
        "it has format version {}, this build reads version {VERSION}",
        .0.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
    )]
    Version(Option<u64>),
}

/// Why `--storage.path` cannot hold snapshots.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// It exists and is not a directory.
    #[error("--storage.path {}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The directory could not be created.
    #[error("--storage.path {dir}: cannot create the directory: {1}", dir = .0.display())]
    Create(PathBuf, io::Error),
    /// No file can be written in it.
    #[error("--storage.path {dir}: cannot write in the directory: {1}", dir = .0.display())]
    Write(PathBuf, io::Error),
    /// The storage self-metrics could not be registered.
    #[error("cannot register the storage metrics: {0}")]
    Metrics(prometheus::Error),
    /// The writer thread could not be started.
    #[error("cannot start the snapshot writer: {0}")]
    Writer(io::Error),
}

/// Reads the snapshot at `path`; `Ok(None)` when there is none.
pub fn read_file<B: DeserializeOwned>(path: &Path) -> Result<Option<Snapshot<B>>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    decode(&bytes).map(Some)
}

/// Parses a snapshot: the envelope first, so that a foreign file or another
/// format version is named as such rather than as a shape mismatch, then
/// the body (which skips the envelope's fields).
pub fn decode<B: DeserializeOwned>(bytes: &[u8]) -> Result<Snapshot<B>, LoadError> {
    #[derive(Deserialize)]
    struct Header {
        format: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
        exporter_version: Option<serde_json::Value>,
        written_at: Option<serde_json::Value>,
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
    let body: B = serde_json::from_slice(bytes).map_err(LoadError::Json)?;
    Ok(Snapshot {
        format: FORMAT.to_owned(),
        version: VERSION,
        exporter_version: envelope_field(h.exporter_version, "exporter_version")?,
        written_at: envelope_field(h.written_at, "written_at")?,
        body,
    })
}

/// A field of the envelope, which must be there and have its type.
fn envelope_field<T: DeserializeOwned>(
    value: Option<serde_json::Value>,
    name: &'static str,
) -> Result<T, LoadError> {
    let value = value.ok_or_else(|| serde::de::Error::missing_field(name));
    value
        .and_then(serde_json::from_value)
        .map_err(LoadError::Json)
}

/// The snapshot as written: compact JSON.
pub fn encode<B: Serialize>(snapshot: &Snapshot<B>) -> Vec<u8> {
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
pub fn check_dir(dir: &Path) -> Result<(), StorageError> {
    if dir.exists() && !dir.is_dir() {
        return Err(StorageError::NotADirectory(dir.to_owned()));
    }
    fs::create_dir_all(dir).map_err(|e| StorageError::Create(dir.to_owned(), e))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    let written = File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
    let _ = fs::remove_file(&probe);
    written.map_err(|e| StorageError::Write(dir.to_owned(), e))
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
/// writes new ones, made from captures of type `C`, on its own thread.
pub struct Storage<C: Capture> {
    dir: PathBuf,
    interval: Duration,
    metrics: StorageMetrics,
    /// Set while a capture is queued or being written.
    busy: Arc<AtomicBool>,
    tx: Option<SyncSender<C>>,
    writer: Option<JoinHandle<()>>,
}

impl<C: Capture> std::fmt::Debug for Storage<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl<C: Capture> Storage<C> {
    /// Snapshots in `dir` (created if missing, and checked to be writable)
    /// every `interval` (zero: only at shutdown), with their metrics in
    /// `registry`.
    pub fn open(
        dir: &Path,
        interval: Duration,
        registry: &Registry,
    ) -> Result<Storage<C>, StorageError> {
        check_dir(dir)?;
        let metrics = StorageMetrics::new(registry).map_err(StorageError::Metrics)?;
        let busy = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(1);
        let writer = {
            let (dir, metrics, busy) = (dir.to_owned(), metrics.clone(), busy.clone());
            std::thread::Builder::new()
                .name("snapshot-writer".into())
                .spawn(move || write_loop(&dir, rx, &metrics, &busy))
                .map_err(StorageError::Writer)?
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
    pub fn load(&self) -> Option<Snapshot<C::Body>> {
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
    pub fn submit(&self, capture: C, capture_seconds: f64) {
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
    pub fn finish(mut self, capture: C, capture_seconds: f64) {
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

impl<C: Capture> Drop for Storage<C> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: turns captures into files until the sender is gone.
fn write_loop<C: Capture>(
    dir: &Path,
    rx: Receiver<C>,
    metrics: &StorageMetrics,
    busy: &AtomicBool,
) {
    let mut failing: Option<(Instant, u64)> = None;
    for capture in rx {
        let started = Instant::now();
        let written_at = capture.written_at();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::snapshot::{RestoreReport, Snapshot, SnapshotBody, StateCapture};
    use crate::aggregate::{Aggregator, Options};
    use crate::clock::ManualClock;
    use crate::config::load;
    use crate::export::metrics::{Buckets, Metrics};
    use crate::ingest::Batch;
    use crate::ingest::parse::parse_event;

    const RULES: &str = "
defaults: {window: 1m, evaluation_interval: 10s, min_samples: 5}
models:
  fraud:
    features:
      amount: {mean: 100, std: 50}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 30s
      - alert: Drift
        expr: psi(feature.*) > 0.2
        for: 5m
";

    fn aggregator(clock: &ManualClock, yaml: &str) -> (Aggregator, Metrics) {
        let m = Metrics::new(&Buckets::default()).unwrap();
        let config = load("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
        let a = Aggregator::new(Options {
            source: "t".into(),
            ..Options::new(m.clone(), Arc::new(clock.clone()), Arc::new(config))
        });
        (a, m)
    }

    fn batch(lines: &[String]) -> Batch {
        lines
            .iter()
            .map(|l| parse_event(l.as_bytes()).unwrap())
            .collect()
    }

    /// The rule and window families of an exposition.
    fn windows(m: &Metrics) -> Vec<String> {
        String::from_utf8(m.encode())
            .unwrap()
            .lines()
            .filter(|l| {
                [
                    "model_window_",
                    "model_feature_drift",
                    "model_alerts",
                    "model_feedback_pending",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .map(str::to_owned)
            .collect()
    }

    fn snapshot_of(a: &Aggregator) -> Snapshot {
        decode(&encode(&a.capture().into_snapshot())).unwrap()
    }

    /// One second of traffic: ten requests, a third failing, with drifted
    /// amounts and ids.
    fn second(s: u32) -> Batch {
        let lines: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"model":"fraud","version":"v1","id":"r{s}-{i}","prediction":0.8,"error":{},"features":{{"amount":{}}}}}"#,
                    if i % 3 == 0 { r#""timeout""# } else { "null" },
                    300 + i
                )
            })
            .collect();
        batch(&lines)
    }

    /// `seconds` of traffic, evaluating every second.
    fn traffic(a: &mut Aggregator, clock: &ManualClock, seconds: u32) {
        for s in 0..seconds {
            a.apply(second(s));
            clock.advance(Duration::from_secs(1));
            a.evaluate();
        }
    }

    #[test]
    fn an_aggregator_restored_from_its_snapshot_publishes_the_same() {
        let clock = ManualClock::new(1_000_000.0);
        let (mut a, ma) = aggregator(&clock, RULES);
        traffic(&mut a, &clock, 50);
        let before = windows(&ma);
        assert!(
            before
                .iter()
                .any(|l| l.contains(r#"alertname="HighErrorRate",alertstate="firing""#)),
            "{before:#?}"
        );
        assert!(
            before
                .iter()
                .any(|l| l.contains(r#"alertname="Drift",alertstate="pending""#)),
            "{before:#?}"
        );
        let snapshot = snapshot_of(&a);
        assert_eq!(snapshot.body.alerts.len(), 2);

        let (mut b, mb) = aggregator(&clock, RULES);
        let report = b.restore(snapshot);
        assert_eq!(
            (report.series, report.alerts, report.alerts_dropped),
            (1, 2, 0)
        );
        assert_eq!(report.pending_feedback, 500);
        // To the next evaluation time (multiples of the 10 s interval), at
        // which both evaluate and publish.
        clock.advance(Duration::from_secs(10));
        a.evaluate();
        b.evaluate();
        assert_eq!(windows(&mb), windows(&ma));
        // The pending alert keeps its progress: both fire at the same time.
        for s in 100..400 {
            a.apply(second(s));
            b.apply(second(s));
            clock.advance(Duration::from_secs(1));
            a.evaluate();
            b.evaluate();
            assert_eq!(windows(&mb), windows(&ma), "{s}");
        }
        assert!(
            windows(&mb)
                .iter()
                .any(|l| l.contains(r#"alertname="Drift",alertstate="firing""#))
        );
        // A label for a prediction made before the snapshot joins.
        let label =
            vec![r#"{"type":"feedback","model":"fraud","id":"r49-0","actual":1}"#.to_owned()];
        b.apply(batch(&label));
        b.evaluate();
        let text = String::from_utf8(mb.encode()).unwrap();
        assert!(
            text.contains(r#"model_exporter_feedback_total{result="joined"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn a_changed_rule_starts_over() {
        let clock = ManualClock::new(1_000_000.0);
        let (mut a, _) = aggregator(&clock, RULES);
        traffic(&mut a, &clock, 50);
        let (mut b, mb) = aggregator(&clock, &RULES.replace("error_rate > 5%", "error_rate > 4%"));
        let report = b.restore(snapshot_of(&a));
        assert_eq!((report.alerts, report.alerts_dropped), (1, 1));
        b.evaluate();
        let w = windows(&mb);
        assert!(
            w.iter()
                .any(|l| l.contains(r#"alertname="HighErrorRate",alertstate="pending""#)),
            "{w:#?}"
        );
    }

    #[test]
    fn bad_files_are_named_for_what_is_wrong() {
        let clock = ManualClock::new(1_000_000.0);
        let (a, _) = aggregator(&clock, RULES);
        let good = encode(&a.capture().into_snapshot());
        assert!(good.starts_with(br#"{"format":"model-exporter-snapshot","version":1,"#));
        let cut = &good[..good.len() / 2];
        let e = decode::<SnapshotBody>(cut).unwrap_err();
        assert!(matches!(&e, LoadError::Json(j) if j.is_eof()), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("it is truncated: EOF while parsing"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("line 1 column {}", cut.len())),
            "{msg}"
        );
        let e = decode::<SnapshotBody>(
            b"{\"format\":\"model-exporter-snapshot\",\n\"version\":1,\n\"windows\":[]}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("at line 3 column 12"), "{e}");
        assert_eq!(
            decode::<SnapshotBody>(br#"{"format":"prometheus","version":1}"#)
                .unwrap_err()
                .to_string(),
            r#"it is not a model-exporter snapshot ("format" is "prometheus", expected "model-exporter-snapshot")"#
        );
        assert_eq!(
            decode::<SnapshotBody>(br#"{"groups":[]}"#)
                .unwrap_err()
                .to_string(),
            r#"it is not a model-exporter snapshot ("format" is missing, expected "model-exporter-snapshot")"#
        );
        let v2 = String::from_utf8(good.clone()).unwrap().replacen(
            r#""version":1"#,
            r#""version":2"#,
            1,
        );
        assert_eq!(
            decode::<SnapshotBody>(v2.as_bytes())
                .unwrap_err()
                .to_string(),
            "it has format version 2, this build reads version 1"
        );
        assert!(
            decode::<SnapshotBody>(b"\x00\x01")
                .unwrap_err()
                .to_string()
                .starts_with("it is not a valid snapshot")
        );
        assert!(decode::<SnapshotBody>(&good).is_ok());
    }

    /// The file is the one earlier builds wrote and read: their snapshot
    /// was this one struct, with the body's fields after the envelope's.
    #[test]
    fn the_file_is_the_one_earlier_builds_wrote_and_read() {
        #[derive(Serialize, Deserialize)]
        struct Earlier {
            format: String,
            version: u64,
            exporter_version: String,
            written_at: f64,
            windows: crate::aggregate::signals::StoreState,
            alerts: Vec<crate::rules::eval::AlertRecord>,
        }
        let clock = ManualClock::new(1_000_000.0);
        let (mut a, _) = aggregator(&clock, RULES);
        traffic(&mut a, &clock, 50);
        let now = a.capture().into_snapshot();
        assert_eq!(now.body.alerts.len(), 2);
        let earlier = Earlier {
            format: now.format.clone(),
            version: now.version,
            exporter_version: now.exporter_version.clone(),
            written_at: now.written_at,
            windows: now.body.windows.clone(),
            alerts: now.body.alerts.clone(),
        };
        let bytes = serde_json::to_vec(&earlier).unwrap();
        assert_eq!(
            String::from_utf8(encode(&now)),
            String::from_utf8(bytes.clone())
        );
        let back: Snapshot = decode(&bytes).unwrap();
        assert_eq!(
            (back.format.as_str(), back.version, back.written_at),
            (FORMAT, VERSION, 1_000_050.0)
        );
        assert_eq!(back.exporter_version, crate::VERSION);
        assert_eq!(back.body.windows, now.body.windows);
        assert_eq!(back.body.alerts, now.body.alerts);
        let again: Earlier = serde_json::from_slice(&encode(&back)).unwrap();
        assert_eq!(again.windows, now.body.windows);
        // The envelope's fields are required, with their types.
        let text = String::from_utf8(bytes).unwrap();
        let no_time = text.replacen(r#""written_at":1000050.0,"#, "", 1);
        assert_ne!(no_time, text);
        let e = decode::<SnapshotBody>(no_time.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("missing field `written_at`"), "{e}");
        let bad_version = text.replacen(
            &format!(r#""exporter_version":"{}""#, crate::VERSION),
            r#""exporter_version":7"#,
            1,
        );
        assert_ne!(bad_version, text);
        let e = decode::<SnapshotBody>(bad_version.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("invalid type: integer `7`"), "{e}");
    }

    fn done(s: &StorageMetrics, op: &str) -> (u64, u64) {
        (
            s.done.with_label_values(&[op]).get(),
            s.failures.with_label_values(&[op]).get(),
        )
    }

    #[test]
    fn a_bad_snapshot_is_moved_aside_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s =
            Storage::<StateCapture>::open(dir.path(), Duration::ZERO, &Registry::new()).unwrap();
        assert!(s.load().is_none(), "no file: nothing to restore");
        assert_eq!(done(s.metrics(), "load"), (0, 0));
        std::fs::write(
            s.path(),
            br#"{"format":"model-exporter-snapshot","version":1,"wind"#,
        )
        .unwrap();
        assert!(s.load().is_none());
        assert_eq!(done(s.metrics(), "load"), (0, 1));
        assert!(!s.path().exists());
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("snapshot.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");

        let clock = ManualClock::new(1_000_000.0);
        let (a, _) = aggregator(&clock, RULES);
        std::fs::write(s.path(), encode(&a.capture().into_snapshot())).unwrap();
        let back = s.load().unwrap();
        assert_eq!(back.written_at, 1_000_000.0);
        assert_eq!(done(s.metrics(), "load"), (1, 1));
    }

    #[test]
    fn the_directory_must_be_writable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = Storage::<StateCapture>::open(&file.join("sub"), Duration::ZERO, &Registry::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "--storage.path {}/sub: cannot create the directory:",
                file.display()
            )),
            "{e}"
        );
        let e = Storage::<StateCapture>::open(&file, Duration::ZERO, &Registry::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
        let nested = dir.path().join("a/b");
        Storage::<StateCapture>::open(&nested, Duration::ZERO, &Registry::new()).unwrap();
        assert!(nested.is_dir());
        assert_eq!(
            std::fs::read_dir(&nested).unwrap().count(),
            0,
            "the probe is removed"
        );
    }

    #[test]
    fn failed_writes_are_counted_and_survived() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000.0);
        let (a, _) = aggregator(&clock, RULES);
        // The file's place is taken by a directory: the rename fails.
        let blocker = dir.path().join(FILE_NAME);
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("x"), "x").unwrap();
        let registry = Registry::new();
        let s = Storage::<StateCapture>::open(dir.path(), Duration::ZERO, &registry).unwrap();
        let m = s.metrics().clone();
        s.finish(a.capture(), 0.001);
        assert_eq!(done(&m, "save"), (0, 1));
        assert_eq!(m.last.get(), 0.0);
        assert!(
            !dir.path().join(TMP_NAME).exists(),
            "the temporary file is removed"
        );
        // Once the way is clear, snapshots are written again.
        std::fs::remove_dir_all(&blocker).unwrap();
        let s =
            Storage::<StateCapture>::open(dir.path(), Duration::ZERO, &Registry::new()).unwrap();
        let m = s.metrics().clone();
        clock.advance(Duration::from_secs(5));
        s.finish(a.capture(), 0.001);
        assert_eq!(done(&m, "save"), (1, 0));
        assert_eq!(m.last.get(), 1_000_005.0);
        let size = std::fs::metadata(&blocker).unwrap().len();
        assert_eq!(m.bytes.get(), size as f64);
        assert_eq!(
            read_file::<SnapshotBody>(&blocker)
                .unwrap()
                .unwrap()
                .written_at,
            1_000_005.0
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only snapshot.json is left: {names:?}");
    }

    #[test]
    fn a_capture_while_the_writer_is_busy_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), Duration::from_secs(1), &Registry::new()).unwrap();
        let clock = ManualClock::new(1_000_000.0);
        let m = s.metrics().clone();
        let mut a = Aggregator::new(Options {
            source: "t".into(),
            storage: Some(s),
            ..Options::new(
                Metrics::new(&Buckets::default()).unwrap(),
                Arc::new(clock.clone()),
                Arc::new(load("t.yaml", RULES).unwrap()),
            )
        });
        // The writer cannot have finished the first before the second: it
        // is marked busy as soon as the first is handed over.
        a.save_snapshot();
        a.save_snapshot();
        a.finish_storage();
        assert_eq!(m.skipped.get(), 1);
        assert_eq!(done(&m, "save"), (2, 0));
    }

    /// The cost figures of docs/storage.md. Run in release:
    /// `cargo test --release --lib -- storage::tests::snapshot_cost --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn snapshot_cost() {
        use crate::aggregate::Limits;
        use crate::aggregate::store::Store;
        let config = Arc::new(crate::config::Config::default_rules());
        let versions = 20;
        let limits = Limits {
            features: 200,
            ..Limits::default()
        };
        let metrics = || Metrics::new(&Buckets::default()).unwrap();
        let mut store = Store::new(config, limits, metrics(), None);
        store.set_feedback(Duration::from_secs(86_400), 100_000);
        // An hour of one event a second per version, ten numeric features,
        // latencies between 1 ms and 10 s; then 100 000 predictions waiting
        // for their label.
        for t in 0..3600u32 {
            let now = 1_000_000.0 + f64::from(t);
            for v in 0..versions {
                let features: Vec<String> = (0..10)
                    .map(|f| format!(r#""f{f}":{}"#, (t * 7 + f) % 101))
                    .collect();
                let line = format!(
                    r#"{{"model":"m","version":"v{v}","latency_ms":{},"prediction":{},"confidence":0.7,"features":{{{}}}}}"#,
                    1.0 + f64::from((t * 13) % 10_000),
                    f64::from(t % 10) / 10.0,
                    features.join(",")
                );
                store.record(&parse_event(line.as_bytes()).unwrap(), now);
            }
        }
        let now = 1_003_600.0;
        let t = Instant::now();
        drop(store.capture());
        let windows_s = t.elapsed().as_secs_f64();
        for i in 0..100_000u32 {
            let line = format!(r#"{{"model":"m","version":"v0","id":"{i:036}","prediction":0.5}}"#);
            store.record(&parse_event(line.as_bytes()).unwrap(), now);
        }
        let t = Instant::now();
        let capture = store.capture();
        let capture_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let state = capture.to_state();
        let bytes = serde_json::to_vec(&state).unwrap();
        let encode_s = t.elapsed().as_secs_f64();
        let feedback = serde_json::to_vec(&state.feedback).unwrap().len();
        let t = Instant::now();
        let back: crate::aggregate::signals::StoreState = serde_json::from_slice(&bytes).unwrap();
        let mut fresh = Store::new(
            Arc::new(crate::config::Config::default_rules()),
            limits,
            metrics(),
            None,
        );
        fresh.set_feedback(Duration::from_secs(86_400), 100_000);
        let mut report = RestoreReport::default();
        fresh.restore(back, 100, 20, now, &mut report);
        let restore_s = t.elapsed().as_secs_f64();
        let per_version = (bytes.len() - feedback) as f64 / f64::from(versions);
        println!(
            "{versions} versions x 10 features, 1 h, and 100000 pending labels: \
             capture {:.1} ms ({:.1} ms without the labels), serialise {:.1} ms, {:.1} MB ({:.0} KiB per version, {:.1} MB of pending labels), \
             parse and restore {:.1} ms; {} slices",
            capture_s * 1e3,
            windows_s * 1e3,
            encode_s * 1e3,
            bytes.len() as f64 / 1e6,
            per_version / 1024.0,
            feedback as f64 / 1e6,
            restore_s * 1e3,
            report.slices
        );
    }
}
