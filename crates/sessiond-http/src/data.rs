//! Key-level changes to a session's data ([`Patch`]), and writing them.
//!
//! [`Session::insert`](crate::Session::insert) and
//! [`Session::remove`](crate::Session::remove) record what a request did to
//! each key, not a new copy of the whole map. After the handler the layer
//! applies them to the data it read and writes the result as one
//! compare-and-set update. When another request wrote the session
//! meanwhile, the layer reads the data again and applies the same key-level
//! changes on top of it, so two requests that touch different keys both
//! keep their writes. After [`MAX_ATTEMPTS`] lost races the request fails
//! with 412 `version_conflict`: a write is refused, never silently dropped.

use std::collections::BTreeMap;

use serde_json::Value;
use sessiond_core::{SessionData, Token};

use crate::backend::{BackendError, SessionBackend, SessionInfo};
use crate::error::HttpError;
use crate::layer::RawClient;

/// Compare-and-set attempts of one request's key-level changes, the first
/// included, before it answers 412 `version_conflict`.
pub(crate) const MAX_ATTEMPTS: usize = 3;

/// The last change a request made to each key: `Some` inserts, `None`
/// removes. Only the last change per key matters, so a map is enough.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Patch(BTreeMap<String, Option<Value>>);

impl Patch {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), Some(value));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.0.insert(key.to_owned(), None);
    }

    /// What this request did to `key`: `None` if nothing, `Some(None)` if
    /// it removed it, `Some(Some(value))` if it inserted `value`.
    pub(crate) fn lookup(&self, key: &str) -> Option<Option<&Value>> {
        self.0.get(key).map(Option::as_ref)
    }

    /// Applies the changes to `data`.
    pub(crate) fn apply(&self, data: &mut SessionData) {
        for (key, change) in &self.0 {
            match change {
                Some(value) => {
                    data.insert(key.clone(), value.clone());
                }
                None => {
                    data.remove(key);
                }
            }
        }
    }
}

/// Writes `patch` over the data of `current` (the session `token` named
/// when the request verified it), re-reading and re-applying after each
/// lost race, at most [`MAX_ATTEMPTS`] times in all.
pub(crate) async fn write_patch(
    backend: &dyn SessionBackend,
    token: &Token,
    client: &RawClient,
    mut current: SessionInfo,
    patch: &Patch,
) -> Result<(), HttpError> {
    let mut attempt = 1;
    loop {
        let mut data = current.data().clone();
        patch.apply(&mut data);
        if data == *current.data() {
            // Nothing to change (e.g. the keys already hold these values).
            return Ok(());
        }
        match backend.update_data(current.id(), data, current.version()).await {
            Ok(_) => return Ok(()),
            Err(BackendError::VersionConflict) if attempt < MAX_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "session data changed concurrently; re-applying this request's keys"
                );
                // The token names the same session for as long as it is
                // valid; a session that ended meanwhile has no data to
                // write to.
                current = backend
                    .verify(token, &client.to_client_info())
                    .await?
                    .ok_or(HttpError::Unauthenticated)?;
            }
            Err(BackendError::VersionConflict) => {
                tracing::warn!(
                    attempts = MAX_ATTEMPTS,
                    "session data kept changing concurrently; this request's changes were not written"
                );
                return Err(HttpError::VersionConflict);
            }
            Err(other) => return Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_change_per_key_wins_and_others_are_kept() {
        let mut patch = Patch::default();
        patch.insert("a", Value::from(1));
        patch.remove("a");
        patch.insert("b", Value::from(2));
        patch.remove("gone");
        let mut data = SessionData::new();
        data.insert("a".into(), Value::from(0));
        data.insert("gone".into(), Value::from(0));
        data.insert("theirs".into(), Value::from(3));
        patch.apply(&mut data);
        let expected: SessionData = serde_json::from_str(r#"{"b": 2, "theirs": 3}"#).unwrap_or_default();
        assert_eq!(data, expected);
        assert_eq!(patch.lookup("a"), Some(None));
        assert_eq!(patch.lookup("b"), Some(Some(&Value::from(2))));
        assert_eq!(patch.lookup("c"), None);
    }
}
