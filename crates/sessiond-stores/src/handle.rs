//! [`StoreHandle`]: an open engine, the traits it serves, and its shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use sessiond_core::{
    CounterStore, EventStore, KeyStore, MemoryStore, SealedEvents, SealedSessions, Sealer, SecretStore, SessionStore,
    StoreError, UserStore,
};
use sessiond_store_embedded::{EmbeddedStore, OpenError, Options};

use crate::url::{StoreOpenError, StoreUrl};

/// An open store: one engine handle (one file, one pool, one connection)
/// serving every store trait. Clone the trait objects it hands out freely;
/// call [`shutdown`](StoreHandle::shutdown) once, last.
///
/// Sessions and events are handed out behind a [`Sealer`]: with encryption
/// on ([`StoreHandle::sealed_by`]) their data and clients are sealed at
/// rest; off, records pass unchanged and a sealed one read back is an
/// error rather than data.
#[derive(Debug)]
pub struct StoreHandle {
    engine: Engine,
    sealer: Sealer,
}

#[derive(Debug)]
enum Engine {
    Memory(Arc<MemoryStore>),
    Embedded(Arc<EmbeddedStore>),
    #[cfg(feature = "redis")]
    Redis(sessiond_store_redis::RedisStore),
    #[cfg(feature = "postgres")]
    Postgres(sessiond_store_postgres::PostgresStore),
}

/// Reads an engine's record-cache counts (`None`: no cache).
type CacheCounts = Box<dyn Fn() -> Option<sessiond_core::CacheStatistics> + Send + Sync>;

impl StoreHandle {
    /// The same store, sealing with `sealer` from now on.
    pub fn sealed_by(self, sealer: Sealer) -> Self {
        Self { sealer, ..self }
    }

    /// The sealer sessions and events go through.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The sessions, sealed by the handle's [`Sealer`].
    pub fn sessions(&self) -> Arc<dyn SessionStore> {
        Arc::new(SealedSessions::new(self.engine_sessions(), self.sealer.clone()))
    }

