//! What only the PostgreSQL user store has: the migration that adds
//! `users` to a schema that has sessions, rows that do not decode, versions
//! past `bigint`, and a closed pool.

use sessiond_core::{
    Audit, Revocation, RevokeReason, SessionStore, Subject, SubjectLimit, Tenant, UserStore, UserStoreError,
};
use sessiond_store_postgres::PostgresStore;
use sessiond_testkit::conformance::{NOW, sample};
use sessiond_testkit::user_conformance::sample_user;

use crate::support::{fresh_schema, fresh_store, raw, server_url, with_schema};

#[tokio::test]
async fn a_schema_at_version_1_gains_users_and_keeps_its_sessions() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let url = with_schema(&base, &schema);
    let session = sample("t", "alice", NOW);
    {
        let store = PostgresStore::open(&url).await.unwrap();
        let revocation = Revocation {
            at: NOW,
            reason: RevokeReason::Limit,
        };
        store
            .insert(&session, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
            .await
            .unwrap();
        store.close();
    }
    // What a build from before portal accounts left behind.
    raw(&base)
        .await
        .batch_execute(&format!(
            "DROP TABLE {schema}.users; {} ALTER TABLE {schema}.sessions DROP COLUMN origin; \
             DELETE FROM {schema}.schema_migrations WHERE version >= 2",
            crate::support::undo_migrations_from_4(&schema)
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    // A version 1 row has no client at creation (migration 10).
    let old = sessiond_core::Session {
        created_client: sessiond_core::ClientInfo::default(),
        ..session
    };
    assert_eq!(store.get_by_id(&old.id).await.unwrap().as_deref(), Some(&old));
    let alice = sample_user("t", "alice");
    store.insert_user(&alice).await.unwrap();
    assert_eq!(store.list_users(&alice.tenant).await.unwrap(), vec![alice]);
}

#[tokio::test]
async fn a_row_that_does_not_decode_is_corrupt_not_absent() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let store = PostgresStore::open(&with_schema(&base, &schema)).await.unwrap();
    store.insert_user(&sample_user("t", "alice")).await.unwrap();
    store.insert_user(&sample_user("t", "bob")).await.unwrap();
    // A name sessiond would never accept (a control character).
    let db = raw(&base).await;
    db.execute(
        &format!("UPDATE {schema}.users SET name = E'al\\tice' WHERE name = 'alice'"),
        &[],
    )
    .await
    .unwrap();
    let tenant = Tenant::new("t").unwrap();
    let listed = store.list_users(&tenant).await;
    assert!(matches!(listed, Err(UserStoreError::Corrupt(_))), "{listed:?}");
    assert_eq!(
        store.get_user(&tenant, &Subject::new("bob").unwrap()).await.unwrap(),
        Some(sample_user("t", "bob"))
    );
}

#[tokio::test]
async fn versions_past_bigint_are_refused_and_write_nothing() {
    let Some(store) = fresh_store().await else { return };
    let mut user = sample_user("t", "alice");
    user.version = u64::MAX;
    let inserted = store.insert_user(&user).await;
    assert!(matches!(inserted, Err(UserStoreError::Backend(_))), "{inserted:?}");
    assert_eq!(store.get_user(&user.tenant, &user.name).await.unwrap(), None);
    user.version = 1;
    store.insert_user(&user).await.unwrap();
    let mut next = user.clone();
    next.version = u64::MAX;
    let updated = store.update_user(&next, 1).await;
    assert!(matches!(updated, Err(UserStoreError::Backend(_))), "{updated:?}");
    assert_eq!(store.get_user(&user.tenant, &user.name).await.unwrap(), Some(user));
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let Some(store) = fresh_store().await else { return };
    let user = sample_user("t", "alice");
    store.close();
    let got = store.get_user(&user.tenant, &Subject::new("alice").unwrap()).await;
    assert!(matches!(got, Err(UserStoreError::Unavailable(_))), "{got:?}");
    let inserted = store.insert_user(&user).await;
    assert!(matches!(inserted, Err(UserStoreError::Unavailable(_))), "{inserted:?}");
    let updated = store.update_user(&user, 1).await;
    assert!(matches!(updated, Err(UserStoreError::Unavailable(_))), "{updated:?}");
    let listed = store.list_users(&user.tenant).await;
    assert!(matches!(listed, Err(UserStoreError::Unavailable(_))), "{listed:?}");
}
