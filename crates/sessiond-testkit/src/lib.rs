//! Test support shared by every sessiond crate: a controllable clock, the
//! session-store, user-store, secret-store, key-store and event-store conformance suites every backend must pass,
//! what every engine's record cache must do between two nodes,
//! the model-based property test of the manager, the rule for a missing
//! server or tool ([`env::required`]) and the real `sessiond` binary as a
//! test server ([`server::TestServer`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test support: a failed expectation here is a failed test, so panicking is the point.

pub mod audit_conformance;
pub mod certs;
mod clock;
pub mod conformance;
pub mod counter_conformance;
pub mod env;
pub mod event_conformance;
pub mod key_conformance;
pub mod model;
pub mod nginx;
pub mod record_cache;
pub mod secret_conformance;
pub mod server;
pub mod sharded;
pub mod user_conformance;

pub use clock::FakeClock;
