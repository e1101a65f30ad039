//! sessiond's PostgreSQL store: several stateless `sessiond` nodes over one
//! PostgreSQL database act as one.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sessiond_core::{SessionManager, SessionStore};
//! use sessiond_store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Connects, applies any pending migration (under an advisory lock, so
//! // nodes starting together take turns) and returns the store.
//! let store = PostgresStore::open("postgres://sessiond@127.0.0.1:5432/app?schema=sessiond").await?;
//! let manager = SessionManager::builder(Arc::new(store) as Arc<dyn SessionStore>).build()?;
//! # let _ = manager;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! * **URL.** libpq's `postgres://` URL plus `schema=` and `pool_size=`
//!   (see [`PostgresOptions`]).
//! * **Failover.** A URL may list a primary and its standbys
//!   (`postgres://db1:5432,db2:5432/app`); connections then go only to a
//!   host that accepts writes (`target_session_attrs=read-write`), so after
//!   a standby is promoted the pool finds it by itself. No acknowledged
//!   write is lost only with synchronous replication, which the operator
//!   configures; a node warns at start when the primary does not wait for
//!   a standby.
//! * **Schema.** `sessions` (one column per field, `data` as JSON bytes)
//!   and `session_tokens(hash PRIMARY KEY, session_id)`, which makes every
//!   token hash, current or previous, unique store-wide. Indexes on id,
//!   token hash, live (tenant, subject) and expiry.
//! * **Accounts.** `users` (migration 2) holds the login portal's accounts:
//!   [`PostgresStore`] is also a [`UserStore`](sessiond_core::UserStore).
//! * **Secrets.** `secrets` (migration 4) holds shared secret values (secret sets, the sealed signing keys):
//!   [`PostgresStore`] is also a [`SecretStore`](sessiond_core::SecretStore).
//! * **Counters.** `counters` (migration 6) holds the login throttle's
//!   failure counters: [`PostgresStore`] is also a
//!   [`CounterStore`](sessiond_core::CounterStore); forgotten ones are
//!   removed by purge.
//! * **Events.** `events` (migration 7) holds the audit events:
//!   [`PostgresStore`] is also an [`EventStore`](sessiond_core::EventStore).
//! * **Atomicity.** Every operation is one statement or one transaction;
//!   `update` is `UPDATE … WHERE version = $expected`; a limited `insert`
//!   holds a transaction-scoped advisory lock for its subject, so a limit
//!   holds when logins race across nodes.
//! * **Node-local cache (off by default).** Without `cache_entries` every
//!   read asks the engine. With it (`?cache_entries=N[&cache_lag_ms=M]`)
//!   a node answers verifies of hot sessions from memory and still fails
//!   every verify that starts after another node's change was
//!   acknowledged: triggers notify every change of a session row on
//!   `sessiond:<schema>`, the node listens on a connection of its own, and
//!   a hit waits for a `SELECT 1` on it that came back after every
//!   notification committed before (`cache.rs`;
//!   [`PostgresStore::cache_statistics`] counts it). PostgreSQL 15 or
//!   later.
//!
//!   Measured with `scripts/load STORE=postgres ROUNDS=3
//!   TOUCH_INTERVAL=20m COUNT=20000` (2 cores shared with wrk and the
//!   server, median of 3 rounds; two runs ten minutes apart, 2026-12-01):
//!   `POST /v1/sessions/verify` 29,624 req/s at 40 µs of sessiond CPU per
//!   request with `STORE_QUERY=cache_entries=200000` (the in-process
//!   floor of that run 75,544), against 6,466 req/s at 117 µs without
//!   (floor 58,249): 39 % of the floor against 11 %.
//!
//!   The cost is the writers': the first node opened with `cache_entries`
//!   creates the triggers (`migrations/session_notify_triggers.sql`), and
//!   from then on every change of a session row notifies, cache or not.
//!   PostgreSQL serialises the commits of notifying transactions;
//!   `scripts/pg_notify_cost` (pgbench updating one session row per
//!   transaction, 8 clients, median of 3 rounds) measured 11,829 tps
//!   without the trigger, 6,332 with it and 5,585 with a node listening:
//!   about half the engine's rate of such writes on this machine. A store
//!   no node caches never gets the triggers and pays nothing.
//! * **Fail closed.** An engine that cannot be reached, or does not answer
//!   within the operation timeout, gives [`StoreError::Unavailable`]
//!   (sessiond answers 503); the pool reconnects by itself when it is back.
//!
//! [`StoreError::Unavailable`]: sessiond_core::StoreError::Unavailable

mod api_keys;
mod cache;
mod counters;
mod error;
mod events;
mod insert;
mod keys;
mod migrate;
mod ops;
mod options;
mod row;
mod secrets;
mod store;
mod tls;
mod users;

pub use error::OpenError;
pub use options::{DEFAULT_OPERATION_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, PostgresOptions};
pub use store::PostgresStore;
