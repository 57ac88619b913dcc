//! The client's transports: events gathered into batches (newline-separated
//! lines in one datagram or one write), sent without waiting; what cannot
//! be sent is held up to a bound, then dropped and counted by reason; a
//! background thread sends partial batches within the flush interval, waits
//! in `poll` for room when the exporter's queue is full, and reports the
//! drops to the exporter in `client` events.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::{Options, RECONNECT_DELAY, Stats};
use crate::ingest::event::DropReason;

/// The reasons a client reports, in the order of its counters.
const REPORTED: [DropReason; 5] = [
    DropReason::QueueFull,
    DropReason::NoExporter,
    DropReason::SocketError,
    DropReason::TooLarge,
    DropReason::InvalidEvent,
];

/// Index of a reported reason in the counters.
fn slot(r: DropReason) -> usize {
    REPORTED.iter().position(|&x| x == r).unwrap_or(2)
}

enum Socket {
    Datagram(UnixDatagram),
    Stream(UnixStream),
}

/// Framed data waiting for the socket: whole datagrams, or a stream's bytes.
enum Ready {
    /// (datagram, events in it, report counts if it is a report)
    Datagrams(VecDeque<(Vec<u8>, u64, Option<Report>)>),
    /// Bytes of whole lines, except that the first may be partly written.
    Stream {
        buf: Vec<u8>,
        events: u64,
        head_partial: bool,
        /// (end offset of a report line in `buf`, its counts)
        report_at: Option<(usize, Report)>,
    },
}

#[derive(Clone, Copy)]
struct Report {
    dropped: [u64; 5],
    omitted: u64,
}

pub(super) struct State {
    path: PathBuf,
    stream: bool,
    model: String,
    opts: Options,
    sock: Option<Socket>,
    batch: Vec<u8>,
    batch_events: u64,
    ready: Ready,
    pending_bytes: usize,
    pending_events: u64,
    blocked: bool,
    last_attempt: Option<Instant>,
    closed: bool,
    sent: u64,
    dropped: [u64; 5],
    closed_drops: u64,
    reported: [u64; 5],
    omitted: u64,
    omitted_reported: u64,
    report_due: bool,
    report_inflight: bool,
    last_report: Option<Instant>,
    idle: bool,
}

pub(super) struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

impl Inner {
    pub(super) fn new(path: PathBuf, stream: bool, opts: Options) -> Arc<Inner> {
        let ready = if stream {
            Ready::Stream {
                buf: Vec::new(),
                events: 0,
                head_partial: false,
                report_at: None,
            }
        } else {
            Ready::Datagrams(VecDeque::new())
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                path,
                stream,
                model: opts.model.clone(),
                opts,
                sock: None,
                batch: Vec::new(),
                batch_events: 0,
                ready,
                pending_bytes: 0,
                pending_events: 0,
                blocked: false,
                last_attempt: None,
                closed: false,
                sent: 0,
                dropped: [0; 5],
                closed_drops: 0,
                reported: [0; 5],
                omitted: 0,
                omitted_reported: 0,
                report_due: true,
                report_inflight: false,
                last_report: None,
                idle: true,
            }),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        let _ = std::thread::Builder::new()
            .name("model-exporter-client-flush".into())
            .spawn(move || flusher(&weak));
        inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one encoded event (no newline); never blocks.
    pub(super) fn send(&self, line: &[u8], omitted: u64) {
        let mut s = self.lock();
        s.omitted += omitted;
        let wake = s.add(line);
        drop(s);
        if wake {
            self.wake.notify_one();
        }
    }

    pub(super) fn flush(&self) {
        let mut s = self.lock();
        if !s.closed && !s.push() {
            let lost = s.discard();
            s.dropped[slot(DropReason::NoExporter)] += lost;
        }
    }

    pub(super) fn close(&self) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if s.push() {
            s.maybe_report(Instant::now(), true);
            s.push();
        }
        s.closed_drops += s.discard();
        s.closed = true;
        s.sock = None;
        drop(s);
        self.wake.notify_all();
    }

    pub(super) fn stats(&self) -> Stats {
        let s = self.lock();
        let d = |r| s.dropped[slot(r)];
        Stats {
            sent: s.sent,
            pending: s.pending_events,
            dropped: s.dropped.iter().sum::<u64>() + s.closed_drops,
            queue_full: d(DropReason::QueueFull),
            no_exporter: d(DropReason::NoExporter),
            socket_error: d(DropReason::SocketError),
            too_large: d(DropReason::TooLarge),
            closed: s.closed_drops,
            values_omitted: s.omitted,
        }
    }
}

