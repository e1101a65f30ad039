//! The store conformance suite: the written semantics of
//! [`SessionStore`], checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn SessionStore>) });
//! ```
//!
//! The factory is called once per case and must return an empty store that
//! no other case uses, or `None` when its engine is missing: the case then
//! returns early, after the factory has said so (a server-backed factory
//! gets its URL from [`env::required`](crate::env::required), which skips
//! or, in CI, fails). It never substitutes another store.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Aal, Audit, ClientInfo, PreviousToken, Revocation, RevokeReason, Session, SessionId, SessionOrigin, SessionStore,
    StoreError, Subject, SubjectLimit, Tenant, Token, TokenHash,
};
use time::OffsetDateTime;
use time::macros::datetime;

mod anonymous;
mod created_client;
mod origin;
mod scan;
mod sealed_client;
mod subjects;

pub use anonymous::*;
pub use created_client::*;
pub use origin::*;
pub use scan::*;
pub use sealed_client::*;
pub use subjects::*;

/// The instant the cases treat as "now".
pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case). An engine runs every
/// case; a wrapper over one (`store_conformance!(@behaviour $factory)`)
/// skips the case about how an engine keeps the stored form's fields.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@behaviour $factory);
        $crate::store_conformance!(@cases $factory;
            sealed_client_round_trips_through_every_read_and_write,
            sealed_created_client_round_trips_and_survives_touch,
        );
    };
    // What a store does, without the engine's own keeping of the stored
    // form's fields: for a wrapper over an engine (`SealedSessions`), which
    // seals what it is given rather than store it as it is.
    (@behaviour $factory:expr) => {
        $crate::store_conformance!(@cases $factory;
            missing_keys_are_absent_everywhere,
            insert_then_get_round_trips_exactly,
            insert_refuses_an_id_collision,
            insert_refuses_a_token_hash_collision,
            update_is_compare_and_set,
            update_reindexes_token_hashes,
            update_refuses_another_records_token_hash,
            concurrent_compare_and_set_loses_no_update,
            touch_moves_deadlines_forward_only,
            revoke_leaves_a_findable_tombstone,
            subject_listing_and_revocation_respect_except_and_tenant,
            expired_records_are_neither_counted_nor_listed,
            limit_deny_refuses_and_writes_nothing,
            limit_evict_oldest_revokes_the_first_created,
            concurrent_inserts_respect_the_limit,
            purge_removes_expired_records_earliest_first,
            purge_follows_touched_deadlines,
            origin_round_trips_through_every_read_and_write,
            created_client_is_stored_and_read_back,
            touch_changes_the_client_but_not_the_created_client,
            update_and_rotation_keep_the_created_client,
            scan_reaches_every_record_and_ends,
            anonymous_records_belong_to_no_subject,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::SessionStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::conformance::$case(store).await;
            }
        )+
    };
}

fn tenant(name: &str) -> Tenant {
    Tenant::new(name).expect("valid tenant")
}

fn subject(name: &str) -> Subject {
    Subject::new(name).expect("valid subject")
}

fn new_hash() -> TokenHash {
    Token::generate().expect("randomness").hash()
}

/// A fresh live session of `subject` in tenant `t`, created at `created_at`,
/// valid for 30 minutes idle and 12 hours absolute. Its `created_client`
/// is set and differs from its `client` in both fields, so a store that
/// drops the one or mixes the two up fails the cases.
pub fn sample(t: &str, s: &str, created_at: OffsetDateTime) -> Session {
    let mut data = serde_json::Map::new();
    data.insert("cart".into(), serde_json::json!([1, 2, {"sku": "é"}]));
    Session {
        id: SessionId::generate().expect("randomness"),
        tenant: tenant(t),
        subject: subject(s),
        token_hash: new_hash(),
        previous_token: None,
        created_at,
        last_seen_at: created_at,
        authenticated_at: created_at,
        idle_expires_at: created_at + Duration::from_secs(1800),
        absolute_expires_at: created_at + Duration::from_secs(12 * 3600),
        remember_me: false,
        aal: Aal::AAL2,
        data,
        client: ClientInfo {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Firefox/140".into()),
            sealed: None,
        },
        version: 1,
        revoked: None,
        origin: SessionOrigin::Api,
        created_client: ClientInfo {
            ip: Some("192.0.2.44".into()),
            user_agent: Some("Firefox/139 (at creation)".into()),
            sealed: None,
        },
    }
}

