//! The conformance cases about a subject's sessions as a whole: listing,
//! bulk revocation, the per-subject limit, and purging.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, RevokeReason, Session, SessionId, SessionStore, StoreError, SubjectLimit};

use super::{NOW, by_id, put, revocation, sample_in, subject, tenant};

/// Listing and bulk revocation see one subject in one tenant, live only,
/// and spare `except`.
pub async fn subject_listing_and_revocation_respect_except_and_tenant(store: Arc<dyn SessionStore>) {
    let mine: Vec<Session> = (0..3)
        .map(|i| sample_in(&store, "t", "alice", NOW + Duration::from_secs(i)))
        .collect();
    let other_subject = sample_in(&store, "t", "bob", NOW);
    let other_tenant = sample_in(&store, "u", "alice", NOW);
    for s in mine.iter().chain([&other_subject, &other_tenant]) {
        put(&store, s).await;
    }
    let t = tenant("t");
    let alice = subject("alice");
    let mut listed: Vec<SessionId> = store
        .list_subject(&t, &alice, NOW)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    let mut expected: Vec<SessionId> = mine.iter().map(|s| s.id.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.list_subject(&t, &alice, NOW).await.expect("list").len(), 3);

    let keep = &mine[1].id;
    let revoked = store
        .revoke_subject(
            &t,
            &alice,
            Some(keep),
            revocation(RevokeReason::PasswordChange),
            NOW,
            &Audit::NONE,
        )
        .await
        .expect("revoke_subject");
    let mut revoked_ids: Vec<SessionId> = revoked.iter().map(|s| s.id.clone()).collect();
    revoked_ids.sort();
    let mut want: Vec<SessionId> = vec![mine[0].id.clone(), mine[2].id.clone()];
    want.sort();
    assert_eq!(revoked_ids, want);
    assert!(
        revoked
            .iter()
            .all(|s| s.revoked.map(|r| r.reason) == Some(RevokeReason::PasswordChange))
    );
    let left: Vec<SessionId> = store
        .list_subject(&t, &alice, NOW)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![keep.clone()]);
    assert_eq!(by_id(&store, &other_subject.id).await, Some(other_subject));
    assert_eq!(by_id(&store, &other_tenant.id).await, Some(other_tenant));
}

/// A record past its deadline is not live: not counted, not listed, not
/// revoked in bulk; if a backend still returns it, it is unchanged.
pub async fn expired_records_are_neither_counted_nor_listed(store: Arc<dyn SessionStore>) {
    let past = NOW - Duration::from_secs(3600);
    let expired = sample_in(&store, "t", "alice", past);
    let live = sample_in(&store, "t", "alice", NOW);
    put(&store, &expired).await;
    put(&store, &live).await;
    let (t, alice) = (tenant("t"), subject("alice"));
    assert_eq!(store.list_subject(&t, &alice, NOW).await.expect("list").len(), 1);
    let listed = store.list_subject(&t, &alice, NOW).await.expect("list");
    assert_eq!(listed, vec![live.clone()]);
    if let Some(found) = by_id(&store, &expired.id).await {
        assert_eq!(found, expired);
    }
    let revoked = store
        .revoke_subject(
            &t,
            &alice,
            Some(&live.id),
            revocation(RevokeReason::Admin),
            NOW,
            &Audit::NONE,
        )
        .await
        .expect("revoke_subject");
    assert!(revoked.is_empty(), "an expired session was revoked: {revoked:?}");
}

