//! Where the store lives: parsed from a `postgres://` URL.
//!
//! The URL is libpq's, as tokio-postgres reads it, plus two parameters of
//! ours that are taken out before it is handed on:
//!
//! * `schema=NAME` (default `sessiond`): the schema holding the tables,
//!   created if missing. Several deployments (or test runs) can share one
//!   database, each in its own schema.
//! * `pool_size=N` (default 16): connections per process.
//! * `sslmode=disable|prefer|require|verify-ca|verify-full` and
//!   `sslrootcert=FILE|system`: TLS, as libpq reads them (see `tls.rs`).
//!   Without `sslmode` there is no TLS.
//! * `target_session_attrs=read-write|any`: which server a connection
//!   accepts, checked here so a bad value is named (see below).
//! * `cache_entries=N` (default 0, off) and `cache_lag_ms=M` (default 0,
//!   exact; at most 1000): the node-local cache of records, as on a Redis
//!   URL (see the crate docs, "Node-local cache"). Needs PostgreSQL 15 or
//!   later.
//!
//! Everything else (`connect_timeout`, `application_name`, `options`, …)
//! goes to tokio-postgres. Example:
//! `postgres://sessiond:secret@db.internal:5432/app?schema=sessions&pool_size=32`.
//!
//! # Several hosts (failover)
//!
//! `postgres://db1:5432,db2:5432/app?target_session_attrs=read-write` lists
//! a primary and its standbys, as libpq does: each new connection tries the
//! hosts in order and keeps the first that accepts writes. With several
//! hosts `read-write` is the default and `any` is refused: a connection to
//! a standby would read data that may lag the primary (a revoked session
//! still valid there), and writing to it fails. `read-only` is refused
//! with any number of hosts, since sessiond writes. After a failover the
//! pool drops the connections to the old primary (the engine closed them)
//! and opens new ones to whichever host is now writable.

use std::str::FromStr;
use std::time::Duration;

use sessiond_core::CacheSettings;
use tokio_postgres::config::TargetSessionAttrs;

use crate::error::OpenError;
use crate::tls::{RootCerts, SslMode, TlsOptions};

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "sessiond";

/// Connections per process when the URL says nothing.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long one store operation (including waiting for a connection) may
/// take before it fails as "unavailable": a stalled engine must turn into
/// 503s, not into requests that hang.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest PostgreSQL identifier.
const MAX_IDENTIFIER_LEN: usize = 63;

/// How to reach the store.
#[derive(Clone)]
pub struct PostgresOptions {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) operation_timeout: Duration,
    pub(crate) tls: TlsOptions,
    pub(crate) cache: Option<CacheSettings>,
}

impl std::fmt::Debug for PostgresOptions {
    // By hand: the derived form would print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("location", &self.location())
            .field("pool_size", &self.pool_size)
            .field("operation_timeout", &self.operation_timeout)
            .field("tls", &self.tls)
            .field("cache", &self.cache)
            .finish()
    }
}

