//! The audit event log: every lifecycle event, kept in memory for queries
//! and appended to `events.jsonl` in the data directory so it survives a
//! restart, within a retention bound (count and age).
//!
//! `emit` never blocks the request: it appends to the in-memory ring and
//! hands the event to a writer thread through a bounded channel; if the
//! writer falls behind, the event is still queryable but not persisted, and
//! `sessiond_events_dropped_total` counts it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sessiond_core::{Clock, Event, EventSink, SessionId, Subject, Tenant};

const FILE_NAME: &str = "events.jsonl";
const CHANNEL_DEPTH: usize = 65_536;

/// Bounded, persisted audit log.
#[derive(Debug)]
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
    max_events: usize,
    retention: Duration,
    clock: Arc<dyn Clock>,
    writer: Mutex<Option<(SyncSender<Event>, JoinHandle<()>)>>,
}

/// A query over the log.
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    /// Only this subject.
    pub subject: Option<Subject>,
    /// Only this session.
    pub session_id: Option<SessionId>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl EventLog {
    /// Opens the log in `dir`: loads the retained tail of the file, rewrites
    /// the file to just that (so it never grows without bound across
    /// restarts) and starts the writer.
    pub fn open(
        dir: &Path,
        max_events: usize,
        retention: Duration,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let now = clock.now();
        let mut ring = VecDeque::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                // A torn last line after a crash is skipped, not fatal.
                let Ok(event) = serde_json::from_str::<Event>(&line?) else {
                    continue;
                };
                if now - event.at <= retention {
                    ring.push_back(event);
                    if ring.len() > max_events {
                        ring.pop_front();
                    }
                }
            }
        }
        compact(&path, &ring)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(&path)?;
        let tail = ring.clone();
        let handle = std::thread::Builder::new()
            .name("sessiond-events".into())
            .spawn(move || write_events(rx, file, path, max_events, tail))?;
        Ok(Arc::new(Self {
            ring: Mutex::new(ring),
            max_events,
            retention,
            clock,
            writer: Mutex::new(Some((tx, handle))),
        }))
    }

    /// Events of `tenant` matching `query`, newest first.
    pub fn query(&self, tenant: &Tenant, query: &EventQuery) -> Vec<Event> {
        let cutoff = self.clock.now() - self.retention;
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .rev()
            .take_while(|e| e.at >= cutoff)
            .filter(|e| &e.tenant == tenant)
            .filter(|e| query.subject.is_none() || e.subject == query.subject)
            .filter(|e| query.session_id.is_none() || e.session_id == query.session_id)
            .take(query.limit)
            .cloned()
            .collect()
    }

    /// Stops the writer after it has written everything queued.
    pub fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((tx, handle)) = writer {
            drop(tx);
            if handle.join().is_err() {
                tracing::error!("event writer thread panicked");
            }
        }
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: Event) {
        let reason = event.kind.reason().unwrap_or("");
        metrics::counter!("sessiond_events_total", "kind" => event.kind.name(), "reason" => reason).increment(1);
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tx, _)) = writer.as_ref() {
            match tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    metrics::counter!("sessiond_events_dropped_total").increment(1);
                }
            }
        }
        drop(writer);
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.push_back(event);
        if ring.len() > self.max_events {
            ring.pop_front();
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn compact(path: &PathBuf, ring: &VecDeque<Event>) -> std::io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?,
    );
    for event in ring {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Appends events in batches; when the file holds twice the bound, rewrites
/// it with the newest `max_events`.
fn write_events(rx: Receiver<Event>, file: File, path: PathBuf, max_events: usize, mut tail: VecDeque<Event>) {
    let mut out = BufWriter::new(file);
    let mut written = tail.len();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(4096));
        for event in batch {
            let line = serde_json::to_writer(&mut out, &event).map_err(std::io::Error::from);
            if line.and_then(|()| out.write_all(b"\n")).is_err() {
                metrics::counter!("sessiond_events_dropped_total").increment(1);
            }
            tail.push_back(event);
            if tail.len() > max_events {
                tail.pop_front();
            }
            written += 1;
        }
        if let Err(error) = out.flush() {
            tracing::error!(%error, "writing the event log failed");
        }
        if written >= max_events.saturating_mul(2).max(1) {
            match compact(&path, &tail).and_then(|()| OpenOptions::new().append(true).open(&path)) {
                Ok(file) => {
                    out = BufWriter::new(file);
                    written = tail.len();
                }
                Err(error) => tracing::error!(%error, "compacting the event log failed"),
            }
        }
    }
    if let Err(error) = out.flush() {
        tracing::error!(%error, "flushing the event log failed");
    }
}
