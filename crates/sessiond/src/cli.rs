//! The command line (API.md fixes its shape).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sessiond: secure sessions over HTTP/JSON.
#[derive(Debug, Parser)]
#[command(name = "sessiond", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where configuration comes from, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// TOML configuration file (see `sessiond config example`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL: embedded:PATH (default embedded:./sessiond-data), memory:, redis://…, postgres://…
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
        /// Address to listen on (default 127.0.0.1:7380).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Plain-HTTP localhost development mode.
        #[arg(long)]
        dev: bool,
    },
    /// Manage API keys.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect and end sessions directly on the store.
    Sessions {
        /// What to do with sessions.
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Manage the login portal's users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The login portal's secrets.
    Portal {
        /// What to do.
        #[command(subcommand)]
        command: PortalCommand,
    },
    /// Maintenance of the store itself.
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Remove expired sessions from the store now.
    Purge {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// Configuration helpers.
    Config {
        /// What to show.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Certificates for `[server.tls]`.
    Tls {
        /// What to make.
        #[command(subcommand)]
        command: TlsCommand,
    },
}

/// `sessiond tls …`
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Write a self-signed certificate (cert.pem) and its key (key.pem,
    /// mode 0600) for a first local start over HTTPS, and print the
    /// `[server.tls]` lines that serve them.
    SelfSigned {
        /// A DNS name or IP address the certificate is for (repeat for more;
        /// the first is also its common name).
        #[arg(long = "host", value_name = "NAME", required = true)]
        hosts: Vec<String>,
        /// The directory to write cert.pem and key.pem to (created if missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Replace cert.pem and key.pem if they exist.
        #[arg(long)]
        force: bool,
    },
}

/// `sessiond store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Rewrite every session sealed by a key other than the first of
    /// `[store.encryption] key_files` (or stored in clear) under the first,
    /// showing progress; then the old key can be removed.
    Reseal {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}

/// `sessiond keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed alone on the last line of stdout, once.
    Create {
        /// The tenant the key acts in.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// `app` (the session calls) or `admin` (also /v1/admin/…).
        #[arg(long, default_value = "app")]
        role: String,
        /// A label for the key.
        #[arg(long, default_value = "")]
        name: String,
        /// Make it stop working after this long (e.g. 90d, 12h).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// List keys: id, tenant, role, created, expires, last used, name (never the keys).
    List {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// Delete a key by id: it stops working on every node within a second.
    Revoke {
        /// The key's id (from `keys list`). Ids are base64url, so one in
        /// 64 starts with `-`: taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}

/// `sessiond sessions …`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// A subject's live sessions, newest first, as JSON lines.
    List {
        /// The subject (it may start with `-`).
        #[arg(long, allow_hyphen_values = true)]
        subject: String,
        /// The tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// End one session, or all of a subject's.
    Revoke {
        /// The session id (it may start with `-`, as base64url can).
        #[arg(
            long,
            conflicts_with = "subject",
            required_unless_present = "subject",
            allow_hyphen_values = true
        )]
        id: Option<String>,
        /// The subject (it may start with `-`).
        #[arg(long, allow_hyphen_values = true)]
        subject: Option<String>,
        /// The tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}

/// `sessiond portal …`
#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Put a fresh CSRF secret first in the store; the current one keeps
    /// verifying, older ones are dropped. Each node signs with the fresh
    /// one from its next start.
    RotateSecret {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}

/// `sessiond users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from stdin.
    Add {
        /// The user name (also the subject of their sessions).
        name: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The tenant (default: portal.tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// Set a user's password (read from stdin) and end their sessions.
    Passwd {
        /// The user name.
        name: String,
        /// Read the password from stdin (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The tenant (default: portal.tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// Stop a user from signing in and end all their sessions.
    Disable {
        /// The user name.
        name: String,
        /// The tenant (default: portal.tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// The user name.
        name: String,
        /// The tenant (default: portal.tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
    /// List users: name, state, created, password changed.
    List {
        /// The tenant (default: portal.tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}

/// `sessiond config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a configuration file with every key and its default.
    Example,
    /// Load the configuration (file, environment) and print it as TOML.
    Show {
        /// Configuration and store.
        #[command(flatten)]
        common: Common,
    },
}
