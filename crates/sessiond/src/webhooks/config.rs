//! `[[webhooks]]`: one endpoint each, checked when the configuration is
//! loaded so a bad endpoint stops the start with a clear error instead of
//! failing every delivery later.
//!
//! What is refused, and why:
//! * plain `http://` except to a loopback address in `--dev`: events name
//!   subjects and sessions, and the signature proves only who sent a body,
//!   not that nobody read it on the way;
//! * a secret that is not `whsec_` and base64 of 24 to 64 bytes (the
//!   Standard Webhooks rule): a short key makes the signature guessable;
//! * both or neither of `secret` and `secret_file`, unknown event kinds, a
//!   tenant name that is no tenant.
//!
//! The secret is never printed: its `Debug` and `Serialize` say
//! `[redacted]`, so `config show` and logs of the configuration hide it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit};
use serde::{Deserialize, Serialize, Serializer};
use sessiond_core::{EventKind, Tenant, humane};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest key bytes a secret may hold (Standard Webhooks: 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most key bytes a secret may hold.
pub const MAX_SECRET_BYTES: usize = 64;

/// One `[[webhooks]]` entry as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where events are POSTed: `https://…` (plain `http://` only to a
    /// loopback address, and only with `--dev`).
    pub url: String,
    /// `whsec_` followed by base64 of the key.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub secret: Option<Redacted>,
    /// A file holding the secret (one line, as `secret` is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Event kinds to send; all when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Only this tenant's events; every tenant's when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The first retry comes after up to this long; each failure doubles it
    /// (at most an hour). Default `5s`.
    #[serde(default = "default_retry", with = "humane")]
    pub retry_initial: Duration,
    /// How long one attempt may take. Default `10s`.
    #[serde(default = "default_timeout", with = "humane")]
    pub timeout: Duration,
}

fn default_retry() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A secret as written in the file: shown nowhere.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret's text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Redacted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

fn redacted<S: Serializer>(value: &Option<Redacted>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => secret.serialize(s),
        None => s.serialize_none(),
    }
}

/// A secret, keyed into HMAC-SHA256 once: never printed.
#[derive(Clone)]
pub struct SecretKey(Hmac<Sha256>);

impl SecretKey {
    /// A fresh MAC under the key.
    pub fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// An endpoint checked and ready: what the dispatcher delivers to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL, as configured.
    pub url: reqwest::Url,
    /// The HMAC key.
    pub key: SecretKey,
    /// Kinds to send (`None`: all), as [`EventKind::name`] spells them.
    pub events: Option<Vec<&'static str>>,
    /// Only this tenant (`None`: every tenant).
    pub tenant: Option<Tenant>,
    /// See [`WebhookConfig::retry_initial`].
    pub retry_initial: Duration,
    /// See [`WebhookConfig::timeout`].
    pub timeout: Duration,
}

impl Endpoint {
    /// The URL as the admin route and logs show it: no user, password or
    /// query, which may hold credentials.
    pub fn shown_url(&self) -> String {
        let mut shown = self.url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        shown.to_string()
    }

    /// Whether events of this kind go to this endpoint.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.as_ref().is_none_or(|kinds| kinds.contains(&kind))
    }
}

/// Why a `[[webhooks]]` entry is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    /// Not a URL (the parser's message, which holds no secret: the
    /// secret is a field of its own).
    #[error("url is not a valid URL: {0}")]
    BadUrl(String),
    /// Neither `https://` nor `http://`.
    #[error("url must start with https://")]
    BadScheme,
    /// `http://` to an address other than loopback.
    #[error("plain http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost) with --dev; use https://")]
    PlainHttpNotLoopback,
    /// `http://` to loopback without `--dev`.
    #[error("plain http:// to a loopback address is allowed only with --dev; use https://")]
    PlainHttpWithoutDev,
    /// Both or neither of `secret` and `secret_file`.
    #[error("give exactly one of secret and secret_file")]
    SecretChoice,
    /// The secret file cannot be read.
    #[error("cannot read secret_file {path}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The secret is not `whsec_` + base64 of 24 to 64 bytes.
    #[error("secret must be whsec_ followed by base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes")]
    BadSecret,
    /// An event kind that does not exist.
    #[error("events: unknown kind {0:?} (kinds: {kinds})", kinds = EventKind::NAMES.join(", "))]
    UnknownKind(String),
    /// A tenant name that is no tenant.
    #[error("tenant is not a valid tenant name")]
    BadTenant(#[source] sessiond_core::NameError),
}

impl WebhookConfig {
    /// Checks the entry and reads its secret; `dev` is `--dev`.
    pub fn endpoint(&self, dev: bool) -> Result<Endpoint, WebhookConfigError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| WebhookConfigError::BadUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" => {
                // An IPv6 host comes in brackets.
                let host = url
                    .host_str()
                    .unwrap_or("")
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let loopback =
                    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(WebhookConfigError::PlainHttpNotLoopback);
                }
                if !dev {
                    return Err(WebhookConfigError::PlainHttpWithoutDev);
                }
            }
            _ => return Err(WebhookConfigError::BadScheme),
        }
        let text = match (&self.secret, &self.secret_file) {
            (Some(secret), None) => secret.0.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|source| WebhookConfigError::SecretFile {
                path: path.clone(),
                source,
            })?,
            _ => return Err(WebhookConfigError::SecretChoice),
        };
        let key = parse_secret(text.trim())?;
        let events = match &self.events {
            None => None,
            Some(kinds) => Some(
                kinds
                    .iter()
                    .map(|kind| {
                        EventKind::parse_name(kind).ok_or_else(|| WebhookConfigError::UnknownKind(kind.clone()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let tenant = self
            .tenant
            .as_deref()
            .map(Tenant::new)
            .transpose()
            .map_err(WebhookConfigError::BadTenant)?;
        Ok(Endpoint {
            url,
            key,
            events,
            tenant,
            retry_initial: self.retry_initial,
            timeout: self.timeout,
        })
    }
}

/// The key of a `whsec_…` secret.
pub fn parse_secret(text: &str) -> Result<SecretKey, WebhookConfigError> {
    let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(WebhookConfigError::BadSecret)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| WebhookConfigError::BadSecret)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
        return Err(WebhookConfigError::BadSecret);
    }
    let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).map_err(|_| WebhookConfigError::BadSecret)?;
    Ok(SecretKey(mac))
}
