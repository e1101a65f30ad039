//! What every engine's node-local record cache (`cache_entries`) must do
//! between two nodes, beyond the conformance suite: node A's acknowledged
//! change reaches node B's very next verify, and verifies at once share
//! barriers. Each engine's tests call these with two handles that have
//! caches (and connections) of their own on one store.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Audit, Clock as _, Revocation, RevokeReason, Session, SessionStore, StoreError, SubjectLimit, SystemClock,
    truncate_to_micros,
};

use crate::conformance::sample;

/// A revocation at the present moment.
pub fn revocation() -> Revocation {
    Revocation {
        at: truncate_to_micros(SystemClock.now()),
        reason: RevokeReason::Logout,
    }
}

/// A new session of `subject` in `store`.
pub async fn create(store: &dyn SessionStore, subject: &str) -> Session {
    let now = truncate_to_micros(SystemClock.now());
    let session = sample("t", subject, now);
    store
        .insert(&session, SubjectLimit::Unlimited, now, revocation(), &Audit::NONE)
        .await
        .unwrap();
    session
}

/// The cluster invariant through caches, `rounds` times: B verifies a new
/// session twice (a miss, then a hit), A changes it (in turn a
/// revocation, a rotation, a touch) and B's next verify must see the
/// change, with no wait in between. Without the barrier B answers from
/// memory before its connection has the engine's invalidation.
pub async fn changes_on_a_reach_the_next_verify_on_b(a: &dyn SessionStore, b: &dyn SessionStore, rounds: usize) {
    let mut stale = Vec::new();
    for round in 0..rounds {
        let session = create(a, &format!("user{round}")).await;
        for _ in 0..2 {
            let seen = b.get_by_token(&session.token_hash).await.unwrap().unwrap();
            assert!(seen.revoked.is_none());
        }
        let kind = match round % 3 {
            0 => {
                let revoked = revocation();
                a.revoke(&session.id, revoked, &Audit::NONE).await.unwrap().unwrap();
                let seen = b.get_by_token(&session.token_hash).await.unwrap();
                (seen.is_none_or(|s| s.revoked != Some(revoked))).then_some("revoke")
            }
            1 => {
                // The old token stops naming the record.
                let mut rotated = session.clone();
                rotated.token_hash = sample("t", "other", session.created_at).token_hash;
                rotated.version += 1;
                a.update(&rotated, session.version, &Audit::NONE).await.unwrap();
                b.get_by_token(&session.token_hash).await.unwrap().map(|_| "rotate")
            }
            _ => {
                let later = session.last_seen_at + Duration::from_secs(60);
                let idle = session.idle_expires_at + Duration::from_secs(60);
                assert!(a.touch(&session.id, later, idle, &session.client).await.unwrap());
                let seen = b.get_by_token(&session.token_hash).await.unwrap();
                (seen.is_none_or(|s| s.last_seen_at != later)).then_some("touch")
            }
        };
        if let Some(kind) = kind {
            stale.push((round, kind));
        }
    }
    assert!(
        stale.is_empty(),
        "{} of {rounds} changes acknowledged by A were still answered from memory by B; first: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}

/// 64 verifies at once on B share barriers (`barriers` reads B's count),
/// and every one of 64 that start after A acknowledged a revocation
/// refuses.
pub async fn concurrent_verifies_share_barriers(
    a: &dyn SessionStore,
    b: Arc<dyn SessionStore>,
    barriers: impl Fn() -> u64,
) {
    let session = create(a, "alice").await;
    b.get_by_token(&session.token_hash).await.unwrap().unwrap();
    let verifies = || {
        (0..64)
            .map(|_| {
                let b = Arc::clone(&b);
                let hash = session.token_hash;
                tokio::spawn(async move { b.get_by_token(&hash).await.unwrap().unwrap().revoked })
            })
            .collect::<Vec<_>>()
    };
    let before = barriers();
    for handle in verifies() {
        assert_eq!(handle.await.unwrap(), None);
    }
    let sent = barriers() - before;
    assert!(sent < 64, "64 verifies at once sent a barrier each ({sent})");
    let revoked = revocation();
    a.revoke(&session.id, revoked, &Audit::NONE).await.unwrap().unwrap();
    for handle in verifies() {
        assert_eq!(handle.await.unwrap(), Some(revoked));
    }
}

/// A new session of A's that B has verified twice, so B holds it.
pub async fn cached_on_b(a: &dyn SessionStore, b: &dyn SessionStore) -> Session {
    let session = create(a, "alice").await;
    for _ in 0..2 {
        b.get_by_token(&session.token_hash).await.unwrap().unwrap();
    }
    session
}

/// Once B's cache connection was killed (by the engine, after
/// [`cached_on_b`]): A revokes `session`, and B answers unavailable or the
/// revoked record, never its memory of before, and comes back.
pub async fn revoked_while_b_was_cut_off(a: &dyn SessionStore, b: &dyn SessionStore, session: &Session) {
    let revoked = revocation();
    a.revoke(&session.id, revoked, &Audit::NONE).await.unwrap().unwrap();
    let mut answers = Vec::new();
    for _ in 0..3 {
        match b.get_by_token(&session.token_hash).await {
            Ok(found) => answers.push(found.unwrap().revoked),
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(!answers.is_empty(), "B never came back");
    assert!(answers.iter().all(|a| *a == Some(revoked)), "{answers:?}");
}
