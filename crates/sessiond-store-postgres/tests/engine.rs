//! Behaviour specific to the engine: migrations, unreachable servers,
//! stored values that do not decode, and the engine's own read floor.

use std::sync::Arc;
use std::time::Instant;

use sessiond_core::{Audit, Session, SessionStore, StoreError, SubjectLimit};
use sessiond_store_postgres::{OpenError, PostgresStore};
use sessiond_testkit::conformance::{NOW, sample};

use crate::support::{fresh_schema, raw, server_url, with_schema};

/// A plain connection to the test server, for looking behind the store.
fn revocation() -> sessiond_core::Revocation {
    sessiond_core::Revocation {
        at: NOW,
        reason: sessiond_core::RevokeReason::Admin,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(url) = server_url() else { return };
    let url = with_schema(&url, &fresh_schema());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(&url).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let schema = url.rsplit_once("schema=").unwrap().1;
    let rows = raw(&server_url().unwrap())
        .await
        .query(&format!("SELECT version FROM {schema}.schema_migrations"), &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    // Each migration once, in order, however many this build has.
    let expected: Vec<i32> = (1..=i32::try_from(versions.len()).unwrap()).collect();
    assert_eq!(versions, expected);
    assert!(versions.len() >= 5, "{versions:?}");
}

/// Two handles with pools of their own stand for two nodes: logins of one
/// subject racing through both never get past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_holds_across_separately_pooled_handles() {
    let Some(base) = server_url() else { return };
    let url = with_schema(&base, &fresh_schema());
    let nodes = [
        Arc::new(PostgresStore::open(&url).await.unwrap()),
        Arc::new(PostgresStore::open(&url).await.unwrap()),
    ];
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..40 {
        let node = Arc::clone(&nodes[i % 2]);
        racing.spawn(async move {
            let session = sample("t", "erin", NOW);
            node.insert(&session, SubjectLimit::Deny(4), NOW, revocation(), &Audit::NONE)
                .await
        });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(result) = racing.join_next().await {
        match result.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::LimitReached) => refused += 1,
            Err(other) => panic!("unexpected failure {other:?}"),
        }
    }
    assert_eq!((created, refused), (4, 36));
    let t = sessiond_core::Tenant::new("t").unwrap();
    let s = sessiond_core::Subject::new("erin").unwrap();
    assert_eq!(nodes[1].list_subject(&t, &s, NOW).await.unwrap().len(), 4);
}

