//! Integration tests of sessiond-store-postgres against a real PostgreSQL
//! (`TEST_POSTGRES_URL`, started by `scripts/test`): one binary, one module
//! per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cache;
mod conformance;
mod engine;
mod support;
mod tls;
mod users;
