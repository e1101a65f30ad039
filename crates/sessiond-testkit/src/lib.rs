//! Test support shared by every sessiond crate: a controllable clock, the
//! session-store and user-store conformance suites every backend must pass,
//! and the model-based property test of the manager.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test support: a failed expectation here is a failed test, so panicking is the point.

mod clock;
pub mod conformance;
pub mod env;
pub mod model;
pub mod user_conformance;

pub use clock::FakeClock;
