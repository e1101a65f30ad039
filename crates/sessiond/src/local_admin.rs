//! The command line's way into a running server on an embedded store.
//!
//! An embedded store is one file that one process holds; while a server
//! runs, `sessiond keys …` and `sessiond users …` cannot open it. So a
//! server on an embedded store publishes its admin endpoint in the store's
//! own directory: the file `admin-endpoint` (owner-only, 0600, like the
//! store beside it) holds the address the server listens on and, for each
//! tenant the commands address by default, an `admin` key named
//! `local-cli`. The commands, finding the store in use, read it and call
//! the admin routes (`/v1/admin/…`) instead. Whoever can read the file can
//! already read the store itself, so it grants nothing new.
//!
//! The keys are made at start (replacing any left by a server that
//! crashed) and deleted, with the file, at a clean stop.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sessiond_core::{KeyId, KeyRole, Tenant};

use crate::key_ring::KeyRing;
use crate::keys::{KeySpec, mint};

/// The file, in the embedded store's directory.
pub const FILE_NAME: &str = "admin-endpoint";
/// The name of the keys made for the command line.
pub const KEY_NAME: &str = "local-cli";

/// What the file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// `http://ADDR` (or `https://ADDR`) of the running server.
    pub url: String,
    /// With HTTPS: the server's certificate chain file. The command line
    /// trusts exactly the certificate in it (see `pinned_tls.rs`), read
    /// when it runs, so a rotated certificate is followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// An admin key per tenant.
    pub keys: BTreeMap<String, String>,
}

/// A published endpoint; [`Published::retract`] it at a clean stop.
#[derive(Debug)]
pub struct Published {
    path: PathBuf,
    ids: Vec<KeyId>,
    ring: Arc<KeyRing>,
}

/// The address a local client reaches a server bound to `addr` at: the
/// loopback address of its family when it listens on all addresses.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}

/// Makes the command line's keys for `tenants` and writes the file in
/// `dir` for a server listening on `addr` (with HTTPS when `cert_file`,
/// its certificate chain, is given).
pub async fn publish(
    ring: &Arc<KeyRing>,
    dir: &Path,
    addr: SocketAddr,
    cert_file: Option<&Path>,
    tenants: &[Tenant],
) -> anyhow::Result<Published> {
    let store = ring.store();
    // Keys of a server that did not stop cleanly.
    for stale in store.list_keys().await?.into_iter().filter(|k| k.name == KEY_NAME) {
        store.delete_key(&stale.id).await?;
    }
    let mut keys = BTreeMap::new();
    let mut ids = Vec::new();
    for tenant in tenants {
        let spec = KeySpec {
            tenant: tenant.clone(),
            role: KeyRole::Admin,
            name: KEY_NAME.to_owned(),
            expires_at: None,
        };
        let (record, key) = mint(spec, ring.clock().now())?;
        store.insert_key(&record).await?;
        ids.push(record.id);
        keys.insert(tenant.to_string(), key);
    }
    ring.reload().await?;
    let scheme = if cert_file.is_some() { "https" } else { "http" };
    let endpoint = Endpoint {
        url: format!("{scheme}://{}", reachable(addr)),
        // Absolute: the command line may run from another directory.
        cert_file: cert_file.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_owned())),
        keys,
    };
    let path = dir.join(FILE_NAME);
    crate::private_file::write(&path, &serde_json::to_vec(&endpoint)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Published {
        path,
        ids,
        ring: Arc::clone(ring),
    })
}

impl Published {
    /// Removes the file and deletes the keys.
    pub async fn retract(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove the admin endpoint file");
        }
        for id in &self.ids {
            if let Err(error) = self.ring.store().delete_key(id).await {
                tracing::warn!(%error, key = %id, "could not delete the command line's key");
            }
        }
    }
}

/// A problem answer of the running server.
#[derive(Debug, thiserror::Error)]
#[error("the running server refused {what}: {title} ({status}, {code})")]
pub struct Refused {
    what: String,
    /// The status.
    pub status: StatusCode,
    /// The problem's stable code.
    pub code: String,
    title: String,
}

/// A client of a running server's admin routes, for one tenant.
#[derive(Debug)]
pub struct AdminClient {
    url: String,
    key: String,
    tenant: String,
    client: reqwest::Client,
}

/// The endpoint file in `dir`, which a running server on the embedded
/// store there wrote.
fn read_endpoint(dir: &Path) -> anyhow::Result<Endpoint> {
    let path = dir.join(FILE_NAME);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "the store at {} is in use, and no admin endpoint of a running server is in {}",
            dir.display(),
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}

impl AdminClient {
    /// The client for `tenant` from the endpoint file in `dir`.
    pub fn open(dir: &Path, tenant: &str) -> anyhow::Result<Self> {
        Self::new(read_endpoint(dir)?, tenant)
    }

    /// The client for `tenant` of `endpoint`.
    pub fn new(endpoint: Endpoint, tenant: &str) -> anyhow::Result<Self> {
        let Some(key) = endpoint.keys.get(tenant) else {
            anyhow::bail!(
                "the running server's command-line access covers tenants {:?}, not {tenant:?}; \
                 use an admin key of {tenant:?} with /v1/admin/…, or stop the server",
                endpoint.keys.keys().collect::<Vec<_>>()
            );
        };
        let mut client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .no_proxy();
        if let Some(cert_file) = &endpoint.cert_file {
            client = client.tls_backend_preconfigured(crate::pinned_tls::client_config(cert_file)?);
        }
        let client = client.build()?;
        Ok(Self {
            url: endpoint.url,
            key: key.clone(),
            tenant: tenant.to_owned(),
            client,
        })
    }

    /// The tenant the client acts in.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// A client for each tenant the endpoint file in `dir` covers.
    pub fn for_every_tenant(dir: &Path) -> anyhow::Result<Vec<Self>> {
        let endpoint = read_endpoint(dir)?;
        let tenants: Vec<String> = endpoint.keys.keys().cloned().collect();
        tenants.iter().map(|t| Self::new(endpoint.clone(), t)).collect()
    }

    /// Calls `method` on the path made of `segments` (each percent-encoded
    /// as one segment) with `body`; the status and the JSON answer (`Null`
    /// for none). A problem answer becomes a [`Refused`] error.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut url = reqwest::Url::parse(&self.url).with_context(|| format!("{} is not a URL", self.url))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{} cannot take a path", self.url))?
            .clear()
            .extend(segments);
        let path = url.path().to_owned();
        let mut request = self.client.request(method.clone(), url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("the running server at {} did not answer", self.url))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Refused {
                what: format!("{method} {path}"),
                status,
                code: json["code"].as_str().unwrap_or("?").to_owned(),
                title: json["title"].as_str().unwrap_or("no reason given").to_owned(),
            }
            .into());
        }
        Ok((status, json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_every_address_is_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:7380".parse().unwrap();
        assert_eq!(reachable(any).to_string(), "127.0.0.1:7380");
        let any6: SocketAddr = "[::]:7380".parse().unwrap();
        assert_eq!(reachable(any6).to_string(), "[::1]:7380");
        let one: SocketAddr = "192.0.2.1:7380".parse().unwrap();
        assert_eq!(reachable(one), one);
    }
}
