//! Advisory lock keys.
//!
//! PostgreSQL advisory locks are named by numbers; ours are derived from
//! names with FNV-1a, which is stable across processes and versions (unlike
//! Rust's `DefaultHasher`). Two names with the same key only make unrelated
//! work wait for each other, never break anything. The one-`bigint` and
//! two-`integer` forms are separate key spaces, so migration locks (two
//! integers) can never collide with subject locks (one bigint).

use sessiond_core::{Subject, Tenant};

/// Class of the two-integer migration lock: "sdmg" in ASCII.
const MIGRATION_CLASS: i32 = 0x7364_6d67;

fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        // A separator byte that cannot occur in tenants or subjects (no
        // control characters), so ("ab","c") and ("a","bc") differ.
        for &byte in part.as_bytes().iter().chain(std::iter::once(&0x1f)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The lock serialising migrations of one schema.
pub(crate) fn migration_lock_key(schema: &str) -> (i32, i32) {
    let hash = fnv1a(&[schema]);
    (
        MIGRATION_CLASS,
        i32::from_ne_bytes(hash.to_ne_bytes()[..4].try_into().unwrap_or([0; 4])),
    )
}

/// The transaction lock held while one subject's limit is enforced (so that
/// logins racing on several nodes count each other's sessions) and while
/// several of its sessions are revoked at once.
pub(crate) fn subject_lock_key(schema: &str, tenant: &Tenant, subject: &Subject) -> i64 {
    i64::from_ne_bytes(fnv1a(&[schema, tenant.as_str(), subject.as_str()]).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_separate_names() {
        let t = Tenant::default_tenant();
        let a = subject_lock_key("s", &t, &Subject::new("ab").unwrap());
        let b = subject_lock_key("s", &t, &Subject::new("a").unwrap());
        assert_ne!(a, b);
        assert_eq!(a, subject_lock_key("s", &t, &Subject::new("ab").unwrap()));
        assert_ne!(a, subject_lock_key("other", &t, &Subject::new("ab").unwrap()));
        assert_eq!(migration_lock_key("x"), migration_lock_key("x"));
    }
}
