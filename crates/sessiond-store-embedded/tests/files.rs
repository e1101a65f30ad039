//! Opening files: reopening keeps data, the lock, the format version, and
//! bad files (random, empty, truncated, damaged, foreign) that must be a
//! clear error, never a panic.

use std::path::Path;

use sessiond_core::{Audit, Revocation, RevokeReason, SessionStore, SubjectLimit};
use sessiond_store_embedded::{EmbeddedStore, FILE_NAME, FORMAT_VERSION, OpenError, Options, parse_url};
use sessiond_testkit::conformance::{NOW, sample};

fn revocation() -> Revocation {
    Revocation {
        at: NOW,
        reason: RevokeReason::Admin,
    }
}

/// A closed store holding `n` sessions; returns the file's bytes.
fn store_with(dir: &Path, n: usize) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = EmbeddedStore::open(dir).unwrap();
    runtime.block_on(async {
        for i in 0..n {
            let s = sample("t", &format!("user-{}", i % 7), NOW);
            store
                .insert(&s, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
                .await
                .unwrap();
        }
    });
    store.close().unwrap();
    std::fs::read(dir.join(FILE_NAME)).unwrap()
}

fn open_err(dir: &Path) -> OpenError {
    match EmbeddedStore::open(dir) {
        Ok(_) => panic!("a bad file opened"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn reopening_finds_every_session_and_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let kept = sample("t", "alice", NOW);
    let gone = sample("t", "alice", NOW);
    for s in [&kept, &gone] {
        store
            .insert(s, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
            .await
            .unwrap();
    }
    store.revoke(&gone.id, revocation(), &Audit::NONE).await.unwrap();
    drop(store); // Drop, not close: graceful shutdown must flush too.

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get_by_token(&kept.token_hash).await.unwrap().as_deref(),
        Some(&kept)
    );
    let tombstone = store.get_by_id(&gone.id).await.unwrap().unwrap();
    assert_eq!(tombstone.revoked, Some(revocation()));
    assert!(store.check().unwrap().is_consistent());
    assert_eq!(store.check().unwrap().sessions, 2);
}

#[test]
fn a_second_opener_is_told_the_store_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedStore::open(dir.path()).unwrap();
    let error = open_err(dir.path());
    assert!(
        matches!(&error, OpenError::InUse { path } if path == &dir.path().join(FILE_NAME)),
        "{error:?}"
    );
    assert!(error.to_string().contains("in use"));
    first.close().unwrap();
    EmbeddedStore::open(dir.path()).unwrap();
}

#[test]
fn urls_name_the_data_directory() {
    let dir_of = |url: &str| parse_url(url).map(|(dir, _)| dir);
    assert_eq!(
        dir_of("embedded:./sessiond-data").unwrap(),
        Path::new("./sessiond-data")
    );
    assert_eq!(
        dir_of("embedded:///var/lib/sessiond").unwrap(),
        Path::new("/var/lib/sessiond")
    );
    assert!(matches!(dir_of("embedded:"), Err(OpenError::BadUrl(u)) if u == "embedded:"));
    assert!(matches!(dir_of("embedded:?cache_mib=1"), Err(OpenError::BadUrl(_))));
    assert!(matches!(dir_of("redis://x"), Err(OpenError::BadUrl(_))));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("embedded:{}", dir.path().join("data").display());
    let store = EmbeddedStore::open_url(&url).unwrap();
    assert_eq!(store.path(), dir.path().join("data").join(FILE_NAME));
}

#[test]
fn url_parameters_set_the_memory_budgets_in_mib() {
    let (dir, options) = parse_url("embedded:./d?cache_mib=64&packed_cache_mib=4096&engine_cache_mib=512").unwrap();
    assert_eq!(dir, Path::new("./d"));
    let expected = Options::default()
        .cache_bytes(64 << 20)
        .packed_cache_bytes(4096 << 20)
        .engine_cache_bytes(512 << 20);
    assert_eq!(options, expected);
    assert_eq!(parse_url("embedded:./d?").unwrap().1, Options::default());
    assert_eq!(
        parse_url("embedded:./d?cache_mib=0").unwrap().1,
        Options::default().cache_bytes(0)
    );
    let refused = |url: &str| match parse_url(url) {
        Err(OpenError::BadParameter { name, reason }) => (name, reason),
        other => panic!("{url}: {other:?}"),
    };
    assert_eq!(refused("embedded:./d?cache_entries=5").0, "cache_entries");
    assert_eq!(refused("embedded:./d?cache_mib=1&cache_mib=2").1, "given twice");
    assert_eq!(refused("embedded:./d?cache_mib=-1").1, "not a whole number of MiB");
    assert_eq!(refused("embedded:./d?packed_cache_mib").1, "not a whole number of MiB");
    assert_eq!(refused("embedded:./d?cache_mib=1048577").1, "above 1048576 (1 TiB)");
    assert_eq!(refused("embedded:./d?engine_cache_mib=0").1, "must be at least 1");
    // A directory whose name holds `?` is refused, not silently cut short.
    assert_eq!(refused("embedded:./what?.d").0, ".d");
}

#[test]
fn a_file_from_a_newer_version_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), 1);
    let path = dir.path().join(FILE_NAME);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("sessiond_meta");
        txn.open_table(meta).unwrap().insert("format_version", 7).unwrap();
        txn.commit().unwrap();
    }
    let error = open_err(dir.path());
    assert!(
        matches!(error, OpenError::NewerFormat { found: 7, supported, .. } if supported == FORMAT_VERSION),
        "{error:?}"
    );
    // Left for the newer build: the version and the records are as they were.
    let db = redb::Database::open(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("sessiond_meta");
    assert_eq!(
        txn.open_table(meta)
            .unwrap()
            .get("format_version")
            .unwrap()
            .unwrap()
            .value(),
        7
    );
    let sessions: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("sessions");
    assert_eq!(
        redb::ReadableTableMetadata::len(&txn.open_table(sessions).unwrap()).unwrap(),
        1
    );
}

