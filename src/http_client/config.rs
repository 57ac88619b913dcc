//! The client's configuration file: the part of Prometheus' `http_config`
//! that an exporter's own clients need, in the same YAML shape, so that a
//! block copied from `prometheus.yml` (a scrape job's or an
//! `alertmanager_config`'s) works here unchanged.
//!
//! ```yaml
//! basic_auth:
//!   username: prometheus
//!   password_file: /etc/secrets/password   # or password: ...
//! authorization:                           # instead of basic_auth
//!   type: Bearer                           # the default
//!   credentials_file: /etc/secrets/token   # or credentials: ...
//! tls_config:
//!   ca_file: ca.crt                        # instead of the system's CAs
//!   cert_file: client.crt                  # a client certificate ...
//!   key_file: client.key                   # ... and its key
//!   server_name: exporter.example          # the name the certificate must show
//!   insecure_skip_verify: false
//!   min_version: TLS12                     # or TLS13; max_version too
//! ```
//!
//! Relative paths are relative to the file. Unknown keys, and keys of
//! Prometheus' `http_config` that are not implemented (`oauth2`,
//! `proxy_url`, ...), are errors with their line and column, as are
//! settings that contradict each other (`password` and `password_file`).

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// How the client authenticates and checks servers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpClientConfig {
    /// `Authorization: Basic ...`.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: TYPE CREDENTIALS`, e.g. a bearer token.
    pub authorization: Option<Authorization>,
    /// How servers are verified and how the client identifies itself.
    pub tls_config: TlsConfig,
}

/// `basic_auth`.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password, if any.
    pub password: Option<Secret>,
}

/// `authorization`.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// The scheme, `Bearer` unless given.
    pub kind: String,
    /// The credentials after the scheme.
    pub credentials: Secret,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// CA certificates (PEM) that servers' certificates must chain to,
    /// instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The client's certificate (PEM) and its private key.
    pub client_cert: Option<ClientCert>,
    /// The name servers' certificates must be valid for, and sent as SNI,
    /// instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate (for tests only: anyone in between
    /// can read and change the traffic).
    pub insecure_skip_verify: bool,
    /// The oldest TLS version accepted (`TLS12` unless given).
    pub min_version: Option<TlsVersion>,
    /// The newest TLS version offered (`TLS13` unless given).
    pub max_version: Option<TlsVersion>,
}

/// A client certificate and its key, both PEM files.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    /// The certificate chain.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A password or token: given inline, or read from a file (whose
/// surrounding white space is dropped, as Prometheus does).
#[derive(Clone, PartialEq)]
pub enum Secret {
    /// The value itself.
    Inline(String),
    /// A file holding it.
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Secret(<hidden>)"),
            Secret::File(p) => f.debug_tuple("SecretFile").field(p).finish(),
        }
    }
}

impl Secret {
    /// The value, read from its file if it has one.
    pub fn read(&self) -> std::io::Result<String> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(p) => Ok(std::fs::read_to_string(p)?.trim().to_owned()),
        }
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Line of the problem, from 1 (0: the whole file).
        line: usize,
        /// Column of the problem, from 1 (0: the whole file).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl HttpClientConfig {
    /// Reads and checks a configuration file; relative paths in it are
    /// made relative to its directory.
    pub fn load(path: &Path) -> Result<HttpClientConfig, ConfigFileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            file: file.clone(),
            source,
        })?;
        let mut config = Self::parse(&file, &text)?;
        config.resolve(path.parent().unwrap_or(Path::new("")));
        Ok(config)
    }

    /// Parses and checks the text of a configuration file named `file` in
    /// messages; paths are left as written.
    pub fn parse(file: &str, text: &str) -> Result<HttpClientConfig, ConfigFileError> {
        if text.trim().is_empty() {
            return Ok(HttpClientConfig::default());
        }
        serde_yaml::from_str::<HttpClientConfig>(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let mut message = e.to_string();
            // serde_yaml ends its messages with the location given above.
            let suffix = format!(" at line {line} column {column}");
            if message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
            ConfigFileError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        })
    }

    /// Makes relative paths relative to `dir`.
    pub fn resolve(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let fix_secret = |s: &mut Secret| {
            if let Secret::File(p) = s {
                fix(p);
            }
        };
        if let Some(b) = &mut self.basic_auth {
            b.password.as_mut().map(fix_secret);
        }
        if let Some(a) = &mut self.authorization {
            fix_secret(&mut a.credentials);
        }
        let tls = &mut self.tls_config;
        tls.ca_file.as_mut().map(fix);
        if let Some(c) = &mut tls.client_cert {
            fix(&mut c.cert_file);
            fix(&mut c.key_file);
        }
    }
}

