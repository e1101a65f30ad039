//! Insert, with the per-subject limit enforced across every node.
//!
//! Counting a subject's sessions and then inserting is a race between nodes
//! unless the count is serialised: each limited insert first takes
//! `pg_advisory_xact_lock` on a key derived from (schema, tenant, subject).
//! The lock is held until the transaction ends, and under READ COMMITTED
//! each statement after it sees everything the previous holder committed,
//! so two logins racing on different nodes count each other. Unlimited
//! inserts take no lock.
//!
//! Collisions need no lock: the primary keys of `sessions` and
//! `session_tokens` refuse them, and `ON CONFLICT DO NOTHING` turns a
//! refusal into "fewer rows than expected" instead of an aborted statement.

use sessiond_core::{Audit, Inserted, Revocation, Session, StoreError, SubjectLimit};
use time::OffsetDateTime;

use crate::error::store_error;
use crate::events::write_events;
use crate::keys::subject_lock_key;
use crate::row::{COLUMNS, Encoded, WRITE_COLUMNS, decode_all, token_hashes};
use crate::store::PostgresStore;

/// Inserts the record and its token hashes in one statement; returns the
/// number of token rows written. Fewer than the record has means the id or
/// a hash was taken (a taken id writes no session row, so no token rows),
/// and the caller rolls the transaction back so no row stays behind.
fn insert_sql() -> String {
    let placeholders: Vec<String> = (1..=crate::row::WRITE_COLUMN_COUNT).map(|i| format!("${i}")).collect();
    let hashes = crate::row::WRITE_COLUMN_COUNT + 1;
    format!(
        "WITH created AS ( \
             INSERT INTO sessions ({WRITE_COLUMNS}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING id), \
         indexed AS ( \
             INSERT INTO session_tokens (hash, session_id) \
             SELECT h, created.id FROM created, unnest(${hashes}::bytea[]) AS h \
             ON CONFLICT DO NOTHING RETURNING hash) \
         SELECT count(*) FROM indexed",
        placeholders.join(", ")
    )
}

impl PostgresStore {
    /// [`SessionStore::insert`](sessiond_core::SessionStore::insert).
    pub(crate) async fn insert_limited(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        let encoded = Encoded::new(session)?;
        let hashes = token_hashes(session);
        let mut params = encoded.params().to_vec();
        params.push(&hashes);

        let max = match limit {
            SubjectLimit::Unlimited => None,
            SubjectLimit::Deny(max) | SubjectLimit::EvictOldest(max) => Some(max as usize),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(store_error)?;
        if max.is_some() {
            let key = subject_lock_key(&self.schema, &session.tenant, &session.subject);
            let lock = tx
                .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                .await
                .map_err(store_error)?;
            tx.execute(&lock, &[&key]).await.map_err(store_error)?;
        }

        // Insert first: a collision is reported before the limit is looked
        // at, as the reference store does, and rolling back undoes both.
        let insert = tx.prepare_cached(&insert_sql()).await.map_err(store_error)?;
        let indexed: i64 = tx
            .query_one(&insert, &params)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(store_error)?;
        if usize::try_from(indexed).ok() != Some(hashes.len()) {
            return Err(StoreError::Collision);
        }

        let mut inserted = Inserted::default();
        if let Some(max) = max {
            let live = tx
                .prepare_cached(
                    "SELECT id FROM sessions \
                     WHERE tenant = $1 AND subject = $2 AND revoked_at IS NULL AND expires_at > $3 AND id <> $4 \
                     ORDER BY created_at, id",
                )
                .await
                .map_err(store_error)?;
            let live: Vec<String> = tx
                .query(
                    &live,
                    &[
                        &session.tenant.as_str(),
                        &session.subject.as_str(),
                        &now,
                        &session.id.as_str(),
                    ],
                )
                .await
                .map_err(store_error)?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(store_error)?;
            if live.len() >= max {
                if matches!(limit, SubjectLimit::Deny(_)) {
                    return Err(StoreError::LimitReached);
                }
                let excess = live.len() + 1 - max.max(1);
                let evict = tx
                    .prepare_cached(&format!(
                        "UPDATE sessions AS s SET revoked_at = $2, revoked_reason = $3, version = s.version + 1 \
                         WHERE s.id = ANY($1) AND s.revoked_at IS NULL RETURNING {COLUMNS}"
                    ))
                    .await
                    .map_err(store_error)?;
                let rows = tx
                    .query(&evict, &[&&live[..excess], &revocation.at, &revocation.reason.as_str()])
                    .await
                    .map_err(store_error)?;
                let mut evicted = decode_all(&rows)?;
                evicted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                inserted.evicted = evicted;
            }
        }
        write_events(&tx, &audit.all_events(&inserted.evicted)).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(inserted)
    }
}
