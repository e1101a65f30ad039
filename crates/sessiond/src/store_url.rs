//! Choosing the store from a URL, as sqlx chooses a database driver.

use std::path::PathBuf;
use std::sync::Arc;

use sessiond_core::{MemoryStore, SessionStore, UserStore};
use sessiond_store_embedded::{EmbeddedStore, OpenError};

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:`: in-process, lost on exit (tests, demos).
    Memory,
    /// `embedded:PATH`: the durable default.
    Embedded(PathBuf),
    /// `redis://…` or `rediss://…`.
    Redis(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// The URL names no known kind of store.
    #[error("unknown store URL {0:?}: use embedded:PATH, memory:, redis://… or postgres://…")]
    UnknownScheme(String),
    /// `embedded:` without a path.
    #[error("embedded: needs a directory, e.g. embedded:./sessiond-data")]
    MissingPath,
    /// A backend this build does not have yet.
    #[error("the {0} store is not available in this build of sessiond")]
    Unsupported(&'static str),
    /// The embedded store is held by another process (a running server).
    #[error(
        "the store at {path} is in use by another sessiond process; stop it, or run this command through the running server's API"
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
    },
    /// The backend failed to open.
    #[error("cannot open the store at {location}")]
    Backend {
        /// What was being opened.
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
        if let Some(path) = url.strip_prefix("embedded:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreOpenError::MissingPath);
            }
            return Ok(StoreUrl::Embedded(PathBuf::from(path)));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(url.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        Err(StoreOpenError::UnknownScheme(url.to_owned()))
    }
}

/// An open store and what must happen before the process exits.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// The portal's accounts, in the same store (the same handle: one file,
    /// one connection pool, one Redis connection).
    pub users: Arc<dyn UserStore>,
    /// Flushes and releases the store (graceful shutdown). For the embedded
    /// store it closes the file at once only if `store` and `users` were
    /// dropped before; otherwise the last handle's drop does it.
    pub close: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("store", &self.store)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

/// Opens the store a URL names.
pub async fn open(url: &StoreUrl) -> Result<OpenedStore, StoreOpenError> {
    match url {
        StoreUrl::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok(OpenedStore {
                store: Arc::clone(&store) as Arc<dyn SessionStore>,
                users: store,
                close: Box::new(|| {}),
            })
        }
        StoreUrl::Embedded(dir) => open_embedded(dir.clone()).await,
        StoreUrl::Redis(url) => crate::backends::redis::open(url).await,
        StoreUrl::Postgres(url) => crate::backends::postgres::open(url).await,
    }
}

async fn open_embedded(dir: PathBuf) -> Result<OpenedStore, StoreOpenError> {
    // Opening reads and checks the file: blocking work, off the async threads.
    let opening = dir.clone();
    let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open(&opening))
        .await
        .map_err(|e| StoreOpenError::Backend {
            location: dir.display().to_string(),
            source: Box::new(e),
        })?;
    let store = match opened {
        Ok(store) => Arc::new(store),
        Err(OpenError::InUse { .. }) => return Err(StoreOpenError::InUse { path: dir }),
        Err(other) => {
            return Err(StoreOpenError::Backend {
                location: dir.display().to_string(),
                source: Box::new(other),
            });
        }
    };
    let handle = Arc::clone(&store);
    let close = Box::new(move || match Arc::try_unwrap(handle) {
        Ok(store) => {
            if let Err(error) = store.close() {
                tracing::error!(%error, "closing the embedded store failed");
            }
        }
        // Still referenced elsewhere: the last handle's drop commits and
        // releases the file the same way.
        Err(shared) => drop(shared),
    });
    Ok(OpenedStore {
        store: Arc::clone(&store) as Arc<dyn SessionStore>,
        users: store,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(StoreUrl::parse("memory:").ok(), Some(StoreUrl::Memory));
        assert_eq!(
            StoreUrl::parse("embedded:./d").ok(),
            Some(StoreUrl::Embedded("./d".into()))
        );
        assert_eq!(
            StoreUrl::parse("embedded:///var/lib/s").ok(),
            Some(StoreUrl::Embedded("/var/lib/s".into()))
        );
        assert!(matches!(StoreUrl::parse("embedded:"), Err(StoreOpenError::MissingPath)));
        assert!(matches!(
            StoreUrl::parse("redis://127.0.0.1:6379"),
            Ok(StoreUrl::Redis(_))
        ));
        assert!(matches!(StoreUrl::parse("postgresql://x/y"), Ok(StoreUrl::Postgres(_))));
        assert!(matches!(
            StoreUrl::parse("mysql://x"),
            Err(StoreOpenError::UnknownScheme(_))
        ));
    }

    /// The sessions and the accounts of one URL live in one store.
    #[tokio::test]
    async fn users_share_the_store_of_the_sessions() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let user = sessiond_testkit::user_conformance::sample_user("t", "alice");
        let opened = open(&StoreUrl::Embedded(dir.path().into()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        opened.users.insert_user(&user).await.unwrap_or_else(|e| panic!("{e}"));
        let OpenedStore { store, users, close } = opened;
        drop((store, users));
        close();
        // Closed for real (the file lock is released), and the user is on disk.
        let reopened = open(&StoreUrl::Embedded(dir.path().into()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let got = reopened.users.get_user(&user.tenant, &user.name).await;
        assert_eq!(got.unwrap_or_else(|e| panic!("{e}")), Some(user.clone()));

        let memory = open(&StoreUrl::Memory).await.unwrap_or_else(|e| panic!("{e}"));
        memory.users.insert_user(&user).await.unwrap_or_else(|e| panic!("{e}"));
        let listed = memory.users.list_users(&user.tenant).await;
        assert_eq!(listed.unwrap_or_else(|e| panic!("{e}")), vec![user]);
    }
}