/// `Deny(n)` refuses the (n+1)th live session and writes nothing; expired
/// and revoked ones do not count.
pub async fn limit_deny_refuses_and_writes_nothing(store: Arc<dyn SessionStore>) {
    let expired = sample_in(&store, "t", "alice", NOW - Duration::from_secs(3600));
    put(&store, &expired).await;
    let first = sample_in(&store, "t", "alice", NOW);
    let second = sample_in(&store, "t", "alice", NOW);
    for s in [&first, &second] {
        store
            .insert(
                s,
                SubjectLimit::Deny(2),
                NOW,
                revocation(RevokeReason::Limit),
                &Audit::NONE,
            )
            .await
            .expect("under the limit");
    }
    let third = sample_in(&store, "t", "alice", NOW);
    let result = store
        .insert(
            &third,
            SubjectLimit::Deny(2),
            NOW,
            revocation(RevokeReason::Limit),
            &Audit::NONE,
        )
        .await;
    assert!(matches!(result, Err(StoreError::LimitReached)), "got {result:?}");
    assert_eq!(by_id(&store, &third.id).await, None);
    assert_eq!(
        store.get_by_token(&third.token_hash).await.expect("get").as_deref(),
        None
    );
    assert_eq!(by_id(&store, &first.id).await.and_then(|s| s.revoked), None);

    store
        .revoke(&first.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke");
    store
        .insert(
            &third,
            SubjectLimit::Deny(2),
            NOW,
            revocation(RevokeReason::Limit),
            &Audit::NONE,
        )
        .await
        .expect("room again");
    assert_eq!(
        store
            .list_subject(&tenant("t"), &subject("alice"), NOW)
            .await
            .expect("list")
            .len(),
        2
    );
}

/// `EvictOldest(n)` revokes the earliest-created live sessions to make room.
pub async fn limit_evict_oldest_revokes_the_first_created(store: Arc<dyn SessionStore>) {
    let oldest = sample_in(&store, "t", "alice", NOW - Duration::from_secs(20));
    let middle = sample_in(&store, "t", "alice", NOW - Duration::from_secs(10));
    put(&store, &oldest).await;
    put(&store, &middle).await;
    let newest = sample_in(&store, "t", "alice", NOW);
    let how = revocation(RevokeReason::Limit);
    let inserted = store
        .insert(&newest, SubjectLimit::EvictOldest(2), NOW, how, &Audit::NONE)
        .await
        .expect("insert");
    assert_eq!(inserted.evicted.len(), 1);
    assert_eq!(inserted.evicted[0].id, oldest.id);
    assert_eq!(inserted.evicted[0].revoked, Some(how));
    assert_eq!(by_id(&store, &oldest.id).await.and_then(|s| s.revoked), Some(how));
    let mut live: Vec<SessionId> = store
        .list_subject(&tenant("t"), &subject("alice"), NOW)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    live.sort();
    let mut want = vec![middle.id.clone(), newest.id.clone()];
    want.sort();
    assert_eq!(live, want);
}

/// Racing logins never push a subject past a `Deny` limit.
pub async fn concurrent_inserts_respect_the_limit(store: Arc<dyn SessionStore>) {
    let mut handles = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let s = sample_in(&store, "t", "alice", NOW);
            store
                .insert(
                    &s,
                    SubjectLimit::Deny(3),
                    NOW,
                    revocation(RevokeReason::Limit),
                    &Audit::NONE,
                )
                .await
        }));
    }
    let mut ok = 0;
    for handle in handles {
        match handle.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::LimitReached) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(
        store
            .list_subject(&tenant("t"), &subject("alice"), NOW)
            .await
            .expect("list")
            .len(),
        3
    );
}

/// Purge removes what expired, earliest first, in batches, and nothing live.
pub async fn purge_removes_expired_records_earliest_first(store: Arc<dyn SessionStore>) {
    let ages = [40u64, 35, 31, 10];
    let sessions: Vec<Session> = ages
        .iter()
        .map(|m| sample_in(&store, "t", "alice", NOW - Duration::from_secs(m * 60)))
        .collect();
    let tombstone = sample_in(&store, "t", "bob", NOW - Duration::from_secs(33 * 60));
    for s in sessions.iter().chain([&tombstone]) {
        put(&store, s).await;
    }
    store
        .revoke(&tombstone.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke");
    let first: Vec<SessionId> = store
        .purge_expired(NOW, 2, &Audit::NONE)
        .await
        .expect("purge")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(first, vec![sessions[0].id.clone(), sessions[1].id.clone()]);
    let second: Vec<SessionId> = store
        .purge_expired(NOW, 10, &Audit::NONE)
        .await
        .expect("purge")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(second, vec![tombstone.id.clone(), sessions[2].id.clone()]);
    assert!(
        store
            .purge_expired(NOW, 10, &Audit::NONE)
            .await
            .expect("purge")
            .is_empty()
    );
    for gone in [&sessions[0], &sessions[1], &sessions[2], &tombstone] {
        assert_eq!(by_id(&store, &gone.id).await, None);
        assert_eq!(
            store.get_by_token(&gone.token_hash).await.expect("get").as_deref(),
            None
        );
    }
    assert_eq!(by_id(&store, &sessions[3].id).await.as_ref(), Some(&sessions[3]));
    assert_eq!(
        store
            .list_subject(&tenant("t"), &subject("alice"), NOW)
            .await
            .expect("list")
            .len(),
        1
    );
}

/// Purge uses the deadline a touch moved, not the one the record was born with.
pub async fn purge_follows_touched_deadlines(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW - Duration::from_secs(29 * 60));
    put(&store, &session).await;
    let touched_at = NOW - Duration::from_secs(60);
    store
        .touch(
            &session.id,
            touched_at,
            touched_at + Duration::from_secs(1800),
            &ClientInfo::default(),
        )
        .await
        .expect("touch");
    let after_old_deadline = NOW + Duration::from_secs(5 * 60);
    assert!(
        store
            .purge_expired(after_old_deadline, 10, &Audit::NONE)
            .await
            .expect("purge")
            .is_empty()
    );
    assert!(by_id(&store, &session.id).await.is_some());
    let after_new_deadline = NOW + Duration::from_secs(30 * 60);
    let purged = store
        .purge_expired(after_new_deadline, 10, &Audit::NONE)
        .await
        .expect("purge");
    assert_eq!(purged.len(), 1);
}
