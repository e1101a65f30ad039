//! What only a Redis store has: TTLs, cleanup of index entries left behind
//! by them, key layout, and failing closed when the server is gone.

use std::time::Duration;

use redis::AsyncCommands;
use sessiond_core::{
    Audit, ClientInfo, Clock as _, PreviousToken, Revocation, RevokeReason, SessionStore, StoreError, SubjectLimit,
    SystemClock, Token, truncate_to_micros,
};
use sessiond_store_redis::{ConfigError, OpenError, RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;
use time::OffsetDateTime;

use crate::support::{config, raw, redis_url};

fn revocation(now: OffsetDateTime) -> Revocation {
    Revocation {
        at: now,
        reason: RevokeReason::Limit,
    }
}

/// All keys under a prefix (test keyspaces are tiny, KEYS is fine here).
async fn keys(con: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = con.keys(format!("{prefix}*")).await.unwrap();
    keys.sort();
    keys
}

/// The key of a token: the prefix, `t:` and the hash's 32 bytes.
fn token_key(prefix: &str, hash: &sessiond_core::TokenHash) -> Vec<u8> {
    [format!("{prefix}t:").as_bytes(), hash.as_bytes()].concat()
}

#[tokio::test]
async fn ttl_is_deadline_plus_slack_and_follows_touches() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let slack = config.ttl_slack;
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    let session = sample("t", "alice", now);
    store
        .insert(&session, SubjectLimit::Unlimited, now, revocation(now), &Audit::NONE)
        .await
        .unwrap();
    let mut con = raw(&url).await;
    let record = token_key(&prefix, &session.token_hash);
    let ttl: i64 = con.pttl(&record).await.unwrap();
    let expected = i64::try_from((Duration::from_secs(1800) + slack).as_millis()).unwrap();
    assert!(
        ttl <= expected && ttl > expected - 60_000,
        "ttl {ttl} ms, expected about {expected}"
    );

    // A touch 10 minutes later moves the deadline, and the TTL, by 10 minutes.
    let later = now + Duration::from_secs(600);
    assert!(
        store
            .touch(
                &session.id,
                later,
                later + Duration::from_secs(1800),
                &ClientInfo::default()
            )
            .await
            .unwrap()
    );
    let moved: i64 = con.pttl(&record).await.unwrap();
    assert!(
        moved > ttl + 590_000 && moved <= ttl + 600_000,
        "ttl {ttl} then {moved}"
    );
    // The id's bucket has no TTL of its own: purge empties it.
    let bucket = format!("{prefix}ids:{}", &session.id.as_str()[..2]);
    let bucket_ttl: i64 = con.pttl(&bucket).await.unwrap();
    assert_eq!(bucket_ttl, -1);
}

#[tokio::test]
async fn index_entries_of_records_redis_expired_are_dropped_without_a_scan() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    let gone = sample("t", "alice", now);
    let kept = sample("t", "alice", now);
    for s in [&gone, &kept] {
        store
            .insert(s, SubjectLimit::Unlimited, now, revocation(now), &Audit::NONE)
            .await
            .unwrap();
    }
    // What Redis' own expiry does: the record vanishes, the id bucket and
    // the sorted sets keep their entries.
    let mut con = raw(&url).await;
    let _: () = con.del(token_key(&prefix, &gone.token_hash)).await.unwrap();

    // A limit of 2 still has room: the vanished record does not count.
    let third = sample("t", "alice", now);
    store
        .insert(&third, SubjectLimit::Deny(2), now, revocation(now), &Audit::NONE)
        .await
        .unwrap();
    let index = keys(&mut con, &prefix)
        .await
        .into_iter()
        .find(|k| k.ends_with(b"u:t/alice"))
        .unwrap();
    let mut members: Vec<String> = con.zrange(&index, 0, -1).await.unwrap();
    members.sort();
    let mut want = vec![kept.id.to_string(), third.id.to_string()];
    want.sort();
    assert_eq!(members, want);

    // Purge drops the deadline entry without reporting a record it no longer has.
    let after = now + Duration::from_secs(3600);
    let purged = store.purge_expired(after, 10, &Audit::NONE).await.unwrap();
    let mut purged: Vec<String> = purged.into_iter().map(|s| s.id.to_string()).collect();
    purged.sort();
    assert_eq!(purged, want);
    assert_eq!(keys(&mut con, &prefix).await, Vec::<Vec<u8>>::new());
}

