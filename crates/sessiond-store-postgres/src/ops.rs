//! The [`SessionStore`] operations, each one SQL statement or one
//! transaction, so each is atomic across every node using the database.

use std::sync::Arc;

use async_trait::async_trait;
use sessiond_core::{
    Audit, ClientInfo, IdPage, Inserted, Revocation, Session, SessionId, SessionStore, StoreError, Subject,
    SubjectLimit, Tenant, TokenHash,
};
use time::OffsetDateTime;

use crate::error::{corrupt, store_error};
use crate::events::write_events;
use crate::keys::subject_lock_key;
use crate::row::{COLUMNS, Encoded, decode, decode_all, token_hashes, version_param};
use crate::store::PostgresStore;

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        self.session_write(self.insert_limited(session, limit, now, revocation, audit))
            .await
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.bounded(async {
            match &self.cache {
                Some(cache) => cache.get(hash, self.read_by_token(hash)).await,
                None => self.read_by_token(hash).await,
            }
        })
        .await
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let sql = format!("SELECT {COLUMNS} FROM sessions s WHERE s.id = $1");
            let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
            let row = client
                .query_opt(&statement, &[&id.as_str()])
                .await
                .map_err(store_error)?;
            row.as_ref().map(decode).transpose().map(|s| s.map(Arc::new))
        })
        .await
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        self.session_write(self.compare_and_set(session, expected_version, audit))
            .await
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client_info: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.session_write(async {
            let client = self.client().await?;
            // All three conditions in the WHERE clause: the check and the
            // write are one statement, so a revoke cannot slip between them.
            // The created_client_* columns are not written: the client at
            // creation never changes.
            let statement = client
                .prepare_cached(
                    "UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3, client_ip = $4, client_ua = $5, \
                     client_sealed = $6 WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < $2",
                )
                .await
                .map_err(store_error)?;
            let written = client
                .execute(
                    &statement,
                    &[
                        &id.as_str(),
                        &last_seen_at,
                        &idle_expires_at,
                        &client_info.ip,
                        &client_info.user_agent,
                        &client_info.sealed,
                    ],
                )
                .await
                .map_err(store_error)?;
            Ok(written == 1)
        })
        .await
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        self.session_write(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(store_error)?;
            let sql = format!(
                "UPDATE sessions AS s SET revoked_at = $2, revoked_reason = $3, version = s.version + 1 \
                 WHERE s.id = $1 AND s.revoked_at IS NULL RETURNING {COLUMNS}"
            );
            let statement = tx.prepare_cached(&sql).await.map_err(store_error)?;
            let row = tx
                .query_opt(&statement, &[&id.as_str(), &revocation.at, &revocation.reason.as_str()])
                .await
                .map_err(store_error)?;
            let revoked = row.as_ref().map(decode).transpose()?;
            if revoked.is_some() {
                write_events(&tx, &audit.events).await?;
            }
            tx.commit().await.map_err(store_error)?;
            Ok(revoked)
        })
        .await
    }

    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        // Anonymous records belong to nobody (the store's semantics).
        if subject.is_anonymous() {
            return Ok(Vec::new());
        }
        self.session_write(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(store_error)?;
            // The subject's lock, as a limited insert takes it: every
            // statement that revokes several of one subject's sessions runs
            // alone, so two of them never lock rows in different orders
            // (which would be a deadlock, reported as a failure).
            let lock = tx
                .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                .await
                .map_err(store_error)?;
            tx.execute(&lock, &[&subject_lock_key(&self.schema, tenant, subject)])
                .await
                .map_err(store_error)?;
            let sql = format!(
                "UPDATE sessions AS s SET revoked_at = $4, revoked_reason = $5, version = s.version + 1 \
                 WHERE s.tenant = $1 AND s.subject = $2 AND s.revoked_at IS NULL AND s.expires_at > $6 \
                 AND s.id IS DISTINCT FROM $3 RETURNING {COLUMNS}"
            );
            let statement = tx.prepare_cached(&sql).await.map_err(store_error)?;
            let rows = tx
                .query(
                    &statement,
                    &[
                        &tenant.as_str(),
                        &subject.as_str(),
                        &except.map(SessionId::as_str),
                        &revocation.at,
                        &revocation.reason.as_str(),
                        &now,
                    ],
                )
                .await
                .map_err(store_error)?;
            let mut revoked = decode_all(&rows)?;
            // RETURNING has no order of its own; picked events follow this one.
            revoked.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            write_events(&tx, &audit.picked_events(&revoked)).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(revoked)
        })
        .await
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        if subject.is_anonymous() {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {COLUMNS} FROM sessions s \
                 WHERE s.tenant = $1 AND s.subject = $2 AND s.revoked_at IS NULL AND s.expires_at > $3"
            );
            let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
            let rows = client
                .query(&statement, &[&tenant.as_str(), &subject.as_str(), &now])
                .await
                .map_err(store_error)?;
            decode_all(&rows)
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(store_error)?;
            // SKIP LOCKED: a record some other call is changing right now is
            // left for the next round instead of making purge wait; token
            // rows go with their session through ON DELETE CASCADE.
            let sql = format!(
                "WITH due AS ( \
                     SELECT id FROM sessions WHERE expires_at <= $1 \
                     ORDER BY expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 DELETE FROM sessions AS s USING due WHERE s.id = due.id RETURNING {COLUMNS}"
            );
            let statement = tx.prepare_cached(&sql).await.map_err(store_error)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = tx.query(&statement, &[&now, &limit]).await.map_err(store_error)?;
            let mut purged = decode_all(&rows)?;
            // RETURNING has no order of its own.
            purged.sort_by(|a, b| (a.expires_at(), &a.id).cmp(&(b.expires_at(), &b.id)));
            write_events(&tx, &audit.picked_events(purged.iter().filter(|s| s.revoked.is_none()))).await?;
            tx.commit().await.map_err(store_error)?;
            // Forgotten failure counters go with the same round, on the
            // connection given back first (a pool of one must not wait on itself).
            drop(client);
            self.purge_counters(now, limit).await?;
            Ok(purged)
        })
        .await
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached("SELECT id FROM sessions WHERE id > $1 ORDER BY id LIMIT $2")
                .await
                .map_err(store_error)?;
            let rows = client
                .query(
                    &statement,
                    &[&cursor.unwrap_or(""), &i64::try_from(limit).unwrap_or(i64::MAX)],
                )
                .await
                .map_err(store_error)?;
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: &str = row.try_get(0).map_err(store_error)?;
                ids.push(SessionId::parse(id).ok_or_else(|| corrupt("id", id))?);
            }
            let next = (ids.len() == limit)
                .then(|| ids.last().map(|id| id.as_str().to_owned()))
                .flatten();
            Ok(IdPage { ids, next })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(store_error)?;
            Ok(())
        })
        .await
    }
}

