//! The lifecycle rules of DESIGN.md, one test each, on a fake clock.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Aal, AnomalyReason, ClientInfo, CreateOptions, Error, EventKind, LimitAction, MemoryEvents, MemoryStore, NameError,
    Policy, PolicyError, Rejection, RevokeReason, Rotation, SessionManager, SessionOrigin, SessionStore, Subject,
    Tenant,
};
use sessiond_testkit::FakeClock;

use crate::counting_store::{CountingStore, DownStore, counting};

const MIN: Duration = Duration::from_secs(60);

pub(crate) struct Fixture {
    pub(crate) manager: SessionManager,
    pub(crate) clock: FakeClock,
    pub(crate) events: Arc<MemoryEvents>,
}

pub(crate) fn fixture_with(store: Arc<dyn SessionStore>, policy: Policy) -> Fixture {
    let clock = FakeClock::default();
    let events = Arc::new(MemoryEvents::new());
    let manager = SessionManager::builder(store)
        .policy(policy)
        .clock(Arc::new(clock.clone()))
        .events(events.clone())
        .build()
        .expect("valid policy");
    Fixture { manager, clock, events }
}

pub(crate) fn fixture() -> Fixture {
    fixture_with(Arc::new(MemoryStore::new()), Policy::default())
}

pub(crate) fn alice() -> Subject {
    Subject::new("alice").expect("subject")
}

pub(crate) fn rejected(result: Result<impl std::fmt::Debug, Error>) -> Rejection {
    match result {
        Err(Error::Rejected(why)) => why,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_within_the_touch_interval_writes_nothing() {
    let store = counting();
    let f = fixture_with(
        store.clone() as Arc<CountingStore> as Arc<dyn SessionStore>,
        Policy::default(),
    );
    let (token, _) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    let after_create = store.writes();
    for _ in 0..5 {
        f.clock.advance(Duration::from_secs(10));
        f.manager.verify(token.expose_secret(), None).await.expect("valid");
    }
    assert_eq!(store.writes(), after_create, "verify wrote within the touch interval");
    f.clock.advance(Duration::from_secs(11)); // 61 s since the last persisted use
    f.manager.verify(token.expose_secret(), None).await.expect("valid");
    assert_eq!(store.writes(), after_create + 1, "a due touch writes exactly once");
    f.manager.verify(token.expose_secret(), None).await.expect("valid");
    assert_eq!(store.writes(), after_create + 1);
}

#[tokio::test]
async fn touch_slides_the_idle_deadline_but_never_past_the_absolute_one() {
    let f = fixture();
    let (token, created) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    assert_eq!(created.idle_expires_at - created.created_at, Duration::from_secs(1800));
    // Use it every 20 minutes for 12 hours: it stays valid until the absolute deadline.
    let mut last = Arc::new(created.clone());
    for _ in 0..35 {
        f.clock.advance(20 * MIN);
        last = f
            .manager
            .verify(token.expose_secret(), None)
            .await
            .expect("busy session stays valid");
        assert!(last.idle_expires_at <= last.absolute_expires_at);
    }
    assert_eq!(last.idle_expires_at, created.absolute_expires_at);
    f.clock.advance(20 * MIN); // 12 h since creation
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::ExpiredAbsolute
    );
}

#[tokio::test]
async fn an_unused_session_expires_at_the_idle_deadline() {
    let f = fixture();
    let (token, _) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    f.clock.advance(30 * MIN - Duration::from_secs(1));
    f.manager
        .verify(token.expose_secret(), None)
        .await
        .expect("one second left");
    f.clock.advance(30 * MIN); // the touch above moved the deadline by 30 min
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::ExpiredIdle
    );
    let reasons: Vec<EventKind> = f.events.take().into_iter().map(|e| e.kind).collect();
    assert!(reasons.contains(&EventKind::VerifyFailed(Rejection::ExpiredIdle)));
}

#[tokio::test]
async fn remember_me_gets_the_longer_timeouts() {
    let f = fixture();
    let options = CreateOptions {
        remember_me: true,
        ..CreateOptions::default()
    };
    let (token, s) = f.manager.create(&alice(), options).await.expect("create");
    assert!(s.remember_me);
    assert_eq!(s.absolute_expires_at - s.created_at, Duration::from_secs(30 * 86_400));
    f.clock.advance(Duration::from_secs(6 * 86_400));
    f.manager
        .verify(token.expose_secret(), None)
        .await
        .expect("valid after 6 idle days");
}