impl PostgresOptions {
    /// Parses a `postgres://` or `postgresql://` URL (see the module docs).
    pub fn from_url(url: &str) -> Result<Self, OpenError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut tls = TlsOptions::default();
        let mut target = None;
        let (mut cache_entries, mut cache_lag) = (None, None);
        let mut passed_on = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" => schema = value.to_owned(),
                "pool_size" => {
                    pool_size = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(OpenError::InvalidUrl("pool_size must be a positive integer"))?;
                }
                "sslmode" => tls.mode = SslMode::parse(value)?,
                "sslrootcert" => tls.roots = Some(RootCerts::parse(value)),
                "target_session_attrs" => target = Some(parse_target(value)?),
                "cache_entries" => cache_entries = Some(value),
                "cache_lag_ms" => cache_lag = Some(value),
                _ => passed_on.push(pair),
            }
        }
        let rest = if passed_on.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed_on.join("&"))
        };
        tls.check()?;
        let mut pg = tokio_postgres::Config::from_str(&rest).map_err(OpenError::Url)?;
        pg.ssl_mode(tls.pg_mode());
        if let Some(target) = target {
            if target == TargetSessionAttrs::Any && host_count(&pg) > 1 {
                return Err(OpenError::InvalidUrl(
                    "target_session_attrs=any with several hosts could read from a standby: use read-write (the default)",
                ));
            }
            pg.target_session_attrs(target);
        }
        let mut options = Self::from_config(pg)?.schema(&schema)?.pool_size(pool_size)?;
        options.tls = tls;
        options.cache = CacheSettings::from_params(cache_entries, cache_lag)?;
        Ok(options)
    }

    /// Options from an already built tokio-postgres configuration, with the
    /// default schema and pool size. With several hosts, `any` (the
    /// configuration's default) becomes `read-write`; `read-only` is
    /// refused, as are an empty host and a port list that fits neither one
    /// host nor each.
    pub fn from_config(mut pg: tokio_postgres::Config) -> Result<Self, OpenError> {
        check_hosts(&pg)?;
        match pg.get_target_session_attrs() {
            TargetSessionAttrs::ReadOnly => return Err(OpenError::InvalidUrl(TARGET_VALUES)),
            // Never a standby: see the module docs.
            TargetSessionAttrs::Any if host_count(&pg) > 1 => {
                pg.target_session_attrs(TargetSessionAttrs::ReadWrite);
            }
            _ => {}
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_OPERATION_TIMEOUT);
        }
        if pg.get_tcp_user_timeout().is_none() {
            // An engine host that vanishes without closing its sockets would
            // otherwise leave pooled connections that look open and hang
            // every operation given them; with this the kernel closes them
            // once sent data goes unacknowledged, and the pool drops them.
            pg.tcp_user_timeout(DEFAULT_OPERATION_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("sessiond");
        }
        let mut options = Self {
            pg,
            schema: String::new(),
            pool_size: DEFAULT_POOL_SIZE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            tls: TlsOptions::default(),
            cache: None,
        };
        options.set_schema(DEFAULT_SCHEMA)?;
        Ok(options)
    }

    /// Uses `name` as the schema: lower-case ASCII letters, digits and `_`,
    /// not starting with a digit, at most 63 bytes (so it never needs
    /// quoting and cannot inject SQL).
    pub fn schema(mut self, name: &str) -> Result<Self, OpenError> {
        self.set_schema(name)?;
        Ok(self)
    }

    /// Keeps at most `size` connections open (at least one).
    pub fn pool_size(mut self, size: usize) -> Result<Self, OpenError> {
        if size == 0 {
            return Err(OpenError::InvalidUrl("pool_size must be a positive integer"));
        }
        self.pool_size = size;
        Ok(self)
    }

    /// Bounds every store operation; past it the operation fails as
    /// unavailable.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Keeps a node-local cache of records (`None`, the default: none).
    pub fn cache(mut self, settings: Option<CacheSettings>) -> Self {
        self.cache = settings;
        self
    }

    /// The schema the tables live in.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// Which servers a connection accepts: `read-write` whenever the URL
    /// names several hosts.
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.pg.get_target_session_attrs()
    }

    /// Where the store is, for messages: hosts, ports, database and schema,
    /// never credentials.
    pub fn location(&self) -> String {
        let ports = self.pg.get_ports();
        let hosts: Vec<String> = self
            .pg
            .get_hosts()
            .iter()
            .enumerate()
            // As tokio-postgres connects: a host's own port, else the one
            // port given for all, else the default.
            .map(|(i, host)| (host, ports.get(i).or(ports.first()).copied().unwrap_or(5432)))
            .map(|(host, port)| match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            })
            .collect();
        format!(
            "postgres://{}/{} (schema {})",
            hosts.join(","),
            self.pg.get_dbname().unwrap_or(""),
            self.schema
        )
    }

    fn set_schema(&mut self, name: &str) -> Result<(), OpenError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_IDENTIFIER_LEN
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(OpenError::InvalidUrl(
                "schema must be 1-63 lower-case letters, digits or _, not starting with a digit",
            ));
        }
        // Every connection starts with the schema first on its search path,
        // so queries stay unqualified; the previous value of `options` (if
        // the URL set one) is kept, with ours last so it wins.
        let inherited = self.pg.get_options().unwrap_or("");
        let inherited = strip_our_search_path(inherited, &self.schema);
        let options = format!("{inherited} -c search_path={name}").trim().to_owned();
        self.pg.options(&options);
        self.schema = name.to_owned();
        Ok(())
    }
}