impl State {
    /// Adds a line to the batch; returns whether the flusher must be woken.
    fn add(&mut self, line: &[u8]) -> bool {
        if self.closed {
            self.closed_drops += 1;
            return false;
        }
        let n = line.len() + 1;
        if n > self.opts.max_datagram {
            self.dropped[slot(DropReason::TooLarge)] += 1;
            return false;
        }
        if self.batch.len() + n > self.opts.max_datagram {
            self.seal();
            if !self.blocked {
                self.drain();
            }
        }
        if self.pending_bytes + n > self.opts.buffer {
            let r = if self.sock.is_some() {
                DropReason::QueueFull
            } else {
                DropReason::NoExporter
            };
            self.dropped[slot(r)] += 1;
            return false;
        }
        if !self.batch.is_empty() {
            self.batch.push(b'\n');
        }
        self.batch.extend_from_slice(line);
        self.batch_events += 1;
        self.pending_bytes += n;
        self.pending_events += 1;
        std::mem::take(&mut self.idle)
    }

    /// Seals the batch, connects if need be (within the rate limit) and
    /// sends what the socket takes now; returns whether it is connected.
    fn push(&mut self) -> bool {
        self.seal();
        if self.sock.is_none() && self.pending_bytes > 0 {
            self.connect();
        }
        if self.sock.is_none() {
            return false;
        }
        self.blocked = false;
        self.drain();
        true
    }

    /// Moves the batch into the framed data.
    fn seal(&mut self) {
        if self.batch_events == 0 {
            return;
        }
        let events = std::mem::take(&mut self.batch_events);
        match &mut self.ready {
            Ready::Datagrams(q) => q.push_back((std::mem::take(&mut self.batch), events, None)),
            Ready::Stream { buf, events: e, .. } => {
                buf.extend_from_slice(&self.batch);
                buf.push(b'\n');
                self.batch.clear();
                *e += events;
            }
        }
    }

    /// Connects, unless the last attempt was within [`RECONNECT_DELAY`];
    /// a failed attempt drops what is held.
    fn connect(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_attempt
            .is_some_and(|t| now.duration_since(t) < RECONNECT_DELAY)
        {
            return false;
        }
        self.last_attempt = Some(now);
        let sock = if self.stream {
            UnixStream::connect(&self.path)
                .and_then(|s| s.set_nonblocking(true).map(|()| Socket::Stream(s)))
        } else {
            UnixDatagram::unbound().and_then(|s| {
                s.set_nonblocking(true)?;
                s.connect(&self.path)?;
                Ok(Socket::Datagram(s))
            })
        };
        match sock {
            Ok(s) => {
                self.sock = Some(s);
                self.blocked = false;
                true
            }
            Err(e) => {
                let lost = self.discard();
                self.dropped[slot(reason_of(&e))] += lost;
                false
            }
        }
    }

    /// Drops everything held; returns the events dropped.
    fn discard(&mut self) -> u64 {
        let lost = self.pending_events;
        self.batch.clear();
        self.batch_events = 0;
        match &mut self.ready {
            Ready::Datagrams(q) => q.clear(),
            Ready::Stream {
                buf,
                events,
                head_partial,
                report_at,
            } => {
                buf.clear();
                *events = 0;
                *head_partial = false;
                *report_at = None;
            }
        }
        self.pending_bytes = 0;
        self.pending_events = 0;
        self.report_inflight = false;
        lost
    }