#[test]
fn another_programs_redb_file_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        let other: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("settings");
        txn.open_table(other).unwrap().insert("k", "v").unwrap();
        txn.commit().unwrap();
    }
    let error = open_err(dir.path());
    assert!(
        matches!(&error, OpenError::NotAStore { why, .. } if why == "no sessiond format version"),
        "{error:?}"
    );
}

#[test]
fn random_bytes_are_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut noise = vec![0u8; 64 * 1024];
    for chunk in noise.chunks_mut(32) {
        chunk.copy_from_slice(sessiond_core::Token::generate().unwrap().hash().as_bytes());
    }
    std::fs::write(dir.path().join(FILE_NAME), &noise).unwrap();
    let error = open_err(dir.path());
    assert!(
        matches!(&error, OpenError::NotAStore { why, .. } if why.contains("magic")),
        "{error:?}"
    );
    assert!(error.to_string().contains("is not a sessiond session store"));
}

#[test]
fn an_empty_file_is_refused_not_silently_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), b"").unwrap();
    let error = open_err(dir.path());
    assert!(
        matches!(&error, OpenError::NotAStore { why, .. } if why.contains("empty")),
        "{error:?}"
    );
    assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap().len(), 0);
}

#[test]
fn truncated_files_are_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = store_with(dir.path(), 300);
    let path = dir.path().join(FILE_NAME);
    let len = bytes.len();
    let mut cuts = vec![1, 9, 100, 511, 4096, 4097, len / 3, len / 2, len - 4096, len - 1];
    cuts.retain(|&c| c < len);
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = open_err(dir.path());
        assert!(
            matches!(error, OpenError::NotAStore { .. } | OpenError::Corrupt { .. }),
            "cut at {cut} of {len}: {error:?}"
        );
    }
}

#[test]
fn damaged_pages_are_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = store_with(dir.path(), 300);
    let path = dir.path().join(FILE_NAME);
    // Past the header: damage data pages at several places.
    for at in (8192..bytes.len()).step_by(bytes.len() / 7) {
        let mut bad = bytes.clone();
        for b in &mut bad[at..(at + 64).min(bytes.len())] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bad).unwrap();
        match EmbeddedStore::open(dir.path()) {
            Err(OpenError::Corrupt { .. }) => {}
            // Damage in free space is harmless: the store must then be whole.
            Ok(store) => assert!(store.check().unwrap().is_consistent()),
            Err(other) => panic!("damage at {at}: {other:?}"),
        }
    }
}
