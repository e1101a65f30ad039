//! The conformance case of a sealed client ([`ClientInfo::sealed`]): the
//! field that holds a session's IP and User-Agent while encryption is on
//! must survive every read and write, or a device list would lose them;
//! and the sealed form of the client at creation
//! ([`Session::created_client`](sessiond_core::Session::created_client)),
//! which client binding compares with.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, SessionStore};

use super::{NOW, by_id, put, sample_in, subject, tenant};

fn sealed(text: &str) -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: None,
        sealed: Some(text.to_owned()),
    }
}

/// Insert, lookups, listing, touch and compare-and-set update keep it.
pub async fn sealed_client_round_trips_through_every_read_and_write(store: Arc<dyn SessionStore>) {
    let mut session = sample_in(&store, "t", "alice", NOW);
    session.client = sealed("v1.00000001.first");
    put(&store, &session).await;
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.client),
        Some(session.client.clone())
    );
    let by_token = store.get_by_token(&session.token_hash).await.expect("get_by_token");
    assert_eq!(by_token.map(|s| s.client.clone()), Some(session.client.clone()));
    let listed = store
        .list_subject(&tenant("t"), &subject("alice"), NOW)
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|s| &s.client).collect::<Vec<_>>(), [&session.client]);

    let later = NOW + Duration::from_secs(60);
    let touched = sealed("v1.00000001.touched");
    assert!(
        store
            .touch(&session.id, later, later + Duration::from_secs(1800), &touched)
            .await
            .expect("touch")
    );
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.client),
        Some(touched.clone())
    );

    let mut updated = by_id(&store, &session.id).await.expect("the record");
    updated.client = sealed("v1.00000001.updated");
    updated.version += 1;
    store
        .update(&updated, updated.version - 1, &Audit::NONE)
        .await
        .expect("update");
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.client),
        Some(updated.client.clone())
    );

    // Back to a clear client: the sealed field is gone, not left behind.
    let mut clear = updated.clone();
    clear.client = ClientInfo {
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        sealed: None,
    };
    clear.version += 1;
    store
        .update(&clear, clear.version - 1, &Audit::NONE)
        .await
        .expect("update");
    assert_eq!(by_id(&store, &session.id).await.map(|s| s.client), Some(clear.client));
}

/// The sealed client at creation is kept through insert, lookups, listing
/// and update, and no touch changes it, sealed or clear.
pub async fn sealed_created_client_round_trips_and_survives_touch(store: Arc<dyn SessionStore>) {
    let mut session = sample_in(&store, "t", "alice", NOW);
    session.client = sealed("v1.00000001.client");
    session.created_client = sealed("v1.00000001.created");
    put(&store, &session).await;
    let read = by_id(&store, &session.id).await.expect("the record");
    assert_eq!(
        (&read.client, &read.created_client),
        (&session.client, &session.created_client)
    );
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

    // Touches with a sealed client, then a clear one: only `client` moves.
    let mut at = NOW;
    for client in [
        sealed("v1.00000001.touched"),
        ClientInfo {
            ip: Some("192.0.2.77".into()),
            user_agent: Some("Touch/1".into()),
            sealed: None,
        },
    ] {
        at += Duration::from_secs(60);
        assert!(
            store
                .touch(&session.id, at, at + Duration::from_secs(1800), &client)
                .await
                .expect("touch")
        );
        let touched = by_id(&store, &session.id).await.expect("the record");
        assert_eq!(
            (touched.client, touched.created_client),
            (client, session.created_client.clone())
        );
    }

    let mut updated = by_id(&store, &session.id).await.expect("the record");
    updated.created_client = sealed("v1.00000002.resealed");
    updated.version += 1;
    store
        .update(&updated, updated.version - 1, &Audit::NONE)
        .await
        .expect("update");
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.created_client),
        Some(updated.created_client.clone())
    );

    // Back to a clear created client: the sealed field is gone, not left
    // behind.
    let mut clear = updated.clone();
    clear.created_client = ClientInfo {
        ip: Some("192.0.2.1".into()),
        user_agent: Some("Clear/1".into()),
        sealed: None,
    };
    clear.version += 1;
    store
        .update(&clear, clear.version - 1, &Audit::NONE)
        .await
        .expect("update");
    assert_eq!(
        by_id(&store, &session.id).await.map(|s| s.created_client),
        Some(clear.created_client)
    );
}
