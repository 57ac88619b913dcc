//! The prediction log: a sample of the events received, written as JSON
//! lines for debugging and retraining, with size-based rotation.
//!
//! Listeners offer each accepted line; a sample of them (`sample_ratio`) is
//! queued to a writer thread, so a slow or full disk never slows ingest: when
//! the queue is full the line is dropped and counted. The file is rotated
//! when it would exceed `max_bytes`: `path` becomes `path.1`, `path.1`
//! becomes `path.2`, and so on up to `max_files`; the oldest is deleted.
//! Write errors (a full disk, a removed directory) are counted and logged,
//! and the writer tries again with the next line.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, Registry};

/// How the prediction log behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionLogOptions {
    /// The file written; rotated files get `.1`, `.2`, ... appended.
    pub path: PathBuf,
    /// Fraction of events written, in [0, 1].
    pub sample_ratio: f64,
    /// Size at which the file is rotated.
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    pub max_files: usize,
    /// Lines queued for the writer; past this, lines are dropped.
    pub queue_lines: usize,
}

impl Default for PredictionLogOptions {
    fn default() -> Self {
        PredictionLogOptions {
            path: PathBuf::from("predictions.jsonl"),
            sample_ratio: 1.0,
            max_bytes: 100 * 1024 * 1024,
            max_files: 5,
            queue_lines: 10_000,
        }
    }
}

#[derive(Clone)]
struct Counters {
    written: IntCounter,
    dropped: IntCounter,
    errors: IntCounter,
    rotations: IntCounter,
}

/// The listeners' side: offers lines to the log.
#[derive(Clone)]
pub struct PredictionLog {
    tx: SyncSender<Vec<u8>>,
    threshold: u64,
    counters: Counters,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let addr = &t as *const u64 as u64;
    (t ^ addr.rotate_left(32)) | 1
}

/// A fast per-thread pseudo-random number (xorshift64*).
fn next_random() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Why the prediction log could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PredictionLogError {
    /// The sample ratio is not in `[0, 1]`.
    #[error("sample ratio {0} is not in [0, 1]")]
    Ratio(f64),
    /// Its self-metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] prometheus::Error),
    /// The writer thread could not be started.
    #[error(transparent)]
    Thread(std::io::Error),
}

impl PredictionLog {
    /// Starts the writer thread. Its self-metrics are registered on
    /// `registry`. The thread stops, after flushing, once every handle is
    /// dropped.
    pub fn start(
        options: PredictionLogOptions,
        registry: &Registry,
    ) -> Result<(PredictionLog, JoinHandle<()>), PredictionLogError> {
        if !(0.0..=1.0).contains(&options.sample_ratio) {
            return Err(PredictionLogError::Ratio(options.sample_ratio));
        }
        let counter = |name: &str, help: &str| -> Result<IntCounter, PredictionLogError> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let counters = Counters {
            written: counter(
                "model_exporter_prediction_log_lines_total",
                "Events written to the prediction log.",
            )?,
            dropped: counter(
                "model_exporter_prediction_log_dropped_total",
                "Sampled events not written because the writer's queue was full.",
            )?,
            errors: counter(
                "model_exporter_prediction_log_errors_total",
                "Lines lost to failed writes of the prediction log (e.g. a full disk).",
            )?,
            rotations: counter(
                "model_exporter_prediction_log_rotations_total",
                "Times the prediction log was rotated.",
            )?,
        };
        let mut writer = Writer::open(&options, counters.clone());
        let (tx, rx) = sync_channel(options.queue_lines.max(1));
        let handle = std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || writer.run(rx))
            .map_err(PredictionLogError::Thread)?;
        let threshold = (options.sample_ratio * u64::MAX as f64) as u64;
        Ok((
            PredictionLog {
                tx,
                threshold,
                counters,
            },
            handle,
        ))
    }

    /// Offers an accepted event line; a sample of them is written. Never blocks.
    pub fn offer(&self, line: &[u8]) {
        if self.threshold == 0 || (self.threshold != u64::MAX && next_random() > self.threshold) {
            return;
        }
        match self.tx.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc()
            }
        }
    }
}

struct Writer {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: Option<BufWriter<File>>,
    size: u64,
    counters: Counters,
    last_error_log: Option<Instant>,
    /// Lines written into the buffer since the last successful flush.
    unflushed: u64,
}

impl Writer {
    fn open(options: &PredictionLogOptions, counters: Counters) -> Writer {
        let mut w = Writer {
            path: options.path.clone(),
            max_bytes: options.max_bytes.max(1),
            max_files: options.max_files,
            file: None,
            size: 0,
            counters,
            last_error_log: None,
            unflushed: 0,
        };
        w.reopen();
        w
    }

