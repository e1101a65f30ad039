//! The store handle: a connection pool over one schema.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use sessiond_core::{CacheStatistics, StoreError};

use crate::cache::NodeCache;
use crate::error::{OpenError, OperationTimedOut, pool_error};
use crate::migrate::migrate;
use crate::options::{PostgresOptions, host_count};

/// A [`SessionStore`](sessiond_core::SessionStore) in PostgreSQL. Cloning
/// shares the pool.
///
/// Without `cache_entries` nothing is cached in the process: every read
/// asks the engine. With it, verifies of hot sessions are answered from
/// memory, and a revocation made through any node still fails every
/// verify that starts after it was acknowledged (see the crate docs).
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    pub(crate) schema: String,
    pub(crate) timeout: Duration,
    pub(crate) cache: Option<Arc<NodeCache>>,
    location: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the URL (see [`PostgresOptions::from_url`]), brings the
    /// schema up to date and returns the store.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        Self::open_with(PostgresOptions::from_url(url)?).await
    }

    /// Like [`PostgresStore::open`], from options.
    ///
    /// Migrations run on a connection of their own that is closed before
    /// this returns; the pool opens its connections on first use, in the
    /// runtime that uses them, so a store may be opened in one runtime and
    /// used in another.
    pub async fn open_with(options: PostgresOptions) -> Result<Self, OpenError> {
        let tls = options.tls.connector()?;
        match &tls {
            Some(tls) => migrate_over(&options, tls.clone()).await?,
            None => migrate_over(&options, tokio_postgres::NoTls).await?,
        }
        let manager_config = ManagerConfig {
            // Checks `is_closed` only: a connection the engine dropped is
            // discarded; one that fails later fails its operation as
            // unavailable and is discarded then. That is enough for a
            // failover too: the dying primary closes every connection, and
            // the new ones try the hosts again (read-write with several).
            // `Verified` would add a round trip to every operation and
            // still pass on an old primary cut off but alive (fencing it
            // is the operator's job, see the README).
            recycling_method: RecyclingMethod::Fast,
        };
        let cache = options.cache.map(|settings| {
            Arc::new(NodeCache::new(
                options.pg.clone(),
                tls.clone(),
                &options.schema,
                settings,
                options.operation_timeout,
            ))
        });
        let manager = match tls {
            Some(tls) => Manager::from_config(options.pg.clone(), tls, manager_config),
            None => Manager::from_config(options.pg.clone(), tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.operation_timeout))
            .create_timeout(Some(options.operation_timeout))
            .recycle_timeout(Some(options.operation_timeout))
            .build()
            .map_err(OpenError::Pool)?;
        Ok(Self {
            pool,
            schema: options.schema.clone(),
            timeout: options.operation_timeout,
            cache,
            location: options.location(),
        })
    }

    /// The node-local cache's counts so far; `None` without a cache
    /// (`cache_entries=0`, the default).
    pub fn cache_statistics(&self) -> Option<CacheStatistics> {
        self.cache.as_deref().map(NodeCache::statistics)
    }

    /// Runs a session write (one that may change what a token maps to)
    /// within the operation timeout; the node-local cache then hears of it
    /// before the caller does (see `RecordCache::wrote`). An error counts
    /// too: the write may have been applied.
    pub(crate) async fn session_write<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = self.bounded(operation).await;
        if let Some(cache) = &self.cache {
            cache.wrote();
        }
        result
    }

    /// Where the store is (no credentials), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes the pool: connections close as they are returned, and later
    /// operations fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs one store operation within the operation timeout: an engine that
    /// stops answering becomes [`StoreError::Unavailable`], never a hang.
    pub(crate) async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(Box::new(OperationTimedOut(self.timeout)))),
        }
    }
}

/// Brings the schema up to date on a connection of its own (with `tls`),
/// closed before this returns.
async fn migrate_over<T>(options: &PostgresOptions, tls: T) -> Result<(), OpenError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (mut client, connection) = options.pg.connect(tls).await.map_err(OpenError::Connect)?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "migration connection ended");
        }
    });
    // The server's version first: a refused cache must not leave triggers.
    let mut migrated = match options.cache {
        Some(_) => check_cache_support(&client).await,
        None => Ok(()),
    };
    if migrated.is_ok() {
        migrated = migrate(&mut client, &options.schema, options.cache.is_some())
            .await
            .map(drop);
    }
    if migrated.is_ok() && host_count(&options.pg) > 1 {
        warn_unless_synchronous(&client).await;
    }
    drop(client);
    // The driver ends once the client is gone; waiting for it makes sure
    // the session (and its advisory lock) is over before we go on.
    let _ = driver.await;
    migrated
}

/// The first `server_version_num` whose commits signal listeners before
/// the writer is answered, which the node-local cache's proof needs (see
/// `cache.rs`).
const CACHE_MIN_SERVER_VERSION: i32 = 150_000;

/// Refuses the node-local cache on a server older than PostgreSQL 15.
async fn check_cache_support(client: &tokio_postgres::Client) -> Result<(), OpenError> {
    let found: i32 = client
        .query_one("SELECT current_setting('server_version_num')::integer", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(OpenError::Connect)?;
    if found < CACHE_MIN_SERVER_VERSION {
        return Err(OpenError::CacheNeedsNewerServer { found });
    }
    Ok(())
}

/// Logs a warning at start when the primary would acknowledge a commit
/// before a standby has it: with several hosts the operator means to fail
/// over, and an asynchronous standby promoted then may miss acknowledged
/// writes (a revoked session valid again). A warning, not a refusal:
/// sessiond sees one server's settings at one moment, and an operator may
/// choose asynchronous replication knowingly (a distant standby).
async fn warn_unless_synchronous(client: &tokio_postgres::Client) {
    let settings = client
        .query_one(
            "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')",
            &[],
        )
        .await
        .and_then(|row| Ok((row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?)));
    match settings {
        Ok((standbys, commit)) => {
            if let Some(risk) = replication_risk(&standbys, &commit) {
                tracing::warn!(
                    risk,
                    "PostgreSQL may acknowledge writes a failover loses; see the README (PostgreSQL failover)"
                );
            }
        }
        // Only a warning is at stake: the store works without it.
        Err(error) => tracing::debug!(%error, "cannot read the replication settings"),
    }
}

/// Why a commit could be acknowledged before a standby has it, from the
/// primary's `synchronous_standby_names` and the session's
/// `synchronous_commit`; `None` when both wait for a standby.
fn replication_risk(standby_names: &str, synchronous_commit: &str) -> Option<&'static str> {
    if standby_names.trim().is_empty() {
        return Some("synchronous_standby_names is empty: commits do not wait for any standby");
    }
    match synchronous_commit {
        "off" | "local" => Some("synchronous_commit is off or local: commits do not wait for the standby"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::replication_risk;

    #[test]
    fn only_commits_that_wait_for_a_standby_are_safe_in_a_failover() {
        for commit in ["on", "remote_apply", "remote_write"] {
            assert_eq!(replication_risk("standby1", commit), None, "{commit}");
            assert_eq!(replication_risk("FIRST 1 (a, b)", commit), None, "{commit}");
        }
        assert_eq!(
            replication_risk("", "on"),
            Some("synchronous_standby_names is empty: commits do not wait for any standby")
        );
        assert_eq!(
            replication_risk(" ", "remote_apply"),
            Some("synchronous_standby_names is empty: commits do not wait for any standby")
        );
        for commit in ["off", "local"] {
            assert_eq!(
                replication_risk("standby1", commit),
                Some("synchronous_commit is off or local: commits do not wait for the standby"),
                "{commit}"
            );
        }
    }
}
