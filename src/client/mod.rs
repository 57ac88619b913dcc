//! A client for Rust model servers: sends events to model-exporter without
//! ever blocking or failing the caller.
//!
//! ```no_run
//! use model_exporter::client::Client;
//! use std::time::Duration;
//!
//! let client = Client::unixgram("/tmp/model-exporter.dgram.sock");
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
//! assert_eq!(client.stats().errors, 0);
//! ```
//!
//! Guarantees, for every transport:
//! * a send never blocks: the socket is non-blocking, and what cannot be
//!   written at once is dropped and counted in [`Stats::dropped`];
//! * a send never fails or panics: errors (no exporter listening, a full
//!   buffer, a broken connection) are counted, never returned;
//! * a stream client reconnects by itself, at most once per
//!   [`RECONNECT_DELAY`], after the exporter restarts;
//! * a stream client buffers up to [`STREAM_BUFFER`] bytes that the socket
//!   could not take at once, and a background thread writes them within
//!   [`FLUSH_INTERVAL`]; past that buffer, events are dropped and counted.
//!
//! Datagrams are the cheapest transport, but the kernel queues few of them
//! per socket (`net.unix.max_dgram_qlen`, 10 by default on Linux): a burst
//! faster than the exporter reads is partly dropped (and counted). For
//! bursty traffic, prefer the stream transport.

use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod event;

pub use event::{FeatureValue, InferenceBuilder, Outcome};

/// Least time between two attempts to reconnect a stream client.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Bytes a stream client buffers while the socket cannot take more; past
/// this, events are dropped.
pub const STREAM_BUFFER: usize = 256 * 1024;

/// What a client has done, cumulatively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the socket (for a stream client: written, or held
    /// in its buffer; events lost with a broken connection move to `errors`).
    pub sent: u64,
    /// Events dropped because the socket could not take them at once.
    pub dropped: u64,
    /// Events lost to errors: no exporter listening, a broken connection.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

enum Transport {
    Datagram {
        socket: Option<UnixDatagram>,
        path: PathBuf,
    },
    Stream {
        path: PathBuf,
        conn: Option<UnixStream>,
        pending: Vec<u8>,
        last_attempt: Option<Instant>,
    },
}

struct Inner {
    transport: Mutex<Transport>,
    counters: Counters,
}

/// Sends events to one exporter socket. Cheap to share between threads
/// (wrap it in an `Arc`).
pub struct Client {
    inner: Arc<Inner>,
}

/// How often a stream client's background flusher writes what the socket
/// could not take at once.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

impl Client {
    /// A client sending datagrams to a `unixgram://` listener.
    pub fn unixgram(path: impl AsRef<Path>) -> Client {
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .ok();
        Client::with(Transport::Datagram {
            socket,
            path: path.as_ref().to_owned(),
        })
    }

    /// A client writing lines to a `unix://` stream listener.
    pub fn unix_stream(path: impl AsRef<Path>) -> Client {
        Client::with(Transport::Stream {
            path: path.as_ref().to_owned(),
            conn: None,
            pending: Vec::new(),
            last_attempt: None,
        })
    }

    fn with(transport: Transport) -> Client {
        let stream = matches!(transport, Transport::Stream { .. });
        let inner = Arc::new(Inner {
            transport: Mutex::new(transport),
            counters: Counters::default(),
        });
        if stream {
            // Writes what the socket could not take at once, so that the
            // last events before a pause are not left waiting for the next
            // send. It holds only a weak reference and ends with the client.
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            let _ = std::thread::Builder::new()
                .name("model-exporter-client-flush".into())
                .spawn(move || {
                    while let Some(inner) = weak.upgrade() {
                        inner.flush();
                        drop(inner);
                        std::thread::sleep(FLUSH_INTERVAL);
                    }
                });
        }
        Client { inner }
    }

    /// Writes what a stream client still holds, as far as the socket takes
    /// it now (never blocks). Datagram clients hold nothing.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// What the client has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
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
        self.inner.send_line(line);
    }
}

impl Inner {
    fn flush(&self) {
        let mut t = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        if let Transport::Stream { conn, pending, .. } = &mut *t
            && !pending.is_empty()
            && let Err(lost) = flush(conn, pending)
        {
            let c = &self.counters;
            c.sent
                .fetch_sub(lost.min(c.sent.load(Ordering::Relaxed)), Ordering::Relaxed);
            c.errors.fetch_add(lost, Ordering::Relaxed);
        }
    }

    fn send_line(&self, line: &[u8]) {
        let mut t = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match &mut *t {
            Transport::Datagram { socket, path } => match socket {
                Some(s) => match s.send_to(line, &*path) {
                    Ok(_) => Sent::Ok,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Dropped,
                    Err(_) => Sent::Error,
                },
                None => Sent::Error,
            },
            Transport::Stream {
                path,
                conn,
                pending,
                last_attempt,
            } => stream_send(path, conn, pending, last_attempt, line),
        };
        let c = &self.counters;
        match outcome {
            Sent::Ok => c.sent.fetch_add(1, Ordering::Relaxed),
            Sent::Dropped => c.dropped.fetch_add(1, Ordering::Relaxed),
            Sent::Error => c.errors.fetch_add(1, Ordering::Relaxed),
            Sent::Lost(earlier) => {
                // Earlier events counted as sent never reached the exporter.
                c.sent.fetch_sub(
                    earlier.min(c.sent.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                c.errors.fetch_add(earlier + 1, Ordering::Relaxed)
            }
        };
    }
}

enum Sent {
    Ok,
    Dropped,
    Error,
    /// Lost to a broken connection: this event and that many earlier ones.
    Lost(u64),
}

fn stream_send(
    path: &Path,
    conn: &mut Option<UnixStream>,
    pending: &mut Vec<u8>,
    last_attempt: &mut Option<Instant>,
    line: &[u8],
) -> Sent {
    if conn.is_none() {
        let now = Instant::now();
        if last_attempt.is_some_and(|t| now.duration_since(t) < RECONNECT_DELAY) {
            return Sent::Error;
        }
        *last_attempt = Some(now);
        match UnixStream::connect(path).and_then(|s| s.set_nonblocking(true).map(|()| s)) {
            Ok(s) => {
                *conn = Some(s);
                // Bytes of a half-written line would corrupt the new stream.
                pending.clear();
            }
            Err(_) => return Sent::Error,
        }
    }
    if pending.len() + line.len() + 1 > STREAM_BUFFER {
        // Try to make room first.
        if let Err(lost) = flush(conn, pending) {
            return Sent::Lost(lost);
        }
        if pending.len() + line.len() + 1 > STREAM_BUFFER {
            return Sent::Dropped;
        }
    }
    pending.extend_from_slice(line);
    pending.push(b'\n');
    match flush(conn, pending) {
        Ok(()) => Sent::Ok,
        // This event was counted in `lost` already.
        Err(lost) => Sent::Lost(lost.saturating_sub(1)),
    }
}

/// Writes what the socket takes now. A broken connection is dropped, and
/// what was pending with it: the error carries how many events were lost.
fn flush(conn: &mut Option<UnixStream>, pending: &mut Vec<u8>) -> Result<(), u64> {
    let lost = |p: &Vec<u8>| p.iter().filter(|&&b| b == b'\n').count() as u64;
    let Some(s) = conn.as_mut() else {
        let n = lost(pending);
        pending.clear();
        return Err(n);
    };
    while !pending.is_empty() {
        match s.write(pending) {
            Ok(0) => break,
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                *conn = None;
                let n = lost(pending);
                pending.clear();
                return Err(n);
            }
        }
    }
    Ok(())
}
