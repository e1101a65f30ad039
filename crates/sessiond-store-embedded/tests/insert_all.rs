//! `EmbeddedStore::insert_all`, the bulk load: every session or none.

use sessiond_core::{Audit, Revocation, RevokeReason, SessionStore, StoreError, SubjectLimit};
use sessiond_store_embedded::Options;
use sessiond_testkit::conformance::{NOW, sample};

use crate::support::TempStore;

#[tokio::test]
async fn sessions_load_together_or_not_at_all() {
    let temp = TempStore::with(Options::default());
    let store = &temp.store;
    let taken = sample("t", "owner", NOW);
    let revocation = Revocation {
        at: NOW,
        reason: RevokeReason::Limit,
    };
    store
        .insert(&taken, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
        .await
        .unwrap();

    // One session reuses a stored token hash: nothing of the batch is written.
    let fresh = sample("t", "a", NOW);
    let mut clash = sample("t", "b", NOW);
    clash.token_hash = taken.token_hash;
    let refused = store.insert_all(vec![fresh.clone(), clash]).await;
    assert!(matches!(refused, Err(StoreError::Collision)), "{refused:?}");
    assert_eq!(store.get_by_id(&fresh.id).await.unwrap(), None);

    // Twice the same id within the batch: refused as well.
    let mut twin = sample("t", "c", NOW);
    twin.id = fresh.id.clone();
    let refused = store.insert_all(vec![fresh.clone(), twin]).await;
    assert!(matches!(refused, Err(StoreError::Collision)), "{refused:?}");
    assert_eq!(store.get_by_id(&fresh.id).await.unwrap(), None);

    // A clean batch: every session readable by id and token, and listed.
    let batch: Vec<_> = (0..3).map(|i| sample("t", &format!("u{}", i % 2), NOW)).collect();
    store.insert_all(batch.clone()).await.unwrap();
    for session in &batch {
        assert_eq!(
            *store.get_by_token(&session.token_hash).await.unwrap().unwrap(),
            *session
        );
    }
    let u0 = store
        .list_subject(&batch[0].tenant, &batch[0].subject, NOW)
        .await
        .unwrap();
    assert_eq!(u0.len(), 2);
}
