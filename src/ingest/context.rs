//! What every listener is given: its settings ([`IngestOptions`]) and
//! where its events and self-metrics go ([`IngestContext`]).

use std::sync::Arc;
use std::time::Duration;

use super::metrics::IngestMetrics;
use super::prediction_log::PredictionLog;
use super::rejects::Rejects;
use super::sink::BatchSink;
use crate::shutdown::Shutdown;

/// Settings shared by every listener.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Longest accepted line (and datagram), in bytes.
    pub max_line_bytes: usize,
    /// Mode of created socket files.
    pub socket_mode: u32,
    /// A stream connection silent for this long is closed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// `file://` listeners read the file's existing content first.
    pub file_from_beginning: bool,
    /// Stream connections open at once per listener; more are closed.
    pub max_connections: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_line_bytes: 64 * 1024,
            socket_mode: 0o660,
            idle_timeout: Some(Duration::from_secs(600)),
            file_from_beginning: false,
            max_connections: 1024,
        }
    }
}

/// Everything a listener task needs.
#[derive(Clone)]
pub struct IngestContext {
    /// Where batches go: the aggregator, or the router in front of the
    /// shards (which splits each batch by model).
    pub tx: BatchSink,
    /// Reject accounting.
    pub rejects: Arc<Rejects>,
    /// For connection self-metrics.
    pub metrics: IngestMetrics,
    /// Limits and modes.
    pub options: IngestOptions,
    /// Stops the listener.
    pub shutdown: Shutdown,
    /// Where a sample of accepted lines is written, if anywhere.
    pub prediction_log: Option<PredictionLog>,
}
