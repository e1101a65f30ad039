//! What one embedded node holds, and how fast it stays, as sessions pile
//! up (issue 17): for each count, load a fresh store, then in a fresh
//! process measure open time, resident memory, verify and create rates.
//!
//! Run: `cargo run --release -p sessiond-store-embedded --example scale [COUNT...]`
//! (default: `100000 10000000`; 10 M needs about 11 GB of disk, 8 GiB of
//! memory and 20 minutes here). The store lives in a temporary directory under `TMPDIR`
//! (or `SCALE_DIR`) and is deleted afterwards.
//!
//! * **load**: [`EmbeddedStore::insert_all`], 10,000 sessions per durable
//!   commit; two sessions per subject, browser-like clients, a small cart,
//!   unsealed.
//! * **open**: [`EmbeddedStore::open_with`] in the measuring process (redb
//!   checks the file as it opens it), with the default options and a
//!   packed cache of `PACKED_MIB` MiB (default 8192; 0 turns it off, as
//!   in the default options).
//! * **RSS**: the measuring process's `VmRSS` after open and every verify
//!   run (the caches filled) minus before open, per session.
//! * **verify**: `SessionManager::verify` from 64 concurrent tasks on two
//!   worker threads:
//!   * *hot*: for `SECONDS` (default 5), tokens drawn from the first
//!     100,000 sessions (a hot set, which fits the record cache), after an
//!     untimed run of the same length;
//!   * *first*: every session once, in order, right after: nearly every
//!     read misses the caches (what a node meets after a restart);
//!   * *uniform*: for `SECONDS`, tokens drawn uniformly from all sessions,
//!     after an untimed run of the same length: what a node meets once it
//!     has seen its sessions (at 10 M, most are beyond the record cache).
//!
//!   The touch interval is longer than the runs, so only reads are measured.
//! * **create**: `SessionManager::create`, durable, from 64 concurrent tasks.
//!
//! Tokens are derived from their index and a per-run seed (so a 10 M run
//! needs no token file); they are ordinary tokens to the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_core::{
    ClientInfo, Clock as _, CreateOptions, Policy, SessionManager, SessionStore, Subject, SystemClock, TOKEN_PREFIX,
    Token, truncate_to_micros,
};
use sessiond_store_embedded::{EmbeddedStore, FILE_NAME, Options};
use sessiond_testkit::conformance::sample;

/// The allocator of the `sessiond` binary, so that memory and speed are
/// those of a node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHUNK: usize = 10_000;
const TASKS: usize = 64;
const HOT: u64 = 100_000;
const AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("measure") {
        return measure(&args[1..]);
    }
    let counts: Vec<u64> = if args.is_empty() {
        vec![100_000, 10_000_000]
    } else {
        args.iter()
            .map(|a| a.parse().context("a count"))
            .collect::<Result<_, _>>()?
    };
    let parent = std::env::var_os("SCALE_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let mut rows = Vec::new();
    for count in counts {
        let dir = tempfile::tempdir_in(&parent)?;
        let seed: [u8; 24] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ (count as u8));
        let (load_rate, bytes) = load(dir.path(), count, &seed)?;
        eprintln!("[scale] {count}: loaded at {load_rate:.0}/s, measuring in a fresh process");
        let output = std::process::Command::new(std::env::current_exe()?)
            .args(["measure", &dir.path().display().to_string(), &count.to_string()])
            .arg(URL_SAFE_NO_PAD.encode(seed))
            .stderr(std::process::Stdio::inherit())
            .output()?;
        anyhow::ensure!(output.status.success(), "the measuring process failed");
        let measured = String::from_utf8(output.stdout)?;
        rows.push(format!(
            "| {count} | {load_rate:.0} | {:.0} | {} |",
            bytes as f64 / count as f64,
            measured.trim()
        ));
    }
    println!(
        "| sessions | load/s | disk B/session | open s | RSS MiB | RSS B/session | verify/s hot 100k | verify/s first | verify/s uniform | create/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// The token of session `index`.
fn token(seed: &[u8; 24], index: u64) -> Token {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    bytes[8..].copy_from_slice(seed);
    Token::parse(&format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))).expect("a well-formed token")
}

/// Fills `dir` with `count` sessions; the load rate and the file size.
fn load(dir: &Path, count: u64, seed: &[u8; 24]) -> anyhow::Result<(f64, u64)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = EmbeddedStore::open(dir)?;
    let now = truncate_to_micros(SystemClock.now());
    let client = ClientInfo {
        ip: Some("203.0.113.7".into()),
        user_agent: Some(AGENT.into()),
        sealed: None,
    };
    let start = Instant::now();
    let mut next = 0;
    while next < count {
        let end = (next + CHUNK as u64).min(count);
        let chunk = (next..end)
            .map(|i| {
                let mut s = sample("default", &format!("user-{}", i / 2), now);
                s.token_hash = token(seed, i).hash();
                s.idle_expires_at = now + Duration::from_secs(12 * 3600);
                s.client = client.clone();
                s.created_client = client.clone();
                s
            })
            .collect();
        rt.block_on(store.insert_all(chunk))?;
        next = end;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    store.close()?;
    Ok((rate, std::fs::metadata(dir.join(FILE_NAME))?.len()))
}

fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

/// The measuring process: prints the rest of a table row.
fn measure(args: &[String]) -> anyhow::Result<()> {
    let [dir, count, seed] = args else {
        anyhow::bail!("measure DIR COUNT SEED");
    };
    let count: u64 = count.parse()?;
    let seed: [u8; 24] = URL_SAFE_NO_PAD
        .decode(seed)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a 24-byte seed"))?;
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let packed_mib: usize = std::env::var("PACKED_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192);
    let options = Options::default().packed_cache_bytes(packed_mib << 20);
    let m = measure_store(Path::new(dir), count, &seed, Duration::from_secs(seconds), options)?;
    print!(
        "{:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}",
        m.opened.as_secs_f64(),
        m.rss as f64 / 1048576.0,
        m.rss as f64 / count as f64,
        m.hot,
        m.first,
        m.uniform,
        m.create,
    );
    Ok(())
}

/// What [`measure_store`] found.
struct Measured {
    opened: Duration,
    /// Resident bytes the open store added (after every verify run).
    rss: u64,
    hot: f64,
    first: f64,
    uniform: f64,
    create: f64,
}

/// Opens the store in `dir` (loaded by [`load`] with `count` sessions and
/// `seed`) with `options` and measures it, each timed rate over `run`.
fn measure_store(dir: &Path, count: u64, seed: &[u8; 24], run: Duration, options: Options) -> anyhow::Result<Measured> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let before = rss_bytes()?;
    let start = Instant::now();
    let store = Arc::new(EmbeddedStore::open_with(dir, options)?);
    let opened = start.elapsed();
    let policy = Policy {
        idle_timeout: Duration::from_secs(24 * 3600),
        absolute_timeout: Duration::from_secs(24 * 3600),
        touch_interval: Duration::from_secs(3600),
        // The touch interval must be shorter than every idle timeout, a
        // visitor's too (the runs are signed-in sessions only).
        anonymous_idle_timeout: Duration::from_secs(2 * 3600),
        ..Policy::default()
    };
    let manager = SessionManager::builder(Arc::clone(&store) as Arc<dyn SessionStore>)
        .policy(policy)
        .build()?;
    let hot_set = count.min(HOT);
    // Each rate after an untimed run of the same kind, so the hot set is in
    // the record cache and the uniform run meets the cache as it stays.
    rt.block_on(verify_rate(&manager, seed, hot_set, run));
    let hot = rt.block_on(verify_rate(&manager, seed, hot_set, run));
    let first = rt.block_on(verify_each(&manager, seed, count));
    rt.block_on(verify_rate(&manager, seed, count, run));
    let uniform = rt.block_on(verify_rate(&manager, seed, count, run));
    let rss = rss_bytes()?.saturating_sub(before);
    let create = rt.block_on(create_rate(&manager, run));
    drop(manager);
    Arc::into_inner(store).context("no other handle")?.close()?;
    Ok(Measured {
        opened,
        rss,
        hot,
        first,
        uniform,
        create,
    })
}

/// Verifies per second over tokens `0..range`, drawn uniformly.
async fn verify_rate(manager: &SessionManager, seed: &[u8; 24], range: u64, run: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for t in 0..TASKS as u64 {
        let (manager, done, seed) = (manager.clone(), Arc::clone(&done), *seed);
        tasks.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ t;
            while Instant::now() < until {
                let token = token(&seed, splitmix(&mut state) % range);
                manager
                    .verify(token.expose_secret(), None)
                    .await
                    .expect("a live session");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a verify task");
    }
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

/// Verifies per second over every token `0..count` once, in order.
async fn verify_each(manager: &SessionManager, seed: &[u8; 24], count: u64) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS as u64 {
        let (manager, seed) = (manager.clone(), *seed);
        tasks.push(tokio::spawn(async move {
            for index in (t..count).step_by(TASKS) {
                let token = token(&seed, index);
                manager
                    .verify(token.expose_secret(), None)
                    .await
                    .expect("a live session");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a verify task");
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Durable creates per second.
async fn create_rate(manager: &SessionManager, run: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (manager, done) = (manager.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let subject = Subject::new(format!("new-{t}")).expect("a subject");
            while Instant::now() < until {
                manager
                    .create(&subject, CreateOptions::default())
                    .await
                    .expect("a create");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a create task");
    }
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

/// A small, fast PRNG step (SplitMix64): enough to spread lookups.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example runs end to end on a small store (CI builds examples
    /// but runs none; this one once broke unnoticed when the policy's
    /// checks grew).
    #[test]
    fn a_small_run_loads_and_measures() {
        let dir = tempfile::tempdir().unwrap();
        let seed = [7u8; 24];
        let (rate, bytes) = load(dir.path(), 2_000, &seed).unwrap();
        assert!(rate > 0.0 && bytes > 0);
        let options = Options::default().packed_cache_bytes(1 << 20);
        let m = measure_store(dir.path(), 2_000, &seed, Duration::from_millis(100), options).unwrap();
        assert!(m.hot > 0.0 && m.first > 0.0 && m.uniform > 0.0 && m.create > 0.0);
    }
}
