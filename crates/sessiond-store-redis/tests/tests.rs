//! Integration tests of sessiond-store-redis against a real Redis named by
//! `TEST_REDIS_URL` (scripts/test starts one). One binary, one module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cache;
mod cluster;
mod conformance;
mod engine;
mod model;
mod sentinel;
mod support;
mod tls;
mod users;
