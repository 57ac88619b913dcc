//! Binding listeners and serving their connections and datagrams.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use tokio::task::JoinSet;

use super::addr::ListenAddr;
use super::datagram::{Dgram, serve_datagrams};
use super::framing::{Frame, LineFramer};
use super::parse::{Reject, RejectReason, is_blank, parse_event};
use super::rejects::Rejects;
use super::socket_file::{SocketFile, SocketKind, prepare};
use crate::aggregate::{Batch, BatchSink};
use crate::export::metrics::Metrics;
use crate::export::prediction_log::PredictionLog;
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
    pub metrics: Metrics,
    /// Limits and modes.
    pub options: IngestOptions,
    /// Stops the listener.
    pub shutdown: Shutdown,
    /// Where a sample of accepted lines is written, if anywhere.
    pub prediction_log: Option<PredictionLog>,
}

enum Socket {
    Unix(UnixListener, SocketFile),
    Unixgram(UnixDatagram, SocketFile),
    Tcp(TcpListener),
    Udp(UdpSocket),
    File(std::path::PathBuf, Option<super::tail::Open>),
}

/// A bound, not yet serving, listener.
pub struct Listener {
    addr: ListenAddr,
    socket: Socket,
}

/// An error binding a listener, naming it.
#[derive(Debug)]
pub struct BindError {
    /// The listener that failed.
    pub addr: ListenAddr,
    /// Why.
    pub source: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for BindError {}

impl Listener {
    /// Binds `addr` (must be called inside a tokio runtime).
    pub async fn bind(addr: &ListenAddr, options: &IngestOptions) -> Result<Listener, BindError> {
        let err = |source| BindError {
            addr: addr.clone(),
            source,
        };
        let socket = match addr {
            ListenAddr::Unix(p) => {
                prepare(p, SocketKind::Stream).map_err(err)?;
                let l = UnixListener::bind(p).map_err(err)?;
                Socket::Unix(l, SocketFile::adopt(p, options.socket_mode).map_err(err)?)
            }
            ListenAddr::Unixgram(p) => {
                prepare(p, SocketKind::Datagram).map_err(err)?;
                let s = UnixDatagram::bind(p).map_err(err)?;
                Socket::Unixgram(s, SocketFile::adopt(p, options.socket_mode).map_err(err)?)
            }
            ListenAddr::Tcp(a) => Socket::Tcp(TcpListener::bind(a.as_str()).await.map_err(err)?),
            ListenAddr::Udp(a) => Socket::Udp(UdpSocket::bind(a.as_str()).await.map_err(err)?),
            ListenAddr::File(p) => {
                // The file may appear later, but its directory must exist.
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(d) = dir
                    && !d.is_dir()
                {
                    return Err(err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("directory {} does not exist", d.display()),
                    )));
                }
                Socket::File(
                    p.clone(),
                    super::tail::open_at_start(p, options.file_from_beginning),
                )
            }
        };
        Ok(Listener {
            addr: addr.clone(),
            socket,
        })
    }

    /// The bound address, with the real port where port 0 was asked for.
    pub fn local_addr(&self) -> ListenAddr {
        match &self.socket {
            Socket::Tcp(l) => l
                .local_addr()
                .map(|a| ListenAddr::Tcp(a.to_string()))
                .unwrap_or_else(|_| self.addr.clone()),
            Socket::Udp(s) => s
                .local_addr()
                .map(|a| ListenAddr::Udp(a.to_string()))
                .unwrap_or_else(|_| self.addr.clone()),
            _ => self.addr.clone(),
        }
    }

    /// Serves until shutdown, then drains what is buffered and returns. The
    /// socket file, if any, is removed before returning.
    pub async fn serve(self, ctx: IngestContext) {
        let transport = self.addr.transport();
        match self.socket {
            Socket::Unix(l, file) => {
                accept_loop(ctx, transport, StreamListener::Unix(&l)).await;
                drop(file);
            }
            Socket::Tcp(l) => accept_loop(ctx, transport, StreamListener::Tcp(&l)).await,
            Socket::Unixgram(s, file) => {
                serve_datagrams(ctx, transport, s.into_std().map(Dgram::Unix)).await;
                drop(file);
            }
            Socket::Udp(s) => serve_datagrams(ctx, transport, s.into_std().map(Dgram::Udp)).await,
            Socket::File(p, start) => {
                let _ =
                    tokio::task::spawn_blocking(move || super::tail::follow(p, start, ctx)).await;
            }
        }
    }
}

