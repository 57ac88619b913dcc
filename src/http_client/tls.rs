//! The rustls side of the client: which servers to trust, and the client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::ClientError;
use super::config::{TlsConfig, TlsVersion};

/// Where the system's CA bundle usually is (Debian and Ubuntu, Fedora and
/// RHEL, openSUSE, Alpine), tried in order after `SSL_CERT_FILE`.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The TLS settings of a client.
pub(super) struct Tls {
    /// The rustls configuration.
    pub config: Arc<ClientConfig>,
    /// Whether there is anything to verify servers with (a CA file, the
    /// system's bundle, or no verification at all).
    pub can_verify: bool,
    /// `server_name`, overriding the URL's host.
    pub server_name: Option<ServerName<'static>>,
}

fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = |reason: String| ClientError::Pem {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The system's CA certificates, or an empty store when none are found.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        if let Ok(certs) = certificates("CA bundle", &path) {
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added > 0 {
                break;
            }
        }
    }
    roots
}

/// Builds the rustls configuration of `tls`.
pub(super) fn build(tls: &TlsConfig) -> Result<Tls, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls13, &rustls::version::TLS13),
        (TlsVersion::Tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(ClientError::Tls)?;
    let (builder, can_verify) = if tls.insecure_skip_verify {
        let verifier = Arc::new(AcceptAnyCertificate(provider));
        (
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier),
            true,
        )
    } else {
        let roots = match &tls.ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for c in certificates("tls_config.ca_file", path)? {
                    roots.add(c).map_err(|e| ClientError::Pem {
                        what: "tls_config.ca_file",
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                roots
            }
            None => system_roots(),
        };
        let can_verify = !roots.is_empty();
        (builder.with_root_certificates(roots), can_verify)
    };
    let mut config = match &tls.client_cert {
        Some(c) => {
            let certs = certificates("tls_config.cert_file", &c.cert_file)?;
            let key = PrivateKeyDer::from_pem_file(&c.key_file).map_err(|e| ClientError::Pem {
                what: "tls_config.key_file",
                path: c.key_file.clone(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(ClientError::Tls)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = match &tls.server_name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|_| ClientError::ServerName(name.clone()))?,
        ),
        None => None,
    };
    Ok(Tls {
        config: Arc::new(config),
        can_verify,
        server_name,
    })
}

/// `insecure_skip_verify`: any certificate is accepted; the handshake's
/// signatures are still checked, so the connection is encrypted, but to
/// whoever answers.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
