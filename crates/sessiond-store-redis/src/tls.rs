//! Building the redis-rs client, with TLS for `rediss://`.

use redis::{Client, TlsCertificates};

use crate::config::RedisConfig;
use crate::store::OpenError;

/// rustls needs one process-wide crypto provider. Installs ring unless the
/// process already chose one (then that one is used: both verify).
pub(crate) fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The `ca_file` of `config` as redis-rs' root certificates, if it names one.
pub(crate) fn certificates(config: &RedisConfig) -> Result<Option<TlsCertificates>, OpenError> {
    let Some(path) = &config.ca_file else {
        return Ok(None);
    };
    let root_cert = std::fs::read(path).map_err(|source| OpenError::CaFile {
        path: path.clone(),
        source,
    })?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    }))
}

/// A client for `config`'s server: plain for `redis://`; for `rediss://`,
/// rustls verifying the server's name and certificate against the
/// system's roots, or against `ca_file` when the URL names one.
pub(crate) fn client(config: &RedisConfig) -> Result<Client, OpenError> {
    client_at(config, &config.server_url)
}

/// The same client speaking RESP3, which invalidation messages on the
/// data connection need (the node-local cache's). Put last, the
/// parameter wins over one the URL already passes.
pub(crate) fn resp3_client(config: &RedisConfig) -> Result<Client, OpenError> {
    let joiner = if config.server_url.contains('?') { '&' } else { '?' };
    client_at(config, &format!("{}{joiner}protocol=resp3", config.server_url))
}

fn client_at(config: &RedisConfig, url: &str) -> Result<Client, OpenError> {
    if url.starts_with("rediss://") {
        install_provider();
    }
    match certificates(config)? {
        None => Client::open(url).map_err(OpenError::Client),
        Some(certificates) => Client::build_with_tls(url, certificates).map_err(OpenError::Client),
    }
}
