//! A client for Rust model servers: sends events to model-exporter without
//! ever blocking or failing the caller.
//!
//! ```no_run
//! use model_exporter::client::{Client, Options};
//! use std::time::Duration;
//!
//! let client = Client::unixgram_with(
//!     "/tmp/model-exporter.dgram.sock",
//!     Options { model: "fraud".into(), ..Options::default() },
//! );
//! client
//!     .inference("fraud")
//!     .version("v3")
//!     .id("r-17")
//!     .latency(Duration::from_millis(52))
//!     .prediction(1.0)
//!     .confidence(0.91)
//!     .feature("age", 35.0)
//!     .feature("country", "DE")
//!     .send();
//! // Later, when the truth is known:
//! client.feedback("fraud", "r-17", 0.0);
//! assert_eq!(client.stats().dropped, 0);
//! ```
//!
//! Events are gathered into batches: several newline-separated events in
//! one datagram (or one write on the stream), at most
//! [`Options::max_datagram`] bytes. A full batch is sent by the caller with
//! one non-blocking system call; a background thread sends a partial batch
//! within [`Options::flush_interval`].
//!
//! Guarantees, for every transport:
//! * a send never blocks: the socket is non-blocking; what it cannot take
//!   now (the exporter's queue is full) is held, up to
//!   [`Options::buffer`] bytes, and sent by the background thread as soon
//!   as `poll` says there is room; past the buffer, events are dropped;
//! * a send never fails or panics: every event lost is counted by reason
//!   in [`Stats`] (a full buffer, no exporter listening, a socket error, an
//!   event too long), and reported to the exporter in a `client` event at
//!   most every [`Options::report_interval`]
//!   (`model_exporter_client_dropped_total{model,reason}`);
//! * a client reconnects by itself, at most once per [`RECONNECT_DELAY`],
//!   after the exporter restarts; whole lines held for a stream connection
//!   that broke are written on the new one.
//!
//! The exporter's `--events.max-line-bytes` (64 KiB by default) limits a
//! datagram, so it must not be below [`Options::max_datagram`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod event;
mod transport;

pub use event::{FeatureValue, InferenceBuilder, Outcome};

/// Least time between two attempts to (re)connect.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Bytes a client holds by default while the exporter cannot take them;
/// past this, events are dropped.
pub const STREAM_BUFFER: usize = 4 << 20;

/// Largest datagram (and write) a client makes by default; the exporter's
/// `--events.max-line-bytes` (64 KiB by default) must not be smaller.
pub const MAX_DATAGRAM: usize = 16 * 1024;

/// How long, at most, an event waits in a partly filled batch by default.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// Least time between two reports of drops by default.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// How a client batches, holds and reports.
#[derive(Debug, Clone)]
pub struct Options {
    /// The model its reports of drops are counted under
    /// (`model_exporter_client_dropped_total{model}`); `default` by default.
    pub model: String,
    /// Bytes held while the exporter cannot take them ([`STREAM_BUFFER`]).
    pub buffer: usize,
    /// Largest datagram or write ([`MAX_DATAGRAM`]).
    pub max_datagram: usize,
    /// Longest an event waits in a partly filled batch ([`FLUSH_INTERVAL`]).
    pub flush_interval: Duration,
    /// Least time between two reports of drops ([`REPORT_INTERVAL`]).
    pub report_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: "default".into(),
            buffer: STREAM_BUFFER,
            max_datagram: MAX_DATAGRAM,
            flush_interval: FLUSH_INTERVAL,
            report_interval: REPORT_INTERVAL,
        }
    }
}

/// What a client has done, cumulatively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the exporter's socket.
    pub sent: u64,
    /// Events held, not sent yet.
    pub pending: u64,
    /// Events lost, all reasons.
    pub dropped: u64,
    /// Dropped because the buffer was full: the exporter did not keep up.
    pub queue_full: u64,
    /// Dropped because no exporter listened (or it closed the connection).
    pub no_exporter: u64,
    /// Dropped to another socket error.
    pub socket_error: u64,
    /// Dropped because longer than the largest datagram.
    pub too_large: u64,
    /// Sent after [`Client::close`] (these cannot be reported).
    pub closed: u64,
    /// Values left out of events that were still sent (a confidence
    /// outside [0, 1], a negative count).
    pub values_omitted: u64,
}

