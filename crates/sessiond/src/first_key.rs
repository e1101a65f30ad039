//! Handing the first API key to the operator.
//!
//! On its first start over a store without keys sessiond makes an `admin`
//! key for the `default` tenant. Printed
//! to a service's stdout, a key ends in journald or a container log, readable
//! by whoever reads logs and kept as long as they are. So it is printed only
//! to a terminal; otherwise it is written to `first-api-key` in the data
//! directory (owner-only, 0600) and stdout says where, with a command that
//! reads it from there.
//!
//! That file is this node's own, so it is written only for a store that is
//! too (memory, embedded). Over Redis or PostgreSQL a node off a terminal
//! makes no key: a key in one node's directory is not where a cluster keeps
//! its keys, and the log says to make one with `sessiond keys create --role
//! admin --store URL`, which works on the store directly.

use std::path::Path;

use anyhow::Context as _;
use sessiond_core::{KeyRole, Tenant};

use crate::key_ring::KeyRing;
use crate::keys::{KeySpec, mint};

/// The file the first key is written to, in the data directory.
pub const FILE_NAME: &str = "first-api-key";

/// Delivers `key` (id `id`, tenant `tenant`) for a server at `base`
/// (`http://ADDR` or `https://ADDR`, as it is reached), and
/// returns the lines to print on stdout. With `to_terminal` the key is in
/// them; otherwise it is written to [`FILE_NAME`] in `data_dir` and never
/// in them.
pub fn deliver(
    data_dir: &Path,
    to_terminal: bool,
    base: &str,
    id: &str,
    tenant: &str,
    key: &str,
) -> std::io::Result<String> {
    let mut text = format!("sessiond: created the first API key (id {id}, role admin) for tenant \"{tenant}\".\n");
    if to_terminal {
        text.push_str("It is shown only this once; keep it in your backend's secrets. Use it as:\n");
        text.push_str(&format!(
            "  curl -H 'Authorization: Bearer {key}' {base}/v1/subjects/alice/sessions\n"
        ));
    } else {
        let path = data_dir.join(FILE_NAME);
        crate::private_file::write(&path, format!("{key}\n").as_bytes())?;
        text.push_str(&format!(
            "It is in {path} (readable by this user only); move it to your backend's secrets and delete \
             the file. Use it as:\n",
            path = path.display()
        ));
        text.push_str(&format!(
            "  curl -H \"Authorization: Bearer $(cat {path})\" {base}/v1/subjects/alice/sessions\n",
            path = path.display()
        ));
    }
    text.push_str("More keys: POST /v1/admin/keys with this key, or sessiond keys create --tenant NAME");
    Ok(text)
}

/// Makes the first key, if the store still has none, and hands it over
/// (see the module docs). A node that lost the race to another node's
/// first key says nothing.
pub async fn make_first_key(ring: &KeyRing, local: bool, data_dir: &Path, base: &str) -> anyhow::Result<()> {
    let to_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if !local && !to_terminal {
        tracing::warn!(
            "the store holds no API key; make one with: sessiond keys create --role admin --store <this store's URL>"
        );
        return Ok(());
    }
    let spec = KeySpec {
        tenant: Tenant::default_tenant(),
        role: KeyRole::Admin,
        name: "first".to_owned(),
        expires_at: None,
    };
    let (record, key) = mint(spec, ring.clock().now())?;
    if !ring.store().insert_first_key(&record).await? {
        return Ok(());
    }
    ring.reload().await?;
    let text = deliver(
        data_dir,
        to_terminal,
        base,
        record.id.as_str(),
        record.tenant.as_str(),
        &key,
    )
    .with_context(|| format!("cannot write the first API key to {}", data_dir.display()))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const KEY: &str = "sk_test_secret_value";

    const BASE: &str = "https://127.0.0.1:7380";

    #[test]
    fn off_a_terminal_the_key_goes_to_an_owner_only_file_and_never_to_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(FILE_NAME);
        std::fs::write(&old, "an older key").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = deliver(dir.path(), false, BASE, "k1", "default", KEY).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert!(
            text.contains(&format!("$(cat {})\" {BASE}/v1/", old.display())),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(&old).unwrap(), format!("{KEY}\n"));
        let mode = std::fs::metadata(&old).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn on_a_terminal_the_key_is_shown_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let text = deliver(dir.path(), true, BASE, "k1", "default", KEY).unwrap();
        assert!(text.contains(&format!("Bearer {KEY}' {BASE}/v1/")), "{text}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
