//! The portal's CSRF secrets, from the store.
//!
//! The session CSRF tokens and the device cookies are signed with the
//! secret set [`SecretName::portal_csrf`] of the [`SecretStore`]: nodes over
//! one store agree on it with nothing copied between them, since the first
//! node to start stores a fresh secret with `init_secrets` and every later
//! (or racing) one gets that secret back.
//!
//! A secret file of an earlier version (`<data_dir>/portal-secret`, or
//! `portal.secret_file`) is imported once, so forms and device cookies
//! signed before the upgrade stay valid:
//!
//! * store empty, file present: the file's secrets (checked as they always
//!   were, see `secret_file.rs`) are stored with `init_secrets`, and the file
//!   is renamed to `<name>.imported` so it is not read again;
//! * both present and equal (a node that stopped between the two steps, or
//!   nodes that shared the file): the file is renamed;
//! * both present and different: the store wins, with a warning; the file
//!   is left for the operator to remove;
//! * neither: a fresh random secret.
//!
//! A file is still checked when the store already has secrets: an exposed
//! secret file is refused at start whatever the store holds.

use std::path::{Path, PathBuf};

use sessiond_core::{SecretName, SecretStore, SecretStoreError};

use crate::PortalSetupError;
use crate::secret_file::{read_secret_file, refuse_if_predictable};

/// Where an imported file is moved: its name with `.imported` added.
pub(crate) fn imported_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".imported");
    file.with_file_name(name)
}

/// The portal's secrets (the first signs, all verify), from the store,
/// importing `file` if the store has none yet.
pub(crate) async fn portal_secrets(store: &dyn SecretStore, file: &Path) -> Result<Vec<[u8; 32]>, PortalSetupError> {
    let name = SecretName::portal_csrf();
    let stored = store.secrets(&name).await.map_err(PortalSetupError::Store)?;
    let from_file = read_secret_file(file)?;
    let secrets = match (stored, from_file) {
        (Some(stored), None) => stored,
        (stored, Some(from_file)) => {
            let agreed = match stored {
                Some(stored) => stored,
                None => init(store, &name, &from_file).await?,
            };
            if agreed == from_file {
                retire(file);
            } else {
                tracing::warn!(
                    file = %file.display(),
                    "the portal secret file differs from the secrets in the store: the store's are used; \
                     remove the file"
                );
            }
            agreed
        }
        (None, None) => init(store, &name, &[fresh_secret()?]).await?,
    };
    // The store keeps bytes; a set written by hand is checked like a file.
    for secret in &secrets {
        refuse_if_predictable(secret).map_err(PortalSetupError::WeakStoredSecret)?;
    }
    Ok(secrets)
}

/// Rotates the portal's secrets: a fresh secret goes first (it signs from
/// the next start of each node) and the current first one stays second (it
/// keeps verifying what was signed before); older ones are dropped. Nothing
/// stored yet: one fresh secret. A concurrent change is read again, a few
/// times. Returns how many secrets are stored now.
pub async fn rotate_portal_secret(store: &dyn SecretStore) -> Result<usize, PortalSetupError> {
    let name = SecretName::portal_csrf();
    for _ in 0..5 {
        let fresh = fresh_secret()?;
        let Some(current) = store.secrets(&name).await.map_err(PortalSetupError::Store)? else {
            return Ok(init(store, &name, &[fresh]).await?.len());
        };
        let mut next = vec![fresh];
        next.extend(current.first().copied());
        match store.put_secrets(&name, &next, &current).await {
            Ok(()) => return Ok(next.len()),
            Err(SecretStoreError::Conflict | SecretStoreError::NotFound) => continue,
            Err(other) => return Err(PortalSetupError::Store(other)),
        }
    }
    Err(PortalSetupError::Store(SecretStoreError::Conflict))
}

/// 32 bytes from the operating system's random source.
pub(crate) fn fresh_secret() -> Result<[u8; 32], PortalSetupError> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| PortalSetupError::Randomness(std::io::Error::other(e)))?;
    Ok(fresh)
}

async fn init(
    store: &dyn SecretStore,
    name: &SecretName,
    initial: &[[u8; 32]],
) -> Result<Vec<[u8; 32]>, PortalSetupError> {
    store.init_secrets(name, initial).await.map_err(PortalSetupError::Store)
}

