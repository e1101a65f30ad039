//! Anonymous sessions and sign-in (issue 18), on a fake clock.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Aal, AnonymousOptions, CarryData, ClientInfo, CounterRule, CreateOptions, Error, EventKind, MemoryStore, Policy,
    Rejection, RevokeReason, Rotation, SessionData, SessionManager, SignInOptions, Subject,
};
use sessiond_testkit::FakeClock;

use crate::lifecycle::{alice, fixture, rejected};

const MIN: Duration = Duration::from_secs(60);

fn cart(items: &[&str]) -> SessionData {
    let mut data = SessionData::new();
    data.insert("cart".into(), serde_json::json!(items));
    data
}

fn visitor_with(data: SessionData) -> AnonymousOptions {
    AnonymousOptions {
        data,
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn an_anonymous_session_lives_by_the_anonymous_timeouts() {
    let f = fixture();
    let (token, session) = f.manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    assert!(session.is_anonymous());
    assert_eq!(session.signed_in_subject(), None);
    assert_eq!(session.idle_expires_at - session.created_at, 30 * MIN);
    assert_eq!(session.absolute_expires_at - session.created_at, 24 * 60 * MIN);

    // Kept alive by use, past a signed-in session's 12 hours, to its own
    // absolute deadline.
    for _ in 0..(24 * 60 / 20 - 1) {
        f.clock.advance(20 * MIN);
        f.manager.verify(token.expose_secret(), None).await.unwrap();
    }
    f.clock.advance(20 * MIN);
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::ExpiredAbsolute
    );

    let (idle, _) = f.manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    f.clock.advance(31 * MIN);
    assert_eq!(
        rejected(f.manager.verify(idle.expose_secret(), None).await),
        Rejection::ExpiredIdle
    );
}

#[tokio::test]
async fn an_anonymous_session_holds_less_data() {
    let f = fixture();
    let big = cart(&[&"x".repeat(5000)]);
    let refused = f.manager.create_anonymous(visitor_with(big.clone())).await;
    assert!(
        matches!(refused, Err(Error::DataTooLarge { max: 4096, .. })),
        "got {refused:?}"
    );
    let (_, session) = f.manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    let refused = f.manager.update_data(&session.id, big.clone(), None).await;
    assert!(
        matches!(refused, Err(Error::DataTooLarge { max: 4096, .. })),
        "got {refused:?}"
    );
    // The same data fits a signed-in session.
    let (_, signed_in) = f.manager.create(&alice(), CreateOptions::default()).await.unwrap();
    f.manager.update_data(&signed_in.id, big, None).await.unwrap();
}

#[tokio::test]
async fn anonymous_sessions_belong_to_nobody() {
    let f = fixture();
    f.manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    assert!(f.manager.list_subject(&Subject::anonymous()).await.unwrap().is_empty());
    assert_eq!(
        f.manager
            .revoke_subject(&Subject::anonymous(), None, RevokeReason::Admin)
            .await
            .unwrap(),
        0
    );
    // Nobody can be named anonymous.
    let refused = f.manager.create(&Subject::anonymous(), CreateOptions::default()).await;
    assert!(matches!(refused, Err(Error::InvalidName(_))), "got {refused:?}");
    // Its events name no subject.
    let created: Vec<_> = f
        .events
        .take()
        .into_iter()
        .filter(|e| e.kind == EventKind::Created)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].subject, None);
}

#[tokio::test]
async fn an_anonymous_session_proves_nobody_and_cannot_step_up() {
    let f = fixture();
    let (token, _) = f.manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    for rotation in [
        Rotation::Reauthenticate,
        Rotation::StepUp(Aal::AAL2),
        Rotation::AtLevel {
            aal: Aal::AAL1,
            reauthenticated: true,
        },
    ] {
        let refused = f.manager.rotate(token.expose_secret(), rotation).await;
        assert!(
            matches!(refused, Err(Error::WrongKind)),
            "{rotation:?}: got {refused:?}"
        );
    }
    // A new token alone is fine, and keeps it anonymous.
    let (rotated, session) = f.manager.rotate(token.expose_secret(), Rotation::Plain).await.unwrap();
    assert!(session.is_anonymous());
    assert_eq!(session.aal, Aal::AAL1);
    f.manager.verify(rotated.expose_secret(), None).await.unwrap();
}

