//! Opening the postgres store from its URL.

use crate::store_url::{OpenedStore, StoreOpenError};

/// Opens the postgres store at `url`.
pub async fn open(_url: &str) -> Result<OpenedStore, StoreOpenError> {
    Err(StoreOpenError::Unsupported("postgres"))
}