/// The accepted `target_session_attrs` values, as an error message.
const TARGET_VALUES: &str = "target_session_attrs must be read-write or any (sessiond writes)";

/// `target_session_attrs` from the URL; `read-only` and unknown values are
/// refused.
fn parse_target(value: &str) -> Result<TargetSessionAttrs, OpenError> {
    match value {
        "read-write" => Ok(TargetSessionAttrs::ReadWrite),
        "any" => Ok(TargetSessionAttrs::Any),
        _ => Err(OpenError::InvalidUrl(TARGET_VALUES)),
    }
}

/// How many servers a connection may try (hosts, or `hostaddr`s alone).
pub(crate) fn host_count(pg: &tokio_postgres::Config) -> usize {
    pg.get_hosts().len().max(pg.get_hostaddrs().len())
}

/// Refuses what tokio-postgres would only notice on every connection
/// attempt: an empty name in a host list (`h1,,h2`), a `host=h1,h2`
/// parameter (which its URL form reads as one name with a comma), and a
/// number of ports other than one or one per host.
fn check_hosts(pg: &tokio_postgres::Config) -> Result<(), OpenError> {
    let empty = pg
        .get_hosts()
        .iter()
        .any(|host| matches!(host, tokio_postgres::config::Host::Tcp(name) if name.is_empty()));
    if empty {
        return Err(OpenError::InvalidUrl("a host in the host list is empty"));
    }
    let joined = pg
        .get_hosts()
        .iter()
        .any(|host| matches!(host, tokio_postgres::config::Host::Tcp(name) if name.contains(',')));
    if joined {
        return Err(OpenError::InvalidUrl(
            "list several hosts as postgres://h1:5432,h2:5432/db, not in host=",
        ));
    }
    let ports = pg.get_ports().len();
    if ports > 1 && ports != host_count(pg) {
        return Err(OpenError::InvalidUrl(
            "give one port for all hosts or one port per host",
        ));
    }
    Ok(())
}

