//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` URL parameters,
//! spoken with rustls.
//!
//! tokio-postgres reads `sslmode` itself but knows neither `verify-ca` nor
//! `verify-full` nor `sslrootcert`, so both are taken out of the URL here
//! (see `options.rs`) and turned into a connector:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | absent, `disable` | no | — |
//! | `prefer` | if the server offers it | as `require` |
//! | `require` | yes | checked against `sslrootcert` when given (as libpq does), else not checked |
//! | `verify-ca` | yes | chains to `sslrootcert` |
//! | `verify-full` | yes | chains to `sslrootcert` and names the host |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the
//! operating system's roots. `verify-ca` and `verify-full` need it: without
//! one there is nothing to verify against, and a silent fallback would be
//! the surprise a security setting must not have.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::OpenError;

/// How a connection is protected (the `sslmode` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SslMode {
    /// No TLS (also when the URL says nothing).
    #[default]
    Disable,
    /// TLS if the server offers it.
    Prefer,
    /// TLS; the certificate is checked only if `sslrootcert` is given.
    Require,
    /// TLS with a certificate that chains to `sslrootcert`.
    VerifyCa,
    /// TLS with a certificate that chains to `sslrootcert` and names the host.
    VerifyFull,
}

impl SslMode {
    pub(crate) fn parse(value: &str) -> Result<Self, OpenError> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err(OpenError::InvalidUrl(
                "sslmode must be disable, prefer, require, verify-ca or verify-full",
            )),
        }
    }
}

/// Where trusted CA certificates come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// A PEM file.
    File(PathBuf),
    /// The operating system's roots (`sslrootcert=system`).
    System,
}

impl RootCerts {
    pub(crate) fn parse(value: &str) -> Self {
        if value == "system" {
            Self::System
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

/// The TLS part of the options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    pub(crate) mode: SslMode,
    pub(crate) roots: Option<RootCerts>,
}

impl TlsOptions {
    /// Refuses combinations that cannot be honoured, before any connection.
    pub(crate) fn check(&self) -> Result<(), OpenError> {
        let verifies = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        if verifies && self.roots.is_none() {
            return Err(OpenError::InvalidUrl(
                "sslmode=verify-ca and verify-full need sslrootcert=FILE (a PEM file of CA certificates) or \
                 sslrootcert=system",
            ));
        }
        Ok(())
    }

    /// tokio-postgres' own mode for this one.
    pub(crate) fn pg_mode(&self) -> PgSslMode {
        match self.mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    }

    /// The connector, or `None` for no TLS. Reads the root file now, so a
    /// missing or unreadable file fails the open, not every connection.
    pub(crate) fn connector(&self) -> Result<Option<MakeRustlsConnect>, OpenError> {
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match &self.roots {
            None => Arc::new(Unverified(provider.signature_verification_algorithms)),
            Some(roots) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(load_roots(roots)?), provider.clone())
                        .build()
                        .map_err(|e| OpenError::Tls(Box::new(e)))?;
                if self.mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(AnyName(webpki))
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OpenError::Tls(Box::new(e)))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

fn load_roots(roots: &RootCerts) -> Result<RootCertStore, OpenError> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
        RootCerts::File(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| root_file(path, e))? {
                let cert = cert.map_err(|e| root_file(path, e))?;
                store.add(cert).map_err(|e| root_file(path, e))?;
            }
        }
    }
    if store.is_empty() {
        return Err(OpenError::InvalidUrl("sslrootcert holds no CA certificate"));
    }
    Ok(store)
}

fn root_file(path: &Path, cause: impl std::error::Error + Send + Sync + 'static) -> OpenError {
    OpenError::RootCert {
        path: path.to_owned(),
        source: Box::new(cause),
    }
}

/// `verify-ca` (and `require` with roots): the chain must verify, the name
/// need not match.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` and `prefer` without roots, as libpq: encrypted, the
/// certificate taken as it comes (the handshake signature is still checked).
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
