//! sessiond's default store: durable sessions in one data directory, on
//! [redb](https://docs.rs/redb) (pure Rust, ACID, copy-on-write B-trees).
//!
//! ```
//! use std::sync::Arc;
//! use sessiond_core::{CreateOptions, SessionManager, SessionStore, Subject};
//! use sessiond_store_embedded::EmbeddedStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let data_dir = dir.path().join("sessiond-data");
//! // Creates the directory and an empty store the first time.
//! let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&data_dir)?);
//! let manager = SessionManager::builder(store).build()?;
//!
//! let (token, session) = manager.create(&Subject::new("user-42")?, CreateOptions::default()).await?;
//! // `create` returned only after the session was on disk.
//! assert_eq!(manager.verify(token.expose_secret(), None).await?.id, session.id);
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! * **Durable**: every write except a touch is acknowledged only after its
//!   commit is fsynced; `kill -9` at any moment loses no acknowledged write.
//!   Concurrent writes share one commit (group commit, see `writer.rs`).
//! * **Touches** (sliding expiry) are committed without an fsync and made
//!   durable within a second; losing one in a crash only makes a session
//!   expire earlier.
//! * **Reads never wait for the writer**: each runs in its own snapshot, or
//!   is answered from a bounded cache of records that the writer keeps
//!   coherent around every commit (see [`Options`]).
//! * **Purge** walks an expiry index: its cost grows with what expired.
//! * **One process at a time**: the file is locked; a second opener gets
//!   [`OpenError::InUse`] at once (stop the server before using admin tools
//!   that open the store directly).
//! * **Portal accounts** live in the same file: [`EmbeddedStore`] is also a
//!   [`UserStore`](sessiond_core::UserStore), with the same durability; so
//!   do shared secrets ([`SecretStore`](sessiond_core::SecretStore)), API
//!   keys ([`KeyStore`](sessiond_core::KeyStore)), audit events
//!   ([`EventStore`](sessiond_core::EventStore)) and the login throttle's
//!   failure counters ([`CounterStore`](sessiond_core::CounterStore)).
//! * **Versioned**: the file records its format version ([`FORMAT_VERSION`]);
//!   a file from a newer build or that is not a sessiond store is refused
//!   with a clear [`OpenError`], and a damaged file is an error, not a panic.

mod api_keys;
mod cache;
mod check;
mod codec;
mod counters;
mod error;
mod events;
mod open;
mod ops;
mod secrets;
mod store;
mod tables;
mod tier;
mod users;
mod writer;

pub use check::CheckReport;
pub use codec::DecodeError;
pub use error::{OpenError, WriterStopped};
pub use open::{Options, parse_url};
pub use store::{EmbeddedStore, FILE_NAME};
pub use tables::FORMAT_VERSION;