#[tokio::test]
async fn rotation_kills_the_old_token_and_keeps_the_id() {
    // Theft detection off: the old token is refused and nothing else
    // happens (with it on, see the theft tests below).
    let policy = Policy {
        reuse_detection: false,
        ..Policy::default()
    };
    let f = fixture_with(Arc::new(MemoryStore::new()), policy);
    let (old, created) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    let (new, rotated) = f
        .manager
        .rotate(old.expose_secret(), Rotation::Plain)
        .await
        .expect("rotate");
    assert_ne!(old, new);
    assert_eq!(rotated.id, created.id);
    assert_eq!(rotated.version, created.version + 1);
    assert_eq!(
        rejected(f.manager.verify(old.expose_secret(), None).await),
        Rejection::Superseded
    );
    assert_eq!(
        rejected(f.manager.rotate(old.expose_secret(), Rotation::Plain).await),
        Rejection::Superseded
    );
    assert_eq!(
        f.manager.verify(new.expose_secret(), None).await.expect("new token").id,
        created.id
    );
}

#[tokio::test]
async fn the_rotation_grace_lets_in_flight_requests_finish_then_ends() {
    let policy = Policy {
        rotation_grace: Duration::from_secs(5),
        ..Policy::default()
    };
    let f = fixture_with(Arc::new(MemoryStore::new()), policy);
    let (old, _) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    let (new, _) = f
        .manager
        .rotate(old.expose_secret(), Rotation::Plain)
        .await
        .expect("rotate");
    f.clock.advance(Duration::from_secs(4));
    f.manager.verify(old.expose_secret(), None).await.expect("within grace");
    assert_eq!(
        rejected(f.manager.rotate(old.expose_secret(), Rotation::Plain).await),
        Rejection::Superseded,
        "a token in grace cannot fork the session"
    );
    f.manager
        .verify(new.expose_secret(), None)
        .await
        .expect("a refused rotate is no theft");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        rejected(f.manager.verify(old.expose_secret(), None).await),
        Rejection::Superseded
    );
    // After the grace, two parties hold the session: it ends.
    assert_eq!(
        rejected(f.manager.verify(new.expose_secret(), None).await),
        Rejection::Revoked
    );
}

/// Theft detection on each entry point of the manager: a rotated-out
/// token presented after its grace revokes the session (reason `theft`,
/// recorded as an event), whichever call presents it.
#[tokio::test]
async fn a_rotated_out_token_used_after_its_grace_revokes_the_session_as_theft() {
    for entry_point in ["verify", "rotate", "revoke_token"] {
        let store = Arc::new(MemoryStore::new());
        let f = fixture_with(Arc::clone(&store) as Arc<dyn SessionStore>, Policy::default());
        let (old, created) = f
            .manager
            .create(&alice(), CreateOptions::default())
            .await
            .expect("create");
        let (new, _) = f
            .manager
            .rotate(old.expose_secret(), Rotation::Plain)
            .await
            .expect("rotate");
        f.clock.advance(Duration::from_secs(1));
        let old = old.expose_secret();
        match entry_point {
            "verify" => assert_eq!(rejected(f.manager.verify(old, None).await), Rejection::Superseded),
            "rotate" => assert_eq!(
                rejected(f.manager.rotate(old, Rotation::Plain).await),
                Rejection::Superseded
            ),
            _ => assert_eq!(
                f.manager.revoke_token(old, RevokeReason::Logout).await.expect("logout"),
                None
            ),
        }
        assert_eq!(
            rejected(f.manager.verify(new.expose_secret(), None).await),
            Rejection::Revoked,
            "{entry_point}: the thief's or the owner's token, the session is over"
        );
        let stored = store.get_by_id(&created.id).await.expect("read").expect("tombstone");
        assert_eq!(
            stored.revoked.map(|r| r.reason),
            Some(RevokeReason::Theft),
            "{entry_point}"
        );
        let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind).collect();
        assert!(
            kinds.contains(&EventKind::Revoked(RevokeReason::Theft)),
            "{entry_point}: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn step_up_records_the_new_level_and_a_fresh_authentication() {
    let f = fixture();
    let (token, created) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    assert_eq!(created.aal, Aal::AAL1);
    f.clock.advance(5 * MIN);
    let (_, elevated) = f
        .manager
        .rotate(token.expose_secret(), Rotation::StepUp(Aal::AAL2))
        .await
        .expect("rotate");
    assert_eq!(elevated.aal, Aal::AAL2);
    assert_eq!(elevated.authenticated_at - created.authenticated_at, 5 * MIN);
    let kinds: Vec<EventKind> = f.events.take().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Created, EventKind::Elevated { aal: Aal::AAL2 }]);
}

