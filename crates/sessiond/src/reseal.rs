//! `sessiond store reseal`: rewrites every session still sealed by a key
//! other than the sealing key (or stored in clear) under the sealing key,
//! so the old key can leave `key_files`.
//!
//! Over Redis or PostgreSQL it runs beside serving nodes: a reseal keeps
//! each record's version and retries a record a node changes meanwhile
//! (see `SealedSessions::reseal`). Put the new key first in every node's
//! configuration before running it, or a node still sealing with the old
//! key undoes its work. An embedded store is resealed with the server
//! stopped (the store takes one process).

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use sessiond_core::{ResealError, Resealed, SealedSessions, SessionStore as _};
use sessiond_stores::StoreOpenError;

use crate::config::Config;

/// Ids read per page of the walk.
const PAGE: usize = 500;

/// Runs the reseal; fails when a record does not open (it is named, and
/// left as it was).
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let opened = match crate::data_keys::open_store(config).await {
        Ok(opened) => opened,
        Err(error) if matches!(error.downcast_ref(), Some(StoreOpenError::InUse { .. })) => {
            return Err(error.context("stop the server first: an embedded store is resealed while no server holds it"));
        }
        Err(error) => return Err(error),
    };
    let sealer = opened.sealer().clone();
    let Some(key) = sealer.keyring().map(|k| k.sealing_key()) else {
        anyhow::bail!("encryption is off ([store.encryption] encryption = \"off\"): there is no key to reseal with");
    };
    let sessions = SealedSessions::new(opened.engine_sessions(), sealer);
    let total = count(&sessions).await?;
    let mut tally = Tally::new(total);
    let mut cursor: Option<String> = None;
    loop {
        let page = sessions.scan_ids(cursor.as_deref(), PAGE).await?;
        for id in &page.ids {
            match sessions.reseal(id).await {
                Ok(outcome) => tally.add(outcome),
                Err(ResealError::Unopenable { id, source }) => {
                    tally.clear_line();
                    eprintln!("session {id} does not open and is left as it is: {source}");
                    tally.unopenable += 1;
                }
                Err(other) => return Err(other).context("reseal failed; run it again to continue"),
            }
        }
        tally.show();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    tally.clear_line();
    drop(sessions);
    // The access-token signing keys are one record, sealed like session
    // data: rewritten by the same maintenance every node runs.
    let keys = sessiond_core::SigningKeys::new(
        opened.secrets(),
        opened.sealer().clone(),
        std::sync::Arc::new(sessiond_core::SystemClock),
        config.tokens.schedule()?,
    );
    let keys_outcome = keys
        .maintain()
        .await
        .context("the access-token signing keys do not open: keep the key that sealed them in key_files")?;
    drop(keys);
    opened.shutdown().context("closing the store failed")?;
    println!(
        "resealed {} of {} sessions under data key {key}; {} already were; {} ended meanwhile; {} changed \
         by other writes throughout (run again); {} do not open",
        tally.rewritten, tally.seen, tally.current, tally.gone, tally.busy, tally.unopenable
    );
    if keys_outcome == sessiond_core::Maintenance::Resealed {
        println!("resealed the access-token signing keys under data key {key}");
    }
    if tally.unopenable > 0 {
        anyhow::bail!(
            "{} sessions do not open: keep the key that sealed them in key_files, or they stay unreadable",
            tally.unopenable
        );
    }
    if tally.busy > 0 {
        anyhow::bail!("{} sessions changed on every attempt; run the reseal again", tally.busy);
    }
    Ok(())
}

/// How many records there are, for the progress bar: a walk over ids alone.
async fn count(sessions: &SealedSessions) -> anyhow::Result<u64> {
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let page = sessions.scan_ids(cursor.as_deref(), PAGE).await?;
        total += page.ids.len() as u64;
        cursor = page.next;
        if cursor.is_none() {
            return Ok(total);
        }
    }
}

/// Counts, and the progress bar on stderr when it is a terminal (a line
/// per tenth otherwise, so logs of a long run still show progress).
struct Tally {
    total: u64,
    seen: u64,
    rewritten: u64,
    current: u64,
    gone: u64,
    busy: u64,
    unopenable: u64,
    terminal: bool,
    last_tenth: u64,
}

impl Tally {
    fn new(total: u64) -> Self {
        Self {
            total,
            seen: 0,
            rewritten: 0,
            current: 0,
            gone: 0,
            busy: 0,
            unopenable: 0,
            terminal: std::io::stderr().is_terminal(),
            last_tenth: 0,
        }
    }

    fn add(&mut self, outcome: Resealed) {
        self.seen += 1;
        match outcome {
            Resealed::Rewritten => self.rewritten += 1,
            Resealed::Current => self.current += 1,
            Resealed::Gone => self.gone += 1,
            Resealed::Busy => self.busy += 1,
        }
    }

    fn show(&mut self) {
        let done = (self.seen + self.unopenable).min(self.total.max(1));
        let total = self.total.max(done).max(1);
        if self.terminal {
            const WIDTH: u64 = 30;
            let filled = done * WIDTH / total;
            let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
            eprint!(
                "\r[{bar}] {:>3}% {done}/{total} sessions, {} resealed",
                done * 100 / total,
                self.rewritten
            );
            let _ = std::io::stderr().flush();
        } else {
            let tenth = done * 10 / total;
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                eprintln!("{}% {done}/{total} sessions, {} resealed", tenth * 10, self.rewritten);
            }
        }
    }

    fn clear_line(&self) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
    }
}
