//! The peer of `scripts/load`: an axum app with tower-sessions over its Redis
//! store, answering `GET /` with the session cookie (`id`) by reading one
//! value from the session, as an app checks a login on every request.
//!
//! ```text
//! tower-sessions-peer --redis URL --listen 127.0.0.1:0       # prints "listening on ADDR"
//! tower-sessions-peer --redis URL --preload N --cookies-out FILE
//! ```
//!
//! `--preload` creates N sessions through tower-sessions' own `Session` API
//! (`user` = `user-{i % 10000}`, default expiry) and writes their cookie
//! values, one per line. The fred pool has one connection per core.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tower_sessions::{Session, SessionManagerLayer};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

async fn check(session: Session) -> Result<String, StatusCode> {
    match session.get::<String>("user").await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(StatusCode::UNAUTHORIZED),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut argv = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (argv.next(), argv.next()) {
        args.insert(flag, value);
    }
    let url = args.get("--redis").context("--redis URL is required")?;
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let pool = Pool::new(Config::from_url(url)?, None, None, None, cores)?;
    pool.init().await.context("cannot connect to Redis")?;
    let store = RedisStore::new(pool);

    if let Some(count) = args.get("--preload") {
        let count: usize = count.parse().context("--preload wants a number")?;
        let out = args
            .get("--cookies-out")
            .context("--preload needs --cookies-out FILE")?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let store = Arc::new(store);
        for worker in 0..64 {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let mut made = Vec::new();
                for i in (worker..count).step_by(64) {
                    let session = Session::new(None, Arc::clone(&store), None);
                    session.insert("user", format!("user-{}", i % 10_000)).await?;
                    session.save().await?;
                    made.push(session.id().context("a saved session has an id")?.to_string());
                }
                anyhow::Ok(made)
            });
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
        while let Some(made) = tasks.join_next().await {
            for cookie in made?? {
                writeln!(file, "{cookie}")?;
            }
        }
        file.flush()?;
        eprintln!(
            "preload: {count} tower-sessions sessions in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let Some(listen) = args.get("--listen") else {
        bail!("--listen ADDR or --preload N is required")
    };
    let app = Router::new()
        .route("/", get(check))
        .layer(SessionManagerLayer::new(store));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
