//! The core of sessiond: session tokens, lifetime policy, the lifecycle
//! manager and the storage contract. Nothing here knows about HTTP.
//!
//! ```
//! use std::sync::Arc;
//! use sessiond_core::{CreateOptions, MemoryStore, Policy, Rotation, SessionManager, Subject};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sessiond_core::Error> {
//! let manager = SessionManager::builder(Arc::new(MemoryStore::new()))
//!     .policy(Policy::default())
//!     .build()?;
//!
//! // Login: a new session and a token to hand to the client, shown once.
//! let alice = Subject::new("user-42")?;
//! let (token, session) = manager.create(&alice, CreateOptions::default()).await?;
//!
//! // Every request: the token the client presents names a valid session.
//! let verified = manager.verify(token.expose_secret(), None).await?;
//! assert_eq!(verified.id, session.id);
//!
//! // Privilege change: a new token; the old one stops working.
//! let (new_token, _) = manager.rotate(token.expose_secret(), Rotation::Plain).await?;
//! assert!(manager.verify(token.expose_secret(), None).await.is_err());
//!
//! // Logout.
//! manager.revoke_token(new_token.expose_secret(), sessiond_core::RevokeReason::Logout).await?;
//! assert!(manager.verify(new_token.expose_secret(), None).await.is_err());
//! # Ok(())
//! # }
//! ```

mod access_token;
mod anonymous;
mod api_keys;
mod audit;
mod by_id;
mod client_binding;
mod clock;
mod counters;
mod error;
mod event_id;
mod event_store;
mod events;
pub mod humane;
mod ids;
mod key_schedule;
mod manager;
mod memory;
mod memory_counters;
mod memory_events;
mod memory_keys;
mod memory_secrets;
mod memory_users;
mod opened_cache;
mod origin;
mod policy;
mod purge;
mod record_cache;
mod rotation;
mod sealed_store;
pub mod sealing;
mod secrets;
mod session;
mod shards;
mod signing_keys;
mod store;
mod token;
mod user_agent;
mod users;

pub use access_token::{ACCESS_TOKEN_TYPE, AccessToken, AccessTokenError, AccessTokenIssuer};
pub use anonymous::{AnonymousOptions, CarryData, SignInOptions, anonymous_counter_key};
pub use api_keys::{
    KeyId, KeyRecord, KeyRole, KeyStore, KeyStoreError, MAX_KEY_ID_LEN, MAX_KEY_NAME_LEN, UnknownRole,
    is_valid_key_name,
};
pub use audit::{Audit, Picked};
pub use client_binding::{BindMode, BindingError, ClientBinding, Signals};
pub use clock::{Clock, SystemClock, truncate_to_micros};
pub use counters::{
    CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, MAX_COUNTER_KEY_LEN, MAX_COUNTER_KEYS,
    Reserved, check_counter_keys,
};
pub use error::{Error, RandomnessError};
pub use event_id::{BadEventId, EVENT_ID_LEN, EventId, EventIds, ID_BLOCK_LEN, IdBlock};
pub use event_store::{EventFilter, EventStore, EventStoreError, Retention, StoredEvent};
pub use events::{AnomalyReason, Event, EventKind, EventSink, MemoryEvents, NoEvents, Rejection};
pub use ids::{MAX_SUBJECT_LEN, MAX_TENANT_LEN, NameError, SessionId, Subject, Tenant, is_refused_in_subject};
pub use key_schedule::{KeySchedule, MAX_ACCESS_TOKEN_TTL, Plan, PlannedKey, ScheduleError};
pub use manager::{CreateOptions, SessionData, SessionManager, SessionManagerBuilder};
pub use memory::MemoryStore;
pub use memory_counters::MAX_COUNTER_BYTES;
pub use origin::SessionOrigin;
pub use policy::{LimitAction, MAX_DATA_BYTES_LIMIT, MAX_LIFETIME, Policy, PolicyError};
pub use purge::{PurgeTask, spawn_purger};
pub use record_cache::{
    BarrierFailed, CacheLink, CacheParamError, CacheSettings, CacheStatistics, Fill, Invalidations, LinkError, Linked,
    MAX_CACHE_LAG, RELINK_BACKOFF, RecordCache,
};
pub use rotation::Rotation;
pub use sealed_store::{ResealError, Resealed, SEALED_DATA_MEMBER, SealedEvents, SealedSessions, Sealer};
pub use secrets::{
    BadSecretBytes, MAX_SECRET_NAME_LEN, MAX_SECRET_VALUE_LEN, MAX_SECRETS, SecretName, SecretStore, SecretStoreError,
    check_secret_count, check_secret_value_len, decode_secrets, encode_secrets,
};
pub use session::{
    Aal, AalError, ClientInfo, MAX_IP_LEN, MAX_USER_AGENT_LEN, PreviousToken, Revocation, RevokeReason, Session,
};
pub use shards::{Shards, subject_digest};
pub use signing_keys::{Jwk, Jwks, Maintenance, SIGNING_KEYS, SigningKeyError, SigningKeys};
pub use store::{BoxError, IdPage, Inserted, SessionStore, StoreError, SubjectLimit};
pub use token::{
    PrehashedHasher, TOKEN_BYTES, TOKEN_LEN, TOKEN_PREFIX, Token, TokenHash, TokenHashBuildHasher, TokenParseError,
};
pub use users::{UserRecord, UserStore, UserStoreError};

/// Re-exported so store implementations use the same `async_trait`.
pub use async_trait::async_trait;
