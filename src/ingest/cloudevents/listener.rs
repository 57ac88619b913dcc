//! Serving HTTP: connections (at most `--events.max-connections`: at the
//! cap the one idle longest makes room, as for the web server; with TLS
//! and basic authentication from `--events.http.web-config.file`), each
//! POST read within `--events.http.read-timeout` and
//! `--events.http.max-body-bytes`, turned into events and handed to the
//! aggregator before it is answered.
//!
//! Reading a payload is bounded in parallel (a few at once), and a large
//! one is read on the blocking pool, so that this listener never holds up
//! the runtime threads the socket listeners share.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::CloudEventMetrics;
use super::emit;
use super::envelope::{self, Half};
use super::pairing::{Body, Done, HalfEvent, Pairing};
use super::payload::{self, Protocol};
use crate::ingest::accept::{AcceptErrors, LastRead, Slot, Slots, Tracked, is_timeout};
use crate::ingest::batch::Batch;
use crate::ingest::context::IngestContext;
use crate::ingest::parse::{Reject, RejectReason};
use crate::webconfig::{Auth, WebConfig};

/// The `transport` label of this listener's self-metrics.
const TRANSPORT: &str = "http";

/// Payloads read at once; more requests wait (with their bodies unread).
const READERS: usize = 16;

/// A body at least this long is read on the blocking pool, and at most
/// [`LARGE_READERS`] of them at once: its JSON tree takes up to about 16
/// times its size (a list of small numbers), 64 MiB for a body of 4 MiB.
const BLOCKING_BODY: usize = 64 * 1024;

/// Large payloads read at once.
const LARGE_READERS: usize = 2;

/// Longest the listener waits, at shutdown, for requests under way.
const DRAIN: Duration = Duration::from_secs(4);

/// Longest the accept loop waits for an evicted connection to close.
const EVICTION_WAIT: Duration = Duration::from_millis(100);

/// What every request of one listener shares.
struct State {
    ctx: IngestContext,
    web: WebConfig,
    pairing: Mutex<Pairing>,
    metrics: CloudEventMetrics,
    readers: Semaphore,
    large_readers: Semaphore,
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves HTTP on `listener` until shutdown; then lets the requests under
/// way finish, and takes the halves still waiting alone.
pub(crate) async fn serve(listener: TcpListener, web: WebConfig, ctx: IngestContext) {
    let options = ctx.options.http.clone();
    let metrics = ctx.cloudevents.metrics(&ctx.metrics.registry).clone();
    web.count_into(&ctx.metrics.auth, TRANSPORT);
    let state = Arc::new(State {
        pairing: Mutex::new(Pairing::new(options.pending_ttl, options.pending_max_bytes)),
        metrics,
        readers: Semaphore::new(READERS),
        large_readers: Semaphore::new(LARGE_READERS),
        web,
        ctx,
    });
    let expiry = tokio::spawn(expire(state.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.read_timeout)
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new());
    let mut conns = JoinSet::new();
    let mut slots = Slots::default();
    let ctx = &state.ctx;
    let accepted = ctx.metrics.connections.with_label_values(&[TRANSPORT]);
    let mut errors = AcceptErrors::new(
        TRANSPORT,
        ctx.metrics.accept_errors.with_label_values(&[TRANSPORT]),
    );
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    accepted.inc();
                    errors.succeeded();
                    while conns.try_join_next().is_some() {}
                    // At the cap, the connection idle longest (no request
                    // under way) makes room; only when every one is
                    // answering a request is the new one closed.
                    if slots.open() >= ctx.options.max_connections {
                        let Some(victim) = slots.evict_idlest() else {
                            ctx.metrics.connections_closed.with_label_values(&[TRANSPORT, "limit"]).inc();
                            errors.over_limit(ctx.options.max_connections);
                            continue;
                        };
                        // Its descriptor is freed before another is taken.
                        let _ = tokio::time::timeout(EVICTION_WAIT, victim.gone()).await;
                    }
                    let slot = Slot::new();
                    slots.push(slot.clone());
                    conns.spawn(connection(stream, slot, state.clone(), builder.clone()));
                }
                Err(e) => errors.back_off(&e).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Each connection answers the requests under way, then closes.
    let finished =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        conns.abort_all();
    }
    expiry.abort();
    let _ = expiry.await;
    let mut done = Vec::new();
    {
        let mut p = state.pairing.lock().unwrap_or_else(|e| e.into_inner());
        p.drain(&mut done);
        state.gauges(&p);
    }
    if !done.is_empty() {
        let _ = state.ctx.tx.send(state.events(done)).await;
    }
}

/// Decrements the open-connections gauge, and marks the connection's slot
/// ended, when the connection ends.
struct OpenGuard(IntGauge, Arc<Slot>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
        self.1.end();
    }
}

