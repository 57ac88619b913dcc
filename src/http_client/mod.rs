//! The one HTTP client of the exporter's own requests: `model-exporter
//! report`, `loadgen --metrics-url` and the Alertmanager notifier.
//!
//! It is hyper-util's pooled client over a connector that adds rustls for
//! `https://` URLs, with a connect timeout (TCP and TLS handshake), a
//! timeout of the whole request, a bound on the response body, and an
//! `Authorization` header (basic auth or a bearer token) on every request.
//! Idle pooled connections are dropped after [`POOL_IDLE`], below the
//! keep-alive timeouts servers commonly close idle connections at (this
//! exporter's own `--web.read-header-timeout`, 10 s by default), and a
//! request that a server ended by closing a kept-alive connection without
//! an answer is sent once more on a new connection.
//! Its settings come from a Prometheus-style `http_config` file
//! ([`config`]) or from flags that fill the same [`HttpClientConfig`].

pub mod config;
mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use config::{ConfigFileError, HttpClientConfig};

/// How long a connection stays in the pool unused. A server may close an
/// idle kept-alive connection at any moment; a request sent on it just then
/// is lost. Shorter than the 10 s after which this exporter's web server
/// closes an idle connection, and than Go's and nginx's defaults.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

/// How a client behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Longest wait for a connection, TLS handshake included.
    pub connect_timeout: Duration,
    /// Longest wait for a whole request: connecting, sending, and reading
    /// the response.
    pub request_timeout: Duration,
    /// Largest response body read; a longer one is an error.
    pub max_body_bytes: usize,
    /// Authentication and TLS.
    pub config: HttpClientConfig,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024 * 1024,
            config: HttpClientConfig::default(),
        }
    }
}

/// Why a client could not be made from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file named in the settings could not be read.
    #[error("{what} {}: {source}", path.display())]
    Read {
        /// The setting naming the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key file holds no usable PEM.
    #[error("{what} {}: {reason}", path.display())]
    Pem {
        /// The setting naming the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the TLS settings.
    #[error("tls_config: {0}")]
    Tls(#[source] rustls::Error),
    /// `server_name` is not a DNS name or an IP address.
    #[error("tls_config.server_name {0:?} is not a host name or IP address")]
    ServerName(String),
    /// Credentials that cannot go into an HTTP header.
    #[error("{0}: not usable in an HTTP header (control characters?)")]
    Header(&'static str),
    /// The configuration file was refused.
    #[error(transparent)]
    Config(#[from] ConfigFileError),
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection (refused, unreachable, TLS handshake failed, ...).
    #[error("cannot connect to {authority}: {reason}")]
    Connect {
        /// `host:port` of the URL.
        authority: String,
        /// Why, with every cause.
        reason: String,
    },
    /// No complete answer within the request timeout.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The request timeout.
        timeout: Duration,
    },
    /// The connection failed during the exchange.
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why, with every cause.
        reason: String,
    },
    /// The response body is longer than the client reads.
    #[error("{url}: the response is longer than {limit} bytes")]
    TooLong {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered {status}{}", status_hint(*status))]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
}

fn status_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => ": wrong or missing credentials",
        StatusCode::FORBIDDEN => ": these credentials are not allowed",
        _ => "",
    }
}

/// An answer: its status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The body, at most [`ClientOptions::max_body_bytes`].
    pub body: Bytes,
}

