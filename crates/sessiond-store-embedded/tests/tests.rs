//! Integration tests of sessiond-store-embedded: one binary, one module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod apart;
mod batch;
mod cache;
mod conformance;
mod crash;
mod files;
mod insert_all;
mod purge;
mod support;
mod users;
