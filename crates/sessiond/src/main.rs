//! The `sessiond` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser as _;
use sessiond::cli::{
    Cli, Command, Common, ConfigCommand, KeysCommand, PortalCommand, SessionsCommand, StoreCommand, TlsCommand,
    UsersCommand,
};
use sessiond::config::{Config, LogFormat};
use sessiond::{admin, server, user_admin};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc. A node keeps its sessions in many
/// small allocations (a decoded record is a dozen strings and maps), and a
/// verify that misses the decoded records allocates and frees a record.
/// Measured with `examples/scale.rs` of the embedded store at 1 M sessions
/// (2026-12-01, the same store code with either allocator, two runs in opposite
/// orders; the machine's speed moved between runs, memory did not):
///
/// | | glibc | mimalloc |
/// |---|---:|---:|
/// | resident bytes per session | 2,952 and 2,952 | 2,177 and 2,177 |
/// | verify/s, hot 100 k | 978,769 and 1,770,546 | 1,935,565 and 2,138,610 |
/// | verify/s, uniform over 1 M | 489,772 and 1,010,574 | 994,134 and 1,076,372 |
/// | durable creates/s | 4,144 and 5,751 | 6,438 and 7,650 |
///
/// Over Redis, `scripts/load STORE=redis ROUNDS=3 TOUCH_INTERVAL=20m
/// COUNT=20000 STORE_QUERY=cache_entries=200000` before and after the
/// change (two runs an hour apart, their floors 85,646 and 85,503 req/s):
/// `POST /v1/sessions/verify` 39,166 → 54,005 req/s, 33 → 22 µs of server
/// CPU per request (Redis' included); `GET /auth/verify` 29,867 → 44,448
/// req/s, 45 → 28 µs. Part of that is the machine's swing between runs:
/// the two builds side by side over one Redis, rounds alternating (an ad
/// hoc harness; `scripts/load COMPARE=` takes only the embedded store),
/// measured a median 24.2 against 28.3 µs per verify (−14 %) and 30.4
/// against 33.9 µs per forward auth (−10 %).
///
/// What it gives up: glibc's heap checks (pointer mangling in its free
/// lists, double-free detection), a defence against memory bugs in
/// `unsafe` code, of which this workspace has none and its dependencies
/// some. mimalloc's `secure` mode restores such checks (guard pages,
/// encoded free lists) and measured about glibc's speed in the same runs
/// (26.7 µs per verify), hence not chosen.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref(), std::env::vars())?;
    if let Some(store) = &common.store {
        config.store.url = store.clone();
    }
    Ok(config)
}

/// `log.level` as a filter in which rustls speaks only at ERROR, unless
/// the level names it. rustls logs at WARN per connection what any client
/// can cause (an IP address sent as the server name, alerts it sends):
/// at the default `info` a scanner would write a line per handshake.
/// Handshake failures are logged by `listen.rs`, at debug, with the peer.
fn configured_filter(level: &str) -> EnvFilter {
    let filter = EnvFilter::new(level);
    if level.contains("rustls") {
        return filter;
    }
    match "rustls=error".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    }
}

fn init_logging(config: &Config) {
    // RUST_LOG, a developer's override, is taken as it is.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| configured_filter(&config.log.level));
    // Colours only for a person at a terminal, never in files or journals.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, listen, dev } => {
            let mut config = load(&common)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            config.server.dev |= dev;
            // Flags win over the file and the environment: check them too.
            config.validate()?;
            init_logging(&config);
            let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
            server::serve(config, listener, server::shutdown_signal()).await
        }
        Command::Keys { command } => match command {
            KeysCommand::Create {
                tenant,
                role,
                name,
                expires_in,
                common,
            } => admin::keys_create(&load(&common)?, &tenant, &role, name, expires_in.as_deref()).await,
            KeysCommand::List { common } => admin::keys_list(&load(&common)?).await,
            KeysCommand::Revoke { id, common } => admin::keys_revoke(&load(&common)?, &id).await,
        },
        Command::Sessions { command } => match command {
            SessionsCommand::List {
                subject,
                tenant,
                common,
            } => admin::sessions_list(&load(&common)?, &tenant, &subject).await,
            SessionsCommand::Revoke {
                id,
                subject,
                tenant,
                common,
            } => admin::sessions_revoke(&load(&common)?, &tenant, id.as_deref(), subject.as_deref()).await,
        },
        Command::Users { command } => match command {
            UsersCommand::Add {
                name, tenant, common, ..
            } => {
                let password = user_admin::read_password_stdin()?;
                user_admin::add(&load(&common)?, tenant.as_deref(), &name, password).await
            }
            UsersCommand::Passwd {
                name, tenant, common, ..
            } => {
                let password = user_admin::read_password_stdin()?;
                user_admin::passwd(&load(&common)?, tenant.as_deref(), &name, password).await
            }
            UsersCommand::Disable { name, tenant, common } => {
                user_admin::set_disabled(&load(&common)?, tenant.as_deref(), &name, true).await
            }
            UsersCommand::Enable { name, tenant, common } => {
                user_admin::set_disabled(&load(&common)?, tenant.as_deref(), &name, false).await
            }
            UsersCommand::List { tenant, common } => user_admin::list(&load(&common)?, tenant.as_deref()).await,
        },
        Command::Portal {
            command: PortalCommand::RotateSecret { common },
        } => admin::rotate_portal_secret(&load(&common)?).await,
        Command::Purge { common } => admin::purge(&load(&common)?).await,
        Command::Store {
            command: StoreCommand::Reseal { common },
        } => sessiond::reseal::run(&load(&common)?).await,
        Command::Config { command } => match command {
            ConfigCommand::Example => {
                print!("{}", sessiond::EXAMPLE_CONFIG);
                Ok(())
            }
            ConfigCommand::Show { common } => {
                print!("{}", toml::to_string(&load(&common)?.redacted())?);
                Ok(())
            }
        },
        Command::Tls {
            command: TlsCommand::SelfSigned { hosts, out, force },
        } => Ok(sessiond::self_signed::run(&hosts, &out, force)?),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sessiond: {error:#}");
            ExitCode::FAILURE
        }
    }
}