/// Checks a section once its keys are read, inside the YAML parser, so that
/// an error carries the section's line and column.
trait Check: Sized {
    type Checked;
    fn check(self) -> Result<Self::Checked, String>;
}

struct Checked<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Check> Visitor<'de> for Checked<T> {
    type Value = T::Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T::Checked, A::Error> {
        let raw = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
        raw.check().map_err(de::Error::custom)
    }
}

/// Implements `Deserialize` for `$out` through the checked `$raw`.
macro_rules! checked {
    ($out:ty, $raw:ty) => {
        impl<'de> Deserialize<'de> for $out {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(Checked::<$raw>(PhantomData))
            }
        }
    };
}

checked!(HttpClientConfig, RawConfig);
checked!(BasicAuth, RawBasicAuth);
checked!(Authorization, RawAuthorization);
checked!(TlsConfig, RawTls);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    authorization: Option<Authorization>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
}

impl Check for RawConfig {
    type Checked = HttpClientConfig;
    fn check(self) -> Result<HttpClientConfig, String> {
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return Err("basic_auth and authorization are mutually exclusive".into());
        }
        Ok(HttpClientConfig {
            basic_auth: self.basic_auth,
            authorization: self.authorization,
            tls_config: self.tls_config.unwrap_or_default(),
        })
    }
}

/// `X` or `X_file`, not both.
fn secret(
    name: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("{name} and {name}_file are mutually exclusive")),
        (Some(s), None) => Ok(Some(Secret::Inline(s))),
        (None, Some(p)) => Ok(Some(Secret::File(p))),
        (None, None) => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

