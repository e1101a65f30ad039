//! The node-local cache of records read by their current token
//! (`cache_entries`): a verify of a hot session is answered from memory,
//! and still fails on every node once a revocation elsewhere was
//! acknowledged.
//!
//! The cache itself, its barrier, the lag bound (`cache_lag_ms`) and the
//! proof are [`RecordCache`]'s, shared with the PostgreSQL store. What is
//! Redis' here is the link that keeps it in step:
//!
//! - The cache reads through a connection of its own with `CLIENT
//!   TRACKING ON` (RESP3). Once it has read a key, Redis sends an
//!   invalidation message on that connection when any client changes the
//!   key, or when the key expires or is evicted. A script's changes are
//!   reported before its caller gets the reply.
//! - Redis writes one connection's messages in order, and redis-rs hands
//!   push messages to [`on_push`] from its read loop, before it completes
//!   any reply that came after them.
//! - The barrier is a `PING` on that connection: a write acknowledged
//!   before the `PING` was sent ran on the server before it, so its
//!   invalidation came before the `PONG`.
//! - A lost connection (redis-rs reports it as a push, or a `PING` or
//!   `GET` on it fails or times out) empties the cache; the next call
//!   opens a new connection.
//!
//! Under Sentinel the cache's connection goes to the master the sentinels
//! name when it opens, and its barrier is `ROLE` instead of `PING`: a hit
//! is answered only while that server still says it is the master. After a
//! failover the old master is gone (its connection fails), or Sentinel
//! demotes it (its `ROLE` says replica, and Sentinel closes its clients),
//! so the cache empties and the next call follows the sentinels to the new
//! master. The limit is the store's own: a master cut off from the
//! sentinels but still reachable by this node keeps answering it until
//! Sentinel demotes it.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, RedisError, Role, Value};
use sessiond_core::{
    CacheLink, CacheSettings, CacheStatistics, Fill, Invalidations, LinkError, Linked, RecordCache, Session, TokenHash,
};

use crate::connection::unavailable;

/// Where the cache's connection goes.
pub(crate) enum Source {
    /// One server; the client speaks RESP3.
    Server(Client),
    /// The master the sentinels name when the connection opens; the
    /// client leads to it speaking RESP3.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The node-local cache and the connection that keeps it in step.
pub(crate) struct NodeCache {
    source: Source,
    /// What every token key starts with (`Pt:`).
    token_prefix: Vec<u8>,
    timeout: Duration,
    cache: RecordCache<Tracking>,
}

/// The tracking connection: its barrier is `PING`, or `ROLE` answered as
/// a master under Sentinel.
pub(crate) struct Tracking {
    connection: MultiplexedConnection,
    master_only: bool,
}

impl CacheLink for Tracking {
    async fn barrier(&self) -> bool {
        let mut connection = self.connection.clone();
        if self.master_only {
            is_master(&mut connection).await
        } else {
            redis::cmd("PING").query_async::<()>(&mut connection).await.is_ok()
        }
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Served from memory, after the barrier.
    Hit(Arc<Session>),
    /// Read from Redis on the cache's connection; hand the decoded record
    /// to [`NodeCache::fill`].
    Read(Value, Fill),
}

impl NodeCache {
    /// A cache with `settings` of records whose token keys start with
    /// `token_prefix`, read from `source`.
    pub(crate) fn new(source: Source, token_prefix: &str, settings: CacheSettings, timeout: Duration) -> Self {
        Self {
            source,
            token_prefix: token_prefix.as_bytes().to_vec(),
            timeout,
            cache: RecordCache::new(settings),
        }
    }

    /// The record of token `hash` (under `key`) from memory, or the value
    /// Redis holds there.
    pub(crate) async fn get(&self, key: &[u8], hash: &TokenHash) -> Result<Lookup, RedisError> {
        let linked = self.linked().await?;
        match self.cache.hit(&linked, hash).await {
            Ok(Some(session)) => return Ok(Lookup::Hit(session)),
            Ok(None) => {}
            Err(_) => {
                return Err(unavailable(
                    "redis did not pass the cache's barrier (PING; under Sentinel, ROLE master)",
                ));
            }
        }
        let fill = self.cache.mark(&linked, hash);
        let mut connection = linked.link().connection.clone();
        match redis::cmd("GET").arg(key).query_async::<Value>(&mut connection).await {
            Ok(value) => Ok(Lookup::Read(value, fill)),
            Err(error) => {
                self.cache.lost(linked.generation());
                Err(error)
            }
        }
    }