/// Serves one connection (after its TLS handshake, if any) until the client
/// closes it, it reads nothing for the read timeout, it is evicted to make
/// room for a new one, or shutdown.
async fn connection(
    stream: TcpStream,
    slot: Arc<Slot>,
    state: Arc<State>,
    builder: auto::Builder<TokioExecutor>,
) {
    let metrics = &state.ctx.metrics;
    let open = metrics.connections_open.with_label_values(&[TRANSPORT]);
    open.inc();
    let _guard = OpenGuard(open, slot.clone());
    let timeout = state.ctx.options.http.read_timeout;
    let stream = Tracked::new(stream);
    let last_read = stream.last_read.clone();
    let result = match state.web.tls.clone() {
        None => drive(stream, last_read, slot, &state, &builder).await,
        Some(acceptor) => {
            // A connection still shaking hands may make room too.
            let handshake = tokio::time::timeout(timeout, acceptor.accept(stream));
            let shaken = tokio::select! {
                r = handshake => Some(r),
                _ = slot.evicted() => None,
            };
            match shaken {
                None => Err(Ended::Evicted),
                Some(Ok(Ok(tls))) => drive(tls, last_read, slot, &state, &builder).await,
                Some(Ok(Err(e))) => Err(Ended::Error(e.into())),
                Some(Err(_)) => Err(Ended::Idle),
            }
        }
    };
    let reason = match &result {
        Ok(()) => "eof",
        Err(Ended::Shutdown) => "shutdown",
        Err(Ended::Idle) => "idle_timeout",
        Err(Ended::Evicted) => "evicted",
        Err(Ended::Error(e)) if is_timeout(e.as_ref()) => "idle_timeout",
        Err(Ended::Error(e)) => {
            tracing::debug!(transport = TRANSPORT, error = %e, "connection ended with an error");
            "error"
        }
    };
    metrics
        .connections_closed
        .with_label_values(&[TRANSPORT, reason])
        .inc();
}

/// Why a connection ended, other than the client closing it.
enum Ended {
    /// The exporter shuts down.
    Shutdown,
    /// Nothing was read for the read timeout.
    Idle,
    /// Closed to make room for a new connection at the cap: it was the one
    /// idle longest.
    Evicted,
    /// The connection failed.
    Error(Box<dyn std::error::Error + Send + Sync>),
}

/// Serves HTTP on one connection. hyper times out request headers once
/// they start; a connection that reads nothing at all for the read
/// timeout (an idle keep-alive connection) is closed here, as is every
/// connection at shutdown or evicted, each after answering the request
/// under way.
async fn drive<I>(
    io: I,
    last_read: Arc<LastRead>,
    slot: Arc<Slot>,
    state: &Arc<State>,
    builder: &auto::Builder<TokioExecutor>,
) -> Result<(), Ended>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let st = state.clone();
    let requests = slot.clone();
    let service = service_fn(move |req| {
        let state = st.clone();
        let in_flight = requests.request();
        async move {
            let answer = handle(state, req).await;
            drop(in_flight);
            Ok::<_, Infallible>(answer)
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let timeout = state.ctx.options.http.read_timeout;
    let mut shutdown = state.ctx.shutdown.clone();
    let mut closing: Option<Ended> = None;
    loop {
        let idle_at = last_read.get() + timeout;
        tokio::select! {
            r = conn.as_mut() => {
                return match (r, closing) {
                    (Err(e), _) => Err(Ended::Error(e)),
                    (Ok(()), Some(why)) => Err(why),
                    (Ok(()), None) => Ok(()),
                };
            }
            _ = shutdown.wait(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Ended::Shutdown);
            }
            _ = slot.evicted(), if closing.is_none() => {
                if !slot.requested() {
                    // Never sent a request, so none is under way: dropped.
                    return Err(Ended::Evicted);
                }
                conn.as_mut().graceful_shutdown();
                closing = Some(Ended::Evicted);
            }
            _ = tokio::time::sleep_until(idle_at.into()), if closing.is_none() => {
                if last_read.get() + timeout <= Instant::now() {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Ended::Idle);
                }
            }
        }
    }
}