/// Migration 3 (issue 12, finding 3): rows written before sessions
/// recorded their origin gain `origin = 'api'` and read back as API
/// sessions, never as portal logins, and nothing else about them changes.
#[tokio::test]
async fn sessions_from_before_the_origin_column_read_back_as_api_sessions() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let url = with_schema(&base, &schema);
    let mut session = sample("t", "alice", NOW);
    session.origin = sessiond_core::SessionOrigin::Portal;
    {
        let store = PostgresStore::open(&url).await.unwrap();
        store
            .insert(&session, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
            .await
            .unwrap();
        store.close();
    }
    // What a build from before the origin column left behind (so also
    // before the tables of migrations 4 on).
    raw(&base)
        .await
        .batch_execute(&format!(
            "{} ALTER TABLE {schema}.sessions DROP COLUMN origin; \
             DELETE FROM {schema}.schema_migrations WHERE version >= 3",
            crate::support::undo_migrations_from_4(&schema)
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    let back = store.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!(back.origin, sessiond_core::SessionOrigin::Api);
    session.origin = sessiond_core::SessionOrigin::Api;
    // Nor had it the client at creation (migration 10).
    session.created_client = sessiond_core::ClientInfo::default();
    assert_eq!(*back, session);
    let refused = raw(&base)
        .await
        .execute(
            &format!("UPDATE {schema}.sessions SET origin = 'admin' WHERE id = $1"),
            &[&session.id.as_str()],
        )
        .await;
    assert!(refused.is_err(), "the column takes only 'api' and 'portal'");
}

/// Migration 10: rows written before the client at creation was kept
/// read back with an empty one and nothing else changed; written again,
/// they keep the one they are given.
#[tokio::test]
async fn sessions_from_before_the_created_client_columns_read_back_without_one() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let url = with_schema(&base, &schema);
    let session = sample("t", "alice", NOW);
    assert_ne!(session.created_client, sessiond_core::ClientInfo::default());
    {
        let store = PostgresStore::open(&url).await.unwrap();
        store
            .insert(&session, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
            .await
            .unwrap();
        store.close();
    }
    // What a build from before migration 10 left behind.
    raw(&base)
        .await
        .batch_execute(&format!(
            "ALTER TABLE {schema}.sessions DROP COLUMN created_client_ip, DROP COLUMN created_client_ua, \
             DROP COLUMN created_client_sealed; \
             DROP FUNCTION {schema}.session_changed() CASCADE; \
             DROP FUNCTION {schema}.sessions_truncated() CASCADE; \
             DELETE FROM {schema}.schema_migrations WHERE version >= 10"
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    let back = Session::clone(&store.get_by_id(&session.id).await.unwrap().unwrap());
    let old = Session {
        created_client: sessiond_core::ClientInfo::default(),
        ..session.clone()
    };
    assert_eq!(back, old);

    let mut updated = back.clone();
    updated.created_client = session.created_client.clone();
    updated.version += 1;
    store.update(&updated, back.version, &Audit::NONE).await.unwrap();
    assert_eq!(*store.get_by_id(&session.id).await.unwrap().unwrap(), updated);
}

#[tokio::test]
async fn a_schema_from_a_newer_sessiond_is_refused() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let url = with_schema(&base, &schema);
    PostgresStore::open(&url).await.unwrap();
    raw(&base)
        .await
        .execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES (99, 'future')"),
            &[],
        )
        .await
        .unwrap();
    let refused = PostgresStore::open(&url).await.unwrap_err();
    assert!(
        matches!(refused, OpenError::SchemaTooNew { found: 99, known } if known < 99),
        "got {refused:?}"
    );
}

#[tokio::test]
async fn an_engine_nobody_answers_for_is_unavailable() {
    // A port just released by the kernel: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = PostgresStore::open(&format!("postgres://postgres@127.0.0.1:{port}/x?connect_timeout=2"))
        .await
        .unwrap_err();
    assert!(matches!(error, OpenError::Connect(_)), "got {error:?}");
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn a_record_that_does_not_decode_is_corrupt_not_absent() {
    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let store = PostgresStore::open(&with_schema(&base, &schema)).await.unwrap();
    let session = sample("t", "alice", NOW);
    store
        .insert(&session, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
        .await
        .unwrap();
    raw(&base)
        .await
        .execute(
            &format!("UPDATE {schema}.sessions SET data = '\\x7b'::bytea WHERE id = $1"),
            &[&session.id.as_str()],
        )
        .await
        .unwrap();
    let read = store.get_by_token(&session.token_hash).await;
    assert!(matches!(read, Err(StoreError::Corrupt(_))), "got {read:?}");
}

/// Not a test of speed (nothing is asserted): prints the store's point-read
/// rate next to `pgbench -S` on the same server, for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_read_figures_next_to_pgbench() {
    let Some(base) = server_url() else { return };
    let store = Arc::new(PostgresStore::open(&with_schema(&base, &fresh_schema())).await.unwrap());
    let mut hashes = Vec::new();
    for i in 0..1000 {
        let session = sample("t", &format!("user-{i}"), NOW);
        hashes.push(session.token_hash);
        store
            .insert(&session, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
            .await
            .unwrap();
    }
    let hashes = Arc::new(hashes);
    let started = Instant::now();
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (store, hashes) = (Arc::clone(&store), Arc::clone(&hashes));
            tokio::spawn(async move {
                for i in 0..2500 {
                    let hash = hashes[(i * 7 + r) % hashes.len()];
                    assert!(store.get_by_token(&hash).await.unwrap().is_some());
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let per_second = 10_000.0 / started.elapsed().as_secs_f64();
    eprintln!("store get_by_token, 4 tasks, this build: {per_second:.0}/s");

    let Some(bin) = sessiond_testkit::env::required("TEST_POSTGRES_BIN_DIR", "the pgbench comparison") else {
        return;
    };
    let pgbench = format!("{bin}/pgbench");
    let init = std::process::Command::new(&pgbench)
        .args(["-i", "-q", "-s", "1", &base])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let run = std::process::Command::new(&pgbench)
        .args(["-S", "-n", "-c", "4", "-j", "2", "-T", "5", "-M", "prepared", &base])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = String::from_utf8_lossy(&run.stdout);
    for line in report
        .lines()
        .filter(|l| l.contains("tps") || l.contains("latency average"))
    {
        eprintln!("pgbench -S -c 4 -j 2 -M prepared: {line}");
    }
}

/// Forgotten failure counters are removed by the session purge, in
/// batches of its limit; live ones stay.
#[tokio::test]
async fn purge_removes_forgotten_counters_and_keeps_live_ones() {
    use sessiond_core::{CounterKey, CounterStore};
    use sessiond_testkit::counter_conformance::{RULE, T0};

    let Some(base) = server_url() else { return };
    let schema = fresh_schema();
    let store = PostgresStore::open(&with_schema(&base, &schema)).await.unwrap();
    for n in 0..5 {
        let key = CounterKey::new(format!("acct:{n}")).unwrap();
        store.reserve(&[(key, RULE)], T0).await.unwrap();
    }
    let later = T0 + RULE.forget_after + std::time::Duration::from_secs(1);
    let live = CounterKey::new("acct:live").unwrap();
    store.reserve(&[(live.clone(), RULE)], later).await.unwrap();
    let rows = async || -> i64 {
        let sql = format!("SELECT count(*) FROM {schema}.counters");
        raw(&base).await.query_one(&sql, &[]).await.unwrap().get(0)
    };
    assert_eq!(rows().await, 6);
    store.purge_expired(later, 3, &Audit::NONE).await.unwrap();
    assert_eq!(rows().await, 3, "a batch of three went");
    store.purge_expired(later, 100, &Audit::NONE).await.unwrap();
    assert_eq!(rows().await, 1);
    assert_eq!(store.counter(&live, later).await.unwrap().map(|r| r.count), Some(1));
}