/// Renames an imported file out of the way. A failure only costs a warning
/// (the store holds the secrets; the next start finds them equal and tries
/// again), and a file another node renamed first is no failure at all.
fn retire(file: &Path) {
    let target = imported_path(file);
    match std::fs::rename(file, &target) {
        Ok(()) => tracing::info!(
            file = %file.display(),
            renamed_to = %target.display(),
            "imported the portal secret file into the store"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(
            %error,
            file = %file.display(),
            "the portal secrets are in the store, but the file could not be renamed; remove it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    use sessiond_core::MemoryStore;

    use super::*;

    fn draw() -> [u8; 32] {
        fresh_secret().unwrap()
    }

    fn write(path: &Path, secrets: &[[u8; 32]]) {
        std::fs::write(path, secrets.concat()).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn csrf() -> SecretName {
        SecretName::portal_csrf()
    }

    #[tokio::test]
    async fn a_rotation_puts_a_fresh_secret_first_and_keeps_the_current_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let store = MemoryStore::new();
        assert_eq!(rotate_portal_secret(&store).await.unwrap(), 1);
        let first = portal_secrets(&store, &file).await.unwrap();
        assert_eq!(rotate_portal_secret(&store).await.unwrap(), 2);
        let second = portal_secrets(&store, &file).await.unwrap();
        assert_eq!(second.len(), 2);
        assert_ne!(second[0], first[0]);
        assert_eq!(second[1], first[0]);
        // A second rotation drops the oldest.
        rotate_portal_secret(&store).await.unwrap();
        let third = portal_secrets(&store, &file).await.unwrap();
        assert_eq!(third[1], second[0]);
        assert!(!third.contains(&first[0]));
    }

    #[tokio::test]
    async fn without_a_file_one_fresh_secret_is_stored_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let store = MemoryStore::new();
        let first = portal_secrets(&store, &file).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(store.secrets(&csrf()).await.unwrap(), Some(first.clone()));
        assert_eq!(portal_secrets(&store, &file).await.unwrap(), first);
        assert!(!file.exists(), "no file is written any more");
    }

    #[tokio::test]
    async fn a_file_is_imported_once_and_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let secrets = vec![draw(), draw()];
        write(&file, &secrets);
        let store = MemoryStore::new();
        assert_eq!(portal_secrets(&store, &file).await.unwrap(), secrets);
        assert_eq!(store.secrets(&csrf()).await.unwrap(), Some(secrets.clone()));
        assert!(!file.exists());
        assert_eq!(
            std::fs::read(dir.path().join("portal-secret.imported")).unwrap(),
            secrets.concat()
        );
        assert_eq!(portal_secrets(&store, &file).await.unwrap(), secrets);
    }

    #[tokio::test]
    async fn nodes_sharing_a_file_import_it_once_and_agree() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let secrets = vec![draw()];
        write(&file, &secrets);
        let store = Arc::new(MemoryStore::new());
        let mut nodes = Vec::new();
        for _ in 0..4 {
            let (store, file) = (Arc::clone(&store), file.clone());
            nodes.push(tokio::spawn(async move { portal_secrets(&*store, &file).await }));
        }
        for node in nodes {
            assert_eq!(node.await.unwrap().unwrap(), secrets);
        }
        assert!(!file.exists());
    }

    #[tokio::test]
    async fn when_file_and_store_differ_the_store_wins_and_the_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let store = MemoryStore::new();
        let stored = vec![draw()];
        store.init_secrets(&csrf(), &stored).await.unwrap();
        write(&file, &[draw()]);
        assert_eq!(portal_secrets(&store, &file).await.unwrap(), stored);
        assert!(file.exists(), "left for the operator");
        // Equal ones are retired.
        write(&file, &stored);
        assert_eq!(portal_secrets(&store, &file).await.unwrap(), stored);
        assert!(!file.exists());
    }

    #[tokio::test]
    async fn a_bad_file_or_a_weak_stored_secret_stops_the_portal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portal-secret");
        let store = MemoryStore::new();
        std::fs::write(&file, [7u8; 32]).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            portal_secrets(&store, &file).await,
            Err(PortalSetupError::Secret { .. })
        ));
        assert_eq!(store.secrets(&csrf()).await.unwrap(), None, "nothing imported");
        std::fs::remove_file(&file).unwrap();
        store.init_secrets(&csrf(), &[[0u8; 32]]).await.unwrap();
        assert!(matches!(
            portal_secrets(&store, &file).await,
            Err(PortalSetupError::WeakStoredSecret(_))
        ));
    }

    #[test]
    fn the_imported_name_adds_a_suffix() {
        assert_eq!(
            imported_path(Path::new("/d/portal-secret")),
            Path::new("/d/portal-secret.imported")
        );
    }
}
