//! Configuration: a TOML file, overridden by `SESSIOND_<SECTION>_<KEY>`
//! environment variables, overridden by command-line flags.
//!
//! Unknown keys are errors wherever they come from: a typo in a security
//! setting must never be silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessiond_core::{BindMode, ClientBinding, LimitAction, Policy};
use sessiond_portal::PortalConfig;
use sessiond_stores::StoreUrl;

/// Prefix of every environment variable sessiond reads.
pub const ENV_PREFIX: &str = "SESSIOND_";

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening, limits, data directory.
    pub server: ServerConfig,
    /// Which store and how it is maintained.
    pub store: StoreConfig,
    /// Session lifetimes and limits.
    pub policy: PolicyConfig,
    /// The audit event log.
    pub events: EventsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The login portal and forward auth.
    pub portal: PortalConfig,
    /// Access tokens and their signing keys.
    pub tokens: TokensConfig,
    /// `[[webhooks]]`: endpoints audit events are POSTed to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
}

/// `[tokens]`: access tokens (API.md, "Access tokens, refresh and theft
/// detection"). Every node over one store must have the same values: they
/// decide when the shared signing keys rotate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    /// How long an access token lives (at most `1h`, never past its
    /// session's expiry).
    #[serde(with = "humane")]
    pub access_token_ttl: Duration,
    /// How often a new signing key takes over.
    #[serde(with = "humane")]
    pub key_rotation: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: "sessiond".to_owned(),
            audience: "sessiond".to_owned(),
            access_token_ttl: Duration::from_secs(5 * 60),
            key_rotation: Duration::from_secs(30 * 86_400),
        }
    }
}

impl TokensConfig {
    /// The signing keys' schedule these values give.
    pub fn schedule(&self) -> Result<sessiond_core::KeySchedule, sessiond_core::ScheduleError> {
        sessiond_core::KeySchedule::new(self.access_token_ttl, self.key_rotation)
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where API keys and the event log live. Defaults to the embedded
    /// store's directory, or `./sessiond-data` for other stores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Plain-HTTP localhost development mode.
    pub dev: bool,
    /// A proxy in front terminates TLS: the portal's pages are served over
    /// plain HTTP. Without it (and without `[server.tls]` or `dev`) they
    /// answer `403 https_required`, since their `Secure` cookies could
    /// never work over plain HTTP.
    pub behind_proxy: bool,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Largest total size of request headers, in bytes.
    pub header_limit: usize,
    /// A request taking longer than this is answered 503 `timeout`.
    #[serde(with = "humane")]
    pub request_timeout: Duration,
    /// A connection that has not sent a whole request head within this time
    /// is closed (also the longest a kept-alive connection may sit idle).
    #[serde(with = "humane")]
    pub header_read_timeout: Duration,
    /// A request body that has not arrived whole within this time (from the
    /// end of its head) is answered 408 `body_timeout`. At most
    /// `request_timeout`.
    #[serde(with = "humane")]
    pub body_read_timeout: Duration,
    /// `/v1` requests handled at once; more are refused at once with 503
    /// `overloaded`.
    pub max_concurrency: usize,
    /// Requests to the public routes (the portal, and unmatched paths)
    /// handled at once, a separate budget: anonymous traffic cannot take
    /// the API's.
    pub public_max_concurrency: usize,
    /// Public requests handled at once for one client address; more get
    /// 429 `too_many_requests`.
    pub public_max_per_client: usize,
    /// `[server.tls]`: serve HTTPS (only) with this certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl ServerConfig {
    /// Whether the portal's pages must refuse plain HTTP: served without
    /// TLS, and neither in `--dev` nor behind a TLS-terminating proxy.
    pub fn refuses_plain_http_pages(&self) -> bool {
        self.tls.is_none() && !self.dev && !self.behind_proxy
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first; reloaded when the file changes.
    pub cert_file: PathBuf,
    /// PEM private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates: `/v1` requests must come over a connection
    /// whose client certificate chains to one of them (checked before the
    /// API key); other routes take clients without one. Empty = unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// `client_ca_file` when set and not empty.
    pub fn client_ca(&self) -> Option<&Path> {
        self.client_ca_file.as_deref().filter(|f| !f.as_os_str().is_empty())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7380)),
            data_dir: None,
            dev: false,
            behind_proxy: false,
            body_limit: 1024 * 1024,
            header_limit: 16 * 1024,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(5),
            max_concurrency: 1024,
            public_max_concurrency: 256,
            public_max_per_client: 16,
            tls: None,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded:PATH`, `memory:`, `redis://…` or `postgres://…`.
    pub url: String,
    /// How often expired sessions are reclaimed.
    #[serde(with = "humane")]
    pub purge_interval: Duration,
    /// Most records one purge batch removes.
    pub purge_batch: usize,
    /// `[store.encryption]`: sealing session data at rest.
    pub encryption: EncryptionConfig,
}

/// `[store.encryption]` (see `crate::data_keys` for what each choice does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// Key files (32 random bytes, base64 on one line); the first seals,
    /// every one opens.
    pub key_files: Vec<PathBuf>,
    /// `"on"` (the default) or `"off"`, which must be written to store
    /// session data in clear on a shared store.
    pub encryption: EncryptionMode,
}