enum StreamListener<'a> {
    Unix(&'a UnixListener),
    Tcp(&'a TcpListener),
}

enum StreamConn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl StreamListener<'_> {
    async fn accept(&self) -> io::Result<StreamConn> {
        Ok(match self {
            StreamListener::Unix(l) => StreamConn::Unix(l.accept().await?.0),
            StreamListener::Tcp(l) => StreamConn::Tcp(l.accept().await?.0),
        })
    }
}

async fn accept_loop(ctx: IngestContext, transport: &'static str, listener: StreamListener<'_>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut conns = JoinSet::new();
    let accepted = ctx.metrics.connections.with_label_values(&[transport]);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok(conn) => {
                    accepted.inc();
                    // Connections that ended but were not reaped yet must
                    // not count against the limit.
                    while conns.try_join_next().is_some() {}
                    if conns.len() >= ctx.options.max_connections {
                        // Over the limit: closed at once, and counted.
                        ctx.metrics
                            .connections_closed
                            .with_label_values(&[transport, "limit"])
                            .inc();
                        tracing::warn!(transport, limit = ctx.options.max_connections, "connection refused: too many open");
                        continue;
                    }
                    match conn {
                        StreamConn::Unix(c) => conns.spawn(serve_stream(c, ctx.clone(), transport)),
                        StreamConn::Tcp(c) => conns.spawn(serve_stream(c, ctx.clone(), transport)),
                    };
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(transport, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections a client opened before shutdown but not yet accepted
    // (a busy machine) still get their buffered events drained.
    while let Ok(Ok(conn)) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        accepted.inc();
        if conns.len() >= ctx.options.max_connections {
            break;
        }
        match conn {
            StreamConn::Unix(c) => conns.spawn(serve_stream(c, ctx.clone(), transport)),
            StreamConn::Tcp(c) => conns.spawn(serve_stream(c, ctx.clone(), transport)),
        };
    }
    while conns.join_next().await.is_some() {}
}

/// Decrements the open-connections gauge when the connection ends.
struct OpenGuard(IntGauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Events per batch sent to the aggregator, at most: a read of tiny lines
/// (64 KiB of `{}` is 21,845 events) is sent in several batches, so that
/// the queue of `--events.queue-batches` batches bounds the events waiting.
pub(super) const BATCH_EVENTS: usize = 1024;

/// Takes the batch to send, leaving an empty one with as much room as it
/// had events: the next read usually brings about as many, and a batch that
/// grows from nothing copies its events again at every doubling.
pub(super) fn hand_over(batch: &mut Batch) -> Batch {
    let room = batch.len();
    std::mem::replace(batch, Batch::with_capacity(room))
}

/// Parses one line into `batch`, or counts it as rejected.
pub(super) fn take_line(line: &[u8], batch: &mut Batch, ctx: &IngestContext, transport: &str) {
    if is_blank(line) {
        return;
    }
    match parse_event(line) {
        Ok(e) => {
            if let Some(log) = &ctx.prediction_log {
                log.offer(line);
            }
            batch.push(e)
        }
        Err(r) => ctx.rejects.reject(&r, line, transport),
    }
}

/// Hands one frame to the batch, or counts it as rejected.
pub(crate) fn take_frame(
    frame: Frame<'_>,
    batch: &mut Batch,
    ctx: &IngestContext,
    transport: &str,
) {
    match frame {
        Frame::Line(l) => take_line(l, batch, ctx, transport),
        Frame::TooLong => ctx.rejects.reject(
            &Reject::new(
                RejectReason::TooLong,
                format!("line longer than {} bytes", ctx.options.max_line_bytes),
            ),
            b"",
            transport,
        ),
    }
}

/// How a stream connection ended (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Eof,
    IdleTimeout,
    Error,
    Shutdown,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Closed::Eof => "eof",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Error => "error",
            Closed::Shutdown => "shutdown",
        }
    }
}

