//! Building the redis-rs client, with TLS for `rediss://`.

use redis::{Client, TlsCertificates};

use crate::config::RedisConfig;
use crate::store::OpenError;

/// A client for `config`'s server: plain for `redis://`; for `rediss://`,
/// rustls verifying the server's name and certificate against the
/// system's roots, or against `ca_file` when the URL names one.
pub(crate) fn client(config: &RedisConfig) -> Result<Client, OpenError> {
    if config.server_url.starts_with("rediss://") {
        // rustls needs one process-wide crypto provider. Install ring unless
        // the process already chose one (then that one is used: both verify).
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let Some(path) = &config.ca_file else {
        return Client::open(config.server_url.as_str()).map_err(OpenError::Client);
    };
    let root_cert = std::fs::read(path).map_err(|source| OpenError::CaFile {
        path: path.clone(),
        source,
    })?;
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    };
    Client::build_with_tls(config.server_url.as_str(), certificates).map_err(OpenError::Client)
}
