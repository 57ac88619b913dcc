//! Counting rejected events and logging them at a bounded rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus::IntCounter;

use super::metrics::IngestMetrics;
use super::parse::{Reject, RejectReason};

/// Bytes of a rejected line shown in the log.
const PREVIEW_BYTES: usize = 120;

/// Minimum time between two log lines for the same reason.
const LOG_EVERY_MICROS: u64 = 1_000_000;

/// Shared by every listener: one counter and one log limiter per reason.
#[derive(Debug)]
pub struct Rejects {
    counters: [IntCounter; RejectReason::ALL.len()],
    last_log: [AtomicU64; RejectReason::ALL.len()],
    suppressed: [AtomicU64; RejectReason::ALL.len()],
    started: Instant,
}

impl Rejects {
    /// Counters resolved from `metrics`.
    pub fn new(metrics: &IngestMetrics) -> Self {
        Rejects {
            counters: RejectReason::ALL
                .map(|r| metrics.events_rejected.with_label_values(&[r.as_str()])),
            last_log: Default::default(),
            suppressed: Default::default(),
            started: Instant::now(),
        }
    }

    /// Counts a rejected line and logs it unless a line of the same reason
    /// was logged less than a second ago.
    pub fn reject(&self, reject: &Reject, line: &[u8], source: &str) {
        let i = reject.reason.index();
        self.counters[i].inc();
        // Offset by one period so that the very first reject is logged.
        let now = self.started.elapsed().as_micros() as u64 + LOG_EVERY_MICROS;
        let last = self.last_log[i].load(Ordering::Relaxed);
        if now.saturating_sub(last) < LOG_EVERY_MICROS
            || self.last_log[i]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed[i].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = self.suppressed[i].swap(0, Ordering::Relaxed);
        tracing::warn!(
            reason = reject.reason.as_str(),
            detail = %reject.detail,
            source,
            preview = %preview(line),
            suppressed_since_last = suppressed,
            "rejected event"
        );
    }

    /// Total rejects of one reason (for tests).
    pub fn count(&self, reason: RejectReason) -> u64 {
        self.counters[reason.index()].get()
    }
}

/// The first bytes of a line, made printable.
pub fn preview(line: &[u8]) -> String {
    let cut = &line[..line.len().min(PREVIEW_BYTES)];
    let mut s: String = String::from_utf8_lossy(cut)
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    if line.len() > PREVIEW_BYTES {
        s.push_str(&format!("… ({} bytes)", line.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_reject_and_previews_safely() {
        let m = IngestMetrics::new(&prometheus::Registry::new()).unwrap();
        let r = Rejects::new(&m);
        let rej = Reject::new(RejectReason::InvalidJson, "x");
        for _ in 0..1000 {
            r.reject(&rej, b"junk", "test");
        }
        assert_eq!(r.count(RejectReason::InvalidJson), 1000);
        assert_eq!(r.count(RejectReason::TooLong), 0);
        // 999 of them fell within the same second and were not logged
        assert_eq!(
            r.suppressed[RejectReason::InvalidJson.index()].load(Ordering::Relaxed),
            999
        );
        assert_eq!(preview(b"a\x00\nb"), "a\\0\\nb");
        let long = vec![b'x'; 500];
        assert!(preview(&long).ends_with("(500 bytes)"));
    }
}
