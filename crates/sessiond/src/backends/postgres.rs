//! Opening the postgres store from its URL.
//!
//! The URL is libpq's plus `schema=NAME` (default `sessiond`) and
//! `pool_size=N` (default 16), e.g.
//! `postgres://sessiond:secret@db:5432/app?schema=sessiond&pool_size=32`.
//! Opening connects and applies pending migrations; nodes that start
//! together take turns through an advisory lock.

use std::sync::Arc;

use sessiond_store_postgres::{PostgresOptions, PostgresStore};

use crate::store_url::{OpenedStore, StoreOpenError};

/// Opens the postgres store at `url`.
pub async fn open(url: &str) -> Result<OpenedStore, StoreOpenError> {
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
    let handle = store.clone();
    Ok(OpenedStore {
        // Clones share the one pool.
        users: Arc::new(store.clone()),
        store: Arc::new(store),
        close: Box::new(move || handle.close()),
    })
}