/// The client; cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    authorization: Option<HeaderValue>,
    request_timeout: Duration,
    max_body_bytes: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("authorization", &self.authorization.is_some())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with these settings; reads the credentials, CA, certificate
    /// and key files now, so that a mistake shows at start-up.
    pub fn new(options: &ClientOptions) -> Result<HttpClient, ClientError> {
        let config = &options.config;
        let tls = tls::build(&config.tls_config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let connector = Connector {
            http,
            tls: Arc::new(tls),
            handshake_timeout: options.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Ok(HttpClient {
            client,
            authorization: authorization(config)?,
            request_timeout: options.request_timeout,
            max_body_bytes: options.max_body_bytes,
        })
    }

    /// GETs `url`; the body of a 2xx answer.
    pub async fn get(&self, url: &str) -> Result<Bytes, RequestError> {
        let uri = parse_url(url)?;
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        let r = self.send(req).await?;
        if r.status.is_success() {
            Ok(r.body)
        } else {
            Err(status_error(url, &r))
        }
    }

    /// POSTs `body` to `uri`; the answer, whatever its status.
    pub async fn post(
        &self,
        uri: &Uri,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<Response, RequestError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri.clone();
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.send(req).await
    }

    /// Sends `req` with the credentials and a `User-Agent`, within the
    /// request timeout; the answer, whatever its status.
    ///
    /// If the server closes the connection without an answer (a kept-alive
    /// connection it closed as idle just as the request went out), the
    /// request is sent once more, on a new connection. The exporter's own
    /// requests (reading /metrics, posting alerts, which Alertmanager
    /// de-duplicates) can be repeated safely.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response, RequestError> {
        let again = copy(&req);
        match self.send_once(req).await {
            Err(RequestError::Http { ref reason, .. }) if reason.contains(CLOSED_UNANSWERED) => {
                self.send_once(again).await
            }
            r => r,
        }
    }

    async fn send_once(&self, mut req: Request<Full<Bytes>>) -> Result<Response, RequestError> {
        let url = req.uri().to_string();
        if let Ok(ua) = HeaderValue::from_str(&format!("model-exporter/{}", crate::VERSION)) {
            req.headers_mut().entry(USER_AGENT).or_insert(ua);
        }
        if let Some(a) = &self.authorization {
            req.headers_mut().insert(AUTHORIZATION, a.clone());
        }
        let authority = req
            .uri()
            .authority()
            .map_or_else(String::new, |a| a.to_string());
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let reason = causes(&e);
                if e.is_connect() {
                    RequestError::Connect {
                        authority: authority.clone(),
                        reason,
                    }
                } else {
                    RequestError::Http {
                        url: url.clone(),
                        reason,
                    }
                }
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), self.max_body_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        RequestError::TooLong {
                            url: url.clone(),
                            limit: self.max_body_bytes,
                        }
                    } else {
                        RequestError::Http {
                            url: url.clone(),
                            reason: causes(&*e),
                        }
                    }
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout {
                url,
                timeout: self.request_timeout,
            }),
        }
    }
}

/// The error of a non-2xx answer to `url`.
pub fn status_error(url: &str, r: &Response) -> RequestError {
    let text = String::from_utf8_lossy(&r.body);
    RequestError::Status {
        url: url.to_owned(),
        status: r.status,
        body: text.trim().chars().take(200).collect(),
    }
}

/// Parses an absolute `http://` or `https://` URL.
pub fn parse_url(url: &str) -> Result<Uri, RequestError> {
    let bad = |reason: &str| RequestError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.trim().parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(s) => return Err(bad(&format!("scheme {s:?} is not http or https"))),
        None => return Err(bad("no scheme (expected e.g. http://127.0.0.1:9877)")),
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() => {}
        _ => return Err(bad("no host")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad(
            "credentials in the URL are not supported; use basic_auth",
        ));
    }
    Ok(uri)
}

/// The `Authorization` header of `config`, if it has credentials.
fn authorization(config: &HttpClientConfig) -> Result<Option<HeaderValue>, ClientError> {
    let read = |what: &'static str, s: &config::Secret| {
        s.read().map_err(|source| ClientError::Read {
            what,
            path: match s {
                config::Secret::File(p) => p.clone(),
                config::Secret::Inline(_) => PathBuf::new(),
            },
            source,
        })
    };
    let value = if let Some(b) = &config.basic_auth {
        let password = match &b.password {
            Some(p) => read("basic_auth.password_file", p)?,
            None => String::new(),
        };
        format!(
            "Basic {}",
            base64(format!("{}:{password}", b.username).as_bytes())
        )
    } else if let Some(a) = &config.authorization {
        let credentials = read("authorization.credentials_file", &a.credentials)?;
        format!("{} {credentials}", a.kind)
    } else {
        return Ok(None);
    };
    let mut v = HeaderValue::from_str(&value).map_err(|_| ClientError::Header("credentials"))?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An error and its causes, `: `-separated, without hyper-util's generic
/// outer message.
/// hyper's words for a connection the server closed before it answered.
const CLOSED_UNANSWERED: &str = "connection closed before message completed";

/// A copy of `req` to send again: method, URI, version, headers and body.
fn copy(req: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut c = Request::new(req.body().clone());
    *c.method_mut() = req.method().clone();
    *c.uri_mut() = req.uri().clone();
    *c.version_mut() = req.version();
    *c.headers_mut() = req.headers().clone();
    c
}

fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    if parts.len() > 1 && parts[0].starts_with("client error") {
        parts.remove(0);
    }
    parts.dedup();
    parts.join(": ")
}

