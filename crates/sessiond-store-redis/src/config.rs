//! The store URL: the server address as redis-rs reads it, plus our own
//! query parameters.
//!
//! ```text
//! redis://[user:password@]host[:port][/db][?prefix=sessiond:&ttl_slack_secs=3600&timeout_ms=2000]
//! rediss://[user:password@]host[:port][/db][?ca_file=/etc/ssl/redis-ca.pem&…]
//! ```
//!
//! * `prefix` (default `sessiond:`): put before every key, so several
//!   deployments or test runs can share one server. Must not contain `{` or
//!   `}` (those choose Cluster hash slots).
//! * `ttl_slack_secs` (default 3600): how long Redis keeps a record after
//!   its deadline before expiring it by itself (see the crate docs for why).
//! * `timeout_ms` (default 2000): connect and response timeout; past it a
//!   call fails as unavailable instead of hanging.
//! * `ca_file` (`rediss://` only): PEM file of the CA that signed the
//!   server's certificate, for private CAs; without it the system's roots
//!   are used. The server name is always verified.
//!
//! Other query parameters (e.g. `protocol=resp3`) are passed to redis-rs.

use std::time::Duration;

/// Key prefix used when the URL names none.
pub const DEFAULT_PREFIX: &str = "sessiond:";
/// Default `ttl_slack_secs`.
pub const DEFAULT_TTL_SLACK: Duration = Duration::from_secs(3600);
/// Default `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how to reach Redis, parsed from a store URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL handed to redis-rs (our own parameters removed).
    pub(crate) server_url: String,
    /// Put before every key.
    pub prefix: String,
    /// How long after its deadline Redis keeps a record by itself.
    pub ttl_slack: Duration,
    /// Connect and response timeout.
    pub timeout: Duration,
    /// CA certificates (PEM) to trust for `rediss://` instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    // The URL may hold a password: show only what is safe.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server", &redacted(&self.server_url))
            .field("prefix", &self.prefix)
            .field("ttl_slack", &self.ttl_slack)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The URL without user information, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let tail = tail.split_once('?').map_or(tail, |(path, _)| path);
    format!("{scheme}://{host}{tail}")
}

/// A store URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not `redis://` or `rediss://`.
    #[error("a redis store URL starts with redis:// or rediss://")]
    Scheme,
    /// A parameter of ours has a bad value.
    #[error("bad value for {name} in the redis store URL: {reason}")]
    Parameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl RedisConfig {
    /// Parses a store URL (format in the module docs).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::Scheme);
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut config = RedisConfig {
            server_url: base.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            ttl_slack: DEFAULT_TTL_SLACK,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        };
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "prefix" => {
                    if value.contains(['{', '}']) {
                        return Err(ConfigError::Parameter {
                            name: "prefix",
                            reason: "must not contain { or }",
                        });
                    }
                    value.clone_into(&mut config.prefix);
                }
                "ttl_slack_secs" => {
                    let secs = value.parse::<u64>().map_err(|_| ConfigError::Parameter {
                        name: "ttl_slack_secs",
                        reason: "not a whole number of seconds",
                    })?;
                    config.ttl_slack = Duration::from_secs(secs);
                }
                "timeout_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| *ms > 0)
                        .ok_or(ConfigError::Parameter {
                            name: "timeout_ms",
                            reason: "not a positive number of milliseconds",
                        })?;
                    config.timeout = Duration::from_millis(ms);
                }
                "ca_file" => {
                    if !url.starts_with("rediss://") || value.is_empty() {
                        return Err(ConfigError::Parameter {
                            name: "ca_file",
                            reason: "needs a path, and a rediss:// URL",
                        });
                    }
                    config.ca_file = Some(value.into());
                }
                _ => passed.push(pair),
            }
        }
        if !passed.is_empty() {
            config.server_url = format!("{base}?{}", passed.join("&"));
        }
        Ok(config)
    }

    /// Same server, another prefix (tests isolate themselves this way).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_passed_on() {
        let c = RedisConfig::from_url("redis://u:pw@127.0.0.1:7000/2?prefix=a:b:&protocol=resp3&ttl_slack_secs=5")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server_url, "redis://u:pw@127.0.0.1:7000/2?protocol=resp3");
        assert_eq!(c.prefix, "a:b:");
        assert_eq!(c.ttl_slack, Duration::from_secs(5));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = RedisConfig::from_url("rediss://h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.prefix.as_str(), c.ttl_slack), (DEFAULT_PREFIX, DEFAULT_TTL_SLACK));
        assert_eq!(RedisConfig::from_url("http://h"), Err(ConfigError::Scheme));
        assert_eq!(
            RedisConfig::from_url("redis://h?prefix=x{y}"),
            Err(ConfigError::Parameter {
                name: "prefix",
                reason: "must not contain { or }"
            })
        );
        assert!(matches!(
            RedisConfig::from_url("redis://h?timeout_ms=0"),
            Err(ConfigError::Parameter { name: "timeout_ms", .. })
        ));
    }

    #[test]
    fn a_ca_file_is_only_for_tls() {
        let c = RedisConfig::from_url("rediss://h:6380?ca_file=/x/ca.pem").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ca_file.as_deref(), Some(std::path::Path::new("/x/ca.pem")));
        assert_eq!(c.server_url, "rediss://h:6380");
        assert!(matches!(
            RedisConfig::from_url("redis://h?ca_file=/x/ca.pem"),
            Err(ConfigError::Parameter { name: "ca_file", .. })
        ));
    }

    #[test]
    fn redaction_drops_credentials_and_parameters() {
        assert_eq!(redacted("redis://u:secret@h:1/0?prefix=x"), "redis://h:1/0");
        assert_eq!(redacted("redis://h"), "redis://h");
    }
}
