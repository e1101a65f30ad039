//! The node-local cache of records read by token (`cache_entries`): a
//! verify of a hot session is answered from memory, and still fails on
//! every node once a revocation elsewhere was acknowledged.
//!
//! The cache itself, its barrier, the lag bound (`cache_lag_ms`) and the
//! proof are [`RecordCache`]'s, shared with the Redis store. What is
//! PostgreSQL's here is the link that keeps it in step:
//!
//! - A connection of the cache's own runs `LISTEN` on the store's channel
//!   (`sessiond:<schema>`). Every change of a session row notifies the
//!   row's token hashes as they were, in the writer's transaction: the
//!   store opening this cache made sure of that first (the triggers of
//!   `session_notify_triggers.sql`, whose creation waits for every
//!   transaction writing `sessions`).
//! - PostgreSQL (15 and later) signals the listening backends while the
//!   writer's transaction commits, before the writer is told it did. A
//!   listening backend sends the notifications it was signalled about
//!   before its next `ReadyForQuery`, and tokio-postgres hands a
//!   notification to [`listen`]'s driver before it reads any message that
//!   came after it.
//! - So the barrier is one query on that connection that completes only
//!   at its `ReadyForQuery` (`batch_execute`): a change acknowledged
//!   before the barrier was sent was signalled to the listener before the
//!   listener read the barrier, and its notification came first.
//! - Records are read on the pool, not the listener: an entry is stored
//!   only if no notification named its hash since it was marked, and any
//!   change committed after the read's snapshot was taken is notified
//!   after the mark.
//! - A lost connection (its driver ends, or a barrier fails or times out)
//!   empties the cache; the next verify opens a new connection, which
//!   follows `target_session_attrs` to the primary after a failover.
//!   Meanwhile verifies read the pool uncached: unlike Redis', this
//!   cache does not read through its own connection, so losing it costs
//!   only the hits.
//!
//! Once the triggers exist every writer pays for the notifications,
//! whether a node listens or not (measured in the crate docs).

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    BarrierFailed, CacheLink, CacheSettings, CacheStatistics, Invalidations, LinkError, Linked, RecordCache, Session,
    StoreError, TokenHash,
};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The longest channel (or application) name PostgreSQL keeps
/// (`NAMEDATALEN - 1`); the trigger cuts the channel the same way.
const MAX_NAME_LEN: usize = 63;

/// The node-local cache and the connection that keeps it in step.
pub(crate) struct NodeCache {
    pg: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    channel: String,
    timeout: Duration,
    cache: RecordCache<Listener>,
}

/// The listening connection; its barrier is `SELECT 1` run to its
/// `ReadyForQuery`.
pub(crate) struct Listener {
    client: Client,
    timeout: Duration,
}

impl CacheLink for Listener {
    async fn barrier(&self) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, self.client.batch_execute("SELECT 1")).await,
            Ok(Ok(()))
        )
    }
}

impl NodeCache {
    /// A cache with `settings` for the store in `schema`, listening on a
    /// connection of `pg` (with `tls`).
    pub(crate) fn new(
        pg: tokio_postgres::Config,
        tls: Option<MakeRustlsConnect>,
        schema: &str,
        settings: CacheSettings,
        timeout: Duration,
    ) -> Self {
        let mut pg = pg;
        // So an operator (or a test) can tell the listener from the pool.
        pg.application_name(cut(format!("sessiond-cache:{schema}")));
        Self {
            pg,
            tls,
            channel: channel(schema),
            timeout,
            cache: RecordCache::new(settings),
        }
    }

    /// The record of token `hash`: from memory, or from `read` (run on
    /// the pool) and kept for the next verify. Without a working listener
    /// the read still answers, uncached: the pool's answer is the engine's
    /// own, so only the cache is lost, not the node.
    pub(crate) async fn get<F>(&self, hash: &TokenHash, read: F) -> Result<Option<Arc<Session>>, StoreError>
    where
        F: Future<Output = Result<Option<Arc<Session>>, StoreError>>,
    {
        let linked = match self.linked().await {
            Ok(linked) => linked,
            Err(error) => {
                tracing::debug!(?error, "the record cache's listener is unavailable; reading uncached");
                return read.await;
            }
        };
        match self.cache.hit(&linked, hash).await {
            Ok(Some(session)) => return Ok(Some(session)),
            Ok(None) => {}
            // The cache has been emptied; the engine still answers.
            Err(BarrierFailed) => return read.await,
        }
        let fill = self.cache.mark(&linked, hash);
        let found = read.await;
        // An error clears the mark: nothing is stored.
        self.cache.fill(fill, found.as_ref().ok().and_then(Option::as_ref));
        found
    }

    /// Tells the cache that a session write of this node was answered
    /// (see [`RecordCache::wrote`]).
    pub(crate) fn wrote(&self) {
        self.cache.wrote();
    }

    /// The counts so far.
    pub(crate) fn statistics(&self) -> CacheStatistics {
        self.cache.statistics()
    }

    /// The listening connection in use, or a new one.
    async fn linked(&self) -> Result<Arc<Linked<Listener>>, LinkError<tokio_postgres::Error>> {
        let opened = self.cache.link(self.timeout, |invalidations| async move {
            let client = match &self.tls {
                Some(tls) => listen(&self.pg, tls.clone(), &self.channel, invalidations).await?,
                None => listen(&self.pg, tokio_postgres::NoTls, &self.channel, invalidations).await?,
            };
            Ok(Listener {
                client,
                timeout: self.timeout,
            })
        });
        opened.await
    }
}

/// Opens a connection that listens on `channel`, and the task that drives
/// it and hands its notifications to `invalidations`.
async fn listen<T>(
    pg: &tokio_postgres::Config,
    tls: T,
    channel: &str,
    invalidations: Invalidations<Listener>,
) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = pg.connect(tls).await?;
    let lost = invalidations.clone();
    tokio::spawn(async move {
        // One message at a time, handled before the next is read: a
        // notification is applied before any later reply completes.
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(notification) = message {
                invalidate(&invalidations, notification.payload());
            }
        }
        lost.lost();
    });
    // `channel` is `sessiond:` and a checked schema name (lower-case
    // letters, digits, `_`), so quoting it is enough.
    client.batch_execute(&format!("LISTEN \"{channel}\"")).await?;
    Ok(client)
}

/// A notification's payload: token hashes in hex, space-separated, or `*`
/// for everything. Anything else empties the cache, the safe answer.
fn invalidate(invalidations: &Invalidations<Listener>, payload: &str) {
    let hashes: Option<Vec<TokenHash>> = payload.split(' ').map(TokenHash::from_hex).collect();
    match hashes {
        Some(hashes) => invalidations.tokens(hashes),
        None => invalidations.all(),
    }
}

/// The store's channel.
fn channel(schema: &str) -> String {
    cut(format!("sessiond:{schema}"))
}

/// `name` cut as PostgreSQL cuts names (all ours are ASCII).
fn cut(mut name: String) -> String {
    name.truncate(MAX_NAME_LEN);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_names_the_schema_within_postgres_limit() {
        assert_eq!(channel("sessiond"), "sessiond:sessiond");
        let long = "s".repeat(63);
        assert_eq!(channel(&long).len(), 63);
        assert!(channel(&long).starts_with("sessiond:sss"));
    }
}