/// Layout 3: the record under its current token's key (a verify is one
/// GET), the id's token hash in its bucket, a pointer (`>` and the record's
/// key) for the previous token, and a rotation moves the record to the new
/// token's key.
#[tokio::test]
async fn a_session_is_one_record_under_its_token_key() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    // Times are stored in whole microseconds, as the manager writes them.
    let now = truncate_to_micros(SystemClock.now());
    let session = sample("t", "alice", now);
    store
        .insert(&session, SubjectLimit::Unlimited, now, revocation(now), &Audit::NONE)
        .await
        .unwrap();
    let mut con = raw(&url).await;
    let token_key = |hash: &sessiond_core::TokenHash| token_key(&prefix, hash);
    let bucket = &session.id.as_str()[..2];
    let ids_key = format!("{prefix}ids:{bucket}");
    let all = keys(&mut con, &prefix).await;
    let mut want = vec![
        format!("{prefix}due").into_bytes(),
        format!("{prefix}due:{bucket}").into_bytes(),
        ids_key.clone().into_bytes(),
        token_key(&session.token_hash),
        format!("{prefix}u:t/alice").into_bytes(),
    ];
    want.sort();
    assert_eq!(all, want);
    let record: Vec<u8> = con.get(token_key(&session.token_hash)).await.unwrap();
    assert_eq!(record[0], 3, "layout 3");
    let held: Vec<u8> = con.hget(&ids_key, session.id.as_str()).await.unwrap();
    assert_eq!(held, session.token_hash.as_bytes());
    let deadline: f64 = con.zscore(format!("{prefix}due"), bucket).await.unwrap();
    assert_eq!(
        deadline as i64,
        session.expires_at().unix_timestamp_nanos() as i64 / 1000
    );

    // A rotation: the new token's key holds the record, the old one a pointer.
    let mut rotated = session.clone();
    rotated.token_hash = Token::generate().unwrap().hash();
    rotated.previous_token = Some(PreviousToken {
        hash: session.token_hash,
        valid_until: now + Duration::from_secs(30),
    });
    rotated.version += 1;
    store.update(&rotated, session.version, &Audit::NONE).await.unwrap();
    let record: Vec<u8> = con.get(token_key(&rotated.token_hash)).await.unwrap();
    assert_eq!(record[0], 3);
    let old: Vec<u8> = con.get(token_key(&session.token_hash)).await.unwrap();
    assert_eq!(old, [&b">"[..], &token_key(&rotated.token_hash)].concat());
    let held: Vec<u8> = con.hget(&ids_key, session.id.as_str()).await.unwrap();
    assert_eq!(held, rotated.token_hash.as_bytes());
    for hash in [session.token_hash, rotated.token_hash] {
        let found = store.get_by_token(&hash).await.unwrap().unwrap();
        assert_eq!(*found, rotated);
    }

    // Values of earlier layouts read as absent: layout 1's token key named
    // a hash record, layout 2's records began with 2.
    for old in [
        format!("{prefix}{{0123456789abcdef}}:s:x").into_bytes(),
        vec![2, 1, 0, 0],
    ] {
        let legacy = Token::generate().unwrap().hash();
        let _: () = con.set(token_key(&legacy), old).await.unwrap();
        assert_eq!(store.get_by_token(&legacy).await.unwrap(), None);
    }
}

/// What keeps layout 3 near 630 bytes per session (`scripts/store_bytes`):
/// one key per session, its id and deadline in buckets shared with other
/// sessions, each bucket in Redis' compact listpack form.
#[tokio::test]
async fn sessions_share_compact_buckets_and_have_one_key_each() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    const SESSIONS: usize = 300;
    for n in 0..SESSIONS {
        let session = sample("t", &format!("user{}", n % 30), now);
        store
            .insert(&session, SubjectLimit::Unlimited, now, revocation(now), &Audit::NONE)
            .await
            .unwrap();
    }
    let mut con = raw(&url).await;
    let all = keys(&mut con, &prefix).await;
    let of_kind = |kind: &str| -> Vec<Vec<u8>> {
        let start = format!("{prefix}{kind}").into_bytes();
        all.iter().filter(|k| k.starts_with(&start)).cloned().collect()
    };
    assert_eq!(of_kind("t:").len(), SESSIONS);
    assert_eq!(of_kind("u:").len(), 30);
    let buckets = of_kind("ids:");
    assert!(
        buckets.len() < SESSIONS,
        "{} id buckets for {SESSIONS} sessions",
        buckets.len()
    );
    // Every key that is not a record is a bucket, a subject index or `due`.
    assert_eq!(all.len(), SESSIONS + 30 + 2 * buckets.len() + 1);
    for key in all.iter().filter(|k| !k.starts_with(format!("{prefix}t:").as_bytes())) {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        let name = String::from_utf8_lossy(key);
        // `due` scores 300 buckets at most: more than a listpack holds.
        if name != format!("{prefix}due") {
            assert_eq!(encoding, "listpack", "{name}");
        }
    }
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable_never_empty() {
    // Port 1 on loopback: nothing listens there.
    let store = RedisStore::new(RedisConfig::from_url("redis://127.0.0.1:1/?timeout_ms=500").unwrap()).unwrap();
    let session = sample("t", "alice", SystemClock.now());
    let read = store.get_by_token(&session.token_hash).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "got {read:?}");
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "got {ping:?}");
    let opened = RedisStore::connect("redis://127.0.0.1:1/?timeout_ms=500").await;
    assert!(
        matches!(
            opened,
            Err(OpenError::Unreachable {
                source: StoreError::Unavailable(_),
                ..
            })
        ),
        "got {opened:?}"
    );
}

#[tokio::test]
async fn bad_urls_are_refused_before_any_connection() {
    // The host does not exist: reaching it would fail differently.
    let opened = RedisStore::connect("redis://no-such-host.invalid?prefix={x}").await;
    assert!(
        matches!(
            opened,
            Err(OpenError::Config(ConfigError::Parameter { name: "prefix", .. }))
        ),
        "got {opened:?}"
    );
}