/// Whether session data is sealed at rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionMode {
    /// Sealed (the default).
    #[default]
    On,
    /// In clear, by explicit choice.
    Off,
}

/// The default store URL.
pub const DEFAULT_STORE_URL: &str = "embedded:./sessiond-data";

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_STORE_URL.to_owned(),
            purge_interval: Duration::from_secs(60),
            purge_batch: 1000,
            encryption: EncryptionConfig::default(),
        }
    }
}

/// `[policy]`: the keys of API.md, mapped onto [`Policy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    #[serde(with = "humane")]
    /// See [`Policy::idle_timeout`].
    pub idle_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::absolute_timeout`].
    pub absolute_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::remember_me_idle_timeout`].
    pub remember_me_idle_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::remember_me_absolute_timeout`].
    pub remember_me_absolute_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::aal2_absolute_timeout`].
    pub aal2_absolute_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::aal3_absolute_timeout`].
    pub aal3_absolute_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::touch_interval`].
    pub touch_interval: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::rotation_grace`].
    pub rotation_grace: Duration,
    /// See [`Policy::reuse_detection`].
    pub reuse_detection: bool,
    /// See [`Policy::max_sessions_per_subject`]; 0 = no limit.
    pub max_sessions_per_subject: u32,
    /// `deny` or `evict_oldest`.
    pub on_session_limit: LimitAction,
    /// See [`Policy::max_data_bytes`].
    pub max_data_bytes: usize,
    /// `off`, `signal` or `revoke`: see [`ClientBinding::ip`].
    pub bind_ip: BindMode,
    /// See [`ClientBinding::ip_prefix_v4`].
    pub ip_prefix_v4: u8,
    /// See [`ClientBinding::ip_prefix_v6`].
    pub ip_prefix_v6: u8,
    /// `off`, `signal` or `revoke`: see [`ClientBinding::user_agent`].
    pub bind_user_agent: BindMode,
    #[serde(with = "humane")]
    /// See [`Policy::anonymous_idle_timeout`].
    pub anonymous_idle_timeout: Duration,
    #[serde(with = "humane")]
    /// See [`Policy::anonymous_absolute_timeout`].
    pub anonymous_absolute_timeout: Duration,
    /// See [`Policy::anonymous_max_data_bytes`].
    pub anonymous_max_data_bytes: usize,
    /// Anonymous sessions one client address (its /64 for IPv6) may create
    /// before it is refused (429 `too_many_sessions`), counted in the store
    /// so every node shares the count; forgotten after an hour without a
    /// creation. 0: no limit.
    pub anonymous_per_address: u32,
}

/// Default of [`PolicyConfig::anonymous_per_address`]: a busy office
/// behind one address gets hundreds of visitors an hour; a script minting
/// sessions gets stopped after as many.
pub const DEFAULT_ANONYMOUS_PER_ADDRESS: u32 = 300;

impl PolicyConfig {
    /// How anonymous creations are counted per address, unless unlimited:
    /// the last creation of the allowance locks the address for a minute,
    /// each refused attempt's successor doubling it up to an hour.
    pub fn anonymous_rule(&self) -> Option<sessiond_core::CounterRule> {
        (self.anonymous_per_address > 0).then_some(sessiond_core::CounterRule {
            // The counter locks at the creation after `free` ones.
            free: self.anonymous_per_address - 1,
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            forget_after: Duration::from_secs(3600),
        })
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self::from(&Policy::default())
    }
}

impl From<&Policy> for PolicyConfig {
    fn from(p: &Policy) -> Self {
        Self {
            idle_timeout: p.idle_timeout,
            absolute_timeout: p.absolute_timeout,
            remember_me_idle_timeout: p.remember_me_idle_timeout,
            remember_me_absolute_timeout: p.remember_me_absolute_timeout,
            aal2_absolute_timeout: p.aal2_absolute_timeout,
            aal3_absolute_timeout: p.aal3_absolute_timeout,
            touch_interval: p.touch_interval,
            rotation_grace: p.rotation_grace,
            reuse_detection: p.reuse_detection,
            max_sessions_per_subject: p.max_sessions_per_subject,
            on_session_limit: p.on_session_limit,
            max_data_bytes: p.max_data_bytes,
            bind_ip: p.client_binding.ip,
            ip_prefix_v4: p.client_binding.ip_prefix_v4,
            ip_prefix_v6: p.client_binding.ip_prefix_v6,
            bind_user_agent: p.client_binding.user_agent,
            anonymous_idle_timeout: p.anonymous_idle_timeout,
            anonymous_absolute_timeout: p.anonymous_absolute_timeout,
            anonymous_max_data_bytes: p.anonymous_max_data_bytes,
            anonymous_per_address: DEFAULT_ANONYMOUS_PER_ADDRESS,
        }
    }
}

impl PolicyConfig {
    /// The core policy these keys describe (validated by the manager).
    pub fn to_policy(&self) -> Policy {
        Policy {
            idle_timeout: self.idle_timeout,
            absolute_timeout: self.absolute_timeout,
            remember_me_idle_timeout: self.remember_me_idle_timeout,
            remember_me_absolute_timeout: self.remember_me_absolute_timeout,
            aal2_absolute_timeout: self.aal2_absolute_timeout,
            aal3_absolute_timeout: self.aal3_absolute_timeout,
            touch_interval: self.touch_interval,
            rotation_grace: self.rotation_grace,
            reuse_detection: self.reuse_detection,
            max_sessions_per_subject: self.max_sessions_per_subject,
            on_session_limit: self.on_session_limit,
            max_data_bytes: self.max_data_bytes,
            client_binding: ClientBinding {
                ip: self.bind_ip,
                ip_prefix_v4: self.ip_prefix_v4,
                ip_prefix_v6: self.ip_prefix_v6,
                user_agent: self.bind_user_agent,
            },
            anonymous_idle_timeout: self.anonymous_idle_timeout,
            anonymous_absolute_timeout: self.anonymous_absolute_timeout,
            anonymous_max_data_bytes: self.anonymous_max_data_bytes,
        }
    }
}

/// `[events]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Most events kept per tenant; the oldest go first.
    pub max_events: usize,
    /// Events older than this are dropped.
    #[serde(with = "humane")]
    pub retention: Duration,
    /// Tokens that name no session, presented for one client address in a
    /// minute (all nodes together), that record a `token_guessing`
    /// anomaly; 0 = off.
    pub token_guessing_threshold: u32,
    /// Failed portal sign-ins for one account or one client address in a
    /// minute (all nodes together) that record a `login_burst` anomaly;
    /// 0 = off.
    pub login_burst_threshold: u32,
}

