//! Writes that share a group commit keep their own outcomes.

use std::sync::Arc;

use sessiond_core::{Audit, Revocation, RevokeReason, StoreError, SubjectLimit};
use sessiond_testkit::conformance::{NOW, sample};

use crate::support::TempStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_write_does_not_fail_the_others_in_its_batch() {
    let store = TempStore::shared();
    let revocation = Revocation {
        at: NOW,
        reason: RevokeReason::Limit,
    };
    let taken = sample("t", "owner", NOW);
    store
        .insert(&taken, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
        .await
        .unwrap();
    // 64 inserts at once (so they share commits), every other one reusing
    // the stored token hash.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = Arc::clone(&store);
        let mut s = sample("t", &format!("u{i}"), NOW);
        if i % 2 == 0 {
            s.token_hash = taken.token_hash;
        }
        tasks.push(tokio::spawn(async move {
            let result = store
                .insert(&s, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
                .await;
            (i, s, result)
        }));
    }
    for task in tasks {
        let (i, s, result) = task.await.unwrap();
        if i % 2 == 0 {
            assert!(matches!(result, Err(StoreError::Collision)), "insert {i}: {result:?}");
            assert_eq!(store.get_by_id(&s.id).await.unwrap(), None);
        } else {
            assert!(result.is_ok(), "insert {i}: {result:?}");
            assert_eq!(store.get_by_token(&s.token_hash).await.unwrap().as_deref(), Some(&s));
        }
    }
    let owner = store.get_by_token(&taken.token_hash).await.unwrap();
    assert_eq!(owner.as_deref(), Some(&taken));
}