#[tokio::test]
async fn malformed_tokens_are_refused_before_any_store_access() {
    let store = counting();
    let f = fixture_with(store.clone() as Arc<dyn SessionStore>, Policy::default());
    for bad in [
        "",
        " ",
        "sd_",
        "Bearer sd_x",
        &"A".repeat(46),
        &format!("sd_{}", "/".repeat(43)),
        &"x".repeat(100_000),
    ] {
        assert_eq!(rejected(f.manager.verify(bad, None).await), Rejection::Malformed);
        assert_eq!(
            f.manager
                .revoke_token(bad, RevokeReason::Logout)
                .await
                .expect("idempotent"),
            None
        );
    }
    assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(store.writes(), 0);
}

#[tokio::test]
async fn logout_is_immediate_and_idempotent() {
    let f = fixture();
    let (token, s) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    let ended = f
        .manager
        .revoke_token(token.expose_secret(), RevokeReason::Logout)
        .await
        .expect("revoke");
    assert_eq!(ended.map(|e| e.id), Some(s.id.clone()));
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::Revoked
    );
    assert_eq!(
        f.manager
            .revoke_token(token.expose_secret(), RevokeReason::Logout)
            .await
            .expect("again"),
        None
    );
    assert!(matches!(f.manager.get(&s.id).await, Err(Error::NotFound)));
    assert!(matches!(
        f.manager.revoke_id(&s.id, RevokeReason::Admin).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_the_current_session() {
    let f = fixture();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(
            f.manager
                .create(&alice(), CreateOptions::default())
                .await
                .expect("create"),
        );
        f.clock.advance(Duration::from_secs(1));
    }
    let listed = f.manager.list_subject(&alice()).await.expect("list");
    let newest_first: Vec<_> = tokens.iter().rev().map(|(_, s)| s.id.clone()).collect();
    assert_eq!(listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), newest_first);
    let (current, me) = &tokens[1];
    let n = f
        .manager
        .revoke_subject(&alice(), Some(&me.id), RevokeReason::PasswordChange)
        .await
        .expect("revoke");
    assert_eq!(n, 2);
    f.manager
        .verify(current.expose_secret(), None)
        .await
        .expect("current survives");
    for (other, _) in [&tokens[0], &tokens[2]] {
        assert_eq!(
            rejected(f.manager.verify(other.expose_secret(), None).await),
            Rejection::Revoked
        );
    }
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let f = fixture();
    let acme = f.manager.for_tenant(Tenant::new("acme").expect("tenant"));
    let (token, s) = acme.create(&alice(), CreateOptions::default()).await.expect("create");
    let other = f.manager.clone();
    assert_eq!(
        rejected(other.verify(token.expose_secret(), None).await),
        Rejection::Unknown
    );
    assert!(matches!(other.get(&s.id).await, Err(Error::NotFound)));
    assert!(matches!(
        other.revoke_id(&s.id, RevokeReason::Admin).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        other.update_data(&s.id, Default::default(), None).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        other
            .revoke_token(token.expose_secret(), RevokeReason::Logout)
            .await
            .expect("logout"),
        None
    );
    assert!(other.list_subject(&alice()).await.expect("list").is_empty());
    assert_eq!(
        other
            .revoke_subject(&alice(), None, RevokeReason::Admin)
            .await
            .expect("revoke"),
        0
    );
    acme.verify(token.expose_secret(), None)
        .await
        .expect("still valid in its own tenant");
}

#[tokio::test]
async fn the_session_limit_denies_or_evicts_the_oldest() {
    let deny = Policy {
        max_sessions_per_subject: 2,
        ..Policy::default()
    };
    let f = fixture_with(Arc::new(MemoryStore::new()), deny);
    for _ in 0..2 {
        f.manager
            .create(&alice(), CreateOptions::default())
            .await
            .expect("under the limit");
    }
    let refused = f.manager.create(&alice(), CreateOptions::default()).await;
    assert!(matches!(&refused, Err(Error::SessionLimit)), "got {refused:?}");

    let evict = Policy {
        max_sessions_per_subject: 2,
        on_session_limit: LimitAction::EvictOldest,
        ..Policy::default()
    };
    let f = fixture_with(Arc::new(MemoryStore::new()), evict);
    let (first, _) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    f.clock.advance(Duration::from_secs(1));
    f.manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    f.clock.advance(Duration::from_secs(1));
    f.manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("evicts");
    assert_eq!(
        rejected(f.manager.verify(first.expose_secret(), None).await),
        Rejection::Revoked
    );
    assert_eq!(f.manager.list_subject(&alice()).await.expect("list").len(), 2);
    let kinds: Vec<EventKind> = f.events.take().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::Revoked(RevokeReason::Limit)));
}

