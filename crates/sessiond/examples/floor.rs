//! The floor of the load test (`scripts/load`): the least a verify endpoint
//! can cost on this machine with this stack.
//!
//! Run: `cargo run --release -p sessiond --example floor -- --listen 127.0.0.1:8081 --tokens FILE`
//!
//! A bare axum route, `POST /v1/sessions/verify`, on the same runtime as
//! `sessiond serve` (tokio multi-thread): it extracts `{"token": "…"}` with
//! axum's `Json`, looks the token up in a `HashMap` loaded from the tokens
//! file `preload` wrote, and answers a small JSON object (200) or 401. No
//! API key, no middleware, no store, no hashing. Prints `listening on ADDR`
//! like sessiond, and stops on ctrl-c or SIGTERM.

#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use serde::{Deserialize, Serialize};

/// The floor server.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Tokens, one per line.
    #[arg(long)]
    tokens: PathBuf,
}

/// What the map holds per token: about what a session view needs.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    id: String,
    subject: String,
    version: u64,
}

#[derive(Debug, Deserialize)]
struct VerifyRequest {
    token: String,
}

type Sessions = Arc<HashMap<String, Entry>>;

async fn verify(State(sessions): State<Sessions>, Json(req): Json<VerifyRequest>) -> Response {
    match sessions.get(&req.token) {
        Some(entry) => Json(entry.clone()).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"code": "invalid_token"})),
        )
            .into_response(),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("cannot read the tokens file {}", args.tokens.display()))?;
    let sessions: HashMap<String, Entry> = text
        .lines()
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(i, token)| {
            let entry = Entry {
                id: format!("s{i:08}"),
                subject: format!("user-{}", i % 10_000),
                version: 1,
            };
            (token.to_owned(), entry)
        })
        .collect();
    let app = Router::new()
        .route("/v1/sessions/verify", post(verify))
        .with_state(Arc::new(sessions));
    // Same runtime as `sessiond serve` (`#[tokio::main]`: multi-thread, one
    // worker per core).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on {}", listener.local_addr()?);
        axum::serve(listener, app)
            .with_graceful_shutdown(sessiond::server::shutdown_signal())
            .await
            .context("the floor server failed")
    })
}
