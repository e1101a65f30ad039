//! Opening the redis store from its URL.

use crate::store_url::{OpenedStore, StoreOpenError};

/// Opens the redis store at `url`.
pub async fn open(_url: &str) -> Result<OpenedStore, StoreOpenError> {
    Err(StoreOpenError::Unsupported("redis"))
}
