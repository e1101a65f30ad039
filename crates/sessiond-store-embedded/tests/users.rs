//! Portal accounts in the store file: they survive a reopen, an older file
//! without the `users` table gets one, and damaged records are `Corrupt`,
//! never a panic and never overwritten.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use sessiond_core::{
    Audit, Revocation, RevokeReason, SessionStore, Subject, SubjectLimit, Tenant, UserStore, UserStoreError,
};
use sessiond_store_embedded::{EmbeddedStore, FILE_NAME, OpenError};
use sessiond_testkit::conformance::{NOW, sample};
use sessiond_testkit::user_conformance::sample_user;

const USERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("users");

fn raw(dir: &Path) -> redb::Database {
    redb::Database::open(dir.join(FILE_NAME)).unwrap()
}

fn t(name: &str) -> Tenant {
    Tenant::new(name).unwrap()
}

fn n(name: &str) -> Subject {
    Subject::new(name).unwrap()
}

#[tokio::test]
async fn users_survive_a_reopen_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let alice = sample_user("t", "alice");
    let mut bob = sample_user("t", "bob");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    bob.disabled = true;
    bob.version = 2;
    store.update_user(&bob, 1).await.unwrap();
    drop(store); // Drop, not close: every acknowledged write is on disk.

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.list_users(&t("t")).await.unwrap(), vec![alice, bob]);
    let report = store.check().unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.users, 2);
    assert_eq!(report.sessions, 0);
}

#[tokio::test]
async fn a_file_made_before_the_users_table_gets_it_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let session = sample("t", "alice", NOW);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let revocation = Revocation {
            at: NOW,
            reason: RevokeReason::Limit,
        };
        store
            .insert(&session, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
            .await
            .unwrap();
        store.close().unwrap();
        // What a build from before portal accounts left behind.
        let db = raw(dir.path());
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(USERS).unwrap());
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get_by_token(&session.token_hash).await.unwrap().as_deref(),
        Some(&session)
    );
    assert_eq!(store.get_user(&t("t"), &n("alice")).await.unwrap(), None);
    let alice = sample_user("t", "alice");
    store.insert_user(&alice).await.unwrap();
    assert_eq!(store.get_user(&t("t"), &n("alice")).await.unwrap(), Some(alice));
    assert!(store.check().unwrap().is_consistent());
    store.close().unwrap();
    let db = raw(dir.path());
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(USERS).unwrap().len().unwrap(), 1);
}

#[test]
fn a_users_table_of_another_type_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    EmbeddedStore::open(dir.path()).unwrap().close().unwrap();
    {
        let db = raw(dir.path());
        let txn = db.begin_write().unwrap();
        txn.delete_table(USERS).unwrap();
        let other: TableDefinition<&str, u64> = TableDefinition::new("users");
        txn.open_table(other).unwrap().insert("x", 1).unwrap();
        txn.commit().unwrap();
    }
    match EmbeddedStore::open(dir.path()) {
        Ok(_) => panic!("opened a file whose users table has another type"),
        Err(error) => assert!(
            matches!(&error, OpenError::NotAStore { why, .. } if why.contains("users")),
            "{error:?}"
        ),
    }
}

#[tokio::test]
async fn damaged_user_records_are_corrupt_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store.insert_user(&sample_user("t", "bob")).await.unwrap();
    store.close().unwrap();
    let garbage: &[u8] = &[1, 255, 255, 255, 255, 0];
    {
        let db = raw(dir.path());
        let txn = db.begin_write().unwrap();
        {
            let mut users = txn.open_table(USERS).unwrap();
            users.insert(("t", "alice"), garbage).unwrap();
            // bob's record, moved under carol's key.
            let bob = users.remove(("t", "bob")).unwrap().unwrap().value().to_vec();
            users.insert(("t", "carol"), bob.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for name in ["alice", "carol"] {
        let got = store.get_user(&t("t"), &n(name)).await;
        assert!(matches!(got, Err(UserStoreError::Corrupt(_))), "{name}: {got:?}");
    }
    let listed = store.list_users(&t("t")).await;
    assert!(matches!(listed, Err(UserStoreError::Corrupt(_))), "{listed:?}");
    let mut fix = sample_user("t", "alice");
    fix.version = 2;
    let updated = store.update_user(&fix, 1).await;
    assert!(matches!(updated, Err(UserStoreError::Corrupt(_))), "{updated:?}");
    let inserted = store.insert_user(&sample_user("t", "alice")).await;
    assert!(matches!(inserted, Err(UserStoreError::Exists)), "{inserted:?}");
    // Other tenants are unaffected.
    assert!(store.list_users(&t("u")).await.unwrap().is_empty());
    let report = store.check().unwrap();
    assert_eq!(report.users, 2);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    store.close().unwrap();
    // Nothing was written over the damaged record.
    let db = raw(dir.path());
    let txn = db.begin_read().unwrap();
    let users = txn.open_table(USERS).unwrap();
    assert_eq!(users.get(("t", "alice")).unwrap().unwrap().value(), garbage);
}