/// `session` with its id and token hashes drawn again where `store` needs
/// them ([`SessionStore::shards`]): in its subject's shard, or for an
/// anonymous session in its id's. Unchanged for a store without shards.
/// Place a session once its tenant and subject are final.
pub fn placed(store: &Arc<dyn SessionStore>, mut session: Session) -> Session {
    let Some(shards) = store.shards() else {
        return session;
    };
    session.id = shards
        .id_in(shards.for_subject(&session.tenant, &session.subject))
        .expect("randomness");
    let shard = shards.of_id(&session.id);
    session.token_hash = shards.token_in(shard).expect("randomness").hash();
    if let Some(previous) = &mut session.previous_token {
        previous.hash = shards.token_in(shard).expect("randomness").hash();
    }
    session
}

/// [`sample`], [`placed`] for `store`.
pub fn sample_in(store: &Arc<dyn SessionStore>, t: &str, s: &str, created_at: OffsetDateTime) -> Session {
    placed(store, sample(t, s, created_at))
}

/// A new token hash for `session` (a rotation), in its shard if `store`
/// has shards.
pub fn new_hash_for(store: &Arc<dyn SessionStore>, session: &Session) -> TokenHash {
    match store.shards() {
        Some(shards) => shards.token_in(shards.of_id(&session.id)).expect("randomness").hash(),
        None => new_hash(),
    }
}

/// `name`, or where `store` has shards the first of `name-1`, `name-2`, …
/// whose sessions share `other`'s shard: for the cases where one subject's
/// record meets another's id or token hash, which a sharded store can only
/// see within one shard.
pub fn subject_beside(store: &Arc<dyn SessionStore>, name: &str, other: &Session) -> String {
    let Some(shards) = store.shards() else {
        return name.to_owned();
    };
    let shard = shards.of_id(&other.id);
    (1..)
        .map(|i| format!("{name}-{i}"))
        .find(|candidate| shards.of_subject(&other.tenant, &subject(candidate)) == shard)
        .expect("some name falls in every shard")
}

fn revocation(reason: RevokeReason) -> Revocation {
    Revocation { at: NOW, reason }
}

async fn put(store: &Arc<dyn SessionStore>, session: &Session) {
    let inserted = store
        .insert(
            session,
            SubjectLimit::Unlimited,
            NOW,
            revocation(RevokeReason::Limit),
            &Audit::NONE,
        )
        .await
        .expect("insert");
    assert!(inserted.evicted.is_empty());
}

async fn by_id(store: &Arc<dyn SessionStore>, id: &SessionId) -> Option<Session> {
    store.get_by_id(id).await.expect("get_by_id").map(Arc::unwrap_or_clone)
}

/// Every read of an unknown key answers "absent", every write "not found".
pub async fn missing_keys_are_absent_everywhere(store: Arc<dyn SessionStore>) {
    let ghost = sample_in(&store, "t", "nobody", NOW);
    assert_eq!(
        store.get_by_token(&ghost.token_hash).await.expect("get").as_deref(),
        None
    );
    assert_eq!(by_id(&store, &ghost.id).await, None);
    assert!(matches!(
        store.update(&ghost, 1, &Audit::NONE).await,
        Err(StoreError::NotFound)
    ));
    let touched = store
        .touch(&ghost.id, NOW, NOW, &ClientInfo::default())
        .await
        .expect("touch");
    assert!(!touched);
    assert_eq!(
        store
            .revoke(&ghost.id, revocation(RevokeReason::Admin), &Audit::NONE)
            .await
            .expect("revoke"),
        None
    );
    assert!(
        store
            .list_subject(&ghost.tenant, &ghost.subject, NOW)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .list_subject(&ghost.tenant, &ghost.subject, NOW)
            .await
            .expect("list")
            .len(),
        0
    );
    let revoked = store
        .revoke_subject(
            &ghost.tenant,
            &ghost.subject,
            None,
            revocation(RevokeReason::Admin),
            NOW,
            &Audit::NONE,
        )
        .await
        .expect("revoke_subject");
    assert!(revoked.is_empty());
    assert!(
        store
            .purge_expired(NOW + Duration::from_secs(86_400 * 365), 10, &Audit::NONE)
            .await
            .expect("purge")
            .is_empty()
    );
    store.ping().await.expect("ping");
}

/// A record reads back equal, field for field, by id and by token hash.
pub async fn insert_then_get_round_trips_exactly(store: Arc<dyn SessionStore>) {
    let mut session = sample_in(&store, "t", "alice", NOW);
    session.remember_me = true;
    session.previous_token = Some(PreviousToken {
        hash: new_hash_for(&store, &session),
        valid_until: NOW + Duration::from_secs(5),
    });
    put(&store, &session).await;
    assert_eq!(by_id(&store, &session.id).await.as_ref(), Some(&session));
    assert_eq!(
        store.get_by_token(&session.token_hash).await.expect("get").as_deref(),
        Some(&session)
    );
    let previous = session.previous_token.map(|p| p.hash).expect("previous");
    assert_eq!(
        store.get_by_token(&previous).await.expect("get").as_deref(),
        Some(&session)
    );
}