    /// Stores `session` as what the read of `fill` found, unless the key
    /// changed since (or the connection did); `None` only clears the mark.
    pub(crate) fn fill(&self, fill: Fill, session: Option<&Arc<Session>>) {
        self.cache.fill(fill, session);
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

    /// The tracking connection in use, or a new one.
    async fn linked(&self) -> Result<Arc<Linked<Tracking>>, RedisError> {
        let master_only = matches!(self.source, Source::Sentinel(_));
        let opened = self.cache.link(self.timeout, |invalidations| async move {
            let connection = self.open(invalidations).await?;
            Ok(Tracking {
                connection,
                master_only,
            })
        });
        opened.await.map_err(|error| match error {
            LinkError::Engine(error) => error,
            LinkError::Backoff => unavailable("the cache's connection to redis failed moments ago"),
            LinkError::TimedOut => unavailable("redis did not accept the cache's connection in time"),
            LinkError::ClosedAtOnce => unavailable("the cache's connection to redis closed at once"),
        })
    }

    async fn open(&self, invalidations: Invalidations<Tracking>) -> Result<MultiplexedConnection, RedisError> {
        let token_prefix = self.token_prefix.clone();
        let on_push = move |info: PushInfo| -> Result<(), std::convert::Infallible> {
            on_push(&invalidations, &token_prefix, &info);
            Ok(())
        };
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(on_push);
        let client = match &self.source {
            Source::Server(client) => client.clone(),
            Source::Sentinel(sentinels) => sentinels.lock().await.async_get_client().await?,
        };
        let mut connection = client.get_multiplexed_async_connection_with_config(&settings).await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .query_async::<()>(&mut connection)
            .await?;
        // Named, so that `CLIENT LIST` tells which node's cache a tracking
        // connection is, and for which prefix (PostgreSQL's listeners have
        // their `application_name`). Only a label: a user whose ACL does
        // not allow it keeps an unnamed connection.
        if let Err(error) = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(client_name(&self.token_prefix))
            .query_async::<()>(&mut connection)
            .await
        {
            tracing::debug!(%error, "the cache's connection keeps no name");
        }
        // The sentinels may have named a master that a failover demoted
        // since: ask the server itself, after tracking is on.
        if matches!(self.source, Source::Sentinel(_)) && !is_master(&mut connection).await {
            return Err(unavailable("the server the sentinels named is not a master (yet)"));
        }
        Ok(connection)
    }
}

/// The name of the cache's connection: `sessiond-cache:` and the token
/// keys' prefix, with every byte a client name may not hold (space,
/// control, non-ASCII) as `_`.
fn client_name(token_prefix: &[u8]) -> String {
    let prefix: String = token_prefix
        .iter()
        .map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '_' })
        .collect();
    format!("sessiond-cache:{prefix}")
}

/// A push message on the tracking connection.
fn on_push(invalidations: &Invalidations<Tracking>, token_prefix: &[u8], info: &PushInfo) {
    match info.kind {
        PushKind::Invalidate => invalidate(invalidations, token_prefix, &info.data),
        PushKind::Disconnection => invalidations.lost(),
        _ => {}
    }
}

/// `invalidate` carries one array of key names, or nil when the server
/// flushed everything.
fn invalidate(invalidations: &Invalidations<Tracking>, token_prefix: &[u8], data: &[Value]) {
    let Some(Value::Array(keys)) = data.first() else {
        invalidations.all();
        return;
    };
    let hashes: Option<Vec<TokenHash>> = keys.iter().map(|key| token_hash(key, token_prefix)).collect();
    match hashes {
        Some(hashes) => invalidations.tokens(hashes),
        // The connection reads token keys only, so Redis names no other;
        // should it, dropping everything is the safe answer.
        None => invalidations.all(),
    }
}

/// The token hash a token key's name (`Pt:<hash>`) ends with.
fn token_hash(key: &Value, token_prefix: &[u8]) -> Option<TokenHash> {
    let Value::BulkString(key) = key else { return None };
    let raw = key.strip_prefix(token_prefix)?;
    Some(TokenHash::from_bytes(raw.try_into().ok()?))
}

/// Whether the server of `connection` answers `ROLE` as a master.
async fn is_master(connection: &mut MultiplexedConnection) -> bool {
    matches!(
        redis::cmd("ROLE").query_async::<Role>(connection).await,
        Ok(Role::Primary { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidated_keys_are_read_back_as_token_hashes_or_not_at_all() {
        let hash = TokenHash::from_bytes([7; 32]);
        let key = |prefix: &[u8], raw: &[u8]| Value::BulkString([prefix, raw].concat());
        assert_eq!(token_hash(&key(b"p:t:", hash.as_bytes()), b"p:t:"), Some(hash));
        for (prefix, raw) in [
            (&b"q:t:"[..], &hash.as_bytes()[..]),
            (b"p:t:", &hash.as_bytes()[1..]),
            (b"p:t:", &[7; 33][..]),
            (b"p:ids:", b"AB"),
            (b"p:t:", b""),
        ] {
            assert_eq!(token_hash(&key(prefix, raw), b"p:t:"), None, "{prefix:?} {raw:?}");
        }
        assert_eq!(token_hash(&Value::Nil, b"p:t:"), None);
    }

    #[test]
    fn the_connection_is_named_after_its_prefix_in_what_a_client_name_may_hold() {
        assert_eq!(client_name(b"sessiond:t:"), "sessiond-cache:sessiond:t:");
        assert_eq!(client_name("a b\n\u{e9}:t:".as_bytes()), "sessiond-cache:a_b___:t:");
    }
}
