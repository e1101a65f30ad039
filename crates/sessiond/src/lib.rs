//! The sessiond service: the `/v1` HTTP/JSON API over [`sessiond_core`],
//! its configuration, API keys, audit log and admin commands, wired to the
//! store [`sessiond_stores`] opens and the portal of [`sessiond_portal`].
//!
//! The binary is thin: it parses the command line and calls into this crate.
//! [`server::serve`] runs the service on any listener until a shutdown future
//! completes, which is how the integration tests drive it too.

pub mod admin;
pub mod api;
pub mod burst_watch;
pub mod cli;
pub mod config;
pub mod data_keys;
pub mod event_import;
pub mod event_log;
pub mod event_writer;
pub mod failure_tally;
pub mod feed;
pub mod first_key;
pub mod guess_watch;
pub mod key_ring;
pub mod keys;
pub mod listen;
pub mod local_admin;
pub mod pinned_tls;
pub mod private_file;
pub mod reseal;
pub mod revocations;
pub mod self_signed;
pub mod server;
pub mod tls;
pub mod user_admin;
pub mod webhooks;

/// The annotated sample configuration, every key with its default.
pub const EXAMPLE_CONFIG: &str = include_str!("../sessiond.example.toml");
