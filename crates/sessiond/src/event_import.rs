//! The one-time move of an earlier version's `events.jsonl` into the store.
//!
//! Earlier versions kept each node's audit events in `events.jsonl` in its
//! data directory. At start, a node that finds that file appends its
//! events to the store (with fresh ids, in the file's order) and renames it
//! `events.jsonl.imported`, so the next start does not import it again and
//! the operator can delete it when satisfied. A torn last line (a crash
//! while writing) is skipped, as the old log itself skipped it; events past
//! the retention bounds go at the writer's first prune.
//!
//! A crash between the append and the rename imports the file again at the
//! next start: the events then appear twice. That needs a crash in a window
//! of one rename, once per node, and duplicates an audit trail rather than
//! losing it.

use std::path::{Path, PathBuf};

use sessiond_core::{Event, EventIds, EventStore, EventStoreError, RandomnessError, StoredEvent};

/// The file earlier versions wrote.
pub const LEGACY_FILE: &str = "events.jsonl";
/// What it is renamed to once imported.
pub const IMPORTED_FILE: &str = "events.jsonl.imported";

/// Events appended per batch while importing.
const BATCH: usize = 1_000;

/// Why the import failed. The file is left where it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read or renamed.
    #[error("event log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store refused the events.
    #[error("cannot append the imported events to the store")]
    Store(#[from] EventStoreError),
    /// No randomness for the ids' node part.
    #[error("cannot make event ids")]
    Randomness(#[from] RandomnessError),
}

/// Imports `data_dir/events.jsonl`, if there is one; how many events.
pub async fn import_legacy_events(store: &dyn EventStore, data_dir: &Path) -> Result<usize, ImportError> {
    let path = data_dir.join(LEGACY_FILE);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(ImportError::Io { path, source }),
    };
    let ids = EventIds::new()?;
    let events: Vec<StoredEvent> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .map(|event| StoredEvent {
            id: ids.next_id(event.at),
            event,
        })
        .collect();
    for batch in events.chunks(BATCH) {
        store.append_events(batch).await?;
    }
    let imported = data_dir.join(IMPORTED_FILE);
    tokio::fs::rename(&path, &imported)
        .await
        .map_err(|source| ImportError::Io { path, source })?;
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use sessiond_core::{EventFilter, EventKind, MemoryStore, Tenant};
    use time::macros::datetime;

    use super::*;

    fn line(tenant: &str, kind: &str, at: &str) -> String {
        format!(
            r#"{{"at":"{at}","kind":{{"kind":"{kind}"}},"tenant":"{tenant}","session_id":null,"subject":null,"client":null}}"#
        )
    }

    #[tokio::test]
    async fn a_legacy_file_is_imported_once_in_order_and_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::new();
        assert_eq!(import_legacy_events(&store, dir.path()).await.unwrap(), 0, "no file");
        let lines = [
            line("shop", "created", "2026-01-01T00:00:00Z"),
            line("blog", "touched", "2026-01-01T00:00:01Z"),
            line("shop", "rotated", "2026-01-01T00:00:01Z"),
            // A torn last line, as a crash mid-write leaves it.
            r#"{"at":"2026-01-01T00:00:02Z","ki"#.to_owned(),
        ];
        std::fs::write(dir.path().join(LEGACY_FILE), lines.join("\n")).unwrap();
        assert_eq!(import_legacy_events(&store, dir.path()).await.unwrap(), 3);
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(dir.path().join(IMPORTED_FILE).exists());
        assert_eq!(
            import_legacy_events(&store, dir.path()).await.unwrap(),
            0,
            "imported twice"
        );
        let all = EventFilter {
            limit: 10,
            ..EventFilter::default()
        };
        let shop = store.query_events(&Tenant::new("shop").unwrap(), &all).await.unwrap();
        let kinds: Vec<EventKind> = shop.iter().map(|s| s.event.kind).collect();
        assert_eq!(kinds, [EventKind::Rotated, EventKind::Created]);
        assert_eq!(shop[1].event.at, datetime!(2026-01-01 00:00:00 UTC));
        let blog = store.query_events(&Tenant::new("blog").unwrap(), &all).await.unwrap();
        assert_eq!(blog.len(), 1);
    }
}
