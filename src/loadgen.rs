//! `model-exporter loadgen`: a load generator for a running exporter.
//!
//! It sends one fixed inference event (the example of docs/events.md: three
//! features) over a Unix stream or datagram socket, at a given rate or flat
//! out, for a given time, and reports what it sent. With `models` above 1
//! the events take turns among that many model names (`fraud-0`,
//! `fraud-1`, ...), which spreads them over aggregator shards. Given the exporter's
//! metrics URL it also reports what the exporter counted as received and
//! rejected, and given its pid, the CPU time and resident memory the
//! exporter used meanwhile (from `/proc`).
//!
//! Streams use blocking sockets and large writes (many lines per write), so
//! a slow exporter slows the sender down instead of losing events; datagrams
//! are sent non-blocking, one event each, and a full socket queue counts as
//! a drop, as a model server's client would see it.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http_client::{BlockingClient, ClientError, ClientOptions, RequestError};
use crate::ingest::ListenAddr;

/// Why a load could not be run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The target is not a Unix socket.
    #[error("{0}: only unix:// and unixgram:// targets are supported")]
    Target(ListenAddr),
    /// Options that do not go together, or out of range.
    #[error("{0}")]
    Options(&'static str),
    /// A thread could not be pinned to the CPU asked for.
    #[error("{0}")]
    Cpu(String),
    /// A socket operation failed.
    #[error("{what} {path:?}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The socket's path.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The exporter's process figures could not be read from `/proc`.
    #[error("{path}: {reason}")]
    Proc {
        /// The file read.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A sender thread panicked.
    #[error("a sender thread failed")]
    Sender,
    /// The client for `--metrics-url` could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the exporter's counts failed.
    #[error(transparent)]
    Request(#[from] RequestError),
}

fn socket_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LoadgenError {
    let path = path.to_owned();
    move |source| LoadgenError::Socket { what, path, source }
}

/// The event sent: the inference example of docs/events.md.
pub const EVENT: &str = r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#;

/// Lines per write on a stream when sending flat out.
const LINES_PER_WRITE: usize = 256;

/// What to send where.
#[derive(Debug, Clone)]
pub struct LoadgenOptions {
    /// `unix://` or `unixgram://` socket of the exporter.
    pub target: ListenAddr,
    /// Events per second over all connections; 0 sends flat out.
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// Stream connections (or datagram senders), each on its own thread.
    pub connections: u32,
    /// Model names the events take turns among; 1 sends [`EVENT`] as is.
    pub models: u32,
    /// The exporter's base URL (`http://127.0.0.1:PORT`), to read its counts.
    pub metrics_url: Option<String>,
    /// How to reach `metrics_url` (TLS, credentials, timeouts).
    pub client: ClientOptions,
    /// The exporter's pid, to read its CPU time and memory from `/proc`.
    pub pid: Option<u32>,
    /// Instead of sending to an exporter, bind the target and discard what
    /// arrives (a do-nothing reader to compare the exporter with); the
    /// report then counts what this reader received.
    pub null_reader: bool,
    /// CPU the sending threads are pinned to, if any.
    pub sender_cpu: Option<usize>,
    /// Give every event its own request `id` (streams only), so that the
    /// exporter's feedback join remembers each prediction and, past its
    /// capacity, evicts the oldest, as with real traffic; otherwise every
    /// event repeats the id of [`EVENT`].
    pub unique_ids: bool,
    /// CPU the do-nothing reader's threads are pinned to, if any.
    pub reader_cpu: Option<usize>,
}

/// Pins the calling thread to `cpu` (Linux; elsewhere an error). Threads it
/// starts afterwards inherit the pin.
fn pin_to(cpu: Option<usize>) -> Result<(), LoadgenError> {
    let Some(cpu) = cpu else { return Ok(()) };
    #[cfg(target_os = "linux")]
    {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(LoadgenError::Cpu(format!("CPU {cpu} is out of range")));
        }
        // SAFETY: `set` is a plain bit mask owned by this frame, and
        // CPU_SET writes inside it (cpu < CPU_SETSIZE, checked above).
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(LoadgenError::Cpu(format!(
                "cannot run a thread on CPU {cpu}: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err(LoadgenError::Cpu(format!(
        "running on CPU {cpu} only needs Linux"
    )))
}

/// Whether `cpu` is one this process may run on, so that a pin fails the
/// run before any thread starts.
fn check_cpu(cpu: Option<usize>) -> Result<(), LoadgenError> {
    let Some(cpu) = cpu else { return Ok(()) };
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `pin_to`; CPU_ISSET reads inside `set`.
        let allowed = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            cpu < libc::CPU_SETSIZE as usize
                && libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0
                && libc::CPU_ISSET(cpu, &set)
        };
        if allowed {
            Ok(())
        } else {
            Err(LoadgenError::Cpu(format!(
                "CPU {cpu} is not one this process may run on"
            )))
        }
    }
    #[cfg(not(target_os = "linux"))]
    Err(LoadgenError::Cpu(format!(
        "running on CPU {cpu} only needs Linux"
    )))
}