/// Removes the search path this type added before (when the schema is set
/// twice), leaving the caller's own options.
fn strip_our_search_path(options: &str, schema: &str) -> String {
    if schema.is_empty() {
        return options.to_owned();
    }
    options
        .replace(&format!("-c search_path={schema}"), "")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_passed_on() {
        let o = PostgresOptions::from_url(
            "postgres://u:secret@127.0.0.1:5433/db?schema=sd_x&pool_size=3&application_name=t",
        )
        .unwrap();
        assert_eq!(o.schema_name(), "sd_x");
        assert_eq!(o.pool_size, 3);
        assert_eq!(o.pg.get_application_name(), Some("t"));
        assert_eq!(o.pg.get_options(), Some("-c search_path=sd_x"));
        assert_eq!(o.location(), "postgres://127.0.0.1:5433/db (schema sd_x)");
        assert!(!format!("{o:?}").contains("secret"));
    }

    #[test]
    fn defaults_apply_without_a_query() {
        let o = PostgresOptions::from_url("postgresql://localhost/app").unwrap();
        assert_eq!(o.schema_name(), DEFAULT_SCHEMA);
        assert_eq!(o.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(o.pg.get_connect_timeout(), Some(&DEFAULT_OPERATION_TIMEOUT));
    }

    #[test]
    fn bad_schema_and_pool_size_are_refused() {
        for url in [
            "postgres://h/d?schema=Bad",
            "postgres://h/d?schema=a;drop",
            "postgres://h/d?schema=1a",
            "postgres://h/d?schema=",
            "postgres://h/d?pool_size=0",
            "postgres://h/d?pool_size=x",
        ] {
            assert!(
                matches!(PostgresOptions::from_url(url), Err(OpenError::InvalidUrl(_))),
                "{url}"
            );
        }
        assert!(matches!(
            PostgresOptions::from_url("postgres://h/d?nonsense=1"),
            Err(OpenError::Url(_))
        ));
    }

    /// The message of a refused URL, as an operator reads it.
    fn refusal(url: &str) -> String {
        match PostgresOptions::from_url(url) {
            Ok(_) => format!("{url} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn several_hosts_connect_read_write_by_default() {
        let o = PostgresOptions::from_url(
            "postgres://u:secret@127.0.0.1:5433,127.0.0.1:5434/db?sslmode=require&schema=sd_f",
        )
        .unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(
            o.location(),
            "postgres://127.0.0.1:5433,127.0.0.1:5434/db (schema sd_f)"
        );
        // Said outright, the same; a host without a port has the default.
        let o = PostgresOptions::from_url("postgres://h1,h2:6000/db?target_session_attrs=read-write").unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(o.location(), "postgres://h1:5432,h2:6000/db (schema sessiond)");
        // One port for several hosts applies to each, as when connecting.
        let mut pg = tokio_postgres::Config::new();
        pg.host("h1").host("h2").port(6000).dbname("db");
        let o = PostgresOptions::from_config(pg).unwrap();
        assert_eq!(o.location(), "postgres://h1:6000,h2:6000/db (schema sessiond)");
    }

    #[test]
    fn one_host_keeps_what_the_url_says() {
        let o = PostgresOptions::from_url("postgres://h/db").unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::Any);
        let o = PostgresOptions::from_url("postgres://h/db?target_session_attrs=read-write").unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        let o = PostgresOptions::from_url("postgres://h/db?target_session_attrs=any").unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::Any);
    }

    #[test]
    fn bad_host_lists_and_session_attrs_are_refused_with_their_reason() {
        let any = "invalid PostgreSQL URL: target_session_attrs=any with several hosts could read from a standby: use read-write (the default)";
        let values = "invalid PostgreSQL URL: target_session_attrs must be read-write or any (sessiond writes)";
        for (url, message) in [
            ("postgres://h1,h2/db?target_session_attrs=any", any),
            ("postgres://h1,h2/db?schema=s&target_session_attrs=any", any),
            ("postgres://h1,h2/db?target_session_attrs=read-only", values),
            ("postgres://h/db?target_session_attrs=read-only", values),
            ("postgres://h1,h2/db?target_session_attrs=primary", values),
            ("postgres://h1,h2/db?target_session_attrs=", values),
            (
                "postgres://h1,,h2/db",
                "invalid PostgreSQL URL: a host in the host list is empty",
            ),
            (
                "postgres://h1:5432,/db",
                "invalid PostgreSQL URL: a host in the host list is empty",
            ),
            // tokio-postgres reads `host=` in a URL as one name, commas
            // included (libpq would split it): refused, not looked up.
            (
                "postgres:///db?host=h1,h2&target_session_attrs=read-write",
                "invalid PostgreSQL URL: list several hosts as postgres://h1:5432,h2:5432/db, not in host=",
            ),
            (
                "postgres://h1,h2,h3/db?port=1,2",
                "invalid PostgreSQL URL: give one port for all hosts or one port per host",
            ),
            (
                "postgres://h1:1,h2:2/db?port=3",
                "invalid PostgreSQL URL: give one port for all hosts or one port per host",
            ),
            ("postgres://h1:1,h2:x/db", "invalid PostgreSQL URL"),
        ] {
            assert_eq!(refusal(url), message, "{url}");
        }
    }

    #[test]
    fn a_built_configuration_with_several_hosts_becomes_read_write() {
        let mut pg = tokio_postgres::Config::new();
        pg.host("h1").host("h2").dbname("db");
        let o = PostgresOptions::from_config(pg.clone()).unwrap();
        assert_eq!(o.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        pg.target_session_attrs(TargetSessionAttrs::ReadOnly);
        assert!(matches!(
            PostgresOptions::from_config(pg),
            Err(OpenError::InvalidUrl(TARGET_VALUES))
        ));
    }
}
