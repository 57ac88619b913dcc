//! The HTTP server: `/metrics`, health and readiness, and a landing page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::compress;
use super::conns::{Closed, Slot, Slots, WebConnMetrics, WebLimits};
use super::openmetrics::{self, Format};
use crate::ingest::accept::{AcceptErrors, LastRead, Tracked, is_timeout};

use super::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::webconfig::Auth;

/// Content type of the Prometheus text exposition format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A request to reload the rules, answered with the outcome.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), crate::config::ConfigErrors>>;

/// What every request handler shares.
pub struct HttpState {
    /// What the rule evaluator (each shard's) last published.
    pub api: super::api::ApiView,
    /// Brings the summaries up to date before `/api/v1/summary` and
    /// `/api/v1/features` are answered; `None` serves what the last
    /// evaluation left.
    pub refresh: Option<super::api::Refresh>,
    /// Where `POST /-/reload` goes; `None` unless --web.enable-lifecycle.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// The families to serve.
    pub metrics: Metrics,
    /// Path of the metrics endpoint, `/metrics` by default.
    pub telemetry_path: String,
    /// False until listeners are bound, and again while shutting down.
    pub ready: AtomicBool,
    /// TLS, authentication and extra headers (`--web.config.file`).
    pub web: crate::webconfig::WebConfig,
    /// Bounds on connections (`--web.max-connections`,
    /// `--web.read-header-timeout`).
    pub limits: WebLimits,
    /// The connections' self-metrics.
    pub conns: WebConnMetrics,
}

/// A `--web.listen-address` that is not `HOST:PORT` or `:PORT`, or whose
/// host name does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not HOST:PORT (for example :9877, 127.0.0.1:9877 or localhost:9877)")]
pub struct ListenAddressError(pub String);

/// Parses a listen address; `:PORT` means every IPv4 interface. A host
/// name (`localhost:9877`) is resolved, once, here; of its addresses the
/// first IPv4 one is used, else the first.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, ListenAddressError> {
    use std::net::ToSocketAddrs;
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    if let Ok(addr) = full.parse() {
        return Ok(addr);
    }
    let bad = || ListenAddressError(s.to_owned());
    // Only a plain name and a port: no scheme, path or spaces.
    let (host, port) = full.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty()
        || port.parse::<u16>().is_err()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = full.to_socket_addrs().map_err(|_| bad())?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(bad)
}

type Body = Full<Bytes>;

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The dashboard: a self-contained page (no external assets) that reads
/// `/api/v1/summary` and `/api/v1/history` and refreshes itself.
const DASHBOARD: &str = include_str!("dashboard.html");

fn landing_page(state: &HttpState) -> String {
    DASHBOARD.replace("{{TELEMETRY_PATH}}", &html_escape(&state.telemetry_path))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Authenticates, routes, and adds the configured headers.
pub async fn handle(state: Arc<HttpState>, req: Request<Incoming>) -> Response<Body> {
    match state.web.check(req.headers()).await {
        Auth::Allowed => {}
        Auth::Denied => {
            let mut r = respond(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n");
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"model-exporter\""),
            );
            return r;
        }
        Auth::Busy => {
            return respond(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                "Too many logins at once\n",
            );
        }
    }
    let mut r = route(&state, req).await;
    for (k, v) in &state.web.headers {
        r.headers_mut().insert(k.clone(), v.clone());
    }
    r
}

/// Routes one request.
async fn route(state: &Arc<HttpState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/-/reload" {
        return reload(state, req.method()).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
    }
    if path == state.telemetry_path {
        return scrape(state, req.headers()).await;
    }
    match path {
        "/" => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(state),
        ),
        "/-/healthy" => respond(StatusCode::OK, "text/plain", "OK\n"),
        "/-/ready" if state.ready.load(Ordering::Relaxed) => {
            respond(StatusCode::OK, "text/plain", "OK\n")
        }
        "/-/ready" => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n"),
        "/api/v1/summary" | "/api/v1/features" => {
            if let Some(r) = &state.refresh {
                r.run(REFRESH_LIMIT).await;
            }
            api(state, path)
        }
        _ => api(state, path),
    }
}

