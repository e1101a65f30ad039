//! Owner-only files in the data directory, written whole or not at all.
//!
//! The first API key (`first_key.rs`) and a running embedded server's admin
//! endpoint (`local_admin.rs`) are secrets that go to a file: each is
//! written to an owner-only (0600) temporary file beside its place and
//! renamed over it, so a reader never sees half a file, and a file left
//! with another mode by an earlier version is replaced, not reused.
//!
//! [`create_new`] is for files the operator keeps (`sessiond tls
//! self-signed`): it never replaces one, and the file has its mode from its
//! first byte, so a private key is never readable by others, not even
//! between its creation and a `chmod`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes `bytes` to `path` (mode 0600), replacing what was there.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    match std::fs::remove_file(tmp) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Writes `bytes` to a new file at `path` with permission bits `mode`
/// (before the umask); fails with `AlreadyExists` if anything is there,
/// a dangling symlink included.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