/// Figures of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadgenReport {
    /// Events written (or sent as datagrams) successfully.
    pub sent: u64,
    /// Datagrams refused because the socket queue was full.
    pub drops: u64,
    /// Wall time of sending.
    pub seconds: f64,
    /// Events the exporter counted as received during the run
    /// (`model_exporter_events_received_total`, every type).
    pub received: Option<u64>,
    /// Events the exporter rejected during the run.
    pub rejected: Option<u64>,
    /// Wall time from the first send until the exporter had counted
    /// everything it was going to count.
    pub drained_seconds: Option<f64>,
    /// CPU seconds (user + system) the exporter used during the run.
    pub cpu_seconds: Option<f64>,
    /// Largest resident set of the exporter seen during the run, in bytes.
    pub max_rss_bytes: Option<u64>,
    /// Events the do-nothing reader received (`null_reader`).
    pub null_received: Option<u64>,
}

impl LoadgenReport {
    /// The report as `name value` lines, easy to read by scripts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(k);
            out.push(' ');
            out.push_str(&v);
            out.push('\n');
        };
        let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        line("sent_events", self.sent.to_string());
        line("send_seconds", format!("{:.3}", self.seconds));
        line(
            "sent_per_second",
            format!("{:.0}", per_s(self.sent, self.seconds)),
        );
        line("send_drops", self.drops.to_string());
        if let Some(n) = self.null_received {
            line("null_reader_received", n.to_string());
            line(
                "null_reader_per_second",
                format!("{:.0}", per_s(n, self.seconds)),
            );
        }
        if let Some(r) = self.received {
            line("exporter_received", r.to_string());
            if let Some(d) = self.drained_seconds {
                line("exporter_drained_seconds", format!("{d:.3}"));
                line(
                    "exporter_received_per_second",
                    format!("{:.0}", per_s(r, d)),
                );
            }
        }
        if let Some(r) = self.rejected {
            line("exporter_rejected", r.to_string());
        }
        if let Some(c) = self.cpu_seconds {
            line("exporter_cpu_seconds", format!("{c:.3}"));
            if let Some(r) = self.received {
                line(
                    "exporter_events_per_cpu_second",
                    format!("{:.0}", per_s(r, c)),
                );
            }
        }
        if let Some(m) = self.max_rss_bytes {
            line("exporter_max_rss_bytes", m.to_string());
        }
        out
    }
}

