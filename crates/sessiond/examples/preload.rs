//! Fills a store with sessions for the load test (`scripts/load`) and writes
//! their tokens, one per line. Any store URL sessiond accepts works.
//!
//! Run: `cargo run --release -p sessiond --example preload -- --store embedded:DIR --count 100000 --tokens-out FILE`
//!
//! Sessions are created through `SessionManager` with the default policy,
//! in the `default` tenant, for subjects `user-{i % 10000}`, by 64 tasks at
//! once so the store's group commit batches the writes. The store is closed
//! (flushed) before the program exits, so `sessiond serve` can open it next.
//! Records are sealed as `sessiond serve` seals them with a default
//! `[store.encryption]` (an embedded store's own generated key).
//!
//! `--origin portal` makes them portal logins instead, the only sessions
//! forward auth (`GET /auth/verify`) vouches for, and first adds each
//! subject as an enabled portal user (all with the hash of one random
//! password, thrown away: nobody can sign in as them).

#![allow(missing_docs)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use futures_util::StreamExt;
use sessiond_core::{
    AnonymousOptions, ClientInfo, CreateOptions, SessionManager, SessionOrigin, Subject, UserRecord, UserStoreError,
};

/// Preloads sessions into a store.
#[derive(Debug, Parser)]
struct Args {
    /// The store, as `sessiond serve --store` names it.
    #[arg(long)]
    store: String,
    /// How many sessions to create.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Where to write the tokens, one per line.
    #[arg(long)]
    tokens_out: PathBuf,
    /// How many distinct subjects (`user-0` …).
    #[arg(long, default_value_t = 10_000)]
    subjects: usize,
    /// Creations in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The client IP every session is created from (none by default).
    #[arg(long)]
    client_ip: Option<String>,
    /// The User-Agent every session is created with (none by default).
    #[arg(long)]
    client_user_agent: Option<String>,
    /// `api` (what `POST /v1/sessions` creates) or `portal` (a portal
    /// login: also adds the subjects as portal users).
    #[arg(long, default_value = "api", value_parser = ["api", "portal"])]
    origin: String,
    /// Anonymous sessions (visitors before sign-in) to create as well,
    /// from the same client.
    #[arg(long, default_value_t = 0)]
    anonymous_count: usize,
    /// Where to write the anonymous sessions' tokens, one per line.
    #[arg(long)]
    anonymous_tokens_out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.anonymous_count > 0 && args.anonymous_tokens_out.is_none() {
        anyhow::bail!("--anonymous-count needs --anonymous-tokens-out");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The environment's settings (SESSIOND_STORE_ENCRYPTION_KEY_FILES for
    // a shared store), as `sessiond serve` reads them.
    let mut config = sessiond::config::Config::load(None, std::env::vars())?;
    config.store.url.clone_from(&args.store);
    let opened = runtime
        .block_on(sessiond::data_keys::open_store(&config))
        .with_context(|| format!("cannot open the store {}", args.store))?;
    let manager = SessionManager::builder(opened.sessions()).build()?;
    if args.origin == "portal" {
        runtime.block_on(add_users(&manager, &opened.users(), &args))?;
    }
    let started = Instant::now();
    let tokens = runtime.block_on(create_all(&manager, &args))?;
    let elapsed = started.elapsed();
    let anonymous = runtime.block_on(create_anonymous(&manager, &args))?;
    drop(manager);
    // Flush and release the store (the embedded file lock) before the server opens it.
    runtime.block_on(async { opened.shutdown() })?;
    drop(runtime);

    write_tokens(&args.tokens_out, &tokens)?;
    if let Some(path) = &args.anonymous_tokens_out {
        write_tokens(path, &anonymous)?;
    }
    eprintln!(
        "preload: {} sessions for {} subjects in {:.1} s ({:.0}/s), and {} anonymous ones; tokens in {}",
        tokens.len(),
        args.subjects.min(args.count),
        elapsed.as_secs_f64(),
        tokens.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        anonymous.len(),
        args.tokens_out.display()
    );
    Ok(())
}

fn write_tokens(path: &std::path::Path, tokens: &[String]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for token in tokens {
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    Ok(())
}

/// Creates `args.anonymous_count` anonymous sessions from the preload's
/// client, `args.concurrency` at a time; returns their tokens.
async fn create_anonymous(manager: &SessionManager, args: &Args) -> anyhow::Result<Vec<String>> {
    let client = ClientInfo {
        ip: args.client_ip.clone(),
        user_agent: args.client_user_agent.clone(),
        sealed: None,
    };
    let made = futures_util::stream::iter(0..args.anonymous_count)
        .map(|_| {
            let options = AnonymousOptions {
                client: client.clone(),
                ..AnonymousOptions::default()
            };
            async move { manager.create_anonymous(options).await }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    made.into_iter()
        .map(|created| Ok(created?.0.expose_secret().to_owned()))
        .collect()
}

/// Creates `args.count` sessions with `args.concurrency` tasks; returns the
/// tokens in creation order.
async fn create_all(manager: &SessionManager, args: &Args) -> anyhow::Result<Vec<String>> {
    let workers = args.concurrency.clamp(1, args.count.max(1));
    let subjects = args.subjects.max(1);
    let origin = if args.origin == "portal" {
        SessionOrigin::Portal
    } else {
        SessionOrigin::Api
    };
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let manager = manager.clone();
        let count = args.count;
        let client = ClientInfo {
            ip: args.client_ip.clone(),
            user_agent: args.client_user_agent.clone(),
            sealed: None,
        };
        tasks.spawn(async move {
            let mut made = Vec::with_capacity(count / workers + 1);
            for i in (worker..count).step_by(workers) {
                let subject = Subject::new(format!("user-{}", i % subjects))?;
                let options = CreateOptions {
                    client: client.clone(),
                    origin,
                    ..CreateOptions::default()
                };
                let (token, _) = manager.create(&subject, options).await?;
                made.push((i, token.expose_secret().to_owned()));
            }
            anyhow::Ok(made)
        });
    }
    let mut tokens = vec![String::new(); args.count];
    while let Some(joined) = tasks.join_next().await {
        for (i, token) in joined.context("a preload task panicked")?? {
            tokens[i] = token;
        }
    }
    Ok(tokens)
}

/// Adds `user-0` … as enabled portal users of the manager's tenant (those
/// already there are kept), all with the hash of one random password.
async fn add_users(
    manager: &SessionManager,
    users: &std::sync::Arc<dyn sessiond_core::UserStore>,
    args: &Args,
) -> anyhow::Result<()> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password = secret.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let hash = sessiond_portal::Passwords::new(1).hash(password).await?;
    let count = args.subjects.max(1).min(args.count.max(1));
    let workers = args.concurrency.clamp(1, count);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let (users, tenant, hash, now) = (users.clone(), manager.tenant().clone(), hash.clone(), manager.now());
        tasks.spawn(async move {
            for i in (worker..count).step_by(workers) {
                let user = UserRecord {
                    tenant: tenant.clone(),
                    name: Subject::new(format!("user-{i}"))?,
                    password_hash: hash.clone(),
                    disabled: false,
                    created_at: now,
                    password_changed_at: now,
                    version: 1,
                };
                match users.insert_user(&user).await {
                    Ok(()) | Err(UserStoreError::Exists) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a user task panicked")??;
    }
    Ok(())
}