/// An id that exists is never overwritten.
pub async fn insert_refuses_an_id_collision(store: Arc<dyn SessionStore>) {
    let first = sample_in(&store, "t", "alice", NOW);
    put(&store, &first).await;
    let mut clash = sample_in(&store, "t", &subject_beside(&store, "mallory", &first), NOW);
    clash.id = first.id.clone();
    let result = store
        .insert(
            &clash,
            SubjectLimit::Unlimited,
            NOW,
            revocation(RevokeReason::Limit),
            &Audit::NONE,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Collision)), "got {result:?}");
    assert_eq!(by_id(&store, &first.id).await, Some(first));
    assert_eq!(
        store.get_by_token(&clash.token_hash).await.expect("get").as_deref(),
        None
    );
}

/// A token hash that exists, current or previous, is never taken over.
pub async fn insert_refuses_a_token_hash_collision(store: Arc<dyn SessionStore>) {
    let mut first = sample_in(&store, "t", "alice", NOW);
    first.previous_token = Some(PreviousToken {
        hash: new_hash_for(&store, &first),
        valid_until: NOW,
    });
    put(&store, &first).await;
    let previous = first.previous_token.map(|p| p.hash).expect("previous");
    let mallory = subject_beside(&store, "mallory", &first);
    for taken in [first.token_hash, previous] {
        let mut clash = sample_in(&store, "t", &mallory, NOW);
        clash.token_hash = taken;
        let result = store
            .insert(
                &clash,
                SubjectLimit::Unlimited,
                NOW,
                revocation(RevokeReason::Limit),
                &Audit::NONE,
            )
            .await;
        assert!(matches!(result, Err(StoreError::Collision)), "got {result:?}");
        assert_eq!(by_id(&store, &clash.id).await, None);
        assert_eq!(
            store.get_by_token(&taken).await.expect("get").map(|s| s.id.clone()),
            Some(first.id.clone())
        );
    }
    assert_eq!(
        store
            .list_subject(&first.tenant, &subject(&mallory), NOW)
            .await
            .expect("list")
            .len(),
        0
    );
}

/// Update writes only over the expected version.
pub async fn update_is_compare_and_set(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;
    let mut next = session.clone();
    next.data.insert("step".into(), 2.into());
    next.version = 2;
    store.update(&next, 1, &Audit::NONE).await.expect("update");
    assert_eq!(by_id(&store, &session.id).await.as_ref(), Some(&next));

    let mut stale = session.clone();
    stale.data.insert("step".into(), 99.into());
    stale.version = 2;
    let result = store.update(&stale, 1, &Audit::NONE).await;
    assert!(
        matches!(result, Err(StoreError::VersionConflict { current: 2 })),
        "got {result:?}"
    );
    assert_eq!(by_id(&store, &session.id).await, Some(next));
}

/// After a rotation-shaped update the new and previous hashes find the record
/// and the hash before that does not.
pub async fn update_reindexes_token_hashes(store: Arc<dyn SessionStore>) {
    let original = sample_in(&store, "t", "alice", NOW);
    put(&store, &original).await;
    let mut rotated = original.clone();
    rotated.previous_token = Some(PreviousToken {
        hash: original.token_hash,
        valid_until: NOW,
    });
    rotated.token_hash = new_hash_for(&store, &original);
    rotated.version = 2;
    store.update(&rotated, 1, &Audit::NONE).await.expect("rotate once");
    for hash in [original.token_hash, rotated.token_hash] {
        assert_eq!(store.get_by_token(&hash).await.expect("get").as_deref(), Some(&rotated));
    }
    let mut again = rotated.clone();
    again.previous_token = Some(PreviousToken {
        hash: rotated.token_hash,
        valid_until: NOW,
    });
    again.token_hash = new_hash_for(&store, &original);
    again.version = 3;
    store.update(&again, 2, &Audit::NONE).await.expect("rotate twice");
    assert_eq!(
        store.get_by_token(&original.token_hash).await.expect("get").as_deref(),
        None
    );
    assert_eq!(
        store.get_by_token(&rotated.token_hash).await.expect("get").as_deref(),
        Some(&again)
    );
    assert_eq!(
        store.get_by_token(&again.token_hash).await.expect("get").as_deref(),
        Some(&again)
    );
}

