//! The conformance cases of the client at creation
//! ([`Session::created_client`]): client binding compares later requests
//! with it, so every engine must keep it through every read and write, and
//! a touch (which writes the last-seen `client`) must leave it alone.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, PreviousToken, RevokeReason, Session, SessionStore, StoreError, SubjectLimit};

use super::{NOW, by_id, new_hash_for, put, revocation, sample_in, subject, tenant};

/// A client unlike both of [`sample`]'s.
fn elsewhere() -> ClientInfo {
    ClientInfo {
        ip: Some("198.51.100.99".into()),
        user_agent: Some("curl/8.14".into()),
        sealed: None,
    }
}

/// Insert stores it; lookups by id and token, listing, and every write
/// that returns records (revocation, bulk revocation, eviction, purge)
/// give it back as it was written.
pub async fn created_client_is_stored_and_read_back(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    assert_ne!(session.created_client, ClientInfo::default());
    assert_ne!(session.created_client, session.client);
    put(&store, &session).await;
    let read = by_id(&store, &session.id).await.expect("present");
    assert_eq!(read.created_client, session.created_client);
    assert_eq!(read.client, session.client);
    let by_token = store.get_by_token(&session.token_hash).await.expect("get_by_token");
    assert_eq!(
        by_token.map(|s| s.created_client.clone()),
        Some(session.created_client.clone())
    );
    let listed = store
        .list_subject(&tenant("t"), &subject("alice"), NOW)
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| &s.created_client).collect::<Vec<_>>(),
        [&session.created_client]
    );

    // One created without a client reads back without one.
    let mut bare = sample_in(&store, "t", "bob", NOW);
    bare.created_client = ClientInfo::default();
    put(&store, &bare).await;
    assert_eq!(
        by_id(&store, &bare.id).await.map(|s| s.created_client),
        Some(ClientInfo::default())
    );

    let revoked = store
        .revoke(&session.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke")
        .expect("was live");
    assert_eq!(revoked.created_client, session.created_client);
    let tombstone = store.get_by_token(&session.token_hash).await.expect("get_by_token");
    assert_eq!(
        tombstone.map(|s| s.created_client.clone()),
        Some(session.created_client.clone())
    );

    let mut carol = sample_in(&store, "t", "carol", NOW);
    carol.created_client.user_agent = Some("Safari/18 (carol)".into());
    put(&store, &carol).await;
    let bulk = store
        .revoke_subject(
            &tenant("t"),
            &subject("carol"),
            None,
            revocation(RevokeReason::Admin),
            NOW,
            &Audit::NONE,
        )
        .await
        .expect("revoke_subject");
    assert_eq!(
        bulk.iter().map(|s| &s.created_client).collect::<Vec<_>>(),
        [&carol.created_client]
    );

    let mut dave = sample_in(&store, "t", "dave", NOW);
    dave.created_client.ip = Some("192.0.2.45".into());
    put(&store, &dave).await;
    let newer = sample_in(&store, "t", "dave", NOW + Duration::from_secs(1));
    let inserted = store
        .insert(
            &newer,
            SubjectLimit::EvictOldest(1),
            NOW,
            revocation(RevokeReason::Limit),
            &Audit::NONE,
        )
        .await
        .expect("insert");
    assert_eq!(
        inserted.evicted.iter().map(|s| &s.created_client).collect::<Vec<_>>(),
        [&dave.created_client]
    );

    let after_all = NOW + Duration::from_secs(13 * 3600);
    let mut purged = store.purge_expired(after_all, 100, &Audit::NONE).await.expect("purge");
    purged.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want: Vec<(_, ClientInfo)> = [&session, &bare, &carol, &dave, &newer]
        .into_iter()
        .map(|s| (s.id.clone(), s.created_client.clone()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        purged.into_iter().map(|s| (s.id, s.created_client)).collect::<Vec<_>>(),
        want
    );
}

/// A touch with another client changes `client` and leaves
/// `created_client` as it was; so does a touch that is refused.
pub async fn touch_changes_the_client_but_not_the_created_client(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;
    let later = NOW + Duration::from_secs(120);
    let idle = later + Duration::from_secs(1800);
    assert!(
        store
            .touch(&session.id, later, idle, &elsewhere())
            .await
            .expect("touch")
    );
    let touched = by_id(&store, &session.id).await.expect("present");
    assert_eq!(touched.client, elsewhere());
    assert_eq!(touched.created_client, session.created_client);
    assert_eq!(
        store
            .get_by_token(&session.token_hash)
            .await
            .expect("get_by_token")
            .map(|s| s.created_client.clone()),
        Some(session.created_client.clone())
    );

    // An empty client is a client too: it replaces the last seen one only.
    let later_still = later + Duration::from_secs(120);
    assert!(
        store
            .touch(
                &session.id,
                later_still,
                later_still + Duration::from_secs(1800),
                &ClientInfo::default()
            )
            .await
            .expect("touch")
    );
    let touched = by_id(&store, &session.id).await.expect("present");
    assert_eq!(
        (touched.client, touched.created_client),
        (ClientInfo::default(), session.created_client.clone())
    );
}

/// A compare-and-set update and a rotation (an update that moves the
/// token) write the record whole and keep the client at creation they
/// are given; a refused update changes nothing.
pub async fn update_and_rotation_keep_the_created_client(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;

    let mut next = by_id(&store, &session.id).await.expect("present");
    next.data.insert("step".into(), 2.into());
    next.client = elsewhere();
    next.version = 2;
    store.update(&next, 1, &Audit::NONE).await.expect("update");
    let read = by_id(&store, &session.id).await.expect("present");
    assert_eq!(
        (&read.created_client, &read.client),
        (&session.created_client, &elsewhere())
    );
    assert_eq!(read, next);

    let mut rotated: Session = read.clone();
    rotated.previous_token = Some(PreviousToken {
        hash: read.token_hash,
        valid_until: NOW + Duration::from_secs(5),
    });
    rotated.token_hash = new_hash_for(&store, &session);
    rotated.version = 3;
    store.update(&rotated, 2, &Audit::NONE).await.expect("rotate");
    for hash in [rotated.token_hash, session.token_hash] {
        let found = store.get_by_token(&hash).await.expect("get_by_token");
        assert_eq!(
            found.map(|s| s.created_client.clone()),
            Some(session.created_client.clone())
        );
    }

    // A stale update loses, and with it its created client.
    let mut stale = rotated.clone();
    stale.created_client = elsewhere();
    stale.version = 3;
    let result = store.update(&stale, 2, &Audit::NONE).await;
    assert!(
        matches!(result, Err(StoreError::VersionConflict { current: 3 })),
        "got {result:?}"
    );
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.created_client),
        Some(session.created_client.clone())
    );
}
