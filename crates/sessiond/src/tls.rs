//! HTTPS: the rustls server configuration of `[server.tls]`, with a
//! certificate that follows its files.
//!
//! * TLS 1.3 and 1.2 only, with rustls' suites over ring: all AEAD
//!   (AES-GCM, ChaCha20-Poly1305) with forward-secret key exchange; rustls
//!   has no legacy suite to turn off.
//! * ALPN offers `h2` and `http/1.1`; `listen.rs` serves what was agreed.
//! * The chain and key are read at start (a bad pair stops the start with
//!   the file named) and then checked every [`RELOAD_EVERY`]: when either
//!   file's modification time or size changes, both are read again, and a
//!   pair that loads replaces the old one for new handshakes. Connections
//!   already open keep theirs. A pair that does not load (a rotation caught
//!   half-written) is logged and the old one stays until the files change
//!   again.
//! * With `client_ca_file`, clients are asked for a certificate, and one
//!   that is presented must chain to a CA of that file (else the handshake
//!   fails); a client may present none, since the portal and the operations
//!   routes serve browsers and probes. Whether one was verified travels
//!   with each request (`listen::TlsClient`), and `/v1` refuses requests
//!   without one. The CA file is read at start only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsConfig;

/// How often the certificate files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Why the certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM of the right kind.
    #[error("cannot read {what} from {path}")]
    File {
        /// `the certificate chain` or `the private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The chain file holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// rustls refused the key or the pair.
    #[error("cannot use the certificate and key of [server.tls]")]
    Rustls(#[from] rustls::Error),
    /// A certificate of `client_ca_file` cannot be a trust anchor.
    #[error("cannot use the CA certificates in {path} (server.tls.client_ca_file)")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// rustls could not build the client-certificate verifier.
    #[error("cannot check client certificates against server.tls.client_ca_file")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
}

/// What identifies one version of the two files.
type Stamp = Option<[(SystemTime, u64); 2]>;

fn stamp(config: &TlsConfig) -> Stamp {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([one(&config.cert_file)?, one(&config.key_file)?])
}

fn file_error(what: &'static str, path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError {
    let path = path.to_owned();
    move |source| TlsError::File {
        what,
        path: path.clone(),
        source,
    }
}

/// Every certificate of the PEM file `path`; at least one.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(file_error(what, path))?
        .collect::<Result<_, _>>()
        .map_err(file_error(what, path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

fn load(config: &TlsConfig, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates("the certificate chain", &config.cert_file)?;
    let key =
        PrivateKeyDer::from_pem_file(&config.key_file).map_err(file_error("the private key", &config.key_file))?;
    let certified = CertifiedKey::from_der(chain, key, provider)?;
    Ok(Arc::new(certified))
}

/// The current certificate, for every new handshake.
#[derive(Debug)]
pub struct ReloadingCert {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    /// Reads the files now.
    fn open(config: &TlsConfig, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamp = stamp(config);
        let key = load(config, &provider)?;
        Ok(Self {
            config: config.clone(),
            provider,
            current: RwLock::new((stamp, key)),
        })
    }

    /// Reads the files again if they changed since the last load (or the
    /// last failed attempt). Returns whether a new pair is in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.config);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if now.is_none() || now == current.0 {
            return false;
        }
        // Remember the stamp either way: a failed pair is retried when the
        // files change again, not logged every second.
        current.0 = now;
        match load(&self.config, &self.provider) {
            Ok(key) => {
                current.1 = key;
                tracing::info!(cert_file = %self.config.cert_file.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "the changed TLS certificate files do not load; keeping the previous pair");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()).1))
    }
}

/// The server configuration of `config`, and the certificate to reload.
pub fn server_config(config: &TlsConfig) -> Result<(Arc<rustls::ServerConfig>, Arc<ReloadingCert>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = Arc::new(ReloadingCert::open(config, Arc::clone(&provider))?);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match config.client_ca() {
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(cert.clone());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(server), cert))
}

/// Verifies client certificates against the CAs of `path`, and lets
/// clients without one through (the routes decide).
fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates("the client CA certificates", path)? {
        roots.add(ca).map_err(|source| TlsError::ClientCa {
            path: path.to_owned(),
            source,
        })?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()?;
    Ok(verifier)
}

/// Checks the files every [`RELOAD_EVERY`] until aborted.
pub fn spawn_reloader(cert: Arc<ReloadingCert>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cert = Arc::clone(&cert);
            // File reads: off the async workers.
            let _ = tokio::task::spawn_blocking(move || cert.reload_if_changed()).await;
        }
    })
}
