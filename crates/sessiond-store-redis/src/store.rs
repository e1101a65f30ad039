//! [`RedisStore`]: the handle, its connection, and the [`SessionStore`]
//! methods, each one script call (see `lua/`).

use std::sync::Arc;

use redis::{ScriptInvocation, Value};
use sessiond_core::{
    Audit, CacheStatistics, ClientInfo, IdPage, Inserted, Revocation, Session, SessionId, SessionStore, StoreError,
    Subject, SubjectLimit, Tenant, TokenHash, async_trait,
};
use time::OffsetDateTime;

use crate::audit::audit_arg;
use crate::cache::{Lookup, NodeCache, Source};
use crate::config::{RedisConfig, redacted};
use crate::connection::{Connection, Link};
use crate::error::{corrupt, from_redis};
use crate::keys::KeySpace;
use crate::record::{self, Stored, micros};
use crate::scripts::{SCRIPTS, array, int, status};

/// Purge deletes at most this many records per script call, so one call
/// never holds the server for long.
pub(crate) const PURGE_BATCH: usize = 256;

/// A cloneable handle to sessions kept in Redis; clones share one connection.
///
/// The connection is opened on first use (or by [`RedisStore::connect`]) on
/// the tokio runtime of that call, and re-opened by itself after the server
/// goes away; while it is down every call fails with
/// [`StoreError::Unavailable`]. Use a handle on one runtime only.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    link: Link,
    keys: KeySpace,
    cache: Option<NodeCache>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &redacted(&self.inner.config.server_url))
            .field("prefix", &self.inner.config.prefix)
            .finish_non_exhaustive()
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not a usable redis store URL.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// redis-rs refused the address or the TLS settings.
    #[error("redis-rs cannot use the server address")]
    Client(#[source] redis::RedisError),
    /// The `ca_file` of the URL cannot be read.
    #[error("cannot read the CA file {path}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer.
    #[error("redis at {server} does not answer")]
    Unreachable {
        /// The server, without credentials.
        server: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

impl RedisStore {
    /// A handle on the server and prefix in `config`. Opens no connection
    /// (that happens on first use); reads `ca_file` if there is one.
    pub fn new(config: RedisConfig) -> Result<Self, OpenError> {
        let link = Link::new(&config)?;
        let keys = KeySpace::new(&config.prefix, config.shards());
        let cache = match config.cache {
            Some(cache) => Some(NodeCache::new(
                match &config.sentinel {
                    None => Source::Server(crate::tls::resp3_client(&config)?),
                    Some(target) => Source::Sentinel(tokio::sync::Mutex::new(crate::connection::sentinel_client(
                        &config,
                        target,
                        redis::ProtocolVersion::RESP3,
                    )?)),
                },
                &keys.token_prefix(0),
                cache,
                config.timeout,
            )),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                link,
                keys,
                cache,
            }),
        })
    }

    /// A handle for a store URL (format in [`RedisConfig`]), connected and
    /// checked with a `PING`.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let store = Self::new(RedisConfig::from_url(url)?)?;
        store.ping().await.map_err(|source| OpenError::Unreachable {
            server: redacted(&store.inner.config.server_url),
            source,
        })?;
        Ok(store)
    }

    /// The node-local cache's counts so far; `None` without a cache
    /// (`cache_entries=0`, or a Cluster URL).
    pub fn cache_statistics(&self) -> Option<CacheStatistics> {
        self.inner.cache.as_ref().map(NodeCache::statistics)
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    pub(crate) fn keys(&self) -> &KeySpace {
        &self.inner.keys
    }

    pub(crate) async fn connection(&self) -> Result<Connection, StoreError> {
        self.inner.link.connection(&self.inner.config).await.map_err(from_redis)
    }

    pub(crate) async fn run(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let mut connection = self.connection().await?;
        invocation.invoke_async(&mut connection).await.map_err(from_redis)
    }

    /// [`RedisStore::run`] for a script that may change what a token key
    /// holds: the node-local cache then hears of it before the caller does
    /// (see [`NodeCache::wrote`]). An error counts too: the write may have
    /// been applied. Purge is not one: it drops records already past their
    /// deadline, which every verify refuses whatever a cache holds.
    async fn run_session_write(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let result = self.run(invocation).await;
        if let Some(cache) = &self.inner.cache {
            cache.wrote();
        }
        result
    }

    fn slack_ms(&self) -> u64 {
        u64::try_from(self.inner.config.ttl_slack.as_millis()).unwrap_or(u64::MAX)
    }

    /// Subject index entries whose deadline is this old belong to records
    /// Redis has expired by itself (deadline + slack); scripts drop them.
    fn stale_before(&self, now: OffsetDateTime) -> String {
        micros(now - self.inner.config.ttl_slack)
    }

    /// The TTL of a new record: its deadline minus the caller's `now`, plus
    /// the slack; at least 1 ms (a record already that far past its deadline
    /// may vanish at once, which the store contract allows).
    fn insert_ttl_ms(&self, session: &Session, now: OffsetDateTime) -> i64 {
        let left = (session.expires_at() - now).whole_milliseconds();
        let ttl = left.saturating_add(i128::from(self.slack_ms()));
        i64::try_from(ttl.max(1)).unwrap_or(i64::MAX)
    }

    /// The record of an id (`Some`), or the one a token key holds or leads
    /// to (`None`: one pointer followed), read in one step on the server.
    async fn read(&self, key: &[u8], id: Option<&SessionId>, base: &str) -> Result<Option<Session>, StoreError> {
        let mut call = SCRIPTS.read.prepare_invoke();
        call.key(key).arg(id.map_or("", SessionId::as_str)).arg(base);
        record::decode_tagged(&self.run(&call).await?)
    }

    /// Refuses, on a Cluster, a record whose keys span shards: one script
    /// could not change them together (the manager draws ids and tokens
    /// that never do).
    fn check_placed(&self, session: &Session) -> Result<(), StoreError> {
        match self.inner.keys.shards() {
            Some(shards) if !shards.places(session) => {
                Err(StoreError::Backend(Box::new(crate::error::Unexpected(format!(
                    "the keys of session {} span shards of the Redis Cluster",
                    session.id.as_str()
                )))))
            }
            _ => Ok(()),
        }
    }
}