/// Answers one request.
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    match state.web.check(req.headers()).await {
        Auth::Allowed => {}
        Auth::Denied => {
            let mut r = answer(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"model-exporter\""),
            );
            return r;
        }
        Auth::Busy => return answer(StatusCode::TOO_MANY_REQUESTS, "Too many logins at once\n"),
    }
    if req.method() != Method::POST {
        let mut r = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST CloudEvents here (see docs/integrations.md)\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let (parts, body) = req.into_parts();
    let options = &state.ctx.options.http;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > options.max_body_bytes as u64) {
        return state.refuse(&too_long(options.max_body_bytes), b"");
    }
    // Bodies are read a few at a time: the others wait unread.
    let Ok(permit) = state.readers.acquire().await else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let read = Limited::new(body, options.max_body_bytes).collect();
    let body = match tokio::time::timeout(options.read_timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return state.refuse(&too_long(options.max_body_bytes), b"");
        }
        Ok(Err(e)) => {
            let r = Reject::new(
                RejectReason::Truncated,
                format!("the body did not arrive whole: {e}"),
            );
            return state.refuse(&r, b"");
        }
        Err(_) => {
            let r = Reject::new(
                RejectReason::Truncated,
                format!("the body did not arrive within {:?}", options.read_timeout),
            );
            return state.refuse(&r, b"");
        }
    };
    let arrived = Instant::now();
    let result = if body.len() >= BLOCKING_BODY {
        let Ok(_large) = state.large_readers.acquire().await else {
            return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        };
        let (st, headers, b) = (state.clone(), parts.headers, body.clone());
        tokio::task::spawn_blocking(move || st.process(&headers, &b, arrived))
            .await
            .unwrap_or_else(|e| {
                Err(Reject::new(
                    RejectReason::InvalidValue,
                    format!("reading the event failed: {e}"),
                ))
            })
    } else {
        state.process(&parts.headers, &body, arrived)
    };
    drop(permit);
    match result {
        Ok(batch) if batch.is_empty() => answer(StatusCode::OK, ""),
        Ok(batch) => match state.ctx.tx.send(batch).await {
            Ok(()) => answer(StatusCode::OK, ""),
            Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        },
        Err(r) => state.refuse(&r, &body),
    }
}

fn too_long(max: usize) -> Reject {
    Reject::new(
        RejectReason::TooLong,
        format!("body longer than {max} bytes (--events.http.max-body-bytes)"),
    )
}

impl State {
    /// Counts and logs a rejected event and answers with why.
    fn refuse(&self, r: &Reject, body: &[u8]) -> Answer {
        self.ctx.rejects.reject(r, body, TRANSPORT);
        let status = match r.reason {
            RejectReason::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
            RejectReason::Truncated => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        answer(status, format!("rejected: {r}\n"))
    }

    /// Reads one CloudEvent and returns the events it completes.
    fn process(&self, headers: &HeaderMap, body: &[u8], arrived: Instant) -> Result<Batch, Reject> {
        let (envelope, payload) = envelope::read(headers, body)?;
        let mapping = self.ctx.cloudevents.models.get();
        let name = envelope.name();
        let names = mapping.target(&name).names;
        let body = match envelope.half {
            Half::Feedback => {
                let rows = payload::feedback(&payload, &names)?;
                self.accepted(Half::Feedback, Protocol::Seldon);
                let mut batch = Batch::new();
                emit::feedback(&envelope, rows, &mapping, &mut batch);
                self.log(&batch);
                return Ok(batch);
            }
            Half::Request => {
                let inputs = payload::inputs(&payload, &names)?;
                self.accepted(Half::Request, inputs.protocol);
                Body::Request(inputs)
            }
            Half::Response => {
                let outputs = payload::outputs(&payload, &names)?;
                self.accepted(Half::Response, outputs.protocol);
                Body::Response(outputs)
            }
        };
        drop(payload);
        let mut done = Vec::new();
        {
            let mut p = self.pairing.lock().unwrap_or_else(|e| e.into_inner());
            p.offer(
                HalfEvent {
                    envelope,
                    arrived,
                    body,
                },
                &mut done,
            );
            self.gauges(&p);
        }
        Ok(self.events(done))
    }

    fn accepted(&self, half: Half, protocol: Protocol) {
        self.metrics
            .accepted
            .with_label_values(&[half.as_str(), protocol.as_str()])
            .inc();
    }

    fn gauges(&self, p: &Pairing) {
        self.metrics.pending.set(p.len() as i64);
        self.metrics.pending_bytes.set(p.bytes() as i64);
    }

    /// Counts pairs and halves taken alone.
    fn count(&self, done: &[Done]) {
        for d in done {
            match d {
                Done::Pair { .. } => self.metrics.paired.inc(),
                Done::Alone { half, reason, .. } => self
                    .metrics
                    .unpaired
                    .with_label_values(&[half.envelope.half.as_str(), reason.as_str()])
                    .inc(),
            }
        }
    }

    /// The events of pairs and halves, with the current mapping.
    fn events(&self, done: Vec<Done>) -> Batch {
        self.count(&done);
        let mapping = self.ctx.cloudevents.models.get();
        let mut batch = Batch::new();
        for d in done {
            emit::emit(d, &mapping, &mut batch);
        }
        self.log(&batch);
        batch
    }

    /// Offers the events to the prediction log, as event lines.
    fn log(&self, batch: &Batch) {
        if let Some(log) = &self.ctx.prediction_log {
            for e in batch {
                log.offer_with(|| emit::to_line(e));
            }
        }
    }
}

/// Takes alone the halves that waited their time to live, a few times per
/// time to live.
async fn expire(state: Arc<State>) {
    let ttl = state.ctx.options.http.pending_ttl;
    let period = (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.ctx.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let mut done = Vec::new();
        {
            let mut p = state.pairing.lock().unwrap_or_else(|e| e.into_inner());
            p.expire(Instant::now(), &mut done);
            state.gauges(&p);
        }
        if !done.is_empty() && state.ctx.tx.send(state.events(done)).await.is_err() {
            return;
        }
    }
}