/// Runs the load and returns its figures.
pub fn run(options: &LoadgenOptions) -> Result<LoadgenReport, LoadgenError> {
    let (path, datagram) = match &options.target {
        ListenAddr::Unix(p) => (p.clone(), false),
        ListenAddr::Unixgram(p) => (p.clone(), true),
        other => return Err(LoadgenError::Target(other.clone())),
    };
    if options.connections == 0 {
        return Err(LoadgenError::Options("--connections must be at least 1"));
    }
    if options.models == 0 {
        return Err(LoadgenError::Options("--models must be at least 1"));
    }
    if options.unique_ids && datagram {
        return Err(LoadgenError::Options(
            "--unique-ids is supported on unix:// (stream) targets only",
        ));
    }
    let models = options.models;
    check_cpu(options.sender_cpu)?;
    check_cpu(options.reader_cpu)?;
    let null = if options.null_reader {
        Some(NullReader::start(&path, datagram, options.reader_cpu)?)
    } else {
        None
    };
    let metrics = match &options.metrics_url {
        Some(url) => Some((BlockingClient::new(&options.client)?, url.as_str())),
        None => None,
    };
    let before = match &metrics {
        Some((client, url)) => Some(scrape_counts(client, url)?),
        None => None,
    };
    let cpu_before = options.pid.map(cpu_seconds).transpose()?;
    let rss = options.pid.map(RssSampler::start);

    let started = Instant::now();
    let deadline = started + options.duration;
    let per_conn_rate = options.rate as f64 / f64::from(options.connections);
    let mut senders = Vec::new();
    let sender_cpu = options.sender_cpu;
    let unique_ids = options.unique_ids;
    for conn in 0..options.connections {
        let path = path.clone();
        senders.push(std::thread::spawn(move || {
            pin_to(sender_cpu)?;
            if datagram {
                send_datagrams(&path, per_conn_rate, deadline, models)
            } else {
                send_stream(
                    &path,
                    per_conn_rate,
                    deadline,
                    models,
                    unique_ids.then_some(conn),
                )
            }
        }));
    }
    let mut report = LoadgenReport::default();
    let mut first_error = None;
    for s in senders {
        match s.join() {
            Ok(Ok((sent, drops))) => {
                report.sent += sent;
                report.drops += drops;
            }
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(LoadgenError::Sender)),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(e) = first_error {
        return Err(e);
    }
    if let (Some((client, url)), Some(before)) = (&metrics, before) {
        // Wait until the exporter has counted everything sent, or its count
        // stops moving for 5 s (it may have dropped events), within a bound.
        let wait_until = Instant::now() + Duration::from_secs(30);
        let mut last = scrape_counts(client, url)?;
        let mut last_change = Instant::now();
        while Instant::now() < wait_until {
            let received = last.0.saturating_sub(before.0) + last.1.saturating_sub(before.1);
            if received >= report.sent || last_change.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            let now = scrape_counts(client, url)?;
            if now != last {
                last = now;
                last_change = Instant::now();
            }
        }
        report.drained_seconds = Some(started.elapsed().as_secs_f64());
        report.received = Some(last.0.saturating_sub(before.0));
        report.rejected = Some(last.1.saturating_sub(before.1));
    }
    if let (Some(pid), Some(b)) = (options.pid, cpu_before) {
        report.cpu_seconds = Some(cpu_seconds(pid)? - b);
    }
    if let Some(r) = rss {
        report.max_rss_bytes = r.stop();
    }
    if let Some(n) = null {
        report.null_received = Some(n.stop());
    }
    Ok(report)
}

/// The event sent as model `i` of `models`: [`EVENT`] itself when there is
/// one model, otherwise with the model name `fraud-{i}`.
pub fn event(i: u32, models: u32) -> String {
    if models <= 1 {
        return EVENT.to_owned();
    }
    EVENT.replacen(r#""model":"fraud""#, &format!(r#""model":"fraud-{i}""#), 1)
}

/// Lines of events taking turns among `models` names: twice `n` lines, so
/// that any `n` consecutive lines from one of the first `n` are contiguous.
/// Returns the bytes and the offset where each line starts (and the end).
/// With `unique_ids`, each line's id is `r` + `conn` (3 digits) + `-` +
/// [`ID_DIGITS`] digits, rewritten before each write by [`number_ids`].
fn lines(n: usize, models: u32, unique_ids: Option<u32>) -> (Vec<u8>, Vec<usize>) {
    let events: Vec<String> = (0..models)
        .map(|i| {
            let e = event(i, models);
            match unique_ids {
                Some(conn) => e.replacen(
                    r#""id":"r-17""#,
                    &format!(r#""id":"r{:03}-{}""#, conn % 1000, "0".repeat(ID_DIGITS)),
                    1,
                ),
                None => e,
            }
        })
        .collect();
    let mut buf = Vec::new();
    let mut starts = Vec::with_capacity(2 * n + 1);
    for i in 0..2 * n {
        starts.push(buf.len());
        buf.extend_from_slice(events[i % n % events.len()].as_bytes());
        buf.push(b'\n');
    }
    starts.push(buf.len());
    (buf, starts)
}

/// Digits of the counter in a unique id.
const ID_DIGITS: usize = 12;

/// Where the id digits of each line starting at `starts` are in `chunk`
/// (lines made by [`lines`] with unique ids), found once per connection.
fn id_digits(chunk: &[u8], starts: &[usize]) -> Vec<usize> {
    // `"id":"r000-` then the digits.
    const BEFORE: &[u8] = br#""id":"r"#;
    starts
        .iter()
        .filter_map(|&start| {
            let at = memchr::memmem::find(chunk.get(start..)?, BEFORE)?;
            Some(start + at + BEFORE.len() + 4)
        })
        .collect()
}

/// Writes `first`, `first + 1`, ... into the ids whose digits start at
/// `digits_at` (from [`id_digits`]).
fn number_ids(chunk: &mut [u8], digits_at: &[usize], first: u64) {
    for (k, &at) in digits_at.iter().enumerate() {
        write_decimal(&mut chunk[at..at + ID_DIGITS], first + k as u64);
    }
}

/// Writes `v` into `out` in decimal, right-aligned and padded with zeros
/// (the high digits are cut if `v` has more digits than `out` has bytes).
pub fn write_decimal(out: &mut [u8], mut v: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// How many events should have been sent after `elapsed` at `rate`.
fn due(rate: f64, elapsed: Duration) -> u64 {
    (rate * elapsed.as_secs_f64()) as u64
}

fn send_stream(
    path: &Path,
    rate: f64,
    deadline: Instant,
    models: u32,
    unique_ids: Option<u32>,
) -> Result<(u64, u64), LoadgenError> {
    let mut conn = UnixStream::connect(path).map_err(socket_error("cannot connect to", path))?;
    let (mut chunk, starts) = lines(LINES_PER_WRITE, models, unique_ids);
    let digits_at = match unique_ids {
        Some(_) => id_digits(&chunk, &starts[..2 * LINES_PER_WRITE]),
        None => Vec::new(),
    };
    let started = Instant::now();
    let mut sent = 0u64;
    // The next line to send, so that small writes keep taking turns.
    let mut next = 0usize;
    while Instant::now() < deadline {
        let n = if rate > 0.0 {
            let behind = due(rate, started.elapsed()).saturating_sub(sent);
            if behind == 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            behind.min(LINES_PER_WRITE as u64) as usize
        } else {
            LINES_PER_WRITE
        };
        if unique_ids.is_some() {
            number_ids(&mut chunk, &digits_at[next..next + n], sent);
        }
        conn.write_all(&chunk[starts[next]..starts[next + n]])
            .map_err(socket_error("writing to", path))?;
        next = (next + n) % LINES_PER_WRITE;
        sent += n as u64;
    }
    Ok((sent, 0))
}

fn send_datagrams(
    path: &Path,
    rate: f64,
    deadline: Instant,
    models: u32,
) -> Result<(u64, u64), LoadgenError> {
    let events: Vec<String> = (0..models).map(|i| event(i, models)).collect();
    let sock = UnixDatagram::unbound().map_err(socket_error("cannot open a socket for", path))?;
    sock.connect(path)
        .map_err(socket_error("cannot connect to", path))?;
    sock.set_nonblocking(true)
        .map_err(socket_error("cannot set up", path))?;
    let started = Instant::now();
    let (mut sent, mut drops) = (0u64, 0u64);
    // Checking the clock costs about as much as a send; do it every 64.
    'outer: loop {
        let n = if rate > 0.0 {
            let behind = due(rate, started.elapsed()).saturating_sub(sent + drops);
            if behind == 0 {
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            behind.min(64)
        } else {
            64
        };
        for _ in 0..n {
            let e = &events[((sent + drops) % events.len() as u64) as usize];
            match sock.send(e.as_bytes()) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => drops += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => drops += 1,
                Err(e) => return Err(socket_error("sending to", path)(e)),
            }
        }
        if Instant::now() >= deadline {
            break 'outer;
        }
    }
    Ok((sent, drops))
}

/// `(received, rejected)`: sums of the exporter's event counters.
fn scrape_counts(client: &BlockingClient, base: &str) -> Result<(u64, u64), LoadgenError> {
    let url = format!("{}/metrics", crate::report::base_url(base));
    let text = client.get(&url)?;
    Ok(counts(&String::from_utf8_lossy(&text)))
}

fn proc_error<E: ToString>(path: &str) -> impl FnOnce(E) -> LoadgenError {
    let path = path.to_owned();
    move |e| LoadgenError::Proc {
        path,
        reason: e.to_string(),
    }
}

/// Sums `model_exporter_events_received_total` and
/// `model_exporter_events_rejected_total` over their labels.
fn counts(text: &str) -> (u64, u64) {
    let (mut received, mut rejected) = (0u64, 0u64);
    for line in text.lines() {
        let rest = |name: &str| {
            line.strip_prefix(name)
                .filter(|r| r.starts_with(['{', ' ']))
                .is_some()
        };
        let target = if rest("model_exporter_events_received_total") {
            &mut received
        } else if rest("model_exporter_events_rejected_total") {
            &mut rejected
        } else {
            continue;
        };
        if let Some(v) = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            *target += v as u64;
        }
    }
    (received, rejected)
}

/// User plus system CPU seconds of process `pid` (fields 14 and 15 of
/// `/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64, LoadgenError> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(proc_error(&path))?;
    // The command name is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, a)| a)
        .ok_or_else(|| proc_error(&path)("unexpected format"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime is field 14, stime 15.
    let ticks = |i: usize| -> Result<u64, LoadgenError> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| proc_error(&path)("unexpected format"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok((ticks(14)? + ticks(15)?) as f64 / hz)
}

/// Resident set of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64, LoadgenError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(proc_error(&path))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| proc_error(&path)("no VmRSS"))
}

/// Samples a process's RSS every 100 ms, keeping the largest.
struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(r) = rss_bytes(pid) {
                    m.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssSampler { stop, max, thread }
    }

    fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        Some(self.max.load(Ordering::Relaxed)).filter(|m| *m > 0)
    }
}

/// A reader that binds the target and discards what arrives, counting
/// events (newlines on a stream, datagrams on a datagram socket).
struct NullReader {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl NullReader {
    fn start(path: &Path, datagram: bool, cpu: Option<usize>) -> Result<NullReader, LoadgenError> {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let thread = if datagram {
            let sock = UnixDatagram::bind(path).map_err(socket_error("cannot bind", path))?;
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(socket_error("cannot set up", path))?;
            std::thread::spawn(move || {
                // Checked by `run`; should it fail, the reader runs unpinned.
                let _ = pin_to(cpu);
                // The exporter's own receiving code (recvmmsg, up to 32
                // datagrams a call), with nothing done with what it takes.
                let mut rx = crate::ingest::datagram::Receiver::new(64 * 1024);
                let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
                // Once stopped (every sender has returned, so every datagram
                // sent is queued), take what is queued: a wait that times out
                // means the queue is empty.
                loop {
                    match rx.recv(fd) {
                        Ok(n) => {
                            c.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) if s.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
            })
        } else {
            let listener = std::os::unix::net::UnixListener::bind(path)
                .map_err(socket_error("cannot bind", path))?;
            listener
                .set_nonblocking(true)
                .map_err(socket_error("cannot set up", path))?;
            std::thread::spawn(move || {
                // Checked by `run`; the connection threads inherit the pin.
                let _ = pin_to(cpu);
                let mut readers = Vec::new();
                // Once stopped, every sender has returned and closed its
                // connection: accept those still queued, and read each
                // connection to its end.
                loop {
                    let stopping = s.load(Ordering::Relaxed);
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            let (s, c) = (s.clone(), c.clone());
                            readers.push(std::thread::spawn(move || {
                                let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                                let mut buf = vec![0u8; 64 * 1024];
                                loop {
                                    match conn.read(&mut buf) {
                                        Ok(0) => break,
                                        Ok(n) => {
                                            let lines =
                                                buf[..n].iter().filter(|&&b| b == b'\n').count();
                                            c.fetch_add(lines as u64, Ordering::Relaxed);
                                        }
                                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                        // Nothing to read although stopped: a
                                        // sender that failed left it open.
                                        Err(e)
                                            if matches!(
                                                e.kind(),
                                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                            ) && !s.load(Ordering::Relaxed) => {}
                                        Err(_) => break,
                                    }
                                }
                            }));
                        }
                        Err(_) if stopping => break,
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for r in readers {
                    let _ = r.join();
                }
            })
        };
        Ok(NullReader {
            path: path.to_owned(),
            stop,
            count,
            thread,
        })
    }

    /// Stops once everything sent has been read; call after every sender
    /// has returned.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let _ = std::fs::remove_file(&self.path);
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_over_labels() {
        let text = "# HELP x\nmodel_exporter_events_received_total{type=\"inference\"} 10\nmodel_exporter_events_received_total{type=\"log\"} 2\nmodel_exporter_events_rejected_total{reason=\"too_long\"} 3\nmodel_exporter_events_received_totalx 7\nmodel_exporter_events_received_total{type=\"model\"} 1e400\nother 5\n";
        assert_eq!(counts(text), (12, 3));
    }

    #[test]
    fn event_parses() {
        assert!(crate::ingest::parse::parse_event(EVENT.as_bytes()).is_ok());
    }

    #[test]
    fn unique_ids_are_numbered_per_write() {
        let (mut buf, starts) = lines(3, 2, Some(7));
        let digits_at = id_digits(&buf, &starts[..6]);
        assert_eq!(digits_at.len(), 6);
        number_ids(&mut buf, &digits_at[1..3], 41);
        let ids: Vec<Option<String>> = starts
            .windows(2)
            .map(|w| {
                let line = &buf[w[0]..w[1] - 1];
                match crate::ingest::parse::parse_event(line).unwrap().body {
                    crate::ingest::event::Body::Inference(i) => i.id.map(|n| n.to_string()),
                    _ => unreachable!(),
                }
            })
            .collect();
        let id = |n: &str| Some(format!("r007-{n}"));
        assert_eq!(
            ids,
            [
                id("000000000000"),
                id("000000000041"),
                id("000000000042"),
                id("000000000000"),
                id("000000000000"),
                id("000000000000"),
            ]
        );
    }

    #[test]
    fn events_take_turns_among_models() {
        let (buf, starts) = lines(4, 3, None);
        assert_eq!(starts.len(), 9);
        let models: Vec<String> = starts
            .windows(2)
            .map(|w| {
                let line = &buf[w[0]..w[1]];
                assert_eq!(line.last(), Some(&b'\n'));
                crate::ingest::parse::parse_event(&line[..line.len() - 1])
                    .unwrap()
                    .model
                    .to_string()
            })
            .collect();
        assert_eq!(
            models,
            ["fraud-0", "fraud-1", "fraud-2", "fraud-0"].repeat(2)
        );
        // One model: the documented example, unchanged.
        let (one, _) = lines(2, 1, None);
        assert_eq!(
            one,
            format!("{EVENT}\n{EVENT}\n{EVENT}\n{EVENT}\n").into_bytes()
        );
    }

    /// User plus system CPU seconds of this process, from `getrusage`.
    fn rusage_seconds() -> f64 {
        // SAFETY: `usage` is a valid out-pointer for the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    #[test]
    fn own_process_figures() {
        let pid = std::process::id();
        // The kernel's own account of this process, read another way,
        // brackets the figure (to a clock tick of /proc's rounding).
        let tick = 1.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let before = rusage_seconds();
        let cpu = cpu_seconds(pid).unwrap();
        let after = rusage_seconds();
        assert!(
            cpu >= before - 2.0 * tick && cpu <= after + 2.0 * tick,
            "{before} <= {cpu} <= {after}"
        );
        // And it grows while the process computes.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut x = 0u64;
        while cpu_seconds(pid).unwrap() <= cpu {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            assert!(Instant::now() < deadline, "CPU time did not grow");
        }
        // A test process holds at least its binary's code and the test harness.
        let rss = rss_bytes(pid).unwrap();
        assert!(rss > 1 << 20, "{rss}");
        assert!(cpu_seconds(u32::MAX).is_err());
        assert!(rss_bytes(u32::MAX).is_err());
    }

    #[test]
    fn due_events() {
        assert_eq!(due(1000.0, Duration::from_millis(1500)), 1500);
        assert_eq!(due(0.0, Duration::from_secs(5)), 0);
    }

    #[test]
    fn null_reader_counts_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("null.sock");
        let report = run(&LoadgenOptions {
            target: ListenAddr::Unix(path.clone()),
            rate: 2000,
            duration: Duration::from_millis(300),
            connections: 2,
            models: 1,
            metrics_url: None,
            client: ClientOptions::default(),
            pid: None,
            null_reader: true,
            sender_cpu: None,
            reader_cpu: None,
            unique_ids: false,
        })
        .unwrap();
        assert!(report.sent > 0);
        assert_eq!(report.null_received, Some(report.sent));
        assert!(!path.exists());
    }

    #[test]
    fn senders_and_reader_run_on_the_cpu_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let options = |cpu| LoadgenOptions {
            target: ListenAddr::Unixgram(dir.path().join("pinned.sock")),
            rate: 2000,
            duration: Duration::from_millis(200),
            connections: 1,
            models: 1,
            metrics_url: None,
            client: ClientOptions::default(),
            pid: None,
            null_reader: true,
            sender_cpu: Some(cpu),
            reader_cpu: Some(cpu),
            unique_ids: false,
        };
        // The first CPU this process may use (a container may not have 0).
        let cpu = (0..1024).find(|&c| check_cpu(Some(c)).is_ok()).unwrap();
        let report = run(&options(cpu)).unwrap();
        assert!(report.sent > 0);
        // Every datagram sent was queued, and the reader takes the queue.
        assert_eq!(report.null_received, Some(report.sent), "{report:?}");
        let err = run(&options(100_000)).unwrap_err().to_string();
        assert!(err.contains("CPU 100000"), "{err}");
    }
}