    /// The socket failed: reconnect at once if allowed (the exporter may
    /// have restarted), else drop what is held.
    fn broken(&mut self, e: &io::Error) -> bool {
        self.sock = None;
        let reason = reason_of(e);
        if let Ready::Stream {
            buf,
            events,
            head_partial,
            report_at,
        } = &mut self.ready
            && *head_partial
        {
            // The rest of a half-written line would corrupt the new
            // connection: that line is lost, whole lines are kept.
            let cut = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |p| p + 1);
            buf.drain(..cut);
            *head_partial = false;
            *events -= 1;
            self.pending_events -= 1;
            self.pending_bytes = self.pending_bytes.saturating_sub(cut);
            self.dropped[slot(reason)] += 1;
            match report_at {
                Some((end, _)) if *end <= cut => {
                    *report_at = None;
                    self.report_inflight = false;
                }
                Some((end, _)) => *end -= cut,
                None => {}
            }
        }
        if self.connect() {
            return true;
        }
        let lost = self.discard();
        self.dropped[slot(reason)] += lost;
        false
    }

    /// Sends framed data until the socket is full.
    fn drain(&mut self) {
        loop {
            if self.sock.is_none() && !self.connect() {
                return;
            }
            let result = match (&mut self.ready, &mut self.sock) {
                (Ready::Datagrams(q), Some(Socket::Datagram(s))) => {
                    let Some((d, _, _)) = q.front() else { return };
                    s.send(d)
                }
                (Ready::Stream { buf, .. }, Some(Socket::Stream(s))) => {
                    if buf.is_empty() {
                        return;
                    }
                    s.write(buf)
                }
                _ => return,
            };
            match result {
                Ok(n) => self.written(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    // A datagram longer than the socket takes: lost.
                    if let Ready::Datagrams(q) = &mut self.ready
                        && let Some((d, n, _)) = q.pop_front()
                    {
                        self.forget(d.len(), n);
                        self.dropped[slot(DropReason::TooLarge)] += n;
                    }
                }
                Err(e) => {
                    if !self.broken(&e) {
                        return;
                    }
                }
            }
        }
    }

    /// `n` bytes were written.
    fn written(&mut self, n: usize) {
        let mut done: Option<Report> = None;
        let sent = match &mut self.ready {
            Ready::Datagrams(q) => {
                let Some((d, events, report)) = q.pop_front() else {
                    return;
                };
                done = report;
                if events > 0 {
                    self.pending_bytes -= d.len() + 1;
                    self.pending_events -= events;
                }
                events
            }
            Ready::Stream {
                buf,
                events,
                head_partial,
                report_at,
            } => {
                if n == 0 {
                    self.blocked = true;
                    return;
                }
                let mut lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                if let Some((end, r)) = *report_at {
                    if n >= end {
                        lines -= 1;
                        *report_at = None;
                        done = Some(r);
                    } else {
                        *report_at = Some((end - n, r));
                    }
                }
                *head_partial = buf[n - 1] != b'\n';
                buf.drain(..n);
                *events -= lines;
                self.pending_events -= lines;
                self.pending_bytes = buf.len() + self.batch.len();
                lines
            }
        };
        self.sent += sent;
        if let Some(r) = done {
            for (i, d) in r.dropped.iter().enumerate() {
                self.reported[i] += d;
            }
            self.omitted_reported += r.omitted;
            self.report_due = false;
            self.report_inflight = false;
        }
    }

    fn forget(&mut self, len: usize, events: u64) {
        if events > 0 {
            self.pending_bytes -= len + 1;
            self.pending_events -= events;
        }
    }

    /// Queues a `client` event with the drops since the last report, when
    /// there is something to say and the interval has passed.
    fn maybe_report(&mut self, now: Instant, force: bool) {
        if self.report_inflight || self.sock.is_none() {
            return;
        }
        if !force
            && self
                .last_report
                .is_some_and(|t| now.duration_since(t) < self.opts.report_interval)
        {
            return;
        }
        let mut delta = [0u64; 5];
        for (i, d) in delta.iter_mut().enumerate() {
            *d = self.dropped[i] - self.reported[i];
        }
        let omitted = self.omitted - self.omitted_reported;
        if delta.iter().all(|&d| d == 0) && omitted == 0 && !self.report_due {
            return;
        }
        let mut line = String::with_capacity(128);
        line.push_str("{\"type\":\"client\",\"model\":");
        super::event::push_json_str(&mut line, &self.model);
        line.push_str(",\"dropped\":{");
        let mut first = true;
        for (r, d) in REPORTED.iter().zip(delta) {
            if d > 0 {
                if !first {
                    line.push(',');
                }
                first = false;
                line.push_str(&format!("\"{}\":{d}", r.as_str()));
            }
        }
        line.push('}');
        if omitted > 0 {
            line.push_str(&format!(",\"values_omitted\":{omitted}"));
        }
        line.push('}');
        let report = Report {
            dropped: delta,
            omitted,
        };
        self.last_report = Some(now);
        self.report_inflight = true;
        match &mut self.ready {
            Ready::Datagrams(q) => q.push_front((line.into_bytes(), 0, Some(report))),
            Ready::Stream { .. } => {
                self.seal();
                if let Ready::Stream { buf, report_at, .. } = &mut self.ready {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    *report_at = Some((buf.len(), report));
                }
            }
        }
    }

    /// One round of the flusher. Returns the descriptor to wait on for
    /// room (when the socket was full) and whether anything is held.
    fn tick(&mut self) -> (Option<i32>, bool) {
        if self.closed {
            return (None, false);
        }
        self.push();
        self.maybe_report(Instant::now(), false);
        let held = self.pending_bytes > 0 || self.report_inflight;
        if !held {
            self.idle = true;
        }
        let fd = match (&self.sock, self.blocked) {
            (Some(Socket::Datagram(s)), true) => Some(s.as_raw_fd()),
            (Some(Socket::Stream(s)), true) => Some(s.as_raw_fd()),
            _ => None,
        };
        (fd, held)
    }
}

/// The reason for a failed connect or send: the exporter is not there (no
/// socket file, nobody listening, a connection it closed), or another error.
fn reason_of(e: &io::Error) -> DropReason {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound | ConnectionRefused | ConnectionReset | BrokenPipe | NotConnected => {
            DropReason::NoExporter
        }
        _ => DropReason::SocketError,
    }
}

/// The background thread of a client: ends when the client is closed or
/// dropped.
fn flusher(weak: &Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let mut s = inner.lock();
        let (fd, held) = s.tick();
        if s.closed {
            return;
        }
        let interval = s.opts.flush_interval;
        let report = s.opts.report_interval;
        if let Some(fd) = fd {
            drop(s);
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the descriptor stays open while
            // `inner` (which owns the socket) is alive.
            unsafe { libc::poll(&mut p, 1, interval.as_millis().max(1) as i32) };
        } else {
            let wait = if held { interval } else { report };
            let _ = inner
                .wake
                .wait_timeout(s, wait.max(Duration::from_millis(1)));
        }
    }
}
