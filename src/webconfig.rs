//! `--web.config.file`: TLS, client certificates and basic authentication
//! for the HTTP server, in the file format of the Prometheus exporter
//! toolkit (so the same file, and `promtool check web-config`, work).
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: ca.crt
//!   min_version: TLS12                             # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...                         # bcrypt hash
//! http_server_config:
//!   headers:
//!     X-Content-Type-Options: nosniff
//! ```
//!
//! The file is read once at start-up; relative paths are relative to it.
//! Unknown keys, and toolkit keys this exporter does not implement
//! (`cipher_suites`, `curve_preferences`, `client_allowed_sans`, ...), are
//! errors rather than silently ignored security settings.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// The loaded web configuration.
#[derive(Clone)]
pub struct WebConfig {
    /// Present when TLS is configured.
    pub tls: Option<TlsAcceptor>,
    users: Arc<HashMap<String, String>>,
    /// Extra response headers.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    cache: Arc<AuthCache>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    http_server_config: Option<HttpFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: String,
    key_file: String,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    http2: Option<bool>,
}

/// Remembers recent successful logins, so that bcrypt (slow on purpose)
/// runs once per credential rather than once per scrape. Keys are keyed
/// hashes of user and password, never the password itself. Bounds the
/// bcrypt checks under way, so that a flood of wrong passwords takes at
/// most [`BCRYPT_CHECKS`] threads and cannot slow a cached login.
struct AuthCache {
    hasher: std::collections::hash_map::RandomState,
    ok: Mutex<Vec<u64>>,
    bcrypt: Arc<tokio::sync::Semaphore>,
    counters: std::sync::OnceLock<AuthCounters>,
}

const AUTH_CACHE: usize = 64;

/// bcrypt checks run at once per server; more attempts are refused
/// unchecked (HTTP 429) until one ends.
pub const BCRYPT_CHECKS: usize = 2;

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No users are configured, or the credentials are right.
    Allowed,
    /// Missing, malformed or wrong credentials (HTTP 401).
    Denied,
    /// Not checked: [`BCRYPT_CHECKS`] checks are already under way
    /// (HTTP 429).
    Busy,
}

/// `model_exporter_http_auth_total{listener,result}`: credential checks
/// of the HTTP servers by outcome. Made once per registry and shared by
/// every server's [`WebConfig`] through [`WebConfig::count_into`].
#[derive(Clone, Debug)]
pub struct AuthMetrics(prometheus::IntCounterVec);

impl AuthMetrics {
    /// Creates the family and registers it into `registry`.
    ///
    /// # Errors
    /// When `registry` already holds its name.
    pub fn new(registry: &prometheus::Registry) -> prometheus::Result<AuthMetrics> {
        let v = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "model_exporter_http_auth_total",
                "Basic-authentication checks of the HTTP servers, by listener and result: cached (a recent login, no bcrypt), ok and denied (bcrypt ran, or the header was missing or malformed), busy (refused unchecked: too many checks under way).",
            ),
            &["listener", "result"],
        )?;
        registry.register(Box::new(v.clone()))?;
        Ok(AuthMetrics(v))
    }
}

/// One server's handles of [`AuthMetrics`].
#[derive(Debug)]
struct AuthCounters {
    cached: prometheus::IntCounter,
    ok: prometheus::IntCounter,
    denied: prometheus::IntCounter,
    busy: prometheus::IntCounter,
}

impl AuthCache {
    fn key(&self, user: &str, password: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(user.as_bytes());
        h.write_u8(0);
        h.write(password.as_bytes());
        h.finish()
    }
}

