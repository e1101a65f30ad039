//! Integration tests of the sessiond service: the real binary, over HTTP on
//! loopback. One test binary, one module per topic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod access_tokens;
mod admin;
mod anonymous;
mod api;
mod bad_input;
mod browser;
mod cli;
mod embedded;
mod event_stream;
mod interop;
mod multi_node;
mod nginx;
mod openapi;
mod pg_failover;
mod portal;
mod sealed;
mod slow_clients;
mod support;
mod tls;
mod webhooks;