    /// The sessions as the engine keeps them, sealed fields and all: for
    /// maintenance that must see the stored form (`sessiond store reseal`).
    pub fn engine_sessions(&self) -> Arc<dyn SessionStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn SessionStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn SessionStore>,
            // Clones share the one connection or pool.
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// The portal's accounts, in the same store as the sessions.
    pub fn users(&self) -> Arc<dyn UserStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn UserStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn UserStore>,
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Shared secrets (the portal's CSRF secrets), in the same store as the
    /// sessions, so every node over it agrees on them.
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn SecretStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn SecretStore>,
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// The login throttle's failure counters, in the same store as the
    /// sessions, so every node over it counts the same failures.
    pub fn counters(&self) -> Arc<dyn CounterStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn CounterStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn CounterStore>,
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// API keys, in the same store as the sessions, so a key made through
    /// one node works on every node over it.
    pub fn keys(&self) -> Arc<dyn KeyStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn KeyStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn KeyStore>,
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Audit events, in the same store as the sessions, so every node over
    /// it reads the same log; their clients sealed by the handle's [`Sealer`].
    pub fn events(&self) -> Arc<dyn EventStore> {
        Arc::new(SealedEvents::new(self.engine_events(), self.sealer.clone()))
    }

    fn engine_events(&self) -> Arc<dyn EventStore> {
        match &self.engine {
            Engine::Memory(store) => Arc::clone(store) as Arc<dyn EventStore>,
            Engine::Embedded(store) => Arc::clone(store) as Arc<dyn EventStore>,
            #[cfg(feature = "redis")]
            Engine::Redis(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// A function that copies the engine's own counts, which no store
    /// trait sees, into the metrics recorder; it does nothing for engines
    /// without any. Today that is the node-local record cache of the Redis
    /// and PostgreSQL stores: `sessiond_redis_cache_hits_total` (or
    /// `sessiond_postgres_…`), `…_misses_total`, `…_invalidations_total`
    /// (token keys the engine said had changed) and `…_barriers_total`
    /// (round trips that ordered hits after invalidations), so an operator
    /// can see whether `cache_entries` holds the hot sessions. Cheap: call
    /// it before every scrape or every few seconds.
    pub fn engine_metrics(&self) -> impl Fn() + Send + Sync + 'static {
        let cache: Option<(&'static str, CacheCounts)> = match &self.engine {
            #[cfg(feature = "redis")]
            Engine::Redis(store) => {
                let store = store.clone();
                Some(("redis", Box::new(move || store.cache_statistics())))
            }
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => {
                let store = store.clone();
                Some(("postgres", Box::new(move || store.cache_statistics())))
            }
            _ => None,
        };
        move || {
            let Some((engine, counts)) = &cache else { return };
            let Some(counts) = counts() else { return };
            let name = |what: &str| format!("sessiond_{engine}_cache_{what}_total");
            metrics::counter!(name("hits")).absolute(counts.hits);
            metrics::counter!(name("misses")).absolute(counts.misses);
            metrics::counter!(name("invalidations")).absolute(counts.invalidations);
            metrics::counter!(name("barriers")).absolute(counts.barriers);
        }
    }

    /// True for a store only this process uses (memory, embedded): its
    /// data directory is this node's own. False for a shared engine.
    pub fn is_local(&self) -> bool {
        matches!(self.engine, Engine::Memory(_) | Engine::Embedded(_))
    }

    /// Flushes and releases the store (graceful shutdown).
    ///
    /// The embedded store commits what is queued and releases its file at
    /// once if every handle given out was dropped before; otherwise the last
    /// one's drop does the same. A PostgreSQL pool is closed; Redis and
    /// memory have nothing to flush (every acknowledged write is already in
    /// the engine).
    pub fn shutdown(self) -> Result<(), StoreError> {
        match self.engine {
            Engine::Memory(_) => Ok(()),
            Engine::Embedded(store) => match Arc::try_unwrap(store) {
                Ok(store) => store.close(),
                Err(shared) => {
                    drop(shared);
                    Ok(())
                }
            },
            #[cfg(feature = "redis")]
            Engine::Redis(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Engine::Postgres(store) => {
                store.close();
                Ok(())
            }
        }
    }
}

/// Opens the store `url` names.
pub async fn open(url: &StoreUrl) -> Result<StoreHandle, StoreOpenError> {
    let engine = match url {
        StoreUrl::Memory => Engine::Memory(Arc::new(MemoryStore::new())),
        StoreUrl::Embedded { dir, options } => Engine::Embedded(open_embedded(dir.clone(), *options).await?),
        StoreUrl::Redis(url) => open_redis(url).await?,
        StoreUrl::Postgres(url) => open_postgres(url).await?,
    };
    Ok(StoreHandle {
        engine,
        sealer: Sealer::off(),
    })
}

async fn open_embedded(dir: PathBuf, options: Options) -> Result<Arc<EmbeddedStore>, StoreOpenError> {
    let failed = |dir: &PathBuf, source: Box<dyn std::error::Error + Send + Sync>| StoreOpenError::Backend {
        location: dir.display().to_string(),
        source,
    };
    // Opening reads and checks the file: blocking work, off the async threads.
    let opening = dir.clone();
    let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open_with(&opening, options))
        .await
        .map_err(|e| failed(&dir, Box::new(e)))?;
    match opened {
        Ok(store) => Ok(Arc::new(store)),
        Err(OpenError::InUse { .. }) => Err(StoreOpenError::InUse { path: dir }),
        Err(other) => Err(failed(&dir, Box::new(other))),
    }
}

/// Connects and checks that the server answers, so a wrong address fails at
/// start with a clear message; once running, a server that goes away makes
/// calls fail with an unavailable store until it is back, and the
/// connection comes back by itself. URL format: `sessiond_store_redis::RedisConfig`.
#[cfg(feature = "redis")]
async fn open_redis(url: &str) -> Result<Engine, StoreOpenError> {
    use sessiond_store_redis::{RedisStore, redacted};
    let store = RedisStore::connect(url).await.map_err(|e| StoreOpenError::Backend {
        location: redacted(url),
        source: Box::new(e),
    })?;
    Ok(Engine::Redis(store))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &str) -> Result<Engine, StoreOpenError> {
    Err(StoreOpenError::Unsupported("redis"))
}

/// Connects and applies pending migrations (nodes that start together take
/// turns through an advisory lock). URL format:
/// `sessiond_store_postgres::PostgresOptions`.
#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Engine, StoreOpenError> {
    use sessiond_store_postgres::{PostgresOptions, PostgresStore};
    // Messages name the location without the password the URL may hold.
    let failed = |location: String| {
        move |e: sessiond_store_postgres::OpenError| StoreOpenError::Backend {
            location,
            source: Box::new(e),
        }
    };
    let options = PostgresOptions::from_url(url).map_err(failed("the postgres:// URL".to_owned()))?;
    let location = options.location();
    let store = PostgresStore::open_with(options).await.map_err(failed(location))?;
    Ok(Engine::Postgres(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str) -> Result<Engine, StoreOpenError> {
    Err(StoreOpenError::Unsupported("postgres"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sessions and the accounts of one URL live in one store, and
    /// shutdown really closes it (the file lock is released).
    #[tokio::test]
    async fn users_share_the_store_of_the_sessions() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let user = sessiond_testkit::user_conformance::sample_user("t", "alice");
        let url = StoreUrl::Embedded {
            dir: dir.path().into(),
            options: Options::default(),
        };
        let opened = open(&url).await.unwrap_or_else(|e| panic!("{e}"));
        opened
            .users()
            .insert_user(&user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(open(&url).await, Err(StoreOpenError::InUse { .. })));
        opened.shutdown().unwrap_or_else(|e| panic!("{e}"));

        let reopened = open(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let got = reopened.users().get_user(&user.tenant, &user.name).await;
        assert_eq!(got.unwrap_or_else(|e| panic!("{e}")), Some(user.clone()));

        let memory = open(&StoreUrl::Memory).await.unwrap_or_else(|e| panic!("{e}"));
        memory
            .users()
            .insert_user(&user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let listed = memory.users().list_users(&user.tenant).await;
        assert_eq!(listed.unwrap_or_else(|e| panic!("{e}")), vec![user]);
    }
}