impl WebConfig {
    /// No TLS, no authentication.
    pub fn open() -> WebConfig {
        WebConfig {
            tls: None,
            users: Arc::default(),
            headers: Vec::new(),
            cache: Arc::new(AuthCache {
                hasher: Default::default(),
                ok: Mutex::default(),
                bcrypt: Arc::new(tokio::sync::Semaphore::new(BCRYPT_CHECKS)),
                counters: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Counts this server's checks into `metrics` under `listener` (every
    /// result shown from the start, at zero) when users are configured.
    /// Only the first call takes effect.
    pub fn count_into(&self, metrics: &AuthMetrics, listener: &str) {
        if !self.needs_auth() {
            return;
        }
        let c = |result: &str| metrics.0.with_label_values(&[listener, result]);
        let _ = self.cache.counters.set(AuthCounters {
            cached: c("cached"),
            ok: c("ok"),
            denied: c("denied"),
            busy: c("busy"),
        });
    }

    fn count(&self, f: impl FnOnce(&AuthCounters) -> &prometheus::IntCounter) {
        if let Some(c) = self.cache.counters.get() {
            f(c).inc();
        }
    }

    /// Loads and checks a web configuration file.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let file_name = path.display().to_string();
        let file = file_name.clone();
        let text = std::fs::read_to_string(path)
            .map_err(|source| WebConfigError::Read { file, source })?;
        let parsed: File = serde_yaml::from_str(&text).map_err(|e| WebConfigError::Syntax {
            file: file_name.clone(),
            at: e.location().map(|l| (l.line(), l.column())),
            message: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut config = WebConfig::open();
        if let Some(tls) = parsed.tls_server_config {
            config.tls = Some(
                tls_acceptor(&tls, dir).map_err(|error| WebConfigError::Tls {
                    file: file_name.clone(),
                    error,
                })?,
            );
        }
        let mut users = HashMap::new();
        for (user, hash) in parsed.basic_auth_users.unwrap_or_default() {
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                return Err(WebConfigError::NotBcrypt {
                    file: file_name,
                    user,
                });
            }
            users.insert(user, hash);
        }
        config.users = Arc::new(users);
        if let Some(http) = parsed.http_server_config {
            for (k, v) in http.headers {
                let k2 = hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    WebConfigError::HeaderName {
                        file: file_name.clone(),
                        name: k.clone(),
                    }
                })?;
                let v2 = hyper::header::HeaderValue::from_str(&v).map_err(|_| {
                    WebConfigError::HeaderValue {
                        file: file_name.clone(),
                        name: k.clone(),
                    }
                })?;
                config.headers.push((k2, v2));
            }
            let _ = http.http2;
        }
        Ok(config)
    }

    /// Whether requests must authenticate.
    pub fn needs_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether a request with these headers may pass; allowed when no
    /// users are configured. A login in the cache passes at once; otherwise
    /// bcrypt (slow on purpose) runs on the blocking pool, off the threads
    /// that serve sockets, and at most [`BCRYPT_CHECKS`] at once: past
    /// that the request is [`Auth::Busy`] without being checked.
    pub async fn check(&self, headers: &hyper::HeaderMap) -> Auth {
        if !self.needs_auth() {
            return Auth::Allowed;
        }
        let credentials = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic);
        let Some((user, password)) = credentials else {
            self.count(|c| &c.denied);
            return Auth::Denied;
        };
        if self.cached(&user, &password) {
            self.count(|c| &c.cached);
            return Auth::Allowed;
        }
        let Ok(permit) = self.cache.bcrypt.clone().try_acquire_owned() else {
            self.count(|c| &c.busy);
            return Auth::Busy;
        };
        let web = self.clone();
        let ok = tokio::task::spawn_blocking(move || web.verify(&user, &password))
            .await
            .unwrap_or(false);
        // Held until the blocking thread is done, so that the next check
        // finds it idle rather than starting another.
        drop(permit);
        self.count(|c| if ok { &c.ok } else { &c.denied });
        if ok { Auth::Allowed } else { Auth::Denied }
    }

    /// Checks an `Authorization` header value against the users, on the
    /// calling thread and without the bound of [`WebConfig::check`].
    pub fn authorized(&self, header: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        self.cached(&user, &password) || self.verify(&user, &password)
    }

    /// Whether this login succeeded recently (no bcrypt).
    fn cached(&self, user: &str, password: &str) -> bool {
        if !self.users.contains_key(user) {
            return false;
        }
        let key = self.cache.key(user, password);
        self.cache
            .ok
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
    }

    /// Runs bcrypt, and remembers a success.
    fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            // Spend the time a real check takes, so that unknown users
            // cannot be told from wrong passwords by timing.
            let _ = bcrypt::verify(
                password,
                "$2y$10$ZJ5K6nNUv0QdOvKdmdYu8eq1tJyxT5pGxGpAgKu6m7p0K0mYgq9Ga",
            );
            return false;
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let key = self.cache.key(user, password);
            let mut cache = self.cache.ok.lock().unwrap_or_else(|e| e.into_inner());
            if !cache.contains(&key) {
                if cache.len() >= AUTH_CACHE {
                    cache.remove(0);
                }
                cache.push(key);
            }
        }
        ok
    }
}

/// `Basic base64(user:password)` -> (user, password).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, b64) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(b64.trim())?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Decodes standard base64 (padding optional); `None` when it is not base64.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
        if chunk.len() == 1 {
            return None;
        }
    }
    Some(out)
}

/// Why a web configuration file (`--web.config.file`) did not load. Each
/// message starts with the file's path, and with line and column where the
/// YAML says where.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file's path.
        file: String,
        /// The read error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has a key this format does not know.
    #[error("{file}{}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        /// The file's path.
        file: String,
        /// Line and column, when the parser knows them.
        at: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// `tls_server_config` cannot make a TLS server.
    #[error("{file}: {error}")]
    Tls {
        /// The file's path.
        file: String,
        /// What is wrong with the TLS settings.
        error: TlsError,
    },
    /// A `basic_auth_users` entry is not a bcrypt hash.
    #[error(
        "{file}: basic_auth_users.{user}: not a bcrypt hash (expected $2y$..., e.g. from htpasswd -nBC 10)"
    )]
    NotBcrypt {
        /// The file's path.
        file: String,
        /// The user whose entry is wrong.
        user: String,
    },
    /// A response header name is not a valid HTTP header name.
    #[error("{file}: http_server_config.headers: invalid header name {name:?}")]
    HeaderName {
        /// The file's path.
        file: String,
        /// The name as written.
        name: String,
    },
    /// A response header value is not a valid HTTP header value.
    #[error("{file}: http_server_config.headers.{name}: invalid value")]
    HeaderValue {
        /// The file's path.
        file: String,
        /// The header whose value is wrong.
        name: String,
    },
}

