//! How long it takes to open a store holding a million sessions, and how
//! much disk it uses.
//!
//! Run: `cargo run --release -p sessiond-store-embedded --example million [DIR] [COUNT]`
//!
//! Fills DIR (default: a temporary directory) with COUNT (default
//! 1,000,000) sessions through the public API, many writers at once so
//! group commit batches them, closes the store, then times reopening it
//! (which verifies every page checksum) and a first verify-style read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_core::{Audit, Revocation, RevokeReason, SessionStore, SubjectLimit};
use sessiond_store_embedded::{EmbeddedStore, FILE_NAME};
use sessiond_testkit::conformance::{NOW, sample};

const WRITERS: usize = 1024;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let temp = tempfile::tempdir()?;
    let dir = args.next().map_or_else(|| temp.path().to_owned(), Into::into);
    let count: usize = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let revocation = Revocation {
        at: NOW,
        reason: RevokeReason::Limit,
    };

    let store = Arc::new(EmbeddedStore::open(&dir)?);
    let start = Instant::now();
    let probe = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let mut last = None;
                for i in (w..count).step_by(WRITERS) {
                    // 10 sessions per subject, deadlines spread over a day.
                    let mut s = sample("default", &format!("user-{}", i / 10), NOW);
                    s.idle_expires_at = NOW + Duration::from_secs((i % 86_400) as u64);
                    store
                        .insert(&s, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
                        .await
                        .unwrap();
                    last = Some(s.token_hash);
                }
                last
            }));
        }
        let mut probe = None;
        for task in tasks {
            probe = probe.or(task.await.unwrap());
        }
        probe
    });
    let filled = start.elapsed();
    Arc::into_inner(store).expect("no other handle").close()?;
    let bytes = std::fs::metadata(dir.join(FILE_NAME))?.len();
    println!(
        "filled {count} sessions in {:.1} s ({:.0} durable inserts/s, {WRITERS} concurrent writers)",
        filled.as_secs_f64(),
        count as f64 / filled.as_secs_f64()
    );
    println!(
        "file size: {:.1} MiB ({:.0} bytes per session)",
        bytes as f64 / 1048576.0,
        bytes as f64 / count as f64
    );

    for attempt in 1..=3 {
        let start = Instant::now();
        let store = EmbeddedStore::open(&dir)?;
        let opened = start.elapsed();
        let start = Instant::now();
        let found = rt.block_on(store.get_by_token(&probe.expect("a probe")))?;
        let first_read = start.elapsed();
        assert!(found.is_some());
        println!(
            "open #{attempt}: {:.2} s, then first lookup {:.0} µs",
            opened.as_secs_f64(),
            first_read.as_secs_f64() * 1e6
        );
        store.close()?;
    }
    Ok(())
}
