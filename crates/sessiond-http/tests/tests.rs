//! Integration tests of sessiond-http: one binary, one module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod access_tokens;
mod anonymous;
mod browser;
mod cookies;
mod csrf;
mod csrf_exempt;
mod data_conflicts;
mod lifecycle;
mod loopback;
mod parsers;
mod remote;
mod remote_tls;
mod support;
mod typed_data;
