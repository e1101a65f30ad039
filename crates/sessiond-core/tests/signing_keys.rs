//! The shared signing keys over a real store (the memory engine): racing
//! nodes agree, rotation follows the schedule on a fake clock, the record
//! is sealed, and minted tokens verify with the published keys (checked
//! with ring, not with the jsonwebtoken crate that signed them).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_core::{
    AccessTokenIssuer, Clock, CreateOptions, KeySchedule, Maintenance, MemoryStore, SIGNING_KEYS, Sealer, SecretName,
    SecretStore, SessionManager, SigningKeys, Subject, sealing::Keyring,
};
use sessiond_testkit::FakeClock;

fn schedule() -> KeySchedule {
    // 4 s tokens: 1 s refresh, 1 s margin, 6 s lead and retention; a new key every 20 s.
    KeySchedule::new(Duration::from_secs(4), Duration::from_secs(20)).unwrap()
}

fn sealer() -> Sealer {
    Sealer::new(Arc::new(Keyring::new([[7u8; 32]]).unwrap()))
}

fn node(store: &Arc<MemoryStore>, clock: &FakeClock) -> Arc<SigningKeys> {
    let secrets: Arc<dyn SecretStore> = store.clone();
    SigningKeys::new(secrets, sealer(), Arc::new(clock.clone()), schedule())
}

fn kids(keys: &SigningKeys) -> Vec<String> {
    keys.jwks().keys.into_iter().map(|k| k.kid).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_make_one_key_and_share_it() {
    let store = Arc::new(MemoryStore::new());
    let clock = FakeClock::default();
    let nodes: Vec<_> = (0..8).map(|_| node(&store, &clock)).collect();
    let mut racing = tokio::task::JoinSet::new();
    for n in &nodes {
        let n = Arc::clone(n);
        racing.spawn(async move { n.maintain().await });
    }
    let results: Vec<_> = racing.join_all().await;
    let made = results
        .iter()
        .filter(|r| matches!(r, Ok(Maintenance::Changed { added: true, .. })))
        .count();
    assert_eq!(made, 1, "{results:?}");
    let first = kids(&nodes[0]);
    assert_eq!(first.len(), 1);
    for n in &nodes {
        assert_eq!(kids(n), first);
    }
}

#[tokio::test]
async fn a_rotation_publishes_the_next_key_ahead_and_drops_the_old_one_after_its_tokens() {
    let store = Arc::new(MemoryStore::new());
    let clock = FakeClock::default();
    let (a, b) = (node(&store, &clock), node(&store, &clock));
    a.maintain().await.unwrap();
    b.maintain().await.unwrap();
    let first = kids(&a);

    // 20 s rotation, 6 s lead: at 14 s the next key is published, once.
    clock.advance(Duration::from_secs(14));
    assert_eq!(
        a.maintain().await.unwrap(),
        Maintenance::Changed {
            added: true,
            dropped: 0
        }
    );
    assert_eq!(
        b.maintain().await.unwrap(),
        Maintenance::Unchanged,
        "the other node only reads it"
    );
    assert_eq!(kids(&b).len(), 2);
    assert_eq!(kids(&a), kids(&b));

    // Retired 6 s after the new key takes over (at 20 s): still there at 25 s, gone at 26 s.
    clock.advance(Duration::from_secs(11));
    assert_eq!(b.maintain().await.unwrap(), Maintenance::Unchanged);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        b.maintain().await.unwrap(),
        Maintenance::Changed {
            added: false,
            dropped: 1
        }
    );
    a.maintain().await.unwrap();
    assert!(!kids(&a).contains(&first[0]));
    assert_eq!(kids(&a).len(), 1);
}

#[tokio::test]
async fn the_stored_record_is_sealed_and_another_key_cannot_open_it() {
    let store = Arc::new(MemoryStore::new());
    let clock = FakeClock::default();
    node(&store, &clock).maintain().await.unwrap();
    let name = SecretName::new(SIGNING_KEYS).unwrap();
    let stored = store.secret_value(&name).await.unwrap().unwrap();
    assert!(
        stored.starts_with(b"v1."),
        "sealed: {:?}",
        String::from_utf8_lossy(&stored)
    );
    assert!(!String::from_utf8_lossy(&stored).contains("pkcs8"));

    let secrets: Arc<dyn SecretStore> = store.clone();
    let other = Sealer::new(Arc::new(Keyring::new([[8u8; 32]]).unwrap()));
    let stranger = SigningKeys::new(secrets, other, Arc::new(clock.clone()), schedule());
    assert!(matches!(
        stranger.maintain().await,
        Err(sessiond_core::SigningKeyError::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_minted_token_verifies_with_the_published_key_and_names_its_session() {
    let store = Arc::new(MemoryStore::new());
    let clock = FakeClock::default();
    let keys = node(&store, &clock);
    keys.maintain().await.unwrap();
    let manager = SessionManager::builder(store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (_, session) = manager
        .create(&Subject::new("alice").unwrap(), CreateOptions::default())
        .await
        .unwrap();
    let issuer = AccessTokenIssuer::new(Arc::clone(&keys), "https://sessiond.test", "orders");
    let minted = issuer.mint(&session, clock.now()).unwrap();

    let parts: Vec<&str> = minted.token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let jwk = keys.jwks().keys.into_iter().find(|k| k.kid == header["kid"]).unwrap();
    let public = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sid"], session.id.as_str());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 4);
    assert_eq!(minted.expires_at.unix_timestamp(), claims["exp"].as_i64().unwrap());

    // A session past its expiry gets none.
    clock.advance(Duration::from_secs(3 * 3600));
    assert!(matches!(
        issuer.mint(&session, clock.now()),
        Err(sessiond_core::AccessTokenError::SessionExpired)
    ));
}

#[tokio::test]
async fn a_node_sealing_with_a_new_data_key_reseals_the_record_once() {
    let store = Arc::new(MemoryStore::new());
    let clock = FakeClock::default();
    let old = node(&store, &clock);
    old.maintain().await.unwrap();
    let kids_before = kids(&old);

    // The new key first, the old one still configured to open.
    let secrets: Arc<dyn SecretStore> = store.clone();
    let rotated = Sealer::new(Arc::new(Keyring::new([[9u8; 32], [7u8; 32]]).unwrap()));
    let new = SigningKeys::new(secrets, rotated, Arc::new(clock.clone()), schedule());
    assert_eq!(new.maintain().await.unwrap(), Maintenance::Resealed);
    assert_eq!(new.maintain().await.unwrap(), Maintenance::Unchanged);
    assert_eq!(kids(&new), kids_before, "the same keys, sealed anew");

    // Now only the new data key opens it.
    let secrets: Arc<dyn SecretStore> = store.clone();
    let only_new = Sealer::new(Arc::new(Keyring::new([[9u8; 32]]).unwrap()));
    let later = SigningKeys::new(secrets, only_new, Arc::new(clock.clone()), schedule());
    assert_eq!(later.maintain().await.unwrap(), Maintenance::Unchanged);
    assert!(matches!(
        old.maintain().await,
        Err(sessiond_core::SigningKeyError::Corrupt(_))
    ));
}
