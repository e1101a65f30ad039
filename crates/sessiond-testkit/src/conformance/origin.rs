//! The conformance case about a session's origin: the field forward auth
//! trusts (issue 12, finding 3) must survive every read and write of every
//! engine, or a portal login would be refused — or, worse, an API session
//! taken for one.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, RevokeReason, SessionOrigin, SessionStore};

use super::{NOW, by_id, put, revocation, sample_in, subject, tenant};

/// A portal session and an API session of one subject keep their origins
/// through insert, lookups by id and token, listing, a compare-and-set
/// update, a touch and a revocation.
pub async fn origin_round_trips_through_every_read_and_write(store: Arc<dyn SessionStore>) {
    let mut portal = sample_in(&store, "t", "alice", NOW);
    portal.origin = SessionOrigin::Portal;
    let api = sample_in(&store, "t", "alice", NOW + Duration::from_secs(1));
    assert_eq!(api.origin, SessionOrigin::Api);
    put(&store, &portal).await;
    put(&store, &api).await;

    for s in [&portal, &api] {
        assert_eq!(by_id(&store, &s.id).await.map(|r| r.origin), Some(s.origin));
        let by_token = store.get_by_token(&s.token_hash).await.expect("get_by_token");
        assert_eq!(by_token.map(|r| r.origin), Some(s.origin));
    }
    let listed = store
        .list_subject(&tenant("t"), &subject("alice"), NOW)
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
    for s in &listed {
        let want = if s.id == portal.id {
            SessionOrigin::Portal
        } else {
            SessionOrigin::Api
        };
        assert_eq!(s.origin, want, "{}", s.id);
    }

    let mut next = portal.clone();
    next.data.insert("step".into(), 2.into());
    next.version = 2;
    store.update(&next, 1, &Audit::NONE).await.expect("update");
    assert_eq!(by_id(&store, &portal.id).await, Some(next.clone()));

    let later = NOW + Duration::from_secs(60);
    let client = ClientInfo {
        ip: Some("198.51.100.1".into()),
        ..ClientInfo::default()
    };
    let touched = store
        .touch(&portal.id, later, later + Duration::from_secs(1800), &client)
        .await
        .expect("touch");
    assert!(touched);
    assert_eq!(
        by_id(&store, &portal.id).await.map(|r| r.origin),
        Some(SessionOrigin::Portal)
    );

    let revoked = store
        .revoke(&portal.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke")
        .expect("was live");
    assert_eq!(revoked.origin, SessionOrigin::Portal);
    let tombstone = store.get_by_token(&next.token_hash).await.expect("get_by_token");
    assert_eq!(tombstone.map(|r| r.origin), Some(SessionOrigin::Portal));
    assert_eq!(by_id(&store, &api.id).await, Some(api));
}