impl PostgresStore {
    /// The record a token hash (current or previous) maps to, read on the
    /// pool.
    async fn read_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        let client = self.client().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM session_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1");
        let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
        let row = client
            .query_opt(&statement, &[&hash.as_bytes().as_slice()])
            .await
            .map_err(store_error)?;
        row.as_ref().map(decode).transpose().map(|s| s.map(Arc::new))
    }

    /// [`SessionStore::update`]: the version check and the write are one
    /// `UPDATE … WHERE version = $expected`; the token index follows in the
    /// same transaction and a hash owned by another record undoes it all.
    async fn compare_and_set(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        let encoded = Encoded::new(session)?;
        let expected = version_param(expected_version)?;
        let hashes = token_hashes(session);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(store_error)?;
        let update = tx
            .prepare_cached(
                "UPDATE sessions SET tenant = $2, subject = $3, token_hash = $4, prev_hash = $5, \
                 prev_valid_until = $6, created_at = $7, last_seen_at = $8, authenticated_at = $9, \
                 idle_expires_at = $10, absolute_expires_at = $11, remember_me = $12, aal = $13, data = $14, \
                 client_ip = $15, client_ua = $16, version = $17, revoked_at = $18, revoked_reason = $19, \
                 origin = $20, client_sealed = $21, created_client_ip = $22, created_client_ua = $23, \
                 created_client_sealed = $24 \
                 WHERE id = $1 AND version = $25",
            )
            .await
            .map_err(store_error)?;
        let mut params = encoded.params().to_vec();
        params.push(&expected);
        if tx.execute(&update, &params).await.map_err(store_error)? == 0 {
            let current = tx
                .query_opt("SELECT version FROM sessions WHERE id = $1", &[&session.id.as_str()])
                .await
                .map_err(store_error)?;
            return match current {
                None => Err(StoreError::NotFound),
                Some(row) => {
                    let current: i64 = row.try_get(0).map_err(store_error)?;
                    Err(StoreError::VersionConflict {
                        current: u64::try_from(current).map_err(|_| corrupt("version", current))?,
                    })
                }
            };
        }
        // One statement: drop the hashes this record no longer has, add the
        // new ones, and count how many of the wanted hashes are now ours
        // (already ours in the snapshot, or inserted now). A hash another
        // transaction holds makes the insert skip it, so the count falls
        // short and the whole update is rolled back.
        let reindex = tx
            .prepare_cached(
                "WITH dropped AS ( \
                     DELETE FROM session_tokens WHERE session_id = $2 AND NOT (hash = ANY($1::bytea[]))), \
                 added AS ( \
                     INSERT INTO session_tokens (hash, session_id) SELECT h, $2 FROM unnest($1::bytea[]) AS h \
                     ON CONFLICT (hash) DO NOTHING RETURNING hash) \
                 SELECT (SELECT count(*) FROM added) \
                      + (SELECT count(*) FROM session_tokens WHERE session_id = $2 AND hash = ANY($1::bytea[]))",
            )
            .await
            .map_err(store_error)?;
        let owned: i64 = tx
            .query_one(&reindex, &[&hashes, &session.id.as_str()])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(store_error)?;
        if usize::try_from(owned).ok() != Some(hashes.len()) {
            return Err(StoreError::Collision);
        }
        write_events(&tx, &audit.events).await?;
        tx.commit().await.map_err(store_error)
    }
}