/// TCP, plus TLS for `https://`.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Arc<tls::Tls>,
    handshake_timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        let timeout = self.handshake_timeout;
        Box::pin(async move {
            let tcp = connecting.await?;
            if !https {
                return Ok(Stream::Plain(tcp));
            }
            if !tls.can_verify {
                return Err(format!(
                    "no CA certificates to verify {host} with: give tls_config.ca_file (--ca-file), or install the system's CA bundle"
                )
                .into());
            }
            let name = match &tls.server_name {
                Some(n) => n.clone(),
                None => ServerName::try_from(host.clone())
                    .map_err(|_| format!("{host:?} is not a valid TLS server name"))?,
            };
            let handshake = TlsConnector::from(tls.config.clone()).connect(name, tcp.into_inner());
            let stream = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| format!("TLS handshake with {host} timed out after {timeout:?}"))?
                .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
            Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client for code without a runtime (`loadgen`): each call runs on a
/// small runtime of its own.
pub struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
}

impl BlockingClient {
    /// A client with these settings (see [`HttpClient::new`]).
    pub fn new(options: &ClientOptions) -> Result<BlockingClient, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ClientError::Read {
                what: "runtime",
                path: PathBuf::new(),
                source,
            })?;
        let client = {
            let _guard = runtime.enter();
            HttpClient::new(options)?
        };
        Ok(BlockingClient { runtime, client })
    }

    /// [`HttpClient::get`], waiting for it.
    pub fn get(&self, url: &str) -> Result<Bytes, RequestError> {
        self.runtime.block_on(self.client.get(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn base64_matches_the_rfc() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn credentials_become_one_header() {
        let c = HttpClientConfig::parse("x", "basic_auth: {username: alice, password: s3cret}\n")
            .unwrap();
        let h = authorization(&c).unwrap().unwrap();
        assert_eq!(h.to_str().unwrap(), "Basic YWxpY2U6czNjcmV0");
        assert!(h.is_sensitive());
        let c = HttpClientConfig::parse("x", "authorization: {credentials: abc}\n").unwrap();
        assert_eq!(authorization(&c).unwrap().unwrap(), "Bearer abc");
        assert!(
            authorization(&HttpClientConfig::default())
                .unwrap()
                .is_none()
        );
        let c = HttpClientConfig::parse(
            "x",
            "basic_auth: {username: a, password_file: /nonexistent/pw}\n",
        )
        .unwrap();
        let e = authorization(&c).unwrap_err().to_string();
        assert!(
            e.starts_with("basic_auth.password_file /nonexistent/pw: "),
            "{e}"
        );
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(parse_url("http://127.0.0.1:9877/metrics").is_ok());
        assert!(parse_url("https://exporter:9877").is_ok());
        for bad in [
            "127.0.0.1:9877",
            "ftp://x",
            "http://",
            "http://u:p@x",
            "not a url",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid URL"), "{bad}: {e}");
        }
    }

    /// A server that answers the first request of each connection and
    /// closes the connection, unanswered, when a second request arrives on
    /// it: what a server closing an idle kept-alive connection does to a
    /// request sent just then.
    async fn closes_kept_alive_connections() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                    // The next request on this connection is not answered.
                    let _ = s.read(&mut buf).await;
                });
            }
        });
        (addr, connections)
    }

    #[tokio::test]
    async fn a_request_the_server_closed_unanswered_is_sent_again_on_a_new_connection() {
        let (addr, connections) = closes_kept_alive_connections().await;
        let client = HttpClient::new(&ClientOptions::default()).unwrap();
        let url = format!("http://{addr}/metrics");
        assert_eq!(&client.get(&url).await.unwrap()[..], b"ok");
        // The pooled connection is reused, closed unanswered, and the
        // request goes again on a second connection.
        assert_eq!(&client.get(&url).await.unwrap()[..], b"ok");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_and_bad_files_are_reported() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = HttpClient::new(&ClientOptions::default()).unwrap();
        let e = client.get(&format!("http://{closed}/")).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot connect to {closed}: ")),
            "{e}"
        );
        let mut options = ClientOptions::default();
        options.config.tls_config.ca_file = Some("/nonexistent/ca.crt".into());
        let e = HttpClient::new(&options).unwrap_err().to_string();
        assert!(
            e.starts_with("tls_config.ca_file /nonexistent/ca.crt: "),
            "{e}"
        );
    }
}
