//! API keys: minting them, and importing the key file of earlier versions.
//!
//! A key is `sdk_` and 43 characters of URL-safe base64 (32 random bytes);
//! the store keeps only its SHA-256 ([`KeyRecord`]), so the key is shown
//! once, when it is made. Keys live in the configured store (see
//! [`KeyStore`]); a node checks them against its [`KeyRing`](crate::key_ring::KeyRing).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sessiond_core::{KeyId, KeyRecord, KeyRole, KeyStore, KeyStoreError, Tenant, truncate_to_micros};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Prefix of every API key, so secret scanners can spot leaked ones.
pub const KEY_PREFIX: &str = "sdk_";

/// The key file of sessiond before keys moved into the store.
pub const LEGACY_FILE: &str = "api-keys.json";

/// Why minting or importing keys failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No randomness for a new key.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    /// The legacy key file could not be read or renamed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The legacy key file is not what sessiond wrote.
    #[error("key file {path} is not valid: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Lower-case hex SHA-256 of a key. Runs for every key a node has not seen
/// before: one allocation, not one per byte.
pub fn hash_hex(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The tenant it acts in.
    pub tenant: Tenant,
    /// What it may do.
    pub role: KeyRole,
    /// Its label (checked by the caller with `is_valid_key_name`).
    pub name: String,
    /// When it stops working, if it does.
    pub expires_at: Option<OffsetDateTime>,
}

/// Makes a key: its record (to store) and the key itself, which exists
/// nowhere else: show it once.
pub fn mint(spec: KeySpec, now: OffsetDateTime) -> Result<(KeyRecord, String), KeyError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|_| KeyError::Randomness)?;
    let mut id = [0u8; 9];
    getrandom::fill(&mut id).map_err(|_| KeyError::Randomness)?;
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    // 12 URL-safe characters: always a valid id.
    let id = KeyId::new(URL_SAFE_NO_PAD.encode(id)).map_err(|_| KeyError::Randomness)?;
    let record = KeyRecord {
        id,
        tenant: spec.tenant,
        name: spec.name,
        role: spec.role,
        sha256: hash_hex(&key),
        // Every engine keeps microseconds: store what reads back.
        created_at: truncate_to_micros(now),
        expires_at: spec.expires_at.map(truncate_to_micros),
        last_used_at: None,
    };
    Ok((record, key))
}

/// Mints a key and stores it.
pub async fn create(store: &dyn KeyStore, spec: KeySpec, now: OffsetDateTime) -> Result<(KeyRecord, String), KeyError> {
    let (record, key) = mint(spec, now)?;
    store.insert_key(&record).await?;
    Ok((record, key))
}

/// One key as the key file of earlier versions held it.
#[derive(Debug, Deserialize)]
struct LegacyKey {
    id: String,
    tenant: Tenant,
    sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Deserialize)]
struct LegacyFile {
    keys: Vec<LegacyKey>,
}

/// Imports `api-keys.json` from `data_dir` into the store, if there is one,
/// and renames it `api-keys.json.imported`: the active keys keep their ids
/// and keep working, as `app` keys (keys of earlier versions could call no
/// admin route). Revoked keys are left out. A key already in the store (an
/// import cut short, or another node's) is skipped, so running it twice
/// imports nothing twice. Returns how many keys were imported.
pub async fn import_legacy_file(store: &dyn KeyStore, data_dir: &Path) -> Result<usize, KeyError> {
    let path = data_dir.join(LEGACY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let file: LegacyFile = serde_json::from_slice(&bytes).map_err(|source| KeyError::Corrupt {
        path: path.clone(),
        source,
    })?;
    let mut imported = 0;
    for old in file.keys.into_iter().filter(|k| k.revoked_at.is_none()) {
        let bad = |what: &str| KeyError::Corrupt {
            path: path.clone(),
            source: serde::de::Error::custom(format!("key {}: {what}", old.id)),
        };
        let id = KeyId::new(old.id.clone()).map_err(|_| bad("not a key id"))?;
        if old.sha256.len() != 64
            || !old
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("not a lower-case hex SHA-256"));
        }
        let record = KeyRecord {
            id,
            tenant: old.tenant,
            name: "imported".to_owned(),
            role: KeyRole::App,
            sha256: old.sha256,
            created_at: truncate_to_micros(old.created_at),
            expires_at: None,
            last_used_at: None,
        };
        match store.insert_key(&record).await {
            Ok(()) => imported += 1,
            Err(KeyStoreError::Exists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let done = data_dir.join(format!("{LEGACY_FILE}.imported"));
    std::fs::rename(&path, &done).map_err(|source| KeyError::Io { path, source })?;
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use sessiond_core::MemoryStore;

    use super::*;

    fn spec(role: KeyRole) -> KeySpec {
        KeySpec {
            tenant: Tenant::new("acme").unwrap(),
            role,
            name: "n".to_owned(),
            expires_at: None,
        }
    }

    #[test]
    fn a_minted_key_is_stored_only_as_its_hash() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let (record, key) = mint(spec(KeyRole::Admin), now).unwrap();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 43);
        assert_eq!(record.sha256, hash_hex(&key));
        let json = serde_json::to_string(&record).unwrap();
        assert!(
            !json.contains(&key[KEY_PREFIX.len()..]),
            "the key itself is in the record"
        );
        let (other, other_key) = mint(spec(KeyRole::App), now).unwrap();
        assert_ne!(other.id, record.id);
        assert_ne!(other_key, key);
    }

    #[tokio::test]
    async fn the_legacy_file_is_imported_once_and_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::new();
        let active = hash_hex("sdk_active");
        let file = serde_json::json!({"keys": [
            {"id": "AAAAAAAA", "tenant": "acme", "sha256": active, "created_at": "2026-11-01T10:00:00Z"},
            {"id": "BBBBBBBB", "tenant": "acme", "sha256": hash_hex("sdk_old"),
             "created_at": "2026-11-01T10:00:00Z", "revoked_at": "2026-11-02T10:00:00Z"}
        ]});
        std::fs::write(dir.path().join(LEGACY_FILE), file.to_string()).unwrap();
        assert_eq!(import_legacy_file(&store, dir.path()).await.unwrap(), 1);
        let keys = store.list_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].id.as_str(), keys[0].role, &keys[0].sha256),
            ("AAAAAAAA", KeyRole::App, &active)
        );
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(dir.path().join("api-keys.json.imported").exists());
        // Nothing left to import.
        assert_eq!(import_legacy_file(&store, dir.path()).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_damaged_legacy_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_FILE), b"{\"keys\": [{\"id\": 1}]}").unwrap();
        let store = MemoryStore::new();
        let error = import_legacy_file(&store, dir.path()).await.unwrap_err();
        assert!(matches!(error, KeyError::Corrupt { .. }), "{error:?}");
        assert!(dir.path().join(LEGACY_FILE).exists());
        assert!(store.list_keys().await.unwrap().is_empty());
    }
}