/// Update cannot steal another record's token hash.
pub async fn update_refuses_another_records_token_hash(store: Arc<dyn SessionStore>) {
    let a = sample_in(&store, "t", "alice", NOW);
    let b = sample_in(&store, "t", &subject_beside(&store, "bob", &a), NOW);
    put(&store, &a).await;
    put(&store, &b).await;
    let mut thief = b.clone();
    thief.token_hash = a.token_hash;
    thief.version = 2;
    let result = store.update(&thief, 1, &Audit::NONE).await;
    assert!(matches!(result, Err(StoreError::Collision)), "got {result:?}");
    assert_eq!(
        store.get_by_token(&a.token_hash).await.expect("get").as_deref(),
        Some(&a)
    );
    assert_eq!(by_id(&store, &b.id).await, Some(b));
}

/// Many tasks read-modify-write one record with retries: every increment lands.
pub async fn concurrent_compare_and_set_loses_no_update(store: Arc<dyn SessionStore>) {
    const TASKS: u64 = 16;
    const EACH: u64 = 10;
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        let id = session.id.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let current = store.get_by_id(&id).await.expect("get").expect("present");
                    let current = Session::clone(&current);
                    let count = current
                        .data
                        .get("count")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0);
                    let mut next = current.clone();
                    next.data.insert("count".into(), (count + 1).into());
                    next.version = current.version + 1;
                    match store.update(&next, current.version, &Audit::NONE).await {
                        Ok(()) => break,
                        Err(StoreError::VersionConflict { .. }) => conflicts += 1,
                        Err(other) => panic!("update failed: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
    let last = by_id(&store, &session.id).await.expect("present");
    assert_eq!(
        last.data.get("count").and_then(serde_json::Value::as_u64),
        Some(TASKS * EACH)
    );
    assert_eq!(last.version, 1 + TASKS * EACH);
}

/// Touch moves last use and idle deadline forward, never back, never on a
/// tombstone, and leaves the version alone.
pub async fn touch_moves_deadlines_forward_only(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;
    let later = NOW + Duration::from_secs(120);
    let client = ClientInfo {
        ip: Some("198.51.100.1".into()),
        user_agent: None,
        sealed: None,
    };
    let idle = later + Duration::from_secs(1800);
    assert!(store.touch(&session.id, later, idle, &client).await.expect("touch"));
    let touched = by_id(&store, &session.id).await.expect("present");
    assert_eq!(
        (touched.last_seen_at, touched.idle_expires_at, &touched.client),
        (later, idle, &client)
    );
    assert_eq!(touched.version, session.version);
    assert_eq!(
        store.get_by_token(&session.token_hash).await.expect("get").as_deref(),
        Some(&touched)
    );

    let earlier = NOW + Duration::from_secs(60);
    assert!(
        !store
            .touch(&session.id, earlier, earlier, &ClientInfo::default())
            .await
            .expect("touch")
    );
    assert_eq!(by_id(&store, &session.id).await.as_ref(), Some(&touched));

    store
        .revoke(&session.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke");
    let much_later = NOW + Duration::from_secs(600);
    assert!(
        !store
            .touch(&session.id, much_later, much_later, &client)
            .await
            .expect("touch")
    );
}

/// Revocation marks the record, bumps its version, drops it from its
/// subject, keeps it findable by token, and happens once.
pub async fn revoke_leaves_a_findable_tombstone(store: Arc<dyn SessionStore>) {
    let session = sample_in(&store, "t", "alice", NOW);
    put(&store, &session).await;
    let how = revocation(RevokeReason::Logout);
    let revoked = store
        .revoke(&session.id, how, &Audit::NONE)
        .await
        .expect("revoke")
        .expect("was live");
    assert_eq!(revoked.revoked, Some(how));
    assert_eq!(revoked.version, session.version + 1);
    assert_eq!(
        store.get_by_token(&session.token_hash).await.expect("get").as_deref(),
        Some(&revoked)
    );
    assert_eq!(by_id(&store, &session.id).await.as_ref(), Some(&revoked));
    assert_eq!(
        store
            .list_subject(&session.tenant, &session.subject, NOW)
            .await
            .expect("list")
            .len(),
        0
    );
    assert!(
        store
            .list_subject(&session.tenant, &session.subject, NOW)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .revoke(&session.id, revocation(RevokeReason::Admin), &Audit::NONE)
            .await
            .expect("revoke"),
        None
    );
    assert_eq!(by_id(&store, &session.id).await.and_then(|s| s.revoked), Some(how));
}
