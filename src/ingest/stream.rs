//! Stream sockets (`unix://`, `tcp://`): one task per connection reads
//! newline-delimited events and sends them to the aggregator in batches.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

use super::accept::AcceptErrors;
use super::batch::Batch;
use super::batch::{BATCH_EVENTS, hand_over, take_frame};
use super::context::IngestContext;
use super::framing::{Frame, LineFramer};
use super::parse::{Reject, RejectReason, is_blank, parse_event};

/// A bound stream socket, borrowed while it is served.
pub(super) enum StreamListener<'a> {
    /// `unix://`
    Unix(&'a UnixListener),
    /// `tcp://`
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

/// Accepts connections until shutdown, serving each on a task of its own
/// (at most `max_connections` at once), then waits for them to drain.
pub(super) async fn accept_loop(
    ctx: IngestContext,
    transport: &'static str,
    listener: StreamListener<'_>,
) {
    let mut shutdown = ctx.shutdown.clone();
    let mut conns = JoinSet::new();
    // Connections being served: decremented by each connection as it ends,
    // at the moment it stops counting as open, so that the limit never
    // refuses a connection because an ended one's task is still finishing.
    let live = Arc::new(AtomicUsize::new(0));
    let accepted = ctx.metrics.connections.with_label_values(&[transport]);
    let mut errors = AcceptErrors::new(
        transport,
        ctx.metrics.accept_errors.with_label_values(&[transport]),
    );
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok(conn) => {
                    accepted.inc();
                    errors.succeeded();
                    while conns.try_join_next().is_some() {}
                    if live.load(Ordering::Acquire) >= ctx.options.max_connections {
                        // Over the limit: closed at once, and counted.
                        ctx.metrics
                            .connections_closed
                            .with_label_values(&[transport, "limit"])
                            .inc();
                        errors.over_limit(ctx.options.max_connections);
                        continue;
                    }
                    spawn_conn(&mut conns, conn, &ctx, transport, &live);
                }
                // Out of file descriptors and the like: back off, counted.
                Err(e) => errors.back_off(&e).await,
            },
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections a client opened before shutdown but not yet accepted
    // (a busy machine) still get their buffered events drained.
    while let Ok(Ok(conn)) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        accepted.inc();
        if live.load(Ordering::Acquire) >= ctx.options.max_connections {
            break;
        }
        spawn_conn(&mut conns, conn, &ctx, transport, &live);
    }
    while conns.join_next().await.is_some() {}
}

/// Serves `conn` on a task of `conns`, counted in `live` until it ends.
fn spawn_conn(
    conns: &mut JoinSet<()>,
    conn: StreamConn,
    ctx: &IngestContext,
    transport: &'static str,
    live: &Arc<AtomicUsize>,
) {
    live.fetch_add(1, Ordering::AcqRel);
    let open = ctx.metrics.connections_open.with_label_values(&[transport]);
    open.inc();
    let guard = OpenGuard {
        live: live.clone(),
        open,
    };
    match conn {
        StreamConn::Unix(c) => conns.spawn(serve_stream(c, ctx.clone(), transport, guard)),
        StreamConn::Tcp(c) => conns.spawn(serve_stream(c, ctx.clone(), transport, guard)),
    };
}

/// Counts a connection as open (the listener's own count, which the limit
/// reads, and the gauge) until it is dropped, when the connection ends.
struct OpenGuard {
    live: Arc<AtomicUsize>,
    open: IntGauge,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        // The listener's count first: whoever sees the gauge fall may
        // connect at once.
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.open.dec();
    }
}

/// How a stream connection ended (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Eof,
    IdleTimeout,
    /// The sender reset the connection (everything it had delivered was
    /// read first; an unfinished last line is counted as `truncated`).
    Reset,
    Error,
    Shutdown,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Closed::Eof => "eof",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Reset => "reset",
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
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(Closed::Reset),
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
    guard: OpenGuard,
) {
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
            Ok(e) => match ctx.check_times(&e) {
                Ok(()) => batch.push(e),
                Err(r) => ctx.rejects.reject(&r, tail, transport),
            },
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
    drop(guard);
}
