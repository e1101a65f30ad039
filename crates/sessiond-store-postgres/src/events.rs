//! [`EventStore`] for [`PostgresStore`]: audit events in `events`
//! (migration 7), one row each, keyed (tenant, id).
//!
//! Every operation is one statement, so each is atomic by itself:
//!
//! * an append is one `INSERT … SELECT FROM unnest(…)` of the whole batch
//!   with `ON CONFLICT DO NOTHING`, so a stored id is skipped;
//! * a query is one backward range of the primary key from the cursor,
//!   filtered on the copied-out columns;
//! * the prune of a tenant is one `DELETE` of the ids below the age cut or
//!   at or below its `max_events + 1`-th newest id. Racing prunes on
//!   several nodes compute the same bound; under READ COMMITTED the later
//!   one skips rows the earlier one deleted, so each row is counted once.
//!   Finding that bound reads `max_events` index entries: the price of
//!   keeping no counter row that every append would contend on.
//!
//! A prune of every tenant finds the tenants with a skip scan of the
//! primary key (one index probe per tenant), then prunes each.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sessiond_core::{
    Event, EventFilter, EventId, EventStore, EventStoreError, Retention, StoreError, StoredEvent, Tenant,
};

use crate::error::{corrupt, store_error};
use crate::row::get;
use crate::store::PostgresStore;

fn decode(row: &tokio_postgres::Row) -> Result<StoredEvent, StoreError> {
    let id: &str = get(row, 0, "id")?;
    let body: &str = get(row, 1, "body")?;
    Ok(StoredEvent {
        id: EventId::parse(id).map_err(|e| corrupt("id", e))?,
        event: serde_json::from_str::<Event>(body).map_err(|e| corrupt("body", e))?,
    })
}

/// Appends `events` on `client`: a pooled connection, or the transaction
/// of the session write they record (see `ops.rs`), so they commit with it.
pub(crate) async fn write_events(client: &impl GenericClient, events: &[StoredEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut columns: [Vec<Option<String>>; 6] = Default::default();
    for stored in events {
        let event = &stored.event;
        let body = serde_json::to_string(event).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let values = [
            Some(event.tenant.to_string()),
            Some(stored.id.to_string()),
            Some(event.kind.name().to_owned()),
            event.subject.as_ref().map(ToString::to_string),
            event.session_id.as_ref().map(ToString::to_string),
            Some(body),
        ];
        for (column, value) in columns.iter_mut().zip(values) {
            column.push(value);
        }
    }
    let insert = client
        .prepare_cached(
            "INSERT INTO events (tenant, id, kind, subject, session_id, body) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             ON CONFLICT (tenant, id) DO NOTHING",
        )
        .await
        .map_err(store_error)?;
    let [tenants, ids, kinds, subjects, sessions, bodies] = &columns;
    client
        .execute(&insert, &[tenants, ids, kinds, subjects, sessions, bodies])
        .await
        .map_err(store_error)?;
    Ok(())
}

impl PostgresStore {
    async fn insert_events(&self, events: &[StoredEvent]) -> Result<(), StoreError> {
        write_events(&self.client().await?, events).await
    }

    async fn select_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(
                "SELECT id, body FROM events WHERE tenant = $1 \
                 AND ($2::text IS NULL OR subject = $2) AND ($3::text IS NULL OR session_id = $3) \
                 AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR id < $5) \
                 ORDER BY id DESC LIMIT $6",
            )
            .await
            .map_err(store_error)?;
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &select,
                &[
                    &tenant.as_str(),
                    &filter.subject.as_ref().map(|s| s.as_str()),
                    &filter.session_id.as_ref().map(|s| s.as_str()),
                    &filter.kind,
                    &filter.before.as_ref().map(EventId::as_str),
                    &limit,
                ],
            )
            .await
            .map_err(store_error)?;
        rows.iter().map(decode).collect()
    }

    async fn delete_events(&self, tenant: &str, retention: Retention) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let delete = client
            .prepare_cached(
                "DELETE FROM events WHERE tenant = $1 AND (id < $2 OR id <= \
                 (SELECT id FROM events WHERE tenant = $1 ORDER BY id DESC OFFSET $3 LIMIT 1))",
            )
            .await
            .map_err(store_error)?;
        let keep = i64::try_from(retention.max_events).unwrap_or(i64::MAX);
        let cut = EventId::first_at(retention.older_than);
        client
            .execute(&delete, &[&tenant, &cut.as_str(), &keep])
            .await
            .map_err(store_error)
    }

    async fn event_tenants(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(
                "WITH RECURSIVE t AS ( \
                     SELECT min(tenant) AS tenant FROM events \
                     UNION ALL \
                     SELECT (SELECT min(tenant) FROM events WHERE tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL) \
                 SELECT tenant FROM t WHERE tenant IS NOT NULL",
            )
            .await
            .map_err(store_error)?;
        let rows = client.query(&select, &[]).await.map_err(store_error)?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).map_err(|e| corrupt("tenant", e)))
            .collect()
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        if events.is_empty() {
            return Ok(());
        }
        Ok(self.bounded(self.insert_events(events)).await?)
    }

    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self.bounded(self.select_events(tenant, filter)).await?)
    }

    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        let tenants = match tenant {
            Some(tenant) => vec![tenant.to_string()],
            None => self.bounded(self.event_tenants()).await?,
        };
        let mut removed = 0;
        for tenant in tenants {
            removed += self.bounded(self.delete_events(&tenant, retention)).await?;
        }
        Ok(removed)
    }
}
