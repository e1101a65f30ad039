//! sessiond's shared store on Redis 7: several stateless `sessiond` nodes
//! over one Redis act as one.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sessiond_core::{SessionManager, SessionStore};
//! use sessiond_store_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/0?prefix=myapp:sessions:").await?;
//! let manager = SessionManager::builder(Arc::new(store) as Arc<dyn SessionStore>).build()?;
//! # Ok(()) }
//! ```
//!
//! # URL
//!
//! `redis://[user:password@]host[:port][/db][?prefix=…&ttl_slack_secs=…&timeout_ms=…]`;
//! see [`RedisConfig`]. `rediss://` connects with TLS (rustls, ring),
//! verifying the server against the system's roots or the URL's `ca_file`.
//! `redis+sentinel://…` and `redis+cluster://…` reach a Sentinel set or a
//! Cluster (see Engines below).
//!
//! # Layout
//!
//! One string per session holding the record, under its current token's
//! key, so that a verify is one `GET` and no script; a pointer key for the
//! previous token (after a rotation); the id's token hash in one of 4,096
//! small hashes (bucketed by the id's first two characters); a sorted set
//! per subject (its non-revoked sessions, scored by deadline); and the
//! deadlines, for purging, in 4,096 small sorted sets and one more that
//! scores each by its earliest deadline. The table is in `keys.rs`, the
//! record's binary layout in `record.rs`. About 630 bytes of Redis memory
//! per session at 100,000 sessions (`scripts/store_bytes`); above about
//! 500,000, raise Redis' `zset-max-listpack-entries` to 512 (`keys.rs`
//! says why).
//!
//! This is layout 3. Session keys written by layouts 1 and 2 (sessiond
//! before issue 17, and before the buckets) are not read, so sessions from
//! before an upgrade end and their users sign in again; nodes of both
//! layouts over one store do not see each other's sessions, so upgrade
//! every node of a store together. The old records and pointers expire by
//! their TTLs; two kinds of layout-2 keys have none and can be deleted
//! once every node runs layout 3: the expiry index `sessiond:exp` and the
//! subject indexes, which `redis-cli --scan --pattern
//! 'sessiond:{[0-9a-f]*}:u:*'` lists (the `{user:…}` accounts do not
//! match), piped to `xargs redis-cli unlink` (with the default prefix; on
//! a Cluster, on each primary, with `{sessiond:NN}` after the prefix).
//!
//! [`RedisStore`] is also the [`UserStore`](sessiond_core::UserStore) of
//! the login portal: one hash per account (no TTL) and a sorted set of each
//! tenant's names, written by their own scripts (`users.rs`); and the
//! [`SecretStore`](sessiond_core::SecretStore) of shared secrets: one string
//! per set, no TTL (`secrets.rs`); the [`KeyStore`](sessiond_core::KeyStore)
//! of API keys: one hash of records, one of last uses and a version counter
//! (`api_keys.rs`); the [`CounterStore`](sessiond_core::CounterStore) of
//! the login throttle: one hash per counter, TTL its forget-after
//! (`counters.rs`; a reserve or release names an account's and an
//! address' counter in one script: on a Cluster every counter carries the
//! tag `{counters}`); and the
//! [`EventStore`](sessiond_core::EventStore) of audit events: one sorted
//! set per tenant, read by lex range (`events.rs`).
//!
//! # Atomicity
//!
//! Every method that writes is one Lua script (files in `src/lua/`, each
//! stating what it guarantees); reads are one `GET` or one read-only
//! script. A script runs alone on the server, so each change to a record
//! and its pointers and index entries is all-or-nothing with respect to every
//! other node: the limit check and the insert, compare-and-set updates with
//! their re-indexing, revoke-by-subject with `except`. Scripts check every
//! precondition before their first write, so a refused call writes nothing.
//! A revoke on one node is seen by the next read on any node, including
//! reads a node answers from its cache of records (`cache_entries`, off by
//! default): a hit waits for a `PING` that orders it after every
//! invalidation Redis sent before it (`cache.rs`). The one exception is
//! asked for by name: with `cache_lag_ms=N` a node's hit may go on for up
//! to N ms after another node's change was acknowledged.
//!
//! # Expiry
//!
//! Keys get a TTL so Redis reclaims them even if no node ever purges, but
//! the TTL is **deadline + slack** (`ttl_slack_secs`, default one hour),
//! measured from the caller's `now` at insert and shifted by exactly as much
//! as the deadline moves afterwards (touch, update). Why not `PEXPIREAT` at
//! the deadline:
//!
//! * the store contract reports expired records through `purge_expired`
//!   (the manager turns them into "expired" events); a record Redis dropped
//!   at its deadline could never be reported;
//! * stores never read a clock; a TTL relative to the caller's `now` needs
//!   none and is immune to skew between the nodes' clocks and Redis';
//! * the conformance suite and the model test run on fake clocks in the
//!   past; absolute deadlines there would delete records before the cases
//!   look at them.
//!
//! Validity never depends on the TTL: the manager checks deadlines on every
//! read, and listing and limits count only entries whose deadline is after
//! the caller's `now`. When Redis does expire a record, its previous
//! token's pointer goes with it (they share a TTL), and its other entries
//! are dropped by the next script that meets them (subject index: entries
//! older than the slack, or whose record is gone; id and deadline buckets:
//! by purge), so no scan is ever needed. The buckets have no TTL of their
//! own: a store that no node purges keeps about 100 bytes per ended
//! session until one does.
//!
//! Times are compared in whole microseconds, the precision the manager
//! writes.
//!
//! # Durability
//!
//! `Ok` means Redis applied the change. That it survives a crash of Redis
//! is Redis' configuration: `appendonly yes` with `appendfsync always`
//! (every acknowledged write is on disk), or replicas. With the default
//! `appendfsync everysec` up to a second of acknowledged writes can be lost.
//! With replicas, `wait_replicas=N` (see [`RedisConfig`]) makes every
//! write wait for N of them (`WAIT`) before it is acknowledged; a write
//! they do not confirm in `wait_timeout_ms` fails as unavailable.
//!
//! # Engines
//!
//! Standalone Redis 7.0+ is tested (Debian's 7.0), and so are Sentinel and
//! Cluster. Nothing here needs a command newer than 7.0 (no `HEXPIRE`), and
//! every script runs on the master.
//!
//! Redis Sentinel: `redis+sentinel://host:port,host:port/mymaster` (see
//! [`RedisConfig`]). The store asks the sentinels for the master, connects,
//! checks `ROLE` is master, and keeps that one multiplexed connection. A
//! call that fails as unreachable, or meets `READONLY`/`MASTERDOWN` (a
//! demoted master), answers unavailable (503) and drops the connection, so
//! the next call asks the sentinels again (at most one search per 100 ms,
//! each bounded by `timeout_ms`): after a failover the nodes reach the
//! promoted replica by themselves. Sentinel itself kills the clients of a
//! master it demotes, so no connection lingers on it. Tested: the primary
//! killed under load, 503s only (about 2.5 s with down-after 1 s), nothing
//! acknowledged lost with `wait_replicas=1`. Limits: `WAIT` is not
//! consensus. Sentinel promotes the replica with the largest replication
//! offset it knows of, so a write one replica confirmed survives when that
//! replica, or one at least as far along, is promoted: likely, not
//! certain. A master cut off from the sentinels but still reachable by a
//! node keeps serving that node's reads (possibly stale) until Sentinel
//! reconfigures it; its writes fail `WAIT` once its replicas are gone.
//! The node-local cache (`cache_entries`) follows the master too: its
//! connection goes where the sentinels lead when it opens, and a hit
//! passes only after `ROLE` on that connection says master (`cache.rs`);
//! the failover test runs one node with it, and a test demotes a master
//! by hand under a cached hit (refused: unavailable, not served).
//! `rediss+sentinel://` is parsed and wired (TLS to sentinels and master,
//! names verified, so certificates must carry the addresses the sentinels
//! announce) but not tested against a TLS sentinel set.
//!
//! Redis Cluster: `redis+cluster://host:port,host:port` (see
//! [`RedisConfig`]). A store spreads its sessions over `shards` hash tags
//! (64 by default), so over the Cluster's slots and nodes. A Cluster runs
//! a script over keys of one slot only, and every session write changes
//! the record, its id's bucket and its subject's index together, so a
//! session's keys all live in its subject's shard: sessiond's manager
//! draws ids and tokens that fall there ([`sessiond_core::Shards`]; the
//! store answers [`SessionStore::shards`](sessiond_core::SessionStore::shards)
//! and refuses a record whose keys span shards). Each shard has its own
//! expiry index and audit events; purge takes the earliest due records of
//! all shards, the event reads merge the shards by id, and `scan_ids` walks
//! the shards' id buckets (`HSCAN`). Accounts, API keys, counters and
//! secrets keep their own tags. redis-rs' cluster connection follows slots
//! as they move (`MOVED`, `ASK`) and as replicas take over; `WAIT` names no
//! key and is sent to the master of the call's write. A call that finds a
//! slot without a master, or still redirected when redis-rs' few retries
//! ran out, answers unavailable (503).
//!
//! Tested on three primaries with a replica each: the conformance suites
//! and the multi-node scenarios unchanged; a store's sessions on every
//! primary; one shard's slot moved key batch by key batch under load
//! (every answer right or 503, nothing acknowledged lost); a primary killed
//! under load (503s only for the shards it held, nothing acknowledged lost
//! with `wait_replicas=1`; writes there answer 503 until the promoted
//! replica has a replica of its own again, about 7.6 s with the killed
//! node restarted). Limits: while a slot moves, a write redirected to the
//! importing node is followed by a `WAIT` that redis-rs routes by its slot
//! map, to the source, so `wait_replicas` confirms nothing for that write;
//! a `scan_ids` walk during a move may miss or repeat records; the event
//! reads and the count-based event pruning visit every shard (64 round
//! trips); events no session write stores (`append_events`) go to the
//! first shard. `rediss+cluster://` is parsed and wired but not tested
//! against a TLS cluster, and there is no node-local cache on a Cluster.

mod api_keys;
mod audit;
mod cache;
mod config;
mod connection;
mod counters;
mod error;
mod events;
mod keys;
mod record;
mod scripts;
mod secrets;
mod sharded;
mod store;
mod tls;
mod users;

pub use config::{
    ConfigError, DEFAULT_NODE_PORT, DEFAULT_PREFIX, DEFAULT_SENTINEL_PORT, DEFAULT_TIMEOUT, DEFAULT_TTL_SLACK,
    DEFAULT_WAIT_TIMEOUT, RedisConfig, ReplicaWait, redacted,
};
pub use sessiond_core::{CacheSettings, CacheStatistics};
pub use store::{OpenError, RedisStore};