async fn read_some<C: AsyncRead + Unpin>(
    conn: &mut C,
    framer: &mut LineFramer,
    idle: Option<Duration>,
) -> Result<usize, Closed> {
    let read = conn.read_buf(framer.read_buf());
    let r = match idle {
        Some(d) => tokio::time::timeout(d, read)
            .await
            .map_err(|_| Closed::IdleTimeout)?,
        None => read.await,
    };
    match r {
        Ok(0) => Err(Closed::Eof),
        Ok(n) => Ok(n),
        Err(e) => {
            tracing::debug!(error = %e, "stream read failed");
            Err(Closed::Error)
        }
    }
}

/// Parses the complete lines the framer holds and sends their events, in
/// batches of at most [`BATCH_EVENTS`]; `false` when the aggregator is gone.
async fn forward(
    framer: &mut LineFramer,
    batch: &mut Batch,
    ctx: &IngestContext,
    transport: &str,
) -> bool {
    loop {
        let more = framer.drain_some(|f| {
            take_frame(f, batch, ctx, transport);
            batch.len() < BATCH_EVENTS
        });
        if !batch.is_empty() && ctx.tx.send(hand_over(batch)).await.is_err() {
            return false;
        }
        if !more {
            return true;
        }
    }
}

/// Serves one stream connection: newline-delimited events until EOF, idle
/// timeout, error or shutdown. On shutdown, bytes already sent are drained.
async fn serve_stream<C: AsyncRead + Unpin>(
    mut conn: C,
    ctx: IngestContext,
    transport: &'static str,
) {
    let open = ctx.metrics.connections_open.with_label_values(&[transport]);
    open.inc();
    let _guard = OpenGuard(open);
    let mut framer = LineFramer::new(ctx.options.max_line_bytes);
    let mut shutdown = ctx.shutdown.clone();
    let mut batch = Batch::new();
    let closed = loop {
        let r = tokio::select! {
            _ = shutdown.wait() => Err(Closed::Shutdown),
            r = read_some(&mut conn, &mut framer, ctx.options.idle_timeout) => r,
        };
        if let Err(c) = r {
            break c;
        }
        if !forward(&mut framer, &mut batch, &ctx, transport).await {
            break Closed::Shutdown;
        }
    };
    if closed == Closed::Shutdown {
        // Drain what the client already wrote, without waiting for more.
        let quick = Some(Duration::from_millis(20));
        while read_some(&mut conn, &mut framer, quick).await.is_ok() {
            if !forward(&mut framer, &mut batch, &ctx, transport).await {
                break;
            }
        }
    }
    // An unterminated last line still counts if it is a whole event.
    if let Some(Frame::Line(tail)) = framer.finish()
        && !is_blank(tail)
    {
        match parse_event(tail) {
            Ok(e) => batch.push(e),
            Err(r) => ctx.rejects.reject(
                &Reject::new(
                    RejectReason::Truncated,
                    format!("unterminated last line: {}", r.detail),
                ),
                tail,
                transport,
            ),
        }
    }
    if !batch.is_empty() {
        let _ = ctx.tx.send(batch).await;
    }
    ctx.metrics
        .connections_closed
        .with_label_values(&[transport, closed.as_str()])
        .inc();
}
