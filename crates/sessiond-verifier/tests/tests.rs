//! Integration tests of sessiond-verifier: one binary, one module per topic.
//! Tokens are signed here with aws-lc-rs; sessiond is a stand-in on
//! 127.0.0.1:0. Nothing beyond loopback is contacted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod checks;
#[cfg(feature = "axum")]
mod extractor;
mod keys;
mod revocations;
mod support;
