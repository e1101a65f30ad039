//! [`StoreUrl`]: which engine a store URL names, as sqlx chooses a driver by
//! scheme. Each scheme's own syntax is parsed by its engine's crate, once.

use std::fmt;
use std::path::PathBuf;

/// A store URL, by engine.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:`: in-process, lost on exit (tests, demos).
    Memory,
    /// `embedded:PATH` or `embedded://PATH`: the durable default; the path is
    /// the data directory. Parameters (`?cache_mib=N&packed_cache_mib=N&engine_cache_mib=N`)
    /// set the store's memory budgets ([`sessiond_store_embedded::parse_url`]).
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// What the URL's parameters set.
        options: sessiond_store_embedded::Options,
    },
    /// `redis://…`, `rediss://…`, through sentinels `redis+sentinel://…`,
    /// `rediss+sentinel://…`, or a cluster `redis+cluster://…`,
    /// `rediss+cluster://…` (feature `redis`).
    Redis(String),
    /// `postgres://…` or `postgresql://…` (feature `postgres`).
    Postgres(String),
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// The URL names no known kind of store. Only its scheme is kept: the
    /// rest of a mistyped URL may hold a password.
    #[error("unknown store URL scheme {0:?}: use embedded:PATH, memory:, redis://… or postgres://…")]
    UnknownScheme(String),
    /// `embedded:` without a path.
    #[error("embedded: needs a directory, e.g. embedded:./sessiond-data")]
    MissingPath,
    /// An engine this build was compiled without.
    #[error("the {0} store is not available in this build of sessiond (cargo feature `{0}` of sessiond-stores)")]
    Unsupported(&'static str),
    /// The embedded store is held by another process (a running server).
    #[error(
        "the store at {path} is in use by another sessiond process; stop it, or run this command through the running server's API"
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
    },
    /// The engine failed to open.
    #[error("cannot open the store at {location}")]
    Backend {
        /// What was being opened, without any password.
        location: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(url: &str) -> Result<Self, StoreOpenError> {
        let url = url.trim();
        if url == "memory:" || url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if url.starts_with("embedded:") {
            return match sessiond_store_embedded::parse_url(url) {
                Ok((dir, options)) => Ok(StoreUrl::Embedded { dir, options }),
                Err(sessiond_store_embedded::OpenError::BadUrl(_)) => Err(StoreOpenError::MissingPath),
                Err(other) => Err(StoreOpenError::Backend {
                    location: "embedded:".to_owned(),
                    source: Box::new(other),
                }),
            };
        }
        let redis = [
            "redis://",
            "rediss://",
            "redis+sentinel://",
            "rediss+sentinel://",
            "redis+cluster://",
            "rediss+cluster://",
        ];
        if redis.iter().any(|scheme| url.starts_with(scheme)) {
            return Ok(StoreUrl::Redis(url.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreOpenError::UnknownScheme(scheme.chars().take(32).collect()))
    }

    /// The embedded store's data directory, if this URL names one.
    pub fn embedded_dir(&self) -> Option<&std::path::Path> {
        match self {
            StoreUrl::Embedded { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// What the URL names, without any password it holds.
    pub fn location(&self) -> String {
        match self {
            StoreUrl::Memory => "memory:".to_owned(),
            StoreUrl::Embedded { dir, .. } => format!("embedded:{}", dir.display()),
            StoreUrl::Redis(url) | StoreUrl::Postgres(url) => without_password(url),
        }
    }
}

/// `scheme://user:secret@host/db?password=x&schema=s` →
/// `scheme://user:***@host/db?password=***&schema=s`: libpq also takes a
/// password (or `sslpassword`) as a query parameter.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{user}{hidden}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("pass") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl fmt::Debug for StoreUrl {
    // By hand: a derived form would print the password a URL may hold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({})", self.location())
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_engine() {
        assert_eq!(StoreUrl::parse("memory:").ok(), Some(StoreUrl::Memory));
        let embedded = |dir: &str| StoreUrl::Embedded {
            dir: dir.into(),
            options: sessiond_store_embedded::Options::default(),
        };
        assert_eq!(StoreUrl::parse("embedded:./d").ok(), Some(embedded("./d")));
        assert_eq!(
            StoreUrl::parse("embedded:///var/lib/s").ok(),
            Some(embedded("/var/lib/s"))
        );
        assert_eq!(
            StoreUrl::parse("embedded:./d?packed_cache_mib=1024").ok(),
            Some(StoreUrl::Embedded {
                dir: "./d".into(),
                options: sessiond_store_embedded::Options::default().packed_cache_bytes(1 << 30),
            })
        );
        match StoreUrl::parse("embedded:./d?packed_cache=1") {
            Err(StoreOpenError::Backend { source, .. }) => {
                assert!(source.to_string().contains("\"packed_cache\""), "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(StoreUrl::parse("embedded:"), Err(StoreOpenError::MissingPath)));
        assert!(matches!(
            StoreUrl::parse("redis://127.0.0.1:6379"),
            Ok(StoreUrl::Redis(_))
        ));
        for redis in [
            "rediss://h",
            "redis+sentinel://s1,s2/m",
            "rediss+sentinel://s1/m",
            "redis+cluster://n1:7000,n2:7001",
            "rediss+cluster://n1",
        ] {
            assert_eq!(StoreUrl::parse(redis).ok(), Some(StoreUrl::Redis(redis.to_owned())));
        }
        assert!(matches!(StoreUrl::parse("postgresql://x/y"), Ok(StoreUrl::Postgres(_))));
        assert!(matches!(
            StoreUrl::parse("mysql://x"),
            Err(StoreOpenError::UnknownScheme(_))
        ));
    }

    /// A mistyped scheme is named without the rest of the URL.
    #[test]
    fn an_unknown_scheme_keeps_no_password() {
        let error = StoreUrl::parse("rediss+tls://:s3cret@cache/0")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown store URL scheme \"rediss+tls\": use embedded:PATH, memory:, redis://… or postgres://…")
        );
    }

    /// `embedded:./data` and `embedded://./data` name the same directory
    /// (once the second was read as `/./data` by one of three parsers).
    #[test]
    fn both_embedded_spellings_name_the_same_directory() {
        let short = StoreUrl::parse("embedded:./data").ok();
        let long = StoreUrl::parse("embedded://./data").ok();
        assert_eq!(short.as_ref().and_then(StoreUrl::embedded_dir), Some("./data".as_ref()));
        assert_eq!(short, long);
    }

    #[test]
    fn passwords_never_reach_the_location() {
        for (url, shown) in [
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            (
                "postgres://app:s3cret@db/app?schema=x",
                "postgres://app:***@db/app?schema=x",
            ),
            ("rediss://cache", "rediss://cache"),
            (
                "redis+cluster://app:s3cret@n1:7000,n2:7001",
                "redis+cluster://app:***@n1:7000,n2:7001",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            ("redis://u:p@ss@h/0", "redis://u:***@h/0"),
            (
                "postgres://db/app?user=app&password=s3cret&schema=x",
                "postgres://db/app?user=app&password=***&schema=x",
            ),
            (
                "postgresql://db/app?sslpassword=s3cret",
                "postgresql://db/app?sslpassword=***",
            ),
            // A primary and its standby (failover): every host is kept.
            (
                "postgres://app:s3cret@db1:5432,db2:5433/app?target_session_attrs=read-write&sslmode=verify-full",
                "postgres://app:***@db1:5432,db2:5433/app?target_session_attrs=read-write&sslmode=verify-full",
            ),
        ] {
            let parsed = StoreUrl::parse(url).ok();
            assert_eq!(parsed.as_ref().map(StoreUrl::location).as_deref(), Some(shown));
            assert!(!format!("{parsed:?}").contains("s3cret"));
        }
    }
}