/// What is wrong with `tls_server_config`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or parsed.
    #[error("tls_server_config.{field} {path}: {message}")]
    File {
        /// The key that names the file (`cert_file`, `key_file`, `client_ca_file`).
        field: &'static str,
        /// The path as resolved against the web config's directory.
        path: String,
        /// What reading or parsing it said.
        message: String,
    },
    /// `cert_file` holds no certificate.
    #[error("tls_server_config.cert_file {0}: no certificate")]
    NoCertificate(String),
    /// The min/max versions ask for something other than TLS 1.2 and 1.3.
    #[error(
        "tls_server_config: unsupported TLS versions min {min:?} max {max:?} (TLS12 and TLS13 are supported)"
    )]
    Versions {
        /// `min_version` as written.
        min: Option<String>,
        /// `max_version` as written.
        max: Option<String>,
    },
    /// A client-verifying `client_auth_type` without `client_ca_file`.
    #[error("tls_server_config: client_auth_type {0} needs client_ca_file")]
    NeedsClientCa(String),
    /// An unknown `client_auth_type`.
    #[error(
        "tls_server_config.client_auth_type {0:?} is not supported (NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
    )]
    ClientAuthType(String),
    /// rustls refused the settings (key and certificate do not match, ...).
    #[error("tls_server_config: {0}")]
    Rejected(String),
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    dir.join(p)
}

fn tls_acceptor(tls: &TlsFile, dir: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert_path = resolve(dir, &tls.cert_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| TlsError::File {
            field: "cert_file",
            path: cert_path.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.display().to_string()));
    }
    let key_path = resolve(dir, &tls.key_file);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::File {
        field: "key_file",
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        match (tls.min_version.as_deref(), tls.max_version.as_deref()) {
            (None | Some("TLS12"), None | Some("TLS13")) => {
                vec![&rustls::version::TLS13, &rustls::version::TLS12]
            }
            (Some("TLS13"), None | Some("TLS13")) => vec![&rustls::version::TLS13],
            (None | Some("TLS12"), Some("TLS12")) => vec![&rustls::version::TLS12],
            (min, max) => {
                return Err(TlsError::Versions {
                    min: min.map(str::to_string),
                    max: max.map(str::to_string),
                });
            }
        };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    let auth = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = tls
                .client_ca_file
                .as_deref()
                .ok_or_else(|| TlsError::NeedsClientCa(auth.to_string()))?;
            let ca_path = resolve(dir, ca);
            let mut roots = RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(&ca_path).map_err(|e| ca_file_error(&ca_path, e))?
            {
                let c = c.map_err(|e| ca_file_error(&ca_path, e))?;
                roots.add(c).map_err(|e| ca_file_error(&ca_path, e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if auth == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Rejected(e.to_string()))?,
            )
        }
        other => {
            return Err(TlsError::ClientAuthType(other.to_string()));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn ca_file_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        field: "client_ca_file",
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header_parsing() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6czNjcjN0OmV4dHJh"),
            Some(("alice".into(), "s3cr3t:extra".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("YWJj"), Some(b"abc".to_vec()));
    }

    #[test]
    fn users_are_checked_with_bcrypt_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        let c = WebConfig::load(&path).unwrap();
        assert!(c.needs_auth());
        let header = |u: &str, p: &str| {
            let raw = format!("{u}:{p}");
            // A tiny base64 encoder for the test.
            const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = String::new();
            for c in raw.as_bytes().chunks(3) {
                let n = (u32::from(c[0]) << 16)
                    | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*c.get(2).unwrap_or(&0));
                for i in 0..4 {
                    if i <= c.len() {
                        s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                    } else {
                        s.push('=');
                    }
                }
            }
            format!("Basic {s}")
        };
        assert!(c.authorized(Some(&header("alice", "s3cret"))));
        assert!(
            c.authorized(Some(&header("alice", "s3cret"))),
            "from the cache"
        );
        assert!(!c.authorized(Some(&header("alice", "wrong"))));
        assert!(!c.authorized(Some(&header("bob", "s3cret"))));
        assert!(!c.authorized(None));
        assert!(WebConfig::open().authorized(None));
    }

    #[test]
    fn bad_files_are_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("basic_auth_users:\n  alice: plain\n", "not a bcrypt hash"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
                "web.yml:4:3: ",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: k\n",
                "missing.crt",
            ),
            ("unknown: 1\n", "web.yml:1:1: unknown field `unknown`"),
        ];
        for (text, want) in cases {
            let path = dir.path().join("web.yml");
            std::fs::write(&path, text).unwrap();
            let e = WebConfig::load(&path).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
