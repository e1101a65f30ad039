//! Errors: opening the store, and turning engine failures into
//! [`StoreError`]s that say whether the engine is reachable.

use std::error::Error as _;

use deadpool_postgres::PoolError;
use sessiond_core::StoreError;
use tokio_postgres::error::SqlState;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// One of our URL parameters is wrong (the message says which).
    #[error("invalid PostgreSQL URL: {0}")]
    InvalidUrl(&'static str),
    /// A cache parameter of the URL (`cache_entries`, `cache_lag_ms`).
    #[error("invalid PostgreSQL URL: {0}")]
    Cache(#[from] sessiond_core::CacheParamError),
    /// The node-local cache relies on when PostgreSQL 15 and later signal
    /// listeners (before the writer's commit returns).
    #[error("cache_entries needs PostgreSQL 15 or later (server_version_num {found})")]
    CacheNeedsNewerServer {
        /// The server's `server_version_num`.
        found: i32,
    },
    /// tokio-postgres refused the URL.
    #[error("invalid PostgreSQL URL")]
    Url(#[source] tokio_postgres::Error),
    /// The engine could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] tokio_postgres::Error),
    /// A migration (or the bookkeeping around it) failed.
    #[error("migrating the sessiond schema failed at version {version}")]
    Migration {
        /// The migration being applied (0: the bookkeeping before any).
        version: i32,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The schema was migrated by a newer sessiond; running an older one over
    /// it could misread records.
    #[error("the schema is at version {found}, newer than this sessiond knows ({known}); upgrade sessiond")]
    SchemaTooNew {
        /// Version found in `schema_migrations`.
        found: i32,
        /// The newest this build has.
        known: i32,
    },
    /// The `sslrootcert` file could not be read or holds no usable
    /// certificate.
    #[error("cannot use sslrootcert {path}")]
    RootCert {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the TLS settings.
    #[error("cannot set up TLS to PostgreSQL")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection pool could not be built.
    #[error("cannot build the PostgreSQL connection pool")]
    Pool(#[source] deadpool_postgres::BuildError),
}

impl OpenError {
    /// True when the engine could not be reached (worth retrying later),
    /// as opposed to a configuration or schema problem.
    pub fn is_unavailable(&self) -> bool {
        match self {
            OpenError::Connect(e) | OpenError::Migration { source: e, .. } => is_unreachable(e),
            _ => false,
        }
    }
}

/// True when `error` means the engine is down, restarting, or the
/// connection to it is gone: the caller must answer "unavailable", and a
/// later attempt on a fresh connection may succeed.
pub(crate) fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let class_08 = code.code().starts_with("08"); // connection exception
        return class_08
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            // A standby (during a failover, or a URL that reached the wrong
            // host) refuses writes: no writable engine right now.
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
    }
    // No server error: look for an I/O failure (refused, reset, timed out)
    // in the cause chain. Encoding and decoding errors have none.
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// An engine error as a store error, keeping it as the cause.
pub(crate) fn store_error(error: tokio_postgres::Error) -> StoreError {
    if is_unreachable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// A failure to get a pooled connection as a store error: every kind but a
/// misconfigured pool means "no engine right now".
pub(crate) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(e) => store_error(e),
        PoolError::NoRuntimeSpecified => StoreError::Backend(Box::new(PoolError::NoRuntimeSpecified)),
        other => StoreError::Unavailable(Box::new(other)),
    }
}

/// The operation timed out: the engine is stalled or unreachable.
#[derive(Debug, thiserror::Error)]
#[error("the PostgreSQL operation did not finish within {0:?}")]
pub(crate) struct OperationTimedOut(pub(crate) std::time::Duration);

/// A stored value that does not decode into a session field.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {problem}")]
pub(crate) struct BadColumn {
    pub(crate) column: &'static str,
    pub(crate) problem: String,
}

/// A decoding failure as [`StoreError::Corrupt`].
pub(crate) fn corrupt(column: &'static str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(Box::new(BadColumn {
        column,
        problem: problem.to_string(),
    }))
}
