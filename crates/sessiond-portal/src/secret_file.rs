//! The portal secret file of earlier versions: read once, to import it
//! into the store (see `portal_secrets.rs`).
//!
//! The portal's CSRF secrets used to live in `<data_dir>/portal-secret`
//! (or `portal.secret_file`), which every node of a cluster had to be given
//! by hand. They now live in the store; a file that is still there is read
//! with the checks it always had, so a weak or exposed secret is not carried
//! into the store: 1 to [`MAX_SECRETS`] secrets of exactly 32 bytes, none
//! plainly non-random, in a file only its owner can read or change.

use std::path::Path;

use sessiond_core::{MAX_SECRETS, decode_secrets};

use super::PortalSetupError;

/// The secrets in `path`, checked; `None` when there is no such file.
pub(super) fn read_secret_file(path: &Path) -> Result<Option<Vec<[u8; 32]>>, PortalSetupError> {
    let fail = |source: std::io::Error| PortalSetupError::Secret {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            refuse_if_exposed(path).map_err(fail)?;
            parse_secrets(&bytes).map(Some).map_err(fail)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// The secrets in a file's bytes, each checked.
fn parse_secrets(bytes: &[u8]) -> std::io::Result<Vec<[u8; 32]>> {
    // The file holds what the store holds: the same layout, one decoder.
    let secrets = decode_secrets(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "expected 1 to {MAX_SECRETS} secrets of exactly 32 bytes each, found {} bytes; delete the file \
                 to use (or make) the store's secret (open forms will need reloading)",
                bytes.len()
            ),
        )
    })?;
    for secret in &secrets {
        refuse_if_predictable(secret)?;
    }
    Ok(secrets)
}

/// Fewest distinct byte values 32 random bytes may show: a random secret has
/// about 30, and fewer than 16 happens once in about 3 * 10^16 draws, while
/// a file of zeros, one repeated byte or a short pattern has a handful.
const MIN_DISTINCT_BYTES: usize = 16;

/// A secret that is plainly not random (all zeros, a repeated pattern) is
/// refused rather than trusted to sign anything. Also applied to what the
/// store holds, which a person may have written by hand.
pub(super) fn refuse_if_predictable(secret: &[u8; 32]) -> std::io::Result<()> {
    let distinct = secret.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "only {distinct} distinct byte values: not random; delete the file to use (or make) the store's \
                 secret (open forms will need reloading)"
            ),
        ));
    }
    Ok(())
}

/// A secret others can read (or anyone but its owner can change) is not a
/// secret: refused, with what to do about it.
fn refuse_if_exposed(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o026 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "readable by others or writable by group or others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// 32 fresh random bytes.
    fn draw() -> [u8; 32] {
        crate::portal_secrets::fresh_secret().unwrap()
    }

    /// Writes `bytes` to `path` with mode `mode`.
    fn write(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn cause(error: &PortalSetupError) -> String {
        error.source().map(ToString::to_string).unwrap_or_default()
    }

    #[test]
    fn a_missing_file_is_none_and_a_good_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        assert_eq!(read_secret_file(&path).unwrap(), None);
        let secret = draw();
        write(&path, &secret, 0o600);
        assert_eq!(read_secret_file(&path).unwrap(), Some(vec![secret]));
        write(&path, b"short", 0o600);
        let error = read_secret_file(&path).unwrap_err().to_string();
        assert!(error.contains("portal-secret"), "{error}");
    }

    #[test]
    fn a_secret_that_is_not_random_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        let pattern: Vec<u8> = (0..32u8).map(|i| i % 8).collect();
        for weak in [vec![0u8; 32], vec![0xAB; 32], pattern] {
            write(&path, &weak, 0o600);
            assert!(cause(&read_secret_file(&path).unwrap_err()).contains("not random"));
        }
        // One weak secret among good ones spoils the file.
        write(&path, &[draw(), [0u8; 32]].concat(), 0o600);
        assert!(cause(&read_secret_file(&path).unwrap_err()).contains("not random"));
        // Fresh secrets pass (each a new draw).
        for _ in 0..100 {
            assert!(refuse_if_predictable(&draw()).is_ok());
        }
    }

    #[test]
    fn a_file_may_hold_several_secrets_for_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (new, old) = (draw(), draw());
        let path = dir.path().join("portal-secret");
        write(&path, &[new, old].concat(), 0o600);
        assert_eq!(read_secret_file(&path).unwrap(), Some(vec![new, old]));
        for bad in [
            [new, old].concat()[..40].to_vec(),
            Vec::new(),
            vec![new; MAX_SECRETS + 1].concat(),
        ] {
            write(&path, &bad, 0o600);
            let cause = cause(&read_secret_file(&path).unwrap_err());
            assert!(cause.contains("32 bytes each"), "{} bytes: {cause}", bad.len());
        }
    }

    #[test]
    fn a_secret_others_can_read_or_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        write(&path, &draw(), 0o600);
        for mode in [0o644, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let cause = cause(&read_secret_file(&path).unwrap_err());
            assert!(cause.contains("chmod 600"), "{mode:o}: {cause}");
        }
        for mode in [0o600, 0o640, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(read_secret_file(&path).is_ok(), "{mode:o}");
        }
    }
}
