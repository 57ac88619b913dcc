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
    /// Settings of `http://` listeners.
    pub http: super::cloudevents::HttpOptions,
    /// Client timestamps further than this from the time of receipt (ahead
    /// of it, for `trained_at` and `loaded_at`) are rejected ([`super::timestamp::check_times`]); `None`: never.
    pub max_clock_skew: Option<Duration>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_line_bytes: 64 * 1024,
            socket_mode: 0o660,
            idle_timeout: Some(Duration::from_secs(600)),
            file_from_beginning: false,
            max_connections: 1024,
            http: super::cloudevents::HttpOptions::default(),
            max_clock_skew: Some(DEFAULT_MAX_CLOCK_SKEW),
        }
    }
}

/// The default `--events.max-clock-skew`: an hour. Far more than clocks
/// drift apart under NTP (milliseconds) or clients hold events before
/// sending them (seconds), and than a time zone mistake of less than an
/// hour; far less than a timestamp in milliseconds read as seconds (tens
/// of thousands of years ahead) or a placeholder such as `0`, `1` or year
/// 9999.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);

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
    /// What `http://` listeners share: the rules' model mapping and their
    /// self-metrics.
    pub cloudevents: super::cloudevents::Shared,
    /// The time of receipt, which client timestamps are checked against.
    pub clock: crate::clock::SharedClock,
}

impl IngestContext {
    /// Checks the client timestamps of a parsed event against the time of
    /// receipt and `max_clock_skew`.
    ///
    /// # Errors
    /// A [`Reject`](super::parse::Reject) (`invalid_value`) naming the field.
    pub fn check_times(&self, event: &super::event::Event) -> Result<(), super::parse::Reject> {
        match self.options.max_clock_skew {
            Some(skew) if super::timestamp::has_times(event) => {
                super::timestamp::check_times(event, self.clock.now(), skew)
            }
            _ => Ok(()),
        }
    }
}
