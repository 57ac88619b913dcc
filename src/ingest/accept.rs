//! Accepting connections within the process's file descriptors: the
//! descriptor limit and how it is shared between the connection caps
//! ([`fd_budget`]), backing off when `accept` fails ([`AcceptErrors`]),
//! and, for the HTTP listeners, the open connections a cap is kept on
//! ([`Slots`]: at the cap the connection idle longest makes room).
//!
//! Every connection holds a descriptor. If the caps of the servers together
//! exceed the process's limit, a flood of idle connections leaves none for
//! anything else: `/metrics` and new event connections fail with `EMFILE`.
//! So the soft limit is raised to the hard one at start-up, and caps that
//! still do not fit are lowered, in proportion, to fit beside a reserve.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

use prometheus::IntCounter;

/// Descriptors kept out of the connection caps: listeners, the runtime's
/// own, files (rules, snapshots, the prediction log, `/proc` for the
/// process metrics), with room to accept and close a connection over a cap.
pub const RESERVED_FDS: u64 = 32;

/// Raises the soft limit on open files to the hard limit (as the Go runtime
/// does for Prometheus' servers) and returns the limit in force, or `None`
/// when it is unlimited or cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Connection caps that fit in `limit` descriptors: each of `caps` (the
/// cap of one listener) is lowered in proportion, to at least 1, when
/// together they exceed `limit` less [`RESERVED_FDS`]. Returns the caps
/// unchanged when they fit.
pub fn fd_budget(limit: u64, caps: &[usize]) -> Vec<usize> {
    let demand: u64 = caps.iter().map(|&c| c as u64).sum();
    let budget = limit.saturating_sub(RESERVED_FDS).max(caps.len() as u64);
    if demand <= budget {
        return caps.to_vec();
    }
    caps.iter()
        .map(|&c| ((c as u64 * budget / demand) as usize).max(1))
        .collect()
}

/// First pause after a failed accept; doubled on each failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most one log line per this long per listener.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Backs off after failed accepts (5 ms, doubling to 1 s while they keep
/// failing, as Go's HTTP server does), counts each failure, and logs at
/// most once every 10 seconds, with the number of failures not logged.
#[derive(Debug)]
pub struct AcceptErrors {
    listener: &'static str,
    counter: IntCounter,
    pause: Duration,
    logged_at: Option<Instant>,
    unlogged: u64,
    refused_logged_at: Option<Instant>,
    refused_unlogged: u64,
}

impl AcceptErrors {
    /// For one listener (`web`, `unix`, `tcp`, `http`), counting into
    /// `counter`.
    pub fn new(listener: &'static str, counter: IntCounter) -> AcceptErrors {
        AcceptErrors {
            listener,
            counter,
            pause: Duration::ZERO,
            logged_at: None,
            unlogged: 0,
            refused_logged_at: None,
            refused_unlogged: 0,
        }
    }

    /// An accept succeeded: the next failure pauses briefly again.
    pub fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// An accept failed: counts it, logs it if no line was logged in the
    /// last 10 seconds, and returns how long to pause before the next one.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        self.counter.inc();
        self.pause = if self.pause.is_zero() {
            FIRST_PAUSE
        } else {
            (self.pause * 2).min(MAX_PAUSE)
        };
        let now = Instant::now();
        if self
            .logged_at
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            tracing::warn!(
                listener = self.listener,
                error = %error,
                not_logged = self.unlogged,
                pause_ms = self.pause.as_millis() as u64,
                "accept failed; backing off"
            );
            self.logged_at = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.pause
    }

    /// A connection was closed at once because `limit` were open: logs it
    /// at most once every 10 seconds (the caller counts it).
    pub fn over_limit(&mut self, limit: usize) {
        let now = Instant::now();
        if self
            .refused_logged_at
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            tracing::warn!(
                listener = self.listener,
                limit,
                not_logged = self.refused_unlogged,
                "connection refused: too many open"
            );
            self.refused_logged_at = Some(now);
            self.refused_unlogged = 0;
        } else {
            self.refused_unlogged += 1;
        }
    }

    /// [`AcceptErrors::failed`], then the pause.
    pub async fn back_off(&mut self, error: &io::Error) {
        let pause = self.failed(error);
        tokio::time::sleep(pause).await;
    }
}

/// When a connection last read something.
pub struct LastRead {
    start: Instant,
    /// Nanoseconds after `start`.
    nanos: std::sync::atomic::AtomicU64,
}

impl LastRead {
    /// When it last read bytes (or was made).
    pub fn get(&self) -> Instant {
        self.start + Duration::from_nanos(self.nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Records a read now.
    pub fn touch(&self) {
        let n = self.start.elapsed().as_nanos() as u64;
        self.nanos.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A stream that records when it last read bytes.
pub struct Tracked<S> {
    inner: S,
    /// When it last read bytes, shared with whoever watches it.
    pub last_read: Arc<LastRead>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`, as if it had just read.
    pub fn new(inner: S) -> Tracked<S> {
        Tracked {
            inner,
            last_read: Arc::new(LastRead {
                start: Instant::now(),
                nanos: Default::default(),
            }),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last_read.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether a connection's error is hyper's timeout (a request head not
/// read in time).
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_timeout)
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

/// The open connections of one HTTP listener (the web server's, an
/// `http://` event listener's), for the cap: when it is reached, the
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
    fn caps_are_lowered_in_proportion_to_fit() {
        // Fits: unchanged.
        assert_eq!(fd_budget(1 << 20, &[512, 1024, 1024]), [512, 1024, 1024]);
        assert_eq!(fd_budget(32 + 30, &[10, 20]), [10, 20]);
        // 64 descriptors: 32 for connections, shared in proportion.
        let caps = fd_budget(64, &[512, 1024, 1024]);
        assert_eq!(caps, [6, 12, 12]);
        assert!(caps.iter().sum::<usize>() as u64 <= 64 - RESERVED_FDS);
        // Never below one connection each.
        assert_eq!(fd_budget(10, &[512, 1024]), [1, 1]);
    }

    #[test]
    fn failures_back_off_doubling_and_reset_on_success() {
        let c = IntCounter::new("x", "x").unwrap();
        let mut a = AcceptErrors::new("web", c.clone());
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<u128> = (0..10).map(|_| a.failed(&e).as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(c.get(), 10);
        // Only the first failure was logged; the rest wait for 10 s.
        assert_eq!(a.unlogged, 9);
        a.succeeded();
        assert_eq!(a.failed(&e), FIRST_PAUSE);
    }

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
