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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::Notify;

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

/// One connection as the accept loop sees it: whether a request is under
/// way, since when it has been idle, and a way to close it to make room.
#[derive(Debug)]
pub struct Slot {
    base: std::time::Instant,
    /// Nanoseconds after `base` at which it last became idle (accepted, or
    /// answered a request).
    idle_since: AtomicU64,
    in_flight: AtomicUsize,
    requested: AtomicBool,
    evicting: AtomicBool,
    ended: AtomicBool,
    evict: Notify,
    closed: Notify,
}

impl Slot {
    /// A connection just accepted.
    pub fn new() -> Arc<Slot> {
        Arc::new(Slot {
            base: std::time::Instant::now(),
            idle_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requested: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            evict: Notify::new(),
            closed: Notify::new(),
        })
    }

    /// A request arrived; the guard marks it answered when dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.requested.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Whether it ever sent a request.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// The connection is gone.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.closed.notify_one();
    }

    /// Waits until the connection is gone.
    pub async fn gone(&self) {
        let closed = self.closed.notified();
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        closed.await
    }

    /// Waits until the accept loop asks this connection to close.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// How long it has been idle; `None` while a request is under way or
    /// once it is closing.
    fn idle_for(&self, now: std::time::Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0
            || self.evicting.load(Ordering::Relaxed)
            || self.ended.load(Ordering::Acquire)
        {
            return None;
        }
        let since = self.base + Duration::from_nanos(self.idle_since.load(Ordering::Relaxed));
        Some(now.saturating_duration_since(since))
    }
}

/// A request under way on a [`Slot`].
#[derive(Debug)]
pub struct InFlight(Arc<Slot>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0;
        s.idle_since
            .store(s.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        s.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The web server's open connections, for the cap: when it is reached, the
/// connection idle longest (no request under way) is closed to make room,
/// so that idle or slow clients cannot keep a scraper out; only when every
/// connection is answering a request is the new one closed instead.
#[derive(Debug, Default)]
pub struct Slots(Vec<Arc<Slot>>);

impl Slots {
    /// Connections open and not being closed.
    pub fn open(&mut self) -> usize {
        self.0.retain(|s| !s.ended.load(Ordering::Acquire));
        self.0
            .iter()
            .filter(|s| !s.evicting.load(Ordering::Relaxed))
            .count()
    }

    /// Adds a connection.
    pub fn push(&mut self, slot: Arc<Slot>) {
        self.0.push(slot);
    }

    /// Asks the connection idle longest to close and returns it (to wait
    /// until it is [gone](Slot::gone)); `None` when every connection is
    /// answering a request.
    pub fn evict_idlest(&mut self) -> Option<Arc<Slot>> {
        let now = std::time::Instant::now();
        let idlest = self
            .0
            .iter()
            .filter_map(|s| Some((s.idle_for(now)?, s)))
            .max_by_key(|(idle, _)| *idle);
        match idlest {
            Some((_, s)) => {
                s.evicting.store(true, Ordering::Relaxed);
                s.evict.notify_one();
                Some(s.clone())
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idlest_connection_without_a_request_under_way_makes_room() {
        let mut slots = Slots::default();
        let (a, b, c) = (Slot::new(), Slot::new(), Slot::new());
        for s in [&a, &b, &c] {
            slots.push(s.clone());
        }
        assert_eq!(slots.open(), 3);
        // a is answering a request; b has been idle longer than c.
        let busy = a.request();
        std::thread::sleep(Duration::from_millis(2));
        drop(c.request());
        assert!(slots.evict_idlest().is_some());
        assert!(b.evicting.load(Ordering::Relaxed), "b was idle longest");
        assert_eq!(slots.open(), 2);
        assert!(slots.evict_idlest().is_some());
        assert!(c.evicting.load(Ordering::Relaxed));
        // Only a is left, and it is busy: nothing to evict.
        assert!(slots.evict_idlest().is_none());
        drop(busy);
        b.end();
        c.end();
        assert_eq!(slots.open(), 1);
        assert!(Arc::ptr_eq(&slots.evict_idlest().unwrap(), &a));
    }
}