/// `'1'` for a record the scripts keep out of the subject index (revoked,
/// or anonymous: it belongs to nobody), else `''`.
fn unindexed_flag(session: &Session) -> &'static str {
    if session.revoked.is_some() || session.is_anonymous() {
        "1"
    } else {
        ""
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        let keys = &self.inner.keys;
        self.check_placed(session)?;
        let shard = keys.shard_of_id(&session.id);
        let index = keys.record_index(session);
        let (mode, max) = match limit {
            SubjectLimit::Unlimited => ("none", 0),
            SubjectLimit::Deny(max) => ("deny", max),
            SubjectLimit::EvictOldest(max) => ("evict", max),
        };
        let mut call = SCRIPTS.insert.prepare_invoke();
        call.key(keys.token(&session.token_hash))
            .key(keys.ids(&session.id))
            .key(&index)
            .key(keys.due(&session.id));
        if let Some(previous) = session.previous_token {
            call.key(keys.token(&previous.hash));
        }
        call.arg(micros(now))
            .arg(self.stale_before(now))
            .arg(mode)
            .arg(max)
            .arg(record::encode_revocation(&revocation))
            .arg(self.insert_ttl_ms(session, now))
            .arg(keys.base(shard))
            .arg(session.id.as_str())
            .arg(micros(session.expires_at()))
            .arg(unindexed_flag(session))
            .arg(audit_arg(keys, shard, audit, 0)?)
            .arg(record::encode(session)?);
        let (word, rest) = status(self.run_session_write(&call).await?)?;
        match word.as_str() {
            "ok" => Ok(Inserted {
                evicted: record::decode_all(&rest)?,
            }),
            "collision" => Err(StoreError::Collision),
            "limit" => Err(StoreError::LimitReached),
            other => Err(corrupt(format!("insert answered {other}"))),
        }
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        let key = self.inner.keys.token(hash);
        // The common case, the current token, is one GET (or a hit of the
        // node-local cache); a previous token's pointer is followed by a
        // script, so that the pointer and the record it names are read in
        // one step.
        let (value, fill) = match &self.inner.cache {
            Some(cache) => match cache.get(&key, hash).await.map_err(from_redis)? {
                Lookup::Hit(session) => return Ok(Some(session)),
                Lookup::Read(value, fill) => (value, Some((cache, fill))),
            },
            None => {
                let mut connection = self.connection().await?;
                let value = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .map_err(from_redis)?;
                (value, None)
            }
        };
        let (current, pointer) = match record::classify(&value, *hash)? {
            // Keys and records change together in every script; this check
            // only guards against a keyspace edited by hand.
            Stored::Record(session) => (Some(Arc::new(*session)).filter(|s| s.token_hash == *hash), false),
            Stored::Pointer => (None, true),
            Stored::Absent => (None, false),
        };
        if let Some((cache, fill)) = fill {
            cache.fill(fill, current.as_ref());
        }
        if !pointer {
            return Ok(current);
        }
        let keys = &self.inner.keys;
        let found = self.read(&key, None, keys.base(keys.shard_of_token(hash))).await?;
        Ok(found
            .filter(|s| s.previous_token.is_some_and(|p| p.hash == *hash))
            .map(Arc::new))
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let keys = &self.inner.keys;
        let found = self
            .read(keys.ids(id).as_bytes(), Some(id), keys.base_of_id(id))
            .await?;
        Ok(found.filter(|s| s.id == *id).map(Arc::new))
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        self.check_placed(session)?;
        let shard = keys.shard_of_id(&session.id);
        let index = keys.record_index(session);
        let mut call = SCRIPTS.update.prepare_invoke();
        call.key(keys.ids(&session.id))
            .key(keys.token(&session.token_hash))
            .key(&index)
            .key(keys.due(&session.id));
        if let Some(previous) = session.previous_token {
            call.key(keys.token(&previous.hash));
        }
        call.arg(expected_version)
            .arg(keys.base(shard))
            .arg(self.slack_ms())
            .arg(session.id.as_str())
            .arg(micros(session.expires_at()))
            .arg(unindexed_flag(session))
            .arg(audit_arg(keys, shard, audit, 0)?)
            .arg(record::encode(session)?);
        let (word, rest) = status(self.run_session_write(&call).await?)?;
        match word.as_str() {
            "ok" => Ok(()),
            "notfound" => Err(StoreError::NotFound),
            "collision" => Err(StoreError::Collision),
            "conflict" => {
                let current = rest
                    .first()
                    .and_then(|v| match v {
                        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
                        _ => None,
                    })
                    .ok_or_else(|| corrupt("conflict without a version".into()))?;
                Err(StoreError::VersionConflict { current })
            }
            "moved" => Err(StoreError::Backend(Box::new(crate::error::Unexpected(
                "an update cannot change a session's tenant or subject".into(),
            )))),
            other => Err(corrupt(format!("update answered {other}"))),
        }
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let mut call = SCRIPTS.touch.prepare_invoke();
        call.key(keys.ids(id))
            .key(keys.due(id))
            .arg(micros(last_seen_at))
            .arg(micros(idle_expires_at))
            .arg(record::encode_client(client)?)
            .arg(keys.base_of_id(id))
            .arg(self.slack_ms())
            .arg(id.as_str());
        Ok(int(&self.run_session_write(&call).await?)? == 1)
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        let keys = &self.inner.keys;
        let mut call = SCRIPTS.revoke.prepare_invoke();
        call.key(keys.ids(id))
            .arg(record::encode_revocation(&revocation))
            .arg(audit_arg(keys, keys.shard_of_id(id), audit, 0)?)
            .arg(keys.base_of_id(id))
            .arg(id.as_str());
        record::decode_tagged(&self.run_session_write(&call).await?)
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
        let keys = &self.inner.keys;
        let shard = keys.shard_of_subject(tenant, subject);
        let mut call = SCRIPTS.revoke_subject.prepare_invoke();
        call.key(keys.subject_index(tenant, subject))
            .arg(micros(now))
            .arg(self.stale_before(now))
            .arg(record::encode_revocation(&revocation))
            .arg(keys.base(shard))
            .arg(except.map_or("", SessionId::as_str))
            .arg(audit_arg(keys, shard, audit, 0)?);
        record::decode_all(&array(self.run_session_write(&call).await?)?)
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let keys = &self.inner.keys;
        let mut call = SCRIPTS.subject.prepare_invoke();
        call.key(keys.subject_index(tenant, subject))
            .arg(micros(now))
            .arg(keys.base(keys.shard_of_subject(tenant, subject)));
        record::decode_all(&array(self.run(&call).await?)?)
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        if self.inner.keys.shard_count() == 1 {
            return self.purge_shard(0, now, limit, audit, 0).await;
        }
        self.purge_shards(now, limit, audit).await
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.scan_buckets(cursor, limit).await
    }

    fn shards(&self) -> Option<sessiond_core::Shards> {
        self.inner.keys.shards()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let reply: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(from_redis)?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(corrupt(format!("PING answered {reply:?}")))
        }
    }
}
