//! The conformance case about anonymous records (issue 18): a visitor's
//! session before sign-in is stored and found like any other, but belongs
//! to nobody, so no subject operation may reach it, and the reason it ends
//! with at sign-in must survive every engine.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, RevokeReason, SessionStore, Subject};

use super::{NOW, by_id, placed, put, revocation, sample_in, subject, tenant};

/// An anonymous record round-trips through insert, both lookups, a
/// compare-and-set update, a touch, a revocation with reason `signed_in`
/// and the purge; neither listing nor revoking the anonymous subject
/// reaches it, and it does not disturb a subject's own sessions.
pub async fn anonymous_records_belong_to_no_subject(store: Arc<dyn SessionStore>) {
    let mut visitor = sample_in(&store, "t", "alice", NOW);
    visitor.subject = Subject::anonymous();
    let visitor = placed(&store, visitor);
    let mut other_visitor = sample_in(&store, "t", "alice", NOW);
    other_visitor.subject = Subject::anonymous();
    let other_visitor = placed(&store, other_visitor);
    let alice = sample_in(&store, "t", "alice", NOW);
    put(&store, &visitor).await;
    put(&store, &other_visitor).await;
    put(&store, &alice).await;

    assert_eq!(by_id(&store, &visitor.id).await, Some(visitor.clone()));
    let by_token = store.get_by_token(&visitor.token_hash).await.expect("get_by_token");
    assert_eq!(by_token.as_deref(), Some(&visitor));
    assert!(by_token.is_some_and(|s| s.is_anonymous()));

    let anonymous = Subject::anonymous();
    let listed = store
        .list_subject(&tenant("t"), &anonymous, NOW)
        .await
        .expect("list anonymous");
    assert!(listed.is_empty(), "anonymous records were listed: {listed:?}");
    let revoked = store
        .revoke_subject(
            &tenant("t"),
            &anonymous,
            None,
            revocation(RevokeReason::Admin),
            NOW,
            &Audit::NONE,
        )
        .await
        .expect("revoke anonymous");
    assert!(revoked.is_empty(), "anonymous records were revoked: {revoked:?}");
    assert_eq!(by_id(&store, &other_visitor.id).await, Some(other_visitor.clone()));
    let alices = store
        .list_subject(&tenant("t"), &subject("alice"), NOW)
        .await
        .expect("list alice");
    assert_eq!(alices.iter().map(|s| &s.id).collect::<Vec<_>>(), vec![&alice.id]);

    let mut next = visitor.clone();
    next.data.insert("cart".into(), serde_json::json!(["sku-1", "sku-2"]));
    next.version = 2;
    store.update(&next, 1, &Audit::NONE).await.expect("update");
    assert_eq!(by_id(&store, &visitor.id).await, Some(next.clone()));

    let later = NOW + Duration::from_secs(120);
    let client = ClientInfo {
        ip: Some("198.51.100.9".into()),
        ..ClientInfo::default()
    };
    let touched = store
        .touch(&visitor.id, later, later + Duration::from_secs(1800), &client)
        .await
        .expect("touch");
    assert!(touched);

    let ended = store
        .revoke(&visitor.id, revocation(RevokeReason::SignedIn), &Audit::NONE)
        .await
        .expect("revoke")
        .expect("was live");
    assert!(ended.is_anonymous());
    assert_eq!(ended.data, next.data);
    assert_eq!(ended.revoked.map(|r| r.reason), Some(RevokeReason::SignedIn));
    let tombstone = store.get_by_token(&visitor.token_hash).await.expect("get_by_token");
    assert_eq!(
        tombstone.and_then(|s| s.revoked).map(|r| r.reason),
        Some(RevokeReason::SignedIn)
    );

    // Past every deadline the purge takes the anonymous records with the
    // rest.
    let purged = store
        .purge_expired(NOW + Duration::from_secs(13 * 3600), 10, &Audit::NONE)
        .await
        .expect("purge");
    let mut ids: Vec<_> = purged.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let mut want = vec![visitor.id.clone(), other_visitor.id.clone(), alice.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(by_id(&store, &other_visitor.id).await, None);
}