    fn reopen(&mut self) {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => {
                self.size = f.metadata().map_or(0, |m| m.len());
                self.file = Some(BufWriter::with_capacity(64 * 1024, f));
            }
            Err(e) => self.failed(&e),
        }
    }

    /// A write, flush or open failed: the lines not yet on disk are lost
    /// (counted), and the file is reopened for the next line.
    fn failed(&mut self, e: &std::io::Error) {
        self.counters.errors.inc_by(self.unflushed.max(1));
        self.unflushed = 0;
        self.file = None;
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            self.last_error_log = Some(now);
            tracing::error!(path = %self.path.display(), error = %e, "prediction log write failed");
        }
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        if self.max_files == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(self.rotated(self.max_files));
            for n in (1..self.max_files).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            let _ = std::fs::rename(&self.path, self.rotated(1));
        }
        self.counters.rotations.inc();
        self.reopen();
    }

    fn write(&mut self, line: &[u8]) {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate();
        }
        if self.file.is_none() {
            self.reopen();
        }
        let Some(f) = self.file.as_mut() else { return };
        let r = f.write_all(line).and_then(|()| f.write_all(b"\n"));
        match r {
            Ok(()) => {
                self.size += len;
                self.unflushed += 1;
            }
            Err(e) => {
                self.unflushed += 1;
                self.failed(&e);
            }
        }
    }

    /// Lines count as written once they are flushed to the file.
    fn flush(&mut self) {
        let Some(f) = self.file.as_mut() else { return };
        match f.flush() {
            Ok(()) => {
                self.counters.written.inc_by(self.unflushed);
                self.unflushed = 0;
            }
            Err(e) => self.failed(&e),
        }
    }

    fn run(&mut self, rx: Receiver<Vec<u8>>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    self.write(&line);
                    // Write what else is queued before flushing once.
                    while let Ok(line) = rx.try_recv() {
                        self.write(&line);
                    }
                    self.flush();
                }
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.flush();
    }
}

/// Paths of the current and rotated files, newest first, that exist.
pub fn files(path: &Path, max_files: usize) -> Vec<PathBuf> {
    let mut out = vec![path.to_owned()];
    for n in 1..=max_files {
        let mut p = path.to_owned().into_os_string();
        p.push(format!(".{n}"));
        out.push(PathBuf::from(p));
    }
    out.retain(|p| p.exists());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(options: PredictionLogOptions) -> (PredictionLog, JoinHandle<()>, Registry) {
        let r = Registry::new();
        let (log, h) = PredictionLog::start(options, &r).unwrap();
        (log, h, r)
    }

    fn count(r: &Registry, name: &str) -> u64 {
        r.gather()
            .iter()
            .find(|f| f.name() == name)
            .map_or(0, |f| f.get_metric()[0].get_counter().get_value() as u64)
    }

    #[test]
    fn writes_every_line_at_ratio_one_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let (log, h, r) = start(PredictionLogOptions {
            path: path.clone(),
            max_bytes: 1000,
            max_files: 2,
            ..Default::default()
        });
        for i in 0..350 {
            log.offer(format!("{{\"i\":{i:03}}}").as_bytes()); // 10 bytes with its newline
        }
        drop(log);
        h.join().unwrap();
        assert_eq!(count(&r, "model_exporter_prediction_log_lines_total"), 350);
        let files = files(&path, 5);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 1000);
        }
        // The newest lines are in the current file, the oldest kept in .2.
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with("{\"i\":349}\n"));
        let oldest = std::fs::read_to_string(files.last().unwrap()).unwrap();
        let first: u32 = oldest[5..8].parse().unwrap();
        assert_eq!(first, 100, "lines 0 to 99 were rotated out");
        assert!(count(&r, "model_exporter_prediction_log_rotations_total") >= 2);
    }

    #[test]
    fn sampling_ratio() {
        let dir = tempfile::tempdir().unwrap();
        for (ratio, lo, hi) in [(0.0, 0, 0), (0.5, 4000, 6000), (1.0, 10_000, 10_000)] {
            let path = dir.path().join(format!("s{ratio}.jsonl"));
            let (log, h, r) = start(PredictionLogOptions {
                path: path.clone(),
                sample_ratio: ratio,
                queue_lines: 20_000,
                ..Default::default()
            });
            for _ in 0..10_000 {
                log.offer(b"{}");
            }
            drop(log);
            h.join().unwrap();
            let n = count(&r, "model_exporter_prediction_log_lines_total");
            assert!((lo..=hi).contains(&n), "ratio {ratio}: {n}");
        }
        let r = Registry::new();
        assert!(
            PredictionLog::start(
                PredictionLogOptions {
                    sample_ratio: 1.5,
                    ..Default::default()
                },
                &r
            )
            .is_err()
        );
    }

    #[test]
    fn an_unwritable_path_counts_errors_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: every open fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        let (log, h, r) = start(PredictionLogOptions {
            path,
            queue_lines: 10,
            ..Default::default()
        });
        for _ in 0..1000 {
            log.offer(b"{}");
        }
        drop(log);
        h.join().unwrap();
        assert_eq!(count(&r, "model_exporter_prediction_log_lines_total"), 0);
        let errors = count(&r, "model_exporter_prediction_log_errors_total");
        let dropped = count(&r, "model_exporter_prediction_log_dropped_total");
        assert!(errors >= 1);
        assert!(errors + dropped >= 1000 - 10, "{errors} + {dropped}");
    }
}