#[tokio::test]
async fn sign_in_replaces_the_visitor_session_and_carries_its_data() {
    let f = fixture();
    let (visitor, anonymous) = f
        .manager
        .create_anonymous(visitor_with(cart(&["sku-1"])))
        .await
        .unwrap();
    let (token, session) = f
        .manager
        .sign_in(visitor.expose_secret(), &alice(), SignInOptions::default())
        .await
        .unwrap();
    assert_ne!(token.expose_secret(), visitor.expose_secret());
    assert_ne!(session.id, anonymous.id);
    assert_eq!(session.subject, alice());
    assert_eq!(session.data, cart(&["sku-1"]));
    assert_eq!(session.idle_expires_at - session.created_at, 30 * MIN);
    assert_eq!(session.absolute_expires_at - session.created_at, 12 * 60 * MIN);
    // The visitor's token is dead, ended as signed in.
    assert_eq!(
        rejected(f.manager.verify(visitor.expose_secret(), None).await),
        Rejection::Revoked
    );
    let ended = f.manager.store().get_by_id(&anonymous.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked.map(|r| r.reason), Some(RevokeReason::SignedIn));
    assert_eq!(f.manager.list_subject(&alice()).await.unwrap().len(), 1);
    // It cannot sign in twice, nor can a signed-in session sign in.
    assert_eq!(
        rejected(
            f.manager
                .sign_in(visitor.expose_secret(), &alice(), SignInOptions::default())
                .await
        ),
        Rejection::Revoked
    );
    let again = f
        .manager
        .sign_in(token.expose_secret(), &alice(), SignInOptions::default())
        .await;
    assert!(matches!(again, Err(Error::WrongKind)), "got {again:?}");
    assert_eq!(f.manager.list_subject(&alice()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sign_in_carries_what_the_application_chooses() {
    let f = fixture();
    let nothing = SignInOptions {
        create: CreateOptions {
            data: cart(&["saved-earlier"]),
            ..CreateOptions::default()
        },
        carry: CarryData::Nothing,
    };
    let (visitor, _) = f
        .manager
        .create_anonymous(visitor_with(cart(&["sku-1"])))
        .await
        .unwrap();
    let (_, session) = f
        .manager
        .sign_in(visitor.expose_secret(), &alice(), nothing)
        .await
        .unwrap();
    assert_eq!(session.data, cart(&["saved-earlier"]));

    // A merge hook: the saved cart first, then the visitor's.
    let merge = SignInOptions {
        carry: CarryData::With(Arc::new(|anonymous: &SessionData| {
            let mut items = vec![serde_json::json!("saved-earlier")];
            if let Some(serde_json::Value::Array(more)) = anonymous.get("cart") {
                items.extend(more.iter().cloned());
            }
            let mut data = SessionData::new();
            data.insert("cart".into(), serde_json::Value::Array(items));
            data
        })),
        ..SignInOptions::default()
    };
    let (visitor, _) = f
        .manager
        .create_anonymous(visitor_with(cart(&["sku-2"])))
        .await
        .unwrap();
    let (_, session) = f
        .manager
        .sign_in(visitor.expose_secret(), &alice(), merge)
        .await
        .unwrap();
    assert_eq!(session.data, cart(&["saved-earlier", "sku-2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_from_one_visitor_leave_one_session() {
    let f = fixture();
    let (visitor, _) = f
        .manager
        .create_anonymous(visitor_with(cart(&["sku-1"])))
        .await
        .unwrap();
    let attempts = (0..8).map(|_| {
        let manager = f.manager.clone();
        let token = visitor.expose_secret().to_owned();
        tokio::spawn(async move { manager.sign_in(&token, &alice(), SignInOptions::default()).await })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Rejected(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(f.manager.list_subject(&alice()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_address_cannot_mint_sessions_without_end() {
    let clock = FakeClock::default();
    let store = Arc::new(MemoryStore::new());
    let rule = CounterRule {
        free: 3,
        base_delay: MIN,
        max_delay: 60 * MIN,
        forget_after: 60 * MIN,
    };
    let manager = SessionManager::builder(store.clone())
        .clock(Arc::new(clock.clone()))
        .policy(Policy::default())
        .anonymous_limit(store, rule)
        .build()
        .unwrap();
    let from = |ip: &str| AnonymousOptions {
        data: SessionData::new(),
        client: ClientInfo {
            ip: Some(ip.into()),
            ..ClientInfo::default()
        },
    };
    for _ in 0..3 {
        manager.create_anonymous(from("198.51.100.7")).await.unwrap();
    }
    // The fourth is counted and locks the address for a minute.
    manager.create_anonymous(from("198.51.100.7")).await.unwrap();
    let refused = manager.create_anonymous(from("198.51.100.7")).await;
    assert!(
        matches!(refused, Err(Error::AnonymousLimit { retry_after }) if retry_after == MIN),
        "got {refused:?}"
    );
    // Another address is not affected; one in the same IPv6 /64 is.
    manager.create_anonymous(from("198.51.100.8")).await.unwrap();
    for last in 1..=4 {
        manager
            .create_anonymous(from(&format!("2001:db8::{last}")))
            .await
            .unwrap();
    }
    let refused = manager.create_anonymous(from("2001:db8::ffff")).await;
    assert!(matches!(refused, Err(Error::AnonymousLimit { .. })), "got {refused:?}");
    manager.create_anonymous(from("2001:db8:0:1::1")).await.unwrap();
    // Signed-in sessions are not counted.
    manager
        .create(
            &alice(),
            CreateOptions {
                client: from("198.51.100.7").client,
                ..CreateOptions::default()
            },
        )
        .await
        .unwrap();
    // After the lock the address may create again.
    clock.advance(MIN);
    manager.create_anonymous(from("198.51.100.7")).await.unwrap();
}

/// A write to the visitor's session while the sign-in runs (after the
/// carry read, before the visitor's session ends) is carried too: the
/// hook runs again over the data the session ended with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_sign_in_is_carried() {
    let f = fixture();
    let (visitor, anonymous) = f
        .manager
        .create_anonymous(visitor_with(cart(&["sku-1"])))
        .await
        .unwrap();
    let store = Arc::clone(f.manager.store());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let late = anonymous.clone();
    let hook = move |data: &SessionData| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            // Another request of the visitor's lands now.
            let mut next = late.clone();
            next.data = cart(&["sku-1", "sku-late"]);
            next.version = late.version + 1;
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(store.update(
                    &next,
                    late.version,
                    &sessiond_core::Audit::NONE,
                ))
            })
            .unwrap();
        }
        data.clone()
    };
    let options = SignInOptions {
        carry: CarryData::With(Arc::new(hook)),
        ..SignInOptions::default()
    };
    let (_, session) = f
        .manager
        .sign_in(visitor.expose_secret(), &alice(), options)
        .await
        .unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(session.data, cart(&["sku-1", "sku-late"]));
    let stored = f.manager.get(&session.id).await.unwrap();
    assert_eq!(stored.data, cart(&["sku-1", "sku-late"]));
}
