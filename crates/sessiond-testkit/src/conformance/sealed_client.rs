//! The conformance case of a sealed client ([`ClientInfo::sealed`]): the
//! field that holds a session's IP and User-Agent while encryption is on
//! must survive every read and write, or a device list would lose them.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, ClientInfo, SessionStore};

use super::{NOW, by_id, put, sample, subject, tenant};

fn sealed(text: &str) -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: None,
        sealed: Some(text.to_owned()),
    }
}

/// Insert, lookups, listing, touch and compare-and-set update keep it.
pub async fn sealed_client_round_trips_through_every_read_and_write(store: Arc<dyn SessionStore>) {
    let mut session = sample("t", "alice", NOW);
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
