//! The web server's connections: how many may be open, how long each may
//! take to send a request, and what they are counted as.
//!
//! A connection holds a file descriptor, so idle or slow ones must not pile
//! up: at most [`WebLimits::max_connections`] are open (at the cap, the
//! connection idle longest makes room for the new one, see [`Slots`]), and
//! each must send a complete request head within
//! [`WebLimits::read_header_timeout`] of being accepted (its TLS handshake
//! included) or of its previous response, and is closed when it reads
//! nothing for that long.

use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub use crate::ingest::accept::{InFlight, Slot, Slots};

/// Bounds on the web server's connections (`--web.max-connections`,
/// `--web.read-header-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// Connections open at once, per listen address; more are closed at
    /// once and counted (`reason="limit"`).
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, from being
    /// accepted (TLS handshake included) or from its previous response;
    /// also how long a connection that reads nothing is kept.
    pub read_header_timeout: Duration,
}

impl Default for WebLimits {
    fn default() -> Self {
        WebLimits {
            max_connections: 512,
            read_header_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a web connection ended (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it.
    Eof,
    /// No complete request head, or nothing read, within the timeout (a
    /// TLS handshake too).
    Timeout,
    /// Closed at once: the cap was reached and every connection was
    /// answering a request.
    Limit,
    /// Closed to make room for a new connection at the cap: it was the one
    /// idle longest.
    Evicted,
    /// A protocol or TLS error.
    Error,
    /// The exporter shut down.
    Shutdown,
}

impl Closed {
    const ALL: [Closed; 6] = [
        Closed::Eof,
        Closed::Timeout,
        Closed::Limit,
        Closed::Evicted,
        Closed::Error,
        Closed::Shutdown,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Eof => "eof",
            Closed::Timeout => "timeout",
            Closed::Limit => "limit",
            Closed::Evicted => "evicted",
            Closed::Error => "error",
            Closed::Shutdown => "shutdown",
        }
    }
}

/// `model_exporter_web_connections_open`,
/// `model_exporter_web_connections_closed_total{reason}` and
/// `model_exporter_scrapes_total{format,encoding}`.
#[derive(Debug, Clone)]
pub struct WebConnMetrics {
    open: IntGauge,
    closed: IntCounterVec,
    scrapes: IntCounterVec,
}

impl WebConnMetrics {
    /// Creates the families, every reason at zero, in `registry`.
    ///
    /// # Errors
    /// When `registry` already holds one of their names.
    pub fn new(registry: &Registry) -> prometheus::Result<WebConnMetrics> {
        let open = IntGauge::new(
            "model_exporter_web_connections_open",
            "Connections to the web server (/metrics, API, dashboard) open now.",
        )?;
        let closed = IntCounterVec::new(
            Opts::new(
                "model_exporter_web_connections_closed_total",
                "Connections to the web server closed, by reason: eof, timeout (no complete request head or nothing read within --web.read-header-timeout), evicted (the connection idle longest, closed to make room for a new one at --web.max-connections), limit (closed at once at the cap: every connection was answering a request), error, shutdown.",
            ),
            &["reason"],
        )?;
        let scrapes = IntCounterVec::new(
            Opts::new(
                "model_exporter_scrapes_total",
                "Requests of the metrics endpoint answered, by format (text, openmetrics) and encoding (identity, gzip).",
            ),
            &["format", "encoding"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(closed.clone()))?;
        registry.register(Box::new(scrapes.clone()))?;
        for r in Closed::ALL {
            closed.with_label_values(&[r.as_str()]);
        }
        for format in ["text", "openmetrics"] {
            for encoding in ["identity", "gzip"] {
                scrapes.with_label_values(&[format, encoding]);
            }
        }
        Ok(WebConnMetrics {
            open,
            closed,
            scrapes,
        })
    }

    /// Counts one answered scrape.
    pub fn scraped(&self, format: &str, encoding: &str) {
        self.scrapes.with_label_values(&[format, encoding]).inc();
    }

    /// The counter of one reason.
    pub fn closed(&self, reason: Closed) -> IntCounter {
        self.closed.with_label_values(&[reason.as_str()])
    }

    /// Counts a connection open until the guard is dropped.
    pub fn opened(&self) -> OpenGuard {
        self.open.inc();
        OpenGuard(self.open.clone())
    }
}

/// Decrements the open-connections gauge when dropped.
pub struct OpenGuard(IntGauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