/// How long a request waits for the aggregators to refresh the summaries.
const REFRESH_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One of the `/api/v1/` endpoints, or 404.
fn api(state: &HttpState, path: &str) -> Response<Body> {
    match state.api.json(path) {
        Some(mut body) => {
            if path == "/api/v1/summary" {
                // What client libraries dropped, for the dashboard's badge.
                body["data"]["client_drops"] = state.metrics.client_drops_json();
            }
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Answers the metrics endpoint in the format the `Accept` header prefers
/// (Prometheus text or OpenMetrics), gzipped when `Accept-Encoding` allows.
async fn scrape(state: &Arc<HttpState>, headers: &hyper::HeaderMap) -> Response<Body> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = Format::negotiate(header(hyper::header::ACCEPT));
    let gzip = compress::accepts_gzip(header(hyper::header::ACCEPT_ENCODING));
    let s = state.clone();
    // Encoding is CPU work: keep it off the threads that serve sockets.
    let encoded = tokio::task::spawn_blocking(move || {
        let text = s.metrics.encode();
        let body = match format {
            Format::Text => text,
            Format::OpenMetrics => openmetrics::to_openmetrics(&text),
        };
        if gzip { compress::gzip(&body) } else { body }
    })
    .await;
    let body = match encoded {
        Ok(body) => body,
        Err(e) => {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("encoding failed: {e}\n"),
            );
        }
    };
    let (content_type, format_label) = match format {
        Format::Text => (TEXT_FORMAT, "text"),
        Format::OpenMetrics => (openmetrics::OPENMETRICS_FORMAT, "openmetrics"),
    };
    let mut r = respond(StatusCode::OK, content_type, body);
    r.headers_mut().insert(
        hyper::header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        r.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    state
        .conns
        .scraped(format_label, if gzip { "gzip" } else { "identity" });
    r
}

async fn reload(state: &HttpState, method: &Method) -> Response<Body> {
    let Some(tx) = &state.reload else {
        return respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "Lifecycle API is not enabled (--web.enable-lifecycle).\n",
        );
    };
    if method != Method::POST && method != Method::PUT {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST\n");
    }
    let (done, result) = tokio::sync::oneshot::channel();
    if tx.send(done).await.is_err() {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n",
        );
    }
    match result.await {
        Ok(Ok(())) => respond(StatusCode::OK, "text/plain", "reloaded\n"),
        Ok(Err(e)) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("failed to reload config:\n{e}\n"),
        ),
        Err(_) => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n",
        ),
    }
}

/// The web server's service: answers with [`handle`], and records that
/// the connection sent a request.
#[derive(Clone)]
struct WebService {
    state: Arc<HttpState>,
    slot: Arc<Slot>,
}

impl hyper::service::Service<Request<Incoming>> for WebService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>,
    >;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.slot.request();
        let state = self.state.clone();
        Box::pin(async move {
            let r = handle(state, req).await;
            drop(in_flight);
            Ok(r)
        })
    }
}

/// Serves HTTP on `listener` until shutdown, then lets open requests
/// finish (for at most 5 seconds). Connections are bounded by
/// [`HttpState::limits`]: over the cap they are closed at once, and each
/// must send its request head in time ([`super::conns`]).
pub async fn serve(listener: TcpListener, state: Arc<HttpState>, mut shutdown: Shutdown) {
    let limits = state.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let mut errors = AcceptErrors::new(
        "web",
        state
            .metrics
            .ingest
            .accept_errors
            .with_label_values(&["web"]),
    );
    let over_limit = state.conns.closed(Closed::Limit);
    let mut conns = JoinSet::new();
    let mut slots = Slots::default();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    errors.succeeded();
                    // Connections that ended but were not reaped yet must
                    // not count against the cap.
                    while conns.try_join_next().is_some() {}
                    if slots.open() >= limits.max_connections {
                        let Some(victim) = slots.evict_idlest() else {
                            over_limit.inc();
                            errors.over_limit(limits.max_connections);
                            continue;
                        };
                        // Its descriptor is freed before another is taken
                        // (it closes at once: no request is under way).
                        let _ = tokio::time::timeout(EVICTION_WAIT, victim.gone()).await;
                    }
                    let slot = Slot::new();
                    slots.push(slot.clone());
                    conns.spawn(connection(stream, slot, state.clone(), builder.clone(), shutdown.clone()));
                }
                // Out of file descriptors and the like: back off, counted.
                Err(e) => errors.back_off(&e).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// Longest the accept loop waits for an evicted connection to close.