impl Check for RawBasicAuth {
    type Checked = BasicAuth;
    fn check(self) -> Result<BasicAuth, String> {
        if self.username.contains(':') {
            return Err("username: a basic-auth user name cannot contain ':'".into());
        }
        Ok(BasicAuth {
            username: self.username,
            password: secret("password", self.password, self.password_file)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    credentials: Option<String>,
    #[serde(default)]
    credentials_file: Option<PathBuf>,
}

impl Check for RawAuthorization {
    type Checked = Authorization;
    fn check(self) -> Result<Authorization, String> {
        let kind = self.kind.unwrap_or_else(|| "Bearer".to_owned());
        if kind.eq_ignore_ascii_case("basic") {
            return Err("type Basic: use basic_auth instead".into());
        }
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("type {kind:?} is not an authorization scheme"));
        }
        let credentials = secret("credentials", self.credentials, self.credentials_file)?
            .ok_or("credentials or credentials_file is required")?;
        Ok(Authorization { kind, credentials })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

fn version(key: &str, v: Option<String>) -> Result<Option<TlsVersion>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some("TLS12") => Ok(Some(TlsVersion::Tls12)),
        Some("TLS13") => Ok(Some(TlsVersion::Tls13)),
        Some(other) => Err(format!("{key} {other:?} is not supported (TLS12 or TLS13)")),
    }
}

impl Check for RawTls {
    type Checked = TlsConfig;
    fn check(self) -> Result<TlsConfig, String> {
        let client_cert = match (self.cert_file, self.key_file) {
            (Some(cert_file), Some(key_file)) => Some(ClientCert {
                cert_file,
                key_file,
            }),
            (None, None) => None,
            (Some(_), None) => return Err("cert_file needs key_file".into()),
            (None, Some(_)) => return Err("key_file needs cert_file".into()),
        };
        let min_version = version("min_version", self.min_version)?;
        let max_version = version("max_version", self.max_version)?;
        if let (Some(min), Some(max)) = (min_version, max_version)
            && min > max
        {
            return Err("min_version is newer than max_version".into());
        }
        if self.server_name.as_deref() == Some("") {
            return Err("server_name is empty".into());
        }
        Ok(TlsConfig {
            ca_file: self.ca_file,
            client_cert,
            server_name: self.server_name,
            insecure_skip_verify: self.insecure_skip_verify,
            min_version,
            max_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HttpClientConfig, String> {
        HttpClientConfig::parse("http.yml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file() {
        let c = parse(
            "basic_auth:\n  username: prometheus\n  password_file: pw\n\
             tls_config:\n  ca_file: ca.crt\n  cert_file: c.crt\n  key_file: c.key\n  \
             server_name: exporter.example\n  min_version: TLS13\n",
        )
        .unwrap();
        let b = c.basic_auth.unwrap();
        assert_eq!(b.username, "prometheus");
        assert_eq!(b.password, Some(Secret::File("pw".into())));
        assert_eq!(c.tls_config.ca_file, Some(PathBuf::from("ca.crt")));
        assert_eq!(
            c.tls_config.client_cert,
            Some(ClientCert {
                cert_file: "c.crt".into(),
                key_file: "c.key".into()
            })
        );
        assert_eq!(
            c.tls_config.server_name.as_deref(),
            Some("exporter.example")
        );
        assert_eq!(c.tls_config.min_version, Some(TlsVersion::Tls13));
        assert!(!c.tls_config.insecure_skip_verify);

        let c = parse("authorization:\n  credentials: t0ken\n").unwrap();
        let a = c.authorization.unwrap();
        assert_eq!(
            (a.kind.as_str(), a.credentials),
            ("Bearer", Secret::Inline("t0ken".into()))
        );
        assert_eq!(
            format!("{:?}", Secret::Inline("t0ken".into())),
            "Secret(<hidden>)"
        );
        assert_eq!(parse("").unwrap(), HttpClientConfig::default());
        assert_eq!(parse("# nothing\n").unwrap(), HttpClientConfig::default());
    }

    #[test]
    fn errors_are_located() {
        for (text, want) in [
            ("oauth2: {}\n", "http.yml:1:1: unknown field `oauth2`"),
            (
                "basic_auth:\n  username: a\n  passwd: x\n",
                "http.yml:3:3: basic_auth: unknown field `passwd`",
            ),
            (
                "tls_config:\n  insecure_skip_verify: true\nbasic_auth:\n  username: a\n  password: b\n  password_file: c\n",
                "http.yml:4:3: basic_auth: password and password_file are mutually exclusive",
            ),
            (
                "basic_auth: {username: a}\nauthorization: {credentials: t}\n",
                "http.yml:1:1: basic_auth and authorization are mutually exclusive",
            ),
            (
                "authorization:\n  type: Bearer\n",
                "http.yml:2:3: authorization: credentials or credentials_file is required",
            ),
            (
                "authorization:\n  type: Basic\n  credentials: x\n",
                "http.yml:2:3: authorization: type Basic: use basic_auth instead",
            ),
            (
                "tls_config:\n  cert_file: c.crt\n",
                "http.yml:2:3: tls_config: cert_file needs key_file",
            ),
            (
                "tls_config:\n  min_version: TLS11\n",
                "http.yml:2:3: tls_config: min_version \"TLS11\" is not supported (TLS12 or TLS13)",
            ),
            (
                "tls_config:\n  min_version: TLS13\n  max_version: TLS12\n",
                "tls_config: min_version is newer than max_version",
            ),
            (
                "tls_config:\n  insecure_skip_verify: maybe\n",
                "http.yml:2:25: tls_config.insecure_skip_verify: invalid type",
            ),
            (
                "basic_auth: [a]\n",
                "http.yml:1:13: basic_auth: invalid type: sequence",
            ),
            ("basic_auth:\n  username: 'a:b'\n", "cannot contain ':'"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(
                err.starts_with(want) || err.contains(want),
                "{text:?}:\n{err}\nwanted {want}"
            );
        }
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.yml");
        std::fs::write(
            &path,
            "basic_auth: {username: a, password_file: pw}\ntls_config: {ca_file: /etc/ca.crt, cert_file: c.crt, key_file: k}\n",
        )
        .unwrap();
        let c = HttpClientConfig::load(&path).unwrap();
        assert_eq!(
            c.basic_auth.unwrap().password,
            Some(Secret::File(dir.path().join("pw")))
        );
        assert_eq!(c.tls_config.ca_file, Some(PathBuf::from("/etc/ca.crt")));
        assert_eq!(
            c.tls_config.client_cert.unwrap().cert_file,
            dir.path().join("c.crt")
        );
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        assert_eq!(
            Secret::File(dir.path().join("pw")).read().unwrap(),
            "s3cret"
        );
        let missing = HttpClientConfig::load(&dir.path().join("nope.yml")).unwrap_err();
        assert!(missing.to_string().contains("nope.yml: "), "{missing}");
    }
}