impl EventsConfig {
    /// The bounds the event log keeps the store to.
    pub fn bounds(&self) -> crate::event_log::Bounds {
        crate::event_log::Bounds {
            max_events: self.max_events,
            retention: self.retention,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_events: 100_000,
            retention: Duration::from_secs(30 * 86_400),
            token_guessing_threshold: 30,
            login_burst_threshold: 20,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `sessiond=debug,tower_http=info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[source] Box<toml::de::Error>),
    /// An environment variable names no known section.
    #[error("unknown environment variable {0} (no such configuration section)")]
    UnknownEnv(String),
    /// The policy is incoherent.
    #[error(transparent)]
    Policy(#[from] sessiond_core::PolicyError),
    /// `--dev` with a listening address other peers can reach.
    #[error(
        "--dev serves plain HTTP with cookies any network peer could read, so only on a loopback address; \
         it was asked to listen on {0}"
    )]
    DevNotLoopback(SocketAddr),
    /// `store.url` names no store.
    #[error("store.url: {0}")]
    StoreUrl(#[from] sessiond_stores::StoreOpenError),
    /// A limit is zero.
    #[error("server.{0} must be greater than zero")]
    ZeroLimit(&'static str),
    /// The body-read timeout would never fire.
    #[error("server.body_read_timeout must not exceed server.request_timeout")]
    BodyTimeoutOverRequestTimeout,
    /// `--dev` is plain HTTP; `[server.tls]` asks for HTTPS.
    #[error("--dev serves plain HTTP; it cannot be combined with [server.tls]")]
    DevWithTls,
    /// A `[portal]` setting is invalid.
    #[error(transparent)]
    Portal(#[from] sessiond_portal::PortalConfigError),
    /// `[tokens]` lifetimes that cannot overlap keys.
    #[error("tokens: {0}")]
    Tokens(#[from] sessiond_core::ScheduleError),
    /// An empty `tokens.issuer` or `tokens.audience`.
    #[error("tokens.{0} must not be empty")]
    EmptyClaim(&'static str),
    /// A `[[webhooks]]` entry is refused (the first is number 0).
    #[error("webhooks[{index}]")]
    Webhook {
        /// Which entry.
        index: usize,
        /// Why.
        #[source]
        source: crate::webhooks::WebhookConfigError,
    },
}

const SECTIONS: [&str; 7] = ["server", "store", "policy", "events", "log", "portal", "tokens"];

/// Tables inside a section that environment variables reach as
/// `SESSIOND_<SECTION>_<TABLE>_<KEY>` (e.g.
/// `SESSIOND_STORE_ENCRYPTION_KEY_FILES='["/run/secrets/data-key"]'`).
const NESTED: [(&str, &str); 1] = [("store", "encryption")];

impl Config {
    /// Loads `file` (if any), then applies `env` (pairs of name and value,
    /// usually `std::env::vars()`); flags are applied by the caller.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(Box::new(e)))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = rest.split_once('_').filter(|(s, _)| SECTIONS.contains(s)) else {
                return Err(ConfigError::UnknownEnv(name));
            };
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let nested = NESTED.iter().filter(|(s, _)| *s == section).find_map(|(_, sub)| {
                key.strip_prefix(sub)
                    .and_then(|k| k.strip_prefix('_'))
                    .map(|k| (*sub, k))
            });
            if let toml::Value::Table(section) = entry {
                match nested {
                    Some((sub, key)) => {
                        let sub = section
                            .entry(sub)
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        if let toml::Value::Table(sub) = sub {
                            sub.insert(key.to_owned(), env_value(&value));
                        }
                    }
                    None => {
                        section.insert(key.to_owned(), env_value(&value));
                    }
                }
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: coherent policy, non-zero limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.to_policy().validate()?;
        check_dev_listen(self.server.dev, self.server.listen)?;
        StoreUrl::parse(&self.store.url)?;
        let limits = [
            ("body_limit", self.server.body_limit),
            ("header_limit", self.server.header_limit),
            ("max_concurrency", self.server.max_concurrency),
            ("public_max_concurrency", self.server.public_max_concurrency),
            ("public_max_per_client", self.server.public_max_per_client),
        ];
        for (name, value) in limits {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        let timeouts = [
            ("request_timeout", self.server.request_timeout),
            ("header_read_timeout", self.server.header_read_timeout),
            ("body_read_timeout", self.server.body_read_timeout),
        ];
        for (name, value) in timeouts {
            if value.is_zero() {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.server.body_read_timeout > self.server.request_timeout {
            return Err(ConfigError::BodyTimeoutOverRequestTimeout);
        }
        if self.server.tls.is_some() && self.server.dev {
            return Err(ConfigError::DevWithTls);
        }
        self.portal.settings(self.server.dev)?;
        self.tokens.schedule()?;
        if self.tokens.issuer.is_empty() {
            return Err(ConfigError::EmptyClaim("issuer"));
        }
        if self.tokens.audience.is_empty() {
            return Err(ConfigError::EmptyClaim("audience"));
        }
        // As if with `--dev`: the flag may still be given on the command
        // line; `serve` checks again with it (`webhook_endpoints`).
        self.webhook_endpoints_as(true)?;
        Ok(())
    }

    /// The `[[webhooks]]` endpoints, checked, their secrets read.
    pub fn webhook_endpoints(&self) -> Result<Vec<crate::webhooks::Endpoint>, ConfigError> {
        self.webhook_endpoints_as(self.server.dev)
    }

    fn webhook_endpoints_as(&self, dev: bool) -> Result<Vec<crate::webhooks::Endpoint>, ConfigError> {
        let endpoint = |(index, w): (usize, &crate::webhooks::WebhookConfig)| {
            w.endpoint(dev).map_err(|source| ConfigError::Webhook { index, source })
        };
        self.webhooks.iter().enumerate().map(endpoint).collect()
    }

    /// The configuration as `config show` prints it: the store URL without
    /// any password it holds.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        if let Ok(url) = StoreUrl::parse(&self.store.url) {
            shown.store.url = url.location();
        }
        shown
    }

    /// Where keys, events and a portal secret file to import live: `server.data_dir`,
    /// else the embedded store's own directory (the store URL's one parser
    /// decides), else `./sessiond-data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.server.data_dir {
            return dir.clone();
        }
        match StoreUrl::parse(&self.store.url) {
            Ok(StoreUrl::Embedded { dir, .. }) => dir,
            _ => PathBuf::from("./sessiond-data"),
        }
    }
}

/// Development mode (plain HTTP, cookies without `Secure`) listens on
/// loopback addresses only.
pub fn check_dev_listen(dev: bool, listen: SocketAddr) -> Result<(), ConfigError> {
    if dev && !listen.ip().is_loopback() {
        return Err(ConfigError::DevNotLoopback(listen));
    }
    Ok(())
}

/// An environment value as TOML: numbers and booleans typed, anything that
/// does not parse (such as `30m`) taken as a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

use sessiond_core::humane;
pub use sessiond_core::humane::format_duration;