/// Sends events to one exporter socket. Share it between threads in an
/// `Arc`; dropping it (or [`Client::close`]) sends what it holds and a last
/// report of drops, without waiting.
pub struct Client {
    inner: Arc<transport::Inner>,
}

impl Client {
    /// A client sending datagrams to a `unixgram://` listener.
    pub fn unixgram(path: impl AsRef<Path>) -> Client {
        Client::unixgram_with(path, Options::default())
    }

    /// [`Client::unixgram`] with options.
    pub fn unixgram_with(path: impl AsRef<Path>, options: Options) -> Client {
        Client {
            inner: transport::Inner::new(path.as_ref().to_owned(), false, options),
        }
    }

    /// A client writing lines to a `unix://` stream listener.
    pub fn unix_stream(path: impl AsRef<Path>) -> Client {
        Client::unix_stream_with(path, Options::default())
    }

    /// [`Client::unix_stream`] with options.
    pub fn unix_stream_with(path: impl AsRef<Path>, options: Options) -> Client {
        Client {
            inner: transport::Inner::new(path.as_ref().to_owned(), true, options),
        }
    }

    /// Sends what the client holds, as far as the socket takes it now
    /// (never blocks). While no exporter listens, what is held is dropped.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Sends what it can without waiting and a last report of drops, then
    /// closes the socket; later events are dropped (`closed`).
    pub fn close(&self) {
        self.inner.close();
    }

    /// What the client has done so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Starts an `inference` event for `model`; finish it with
    /// [`InferenceBuilder::send`].
    pub fn inference(&self, model: &str) -> InferenceBuilder<'_> {
        InferenceBuilder::new(self, model)
    }

    /// Starts timing a request; [`InferenceBuilder::send`] on the returned
    /// builder records the time elapsed since as its latency.
    pub fn start(&self, model: &str) -> InferenceBuilder<'_> {
        InferenceBuilder::new(self, model).timed(Instant::now())
    }

    /// Sends the ground truth for the inference with this id.
    pub fn feedback(&self, model: &str, id: &str, actual: impl Into<Outcome>) {
        let mut line = String::with_capacity(96);
        line.push_str("{\"type\":\"feedback\",\"model\":");
        event::push_json_str(&mut line, model);
        line.push_str(",\"id\":");
        event::push_json_str(&mut line, id);
        line.push_str(",\"actual\":");
        actual.into().push_json(&mut line);
        line.push('}');
        self.send_line(line.as_bytes());
    }

    /// Announces that a model version was loaded; `trained_at` in seconds
    /// since the epoch.
    pub fn model_loaded(&self, model: &str, version: &str, trained_at: Option<f64>) {
        let mut line = String::with_capacity(96);
        line.push_str("{\"type\":\"model\",\"model\":");
        event::push_json_str(&mut line, model);
        line.push_str(",\"version\":");
        event::push_json_str(&mut line, version);
        if let Some(t) = trained_at.filter(|t| t.is_finite() && *t >= 0.0) {
            line.push_str(",\"trained_at\":");
            event::push_json_num(&mut line, t);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        line.push_str(",\"loaded_at\":");
        event::push_json_num(&mut line, now);
        line.push('}');
        self.send_line(line.as_bytes());
    }

    /// Forwards a log line of the model process. `level` is one of `debug`,
    /// `info`, `warning`, `error`, `critical`.
    pub fn log(&self, model: &str, level: &str, component: &str, message: &str) {
        let mut line = String::with_capacity(128);
        line.push_str("{\"type\":\"log\",\"model\":");
        event::push_json_str(&mut line, model);
        line.push_str(",\"level\":");
        event::push_json_str(&mut line, level);
        line.push_str(",\"component\":");
        event::push_json_str(&mut line, component);
        line.push_str(",\"message\":");
        event::push_json_str(&mut line, message);
        line.push('}');
        self.send_line(line.as_bytes());
    }

    /// Sends one already encoded event line (without its newline).
    pub fn send_line(&self, line: &[u8]) {
        self.inner.send(line, 0);
    }

    pub(super) fn send_counted(&self, line: &[u8], omitted: u64) {
        self.inner.send(line, omitted);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.close();
    }
}
