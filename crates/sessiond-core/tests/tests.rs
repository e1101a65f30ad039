//! Integration tests of sessiond-core: one binary, one module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod aal;
mod anonymous;
mod client_binding;
mod counting_store;
mod lifecycle;
mod memory_store;
mod sealed_store;
mod signing_keys;
mod stored_events;
