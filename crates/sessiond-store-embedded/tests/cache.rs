//! The read cache never serves a state older than one already seen or
//! acknowledged, while readers fill it and the writer changes records.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sessiond_core::{Audit, Revocation, RevokeReason, SubjectLimit, TokenHash};
use sessiond_testkit::conformance::{NOW, sample};

use crate::support::TempStore;

fn revocation() -> Revocation {
    Revocation {
        at: NOW,
        reason: RevokeReason::Admin,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_never_go_back_in_time_while_writes_race_them() {
    for store in [TempStore::shared(), TempStore::tiny_cache(), TempStore::packed_only()] {
        let sessions: Vec<_> = (0..16).map(|i| sample("t", &format!("u{}", i % 4), NOW)).collect();
        for s in &sessions {
            store
                .insert(s, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
                .await
                .unwrap();
        }
        let hashes: Arc<Vec<TokenHash>> = Arc::new(sessions.iter().map(|s| s.token_hash).collect());
        let done = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (store, hashes, done) = (Arc::clone(&store), Arc::clone(&hashes), Arc::clone(&done));
            readers.push(tokio::spawn(async move {
                // The (last_seen_at, version) a reader saw may only grow.
                let mut seen = HashMap::new();
                while !done.load(Ordering::Relaxed) {
                    for hash in hashes.iter() {
                        let s = store.get_by_token(hash).await.unwrap().unwrap();
                        let now = (s.last_seen_at, s.version);
                        let before = seen.insert(*hash, now).unwrap_or(now);
                        assert!(now >= before, "a read went back from {before:?} to {now:?}");
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        for round in 1..=40u64 {
            for s in &sessions {
                let at = NOW + Duration::from_secs(round);
                store
                    .touch(&s.id, at, at + Duration::from_secs(600), &s.client)
                    .await
                    .unwrap();
                // What was acknowledged is what every later read sees.
                let read = store.get_by_token(&s.token_hash).await.unwrap().unwrap();
                assert_eq!(read.last_seen_at, at);
            }
            let mut data = (*store.get_by_id(&sessions[0].id).await.unwrap().unwrap()).clone();
            data.version += 1;
            store.update(&data, data.version - 1, &Audit::NONE).await.unwrap();
            let read = store.get_by_token(&data.token_hash).await.unwrap().unwrap();
            assert_eq!(read.version, data.version);
        }
        for s in &sessions {
            store.revoke(&s.id, revocation(), &Audit::NONE).await.unwrap();
            let read = store.get_by_token(&s.token_hash).await.unwrap().unwrap();
            assert!(read.revoked.is_some(), "an acknowledged revoke was not seen");
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
    }
}
