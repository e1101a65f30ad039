//! `[store.encryption]`: which keys seal session data at rest, and the
//! store opened with them.
//!
//! - `key_files` set: those keys, the first sealing.
//! - embedded store, no `key_files`: a key generated once in the store's
//!   own directory (`data-key`, mode 0600). It protects what leaves the
//!   machine without the directory (a copied `sessions.redb`, a backup of
//!   the file); keep a key outside the directory for more.
//! - Redis or PostgreSQL, no `key_files`: refused, unless `encryption =
//!   "off"` is written. Every node must seal with the same key, and a key
//!   one node made for itself would lock the others out of its records.
//! - `memory:`: nothing reaches a disk; no sealing.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sessiond_core::Sealer;
use sessiond_core::sealing::Keyring;
use sessiond_stores::{StoreHandle, StoreUrl};

use crate::config::{Config, EncryptionMode};

/// The key an embedded store generates for itself, in its directory.
pub const EMBEDDED_KEY_FILE: &str = "data-key";

/// Opens the configured store, sealing as `[store.encryption]` says.
///
/// A failure to open keeps its [`sessiond_stores::StoreOpenError`] (a
/// caller can tell "in use" apart); a key problem says what to change.
pub async fn open_store(config: &Config) -> anyhow::Result<StoreHandle> {
    let url = StoreUrl::parse(&config.store.url)?;
    let sealer = sealer(config, &url)?;
    let opened = sessiond_stores::open(&url).await?;
    Ok(opened.sealed_by(sealer))
}

/// The sealer `[store.encryption]` asks for on the store `url`.
pub fn sealer(config: &Config, url: &StoreUrl) -> anyhow::Result<Sealer> {
    let encryption = &config.store.encryption;
    match (encryption.encryption, encryption.key_files.is_empty()) {
        (EncryptionMode::Off, true) => {
            if !matches!(url, StoreUrl::Memory) {
                tracing::warn!(
                    "store.encryption.encryption = \"off\": session data, IPs and User-Agents are stored in clear"
                );
            }
            Ok(Sealer::off())
        }
        (EncryptionMode::Off, false) => {
            anyhow::bail!("[store.encryption] sets both key_files and encryption = \"off\"; remove one of them")
        }
        (EncryptionMode::On, false) => Ok(Sealer::new(Arc::new(load(&encryption.key_files)?))),
        (EncryptionMode::On, true) => match url {
            StoreUrl::Memory => Ok(Sealer::off()),
            StoreUrl::Embedded { dir, .. } => {
                let path = dir.join(EMBEDDED_KEY_FILE);
                generate_if_missing(dir, &path)?;
                Ok(Sealer::new(Arc::new(load(&[path])?)))
            }
            StoreUrl::Redis(_) | StoreUrl::Postgres(_) => anyhow::bail!(
                "a shared store (Redis or PostgreSQL) needs the same data key on every node, and none is configured.\n\
                 Make one: openssl rand -base64 32 > /etc/sessiond/data-key && chmod 600 /etc/sessiond/data-key\n\
                 and add to the configuration of every node:\n\
                 \n[store.encryption]\nkey_files = [\"/etc/sessiond/data-key\"]\n\n\
                 or, to store session data in clear, write instead:\n\
                 \n[store.encryption]\nencryption = \"off\""
            ),
        },
    }
}

/// Reads the key files, the first sealing.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Keyring> {
    let mut keys = Vec::with_capacity(paths.len());
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read data key file {}", path.display()))?;
        let key = Keyring::parse_key(&text).with_context(|| format!("data key file {}", path.display()))?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
                "a data key file is readable by group or others; chmod 600 it"
            );
        }
        keys.push(key);
    }
    Keyring::new(keys).context("[store.encryption] key_files")
}

/// Makes an embedded store's key the first time, never replacing one: a
/// replaced key would make every sealed record unreadable. The key is
/// written whole to a temporary file and linked into place, so a reader
/// never sees half a key and of two starts at once one key wins.
fn generate_if_missing(dir: &Path, path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let text = Keyring::generate_key_text()?;
    let tmp = dir.join(format!("{EMBEDDED_KEY_FILE}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    let removed = std::fs::remove_file(&tmp);
    written.with_context(|| format!("cannot create data key {}", path.display()))?;
    removed.with_context(|| format!("cannot remove {}", tmp.display()))?;
    tracing::info!(file = %path.display(), "generated the data key that seals this store's session data");
    Ok(())
}
