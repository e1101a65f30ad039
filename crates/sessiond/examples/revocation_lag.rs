//! Revocation lag between two sessiond nodes over one shared store, for the
//! load test (`scripts/load`, `STORE=redis` or `postgres`).
//!
//! Run: `cargo run --release -p sessiond --example revocation_lag -- --node-a URL --node-b URL --key KEY`
//!
//! Each trial creates a session on node A (`POST /v1/sessions`), checks
//! that node B accepts its token (`POST /v1/sessions/verify`, 200), revokes
//! it on A (`POST /v1/sessions/revoke`) and, as soon as A acknowledges,
//! verifies it on B in a tight loop until B answers 401. The lag is the
//! time from A's acknowledgement to B's first refusal (so at least one
//! verify round trip); a verify B still accepts after the acknowledgement
//! is counted, and so is one that B accepted although it was sent more than
//! `--bound-ms` after the acknowledgement (node B's cache lag bound,
//! `cache_lag_ms`; 0, the default, for an exact node: then the two counts
//! are one). Trials run one after the other until `--trials` or
//! `--duration`, whichever comes first; a trial gives up after `--give-up`
//! without a refusal. Ends with one line:
//!
//! `LAG_RESULT trials=N p50_us=… p99_us=… max_us=… accepted_after_ack=K accepted_beyond_bound=B never_refused=M verify_p50_us=… verify_p99_us=…`
//!
//! where `verify_*` are B's answers to the verify before the revocation:
//! the round trip the lag is made of.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Measures how long a revocation on one node takes to be refused on another.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the node that creates and revokes (`http://127.0.0.1:PORT`).
    #[arg(long)]
    node_a: String,
    /// Base URL of the node that verifies.
    #[arg(long)]
    node_b: String,
    /// An API key of the `default` tenant, valid on both nodes.
    #[arg(long)]
    key: String,
    /// How many trials at most.
    #[arg(long, default_value_t = 2_000)]
    trials: usize,
    /// Stop starting trials after this many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds a trial waits for node B's refusal before giving up.
    #[arg(long, default_value_t = 5)]
    give_up: u64,
    /// Node B's lag bound in milliseconds (its store's `cache_lag_ms`):
    /// a verify sent later than this after the acknowledgement must fail.
    #[arg(long, default_value_t = 0)]
    bound_ms: u64,
}

/// One trial's outcome.
struct Trial {
    /// From A's acknowledgement to B's first 401 (`None`: never refused).
    lag: Option<Duration>,
    /// Verifies B accepted after A's acknowledgement.
    accepted_after_ack: usize,
    /// Of those, the ones sent later than the bound after it.
    accepted_beyond_bound: usize,
    /// B's answer time to the verify before the revocation.
    verify: Duration,
}

struct Nodes {
    http: reqwest::Client,
    args: Args,
}

impl Nodes {
    /// POSTs `body` to `base` + `path` and returns the status (and the body
    /// when it is JSON).
    async fn post(&self, base: &str, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Option<Value>)> {
        let response = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.args.key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {base}{path}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("POST {base}{path}: body"))?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }

    async fn trial(&self, n: usize) -> anyhow::Result<Trial> {
        let (a, b) = (&self.args.node_a, &self.args.node_b);
        let (status, body) = self
            .post(a, "/v1/sessions", &json!({ "subject": format!("lag-{n}") }))
            .await?;
        let token = match (status, body.as_ref().and_then(|b| b["token"].as_str())) {
            (StatusCode::CREATED, Some(token)) => token.to_owned(),
            _ => bail!("create on node A answered {status}"),
        };
        let check = json!({ "token": token });
        let started = Instant::now();
        let (status, _) = self.post(b, "/v1/sessions/verify", &check).await?;
        let verify = started.elapsed();
        if status != StatusCode::OK {
            bail!("node B answered {status} to a live session's verify");
        }
        let (status, _) = self.post(a, "/v1/sessions/revoke", &check).await?;
        let acknowledged = Instant::now();
        if !status.is_success() {
            bail!("revoke on node A answered {status}");
        }
        let mut accepted_after_ack = 0;
        let mut accepted_beyond_bound = 0;
        let give_up = Duration::from_secs(self.args.give_up);
        let bound = Duration::from_millis(self.args.bound_ms);
        while acknowledged.elapsed() < give_up {
            let sent = acknowledged.elapsed();
            match self.post(b, "/v1/sessions/verify", &check).await?.0 {
                StatusCode::UNAUTHORIZED => {
                    return Ok(Trial {
                        lag: Some(acknowledged.elapsed()),
                        accepted_after_ack,
                        accepted_beyond_bound,
                        verify,
                    });
                }
                StatusCode::OK => {
                    accepted_after_ack += 1;
                    if sent > bound {
                        accepted_beyond_bound += 1;
                    }
                }
                other => bail!("node B answered {other} to a verify after the revocation"),
            }
        }
        Ok(Trial {
            lag: None,
            accepted_after_ack,
            accepted_beyond_bound,
            verify,
        })
    }
}

/// The `pct` percentile of sorted `values`, in microseconds.
fn percentile(sorted: &[Duration], pct: usize) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let index = (sorted.len() * pct).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)].as_micros()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for base in [&args.node_a, &args.node_b] {
        if !base.starts_with("http://127.0.0.1:") {
            bail!("nodes must be on loopback (http://127.0.0.1:PORT): got {base}");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the HTTP client")?;
    let nodes = Nodes { http, args };
    let deadline = Instant::now() + Duration::from_secs(nodes.args.duration);
    let mut trials = Vec::with_capacity(nodes.args.trials);
    runtime.block_on(async {
        for n in 0..nodes.args.trials {
            if Instant::now() >= deadline {
                break;
            }
            trials.push(nodes.trial(n).await.with_context(|| format!("trial {n}"))?);
        }
        anyhow::Ok(())
    })?;

    let mut lags: Vec<Duration> = trials.iter().filter_map(|t| t.lag).collect();
    lags.sort_unstable();
    let mut verifies: Vec<Duration> = trials.iter().map(|t| t.verify).collect();
    verifies.sort_unstable();
    let accepted: usize = trials.iter().map(|t| t.accepted_after_ack).sum();
    let beyond: usize = trials.iter().map(|t| t.accepted_beyond_bound).sum();
    let never = trials.iter().filter(|t| t.lag.is_none()).count();
    println!(
        "LAG_RESULT trials={} p50_us={} p99_us={} max_us={} accepted_after_ack={accepted} accepted_beyond_bound={beyond} never_refused={never} verify_p50_us={} verify_p99_us={}",
        trials.len(),
        percentile(&lags, 50),
        percentile(&lags, 99),
        lags.last().map_or(0, Duration::as_micros),
        percentile(&verifies, 50),
        percentile(&verifies, 99),
    );
    Ok(())
}
