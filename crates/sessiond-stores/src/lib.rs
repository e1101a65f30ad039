//! Store selection for sessiond: a store URL names an engine, [`open`]
//! returns a [`StoreHandle`] that serves every store trait from that one
//! engine, and [`InstrumentedStore`] adds per-operation metrics.
//!
//! ```
//! use sessiond_core::{CreateOptions, SessionManager, Subject};
//! use sessiond_stores::StoreUrl;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let url = StoreUrl::parse(&format!("embedded:{}", dir.path().display()))?;
//! let store = sessiond_stores::open(&url).await?;
//! let manager = SessionManager::builder(store.sessions()).build()?;
//! let (token, _session) = manager.create(&Subject::new("alice")?, CreateOptions::default()).await?;
//! assert_eq!(manager.verify(token.expose_secret(), None).await?.subject.as_str(), "alice");
//! drop(manager);
//! store.shutdown()?; // commits and releases the data directory
//! # Ok(())
//! # }
//! ```
//!
//! | URL | engine | cargo feature |
//! |---|---|---|
//! | `memory:` | in-process, lost on exit | always |
//! | `embedded:PATH` (or `embedded://PATH`), `?cache_mib=N&packed_cache_mib=N&engine_cache_mib=N` | redb file in `PATH`, one process | always |
//! | `redis://…`, `rediss://…`, `redis+sentinel://…`, `rediss+sentinel://…`, `redis+cluster://…`, `rediss+cluster://…` | Redis 7 (standalone, Sentinel or Cluster) | `redis` |
//! | `postgres://…`, `postgresql://…` | PostgreSQL 15+ | `postgres` |
//!
//! Each engine's crate parses its own URL syntax; a scheme whose feature is
//! off is refused with [`StoreOpenError::Unsupported`].

mod handle;
mod metrics;
mod url;

pub use handle::{StoreHandle, open};
pub use metrics::{InstrumentedStore, StoreOp};
pub use url::{StoreOpenError, StoreUrl};