#[tokio::test]
async fn data_updates_are_compare_and_set_and_bounded() {
    let policy = Policy {
        max_data_bytes: 32,
        ..Policy::default()
    };
    let f = fixture_with(Arc::new(MemoryStore::new()), policy);
    let (_, s) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    let mut cart = serde_json::Map::new();
    cart.insert("cart".into(), serde_json::json!([1, 2]));
    let updated = f
        .manager
        .update_data(&s.id, cart.clone(), Some(s.version))
        .await
        .expect("update");
    assert_eq!(updated.version, s.version + 1);
    let stale = f.manager.update_data(&s.id, cart.clone(), Some(s.version)).await;
    assert!(matches!(stale, Err(Error::VersionConflict { current }) if current == updated.version));
    let mut big = serde_json::Map::new();
    big.insert("blob".into(), "x".repeat(40).into());
    let too_big = f.manager.update_data(&s.id, big.clone(), None).await;
    assert!(
        matches!(too_big, Err(Error::DataTooLarge { max: 32, .. })),
        "got {too_big:?}"
    );
    let create_big = f
        .manager
        .create(
            &alice(),
            CreateOptions {
                data: big,
                ..CreateOptions::default()
            },
        )
        .await;
    assert!(matches!(create_big, Err(Error::DataTooLarge { .. })));
    assert_eq!(f.manager.get(&s.id).await.expect("get").data, cart);
}

#[tokio::test]
async fn events_cover_the_lifecycle_and_never_hold_a_token() {
    let f = fixture();
    let client = ClientInfo {
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        sealed: None,
    };
    let options = CreateOptions {
        client: client.clone(),
        ..CreateOptions::default()
    };
    let (token, s) = f.manager.create(&alice(), options).await.expect("create");
    f.clock.advance(2 * MIN);
    f.manager
        .verify(token.expose_secret(), Some(&client))
        .await
        .expect("touch");
    let (new, _) = f
        .manager
        .rotate(token.expose_secret(), Rotation::Plain)
        .await
        .expect("rotate");
    f.manager
        .update_data(&s.id, Default::default(), None)
        .await
        .expect("update");
    // The old token after its (zero) grace: theft, the session ends.
    let _ = f.manager.verify(token.expose_secret(), None).await;
    let logout = f
        .manager
        .revoke_token(new.expose_secret(), RevokeReason::Logout)
        .await
        .expect("logout");
    assert_eq!(logout, None, "already ended as theft");
    f.clock.advance(Duration::from_secs(13 * 3600));
    f.manager.purge_expired(100).await.expect("purge");
    let events = f.events.take();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Created,
            EventKind::Touched,
            EventKind::Rotated,
            EventKind::DataUpdated,
            EventKind::Anomaly(AnomalyReason::Theft),
            EventKind::Revoked(RevokeReason::Theft),
            EventKind::VerifyFailed(Rejection::Superseded),
            EventKind::VerifyFailed(Rejection::Revoked),
        ],
        "a revoked session's purge is not reported again"
    );
    assert_eq!(events[0].client.as_ref(), Some(&client));
    let dump = format!("{events:?} {}", serde_json::to_string(&events).expect("json"));
    for secret in [token.expose_secret(), new.expose_secret()] {
        assert!(!dump.contains(&secret[3..]), "an event leaked a token");
    }
    assert!(!dump.contains(&token.hash().to_hex()), "an event leaked a token hash");
}

