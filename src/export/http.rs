//! The HTTP server: `/metrics`, health and readiness, and a landing page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Content type of the Prometheus text exposition format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A request to reload the rules, answered with the outcome.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), crate::config::ConfigErrors>>;

/// What every request handler shares.
pub struct HttpState {
    /// What the rule evaluator (each shard's) last published.
    pub api: super::api::ApiView,
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
    if !state.web.check(req.headers()).await {
        let mut r = respond(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n");
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"model-exporter\""),
        );
        return r;
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
        let s = state.clone();
        // Encoding is CPU work: keep it off the threads that serve sockets.
        return match tokio::task::spawn_blocking(move || s.metrics.encode()).await {
            Ok(body) => respond(StatusCode::OK, TEXT_FORMAT, body),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("encoding failed: {e}\n"),
            ),
        };
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
        _ => match state.api.json(path) {
            Some(mut body) => {
                if path == "/api/v1/summary" {
                    // What client libraries dropped, for the dashboard's badge.
                    body["data"]["client_drops"] = state.metrics.client_drops_json();
                }
                respond(StatusCode::OK, "application/json", body.to_string())
            }
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        },
    }
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

/// Serves HTTP on `listener` until shutdown, then lets open requests finish.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>, mut shutdown: Shutdown) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let st = state.clone();
        let service = service_fn(move |req| {
            let state = st.clone();
            async move { Ok::<_, Infallible>(handle(state, req).await) }
        });
        match state.web.tls.clone() {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // A client that never finishes its handshake is dropped.
                    let tls = match tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "HTTPS connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
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