const EVICTION_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest request head (request line and headers) read, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves one connection (after its TLS handshake, if any) and counts how
/// it ended.
async fn connection(
    stream: TcpStream,
    slot: Arc<Slot>,
    state: Arc<HttpState>,
    builder: auto::Builder<TokioExecutor>,
    shutdown: Shutdown,
) {
    let _open = state.conns.opened();
    struct Ended(Arc<Slot>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.end();
        }
    }
    let _ended = Ended(slot.clone());
    let timeout = state.limits.read_header_timeout;
    let accepted = tokio::time::Instant::now();
    let stream = Tracked::new(stream);
    let last_read = stream.last_read.clone();
    let closed = match state.web.tls.clone() {
        None => {
            drive(
                stream, last_read, accepted, slot, &state, &builder, shutdown,
            )
            .await
        }
        Some(acceptor) => {
            // The handshake counts against the time to the first request,
            // and a connection still shaking hands may make room too.
            let handshake = tokio::time::timeout_at(accepted + timeout, acceptor.accept(stream));
            let evicted = slot.clone();
            let shaken = tokio::select! {
                r = handshake => r,
                _ = evicted.evicted() => return state.conns.closed(Closed::Evicted).inc(),
            };
            match shaken {
                Ok(Ok(tls)) => {
                    drive(tls, last_read, accepted, slot, &state, &builder, shutdown).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    Closed::Error
                }
                Err(_) => Closed::Timeout,
            }
        }
    };
    state.conns.closed(closed).inc();
}

/// Runs hyper on one connection: dropped if no request arrives within the
/// timeout of being accepted, closed gracefully when it reads nothing for
/// the timeout (hyper itself times out a request head that is slow to
/// come), or when the exporter shuts down.
async fn drive<I>(
    io: I,
    last_read: Arc<LastRead>,
    accepted: tokio::time::Instant,
    slot: Arc<Slot>,
    state: &Arc<HttpState>,
    builder: &auto::Builder<TokioExecutor>,
    mut shutdown: Shutdown,
) -> Closed
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = state.limits.read_header_timeout;
    let service = WebService {
        state: state.clone(),
        slot: slot.clone(),
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing: Option<Closed> = None;
    loop {
        let wake = if slot.requested() {
            tokio::time::Instant::from_std(last_read.get() + timeout)
        } else {
            accepted + timeout
        };
        tokio::select! {
            r = conn.as_mut() => {
                return match (r, closing) {
                    (Err(e), _) if is_timeout(e.as_ref()) => Closed::Timeout,
                    (Err(e), _) => {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                        Closed::Error
                    }
                    (Ok(()), Some(why)) => why,
                    (Ok(()), None) => Closed::Eof,
                };
            }
            _ = shutdown.wait(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Closed::Shutdown);
            }
            _ = slot.evicted(), if closing.is_none() => {
                if !slot.requested() {
                    return Closed::Evicted;
                }
                conn.as_mut().graceful_shutdown();
                closing = Some(Closed::Evicted);
            }
            _ = tokio::time::sleep_until(wake), if closing.is_none() => {
                if !slot.requested() {
                    // No request in time, so none is under way: dropped.
                    return Closed::Timeout;
                }
                if last_read.get() + timeout <= std::time::Instant::now() {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Closed::Timeout);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":9877").unwrap(),
            "0.0.0.0:9877".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::1]:0").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert!(parse_listen_address("localhost").is_err());
        // A host name resolves; localhost to its IPv4 loopback.
        assert_eq!(
            parse_listen_address("localhost:9877").unwrap(),
            "127.0.0.1:9877".parse().unwrap()
        );
        for bad in [
            "localhost:",
            "localhost:99999",
            "http://localhost:9877",
            "local host:9877",
            ":x",
            "no-such-host.invalid:9877",
        ] {
            assert_eq!(
                parse_listen_address(bad),
                Err(ListenAddressError(bad.into())),
                "{bad}"
            );
        }
        assert!(html_escape("<a&\"").contains("&lt;a&amp;&quot;"));
    }
}