#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    let f = fixture_with(Arc::new(DownStore), Policy::default());
    let token = sessiond_core::Token::generate().expect("randomness");
    let result = f.manager.verify(token.expose_secret(), None).await;
    match result {
        Err(Error::Store(e)) => assert!(e.is_unavailable(), "{e:?}"),
        other => panic!("expected a store failure, got {other:?}"),
    }
    assert!(matches!(
        f.manager.create(&alice(), CreateOptions::default()).await,
        Err(Error::Store(_))
    ));
}

#[test]
fn an_incoherent_policy_is_refused_at_build() {
    let policy = Policy {
        idle_timeout: Duration::ZERO,
        ..Policy::default()
    };
    let built = SessionManager::builder(Arc::new(MemoryStore::new()))
        .policy(policy)
        .build();
    assert!(matches!(
        built,
        Err(Error::InvalidPolicy(PolicyError::Zero("idle_timeout")))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_purger_reclaims_expired_records_in_the_background_and_stops() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(store.clone(), Policy::default());
    for _ in 0..25 {
        f.manager
            .create(&alice(), CreateOptions::default())
            .await
            .expect("create");
    }
    let task = sessiond_core::spawn_purger(f.manager.clone(), Duration::from_secs(10), 4);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(store.len(), 25, "nothing has expired yet");
    f.clock.advance(31 * MIN);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(store.len(), 0, "all 25 purged in batches of 4 within one round");
    task.shutdown().await;
    f.manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    f.clock.advance(31 * MIN);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(store.len(), 1, "a stopped purger purges nothing");
}

/// Issue 12, finding 3: the origin forward auth trusts is set only at
/// creation, and rotation, step-up, data updates and touches keep it.
#[tokio::test]
async fn the_origin_is_set_at_creation_and_kept_by_every_later_write() {
    let f = fixture();
    let (plain, s) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    assert_eq!(s.origin, SessionOrigin::Api);
    let options = CreateOptions {
        origin: SessionOrigin::Portal,
        ..CreateOptions::default()
    };
    let (token, s) = f.manager.create(&alice(), options).await.expect("create");
    assert_eq!(s.origin, SessionOrigin::Portal);
    let (token, rotated) = f
        .manager
        .rotate(token.expose_secret(), Rotation::StepUp(Aal::AAL2))
        .await
        .expect("rotate");
    assert_eq!(rotated.origin, SessionOrigin::Portal);
    let mut data = sessiond_core::SessionData::new();
    data.insert("k".into(), 1.into());
    let updated = f.manager.update_data(&s.id, data, None).await.expect("update");
    assert_eq!(updated.origin, SessionOrigin::Portal);
    f.clock.advance(2 * MIN);
    let verified = f.manager.verify(token.expose_secret(), None).await.expect("verify");
    assert_eq!(verified.origin, SessionOrigin::Portal);
    let plain = f.manager.verify(plain.expose_secret(), None).await.expect("verify");
    assert_eq!(plain.origin, SessionOrigin::Api);
}

/// Issue 12, finding 3: a subject read back from an old record under the
/// looser rule of its time cannot start a new session.
#[tokio::test]
async fn create_refuses_a_subject_the_subject_rule_refuses_whatever_made_it() {
    let f = fixture();
    let old = Subject::from_record("alice, admin").expect("a record under the old rule");
    let created = f.manager.create(&old, CreateOptions::default()).await;
    assert!(
        matches!(created, Err(Error::InvalidName(NameError::RefusedInSubject(',')))),
        "got {created:?}"
    );
    assert!(f.manager.list_subject(&old).await.expect("list").is_empty());
}
