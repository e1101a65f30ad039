//! The audit event log: every lifecycle event, kept in memory for queries
//! and appended to `events.jsonl` in the data directory so it survives a
//! restart, within a retention bound (count per tenant, and age).
//!
//! Each tenant has its own bound, so no tenant's traffic can push another
//! tenant's events out; and failures that name no session, which anyone
//! can cause at will, are counted per client address and minute rather
//! than recorded one by one ([`crate::failure_tally`]).
//!
//! `emit` never blocks the request: it appends to the in-memory ring and
//! hands the event to a writer thread through a bounded channel; if the
//! writer falls behind, the event is still queryable but not persisted, and
//! `sessiond_events_dropped_total` counts it.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sessiond_core::{Clock, Event, EventSink, SessionId, Subject, Tenant};

use crate::failure_tally::FailureTally;

const FILE_NAME: &str = "events.jsonl";
const CHANNEL_DEPTH: usize = 65_536;

/// The newest events of each tenant, at most `max_events` each.
#[derive(Debug, Default, Clone)]
struct Rings {
    by_tenant: HashMap<Tenant, VecDeque<Event>>,
}

impl Rings {
    fn push(&mut self, event: Event, max_events: usize) {
        let ring = self.by_tenant.entry(event.tenant.clone()).or_default();
        ring.push_back(event);
        if ring.len() > max_events {
            ring.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.by_tenant.values().map(VecDeque::len).sum()
    }

    /// Every event, each tenant's in order.
    fn iter(&self) -> impl Iterator<Item = &Event> {
        self.by_tenant.values().flatten()
    }
}

/// Bounded, persisted audit log.
#[derive(Debug)]
pub struct EventLog {
    rings: Mutex<(Rings, FailureTally)>,
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
        let mut rings = Rings::default();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                // A torn last line after a crash is skipped, not fatal.
                let Ok(event) = serde_json::from_str::<Event>(&line?) else {
                    continue;
                };
                if now - event.at <= retention {
                    rings.push(event, max_events);
                }
            }
        }
        compact(&path, &rings)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(&path)?;
        let tail = rings.clone();
        let handle = std::thread::Builder::new()
            .name("sessiond-events".into())
            .spawn(move || write_events(rx, file, path, max_events, tail))?;
        Ok(Arc::new(Self {
            rings: Mutex::new((rings, FailureTally::default())),
            max_events,
            retention,
            clock,
            writer: Mutex::new(Some((tx, handle))),
        }))
    }

    /// Events of `tenant` matching `query`, newest first.
    pub fn query(&self, tenant: &Tenant, query: &EventQuery) -> Vec<Event> {
        let now = self.clock.now();
        let cutoff = now - self.retention;
        let mut guard = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        // Counts of windows that ended since the last event are recorded
        // first, so a quiet log still shows them.
        let ended = guard.1.sweep(now);
        drop(guard);
        for event in ended {
            self.record(event);
        }
        let guard = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ring) = guard.0.by_tenant.get(tenant) else {
            return Vec::new();
        };
        ring.iter()
            .rev()
            .take_while(|e| e.at >= cutoff)
            .filter(|e| query.subject.is_none() || e.subject == query.subject)
            .filter(|e| query.session_id.is_none() || e.session_id == query.session_id)
            .take(query.limit)
            .cloned()
            .collect()
    }

    /// Stops the writer after it has written everything queued (and the
    /// counts of the open failure windows).
    pub fn close(&self) {
        let counted = self.rings.lock().unwrap_or_else(|p| p.into_inner()).1.drain();
        for event in counted {
            self.record(event);
        }
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((tx, handle)) = writer {
            drop(tx);
            if handle.join().is_err() {
                tracing::error!("event writer thread panicked");
            }
        }
    }

    /// Persists and keeps one event.
    fn record(&self, event: Event) {
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
        let mut guard = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.push(event, self.max_events);
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: Event) {
        let reason = event.kind.reason().unwrap_or("");
        metrics::counter!("sessiond_events_total", "kind" => event.kind.name(), "reason" => reason).increment(1);
        let admitted = self.rings.lock().unwrap_or_else(|p| p.into_inner()).1.admit(event);
        for event in admitted {
            self.record(event);
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn compact(path: &PathBuf, rings: &Rings) -> std::io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?,
    );
    for event in rings.iter() {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Appends events in batches; when the file holds twice what is retained,
/// rewrites it with the newest `max_events` of each tenant.
fn write_events(rx: Receiver<Event>, file: File, path: PathBuf, max_events: usize, mut tail: Rings) {
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
            tail.push(event, max_events);
            written += 1;
        }
        if let Err(error) = out.flush() {
            tracing::error!(%error, "writing the event log failed");
        }
        if written >= tail.len().max(max_events).saturating_mul(2).max(1) {
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

#[cfg(test)]
mod tests {
    use sessiond_core::{ClientInfo, EventKind, Rejection};
    use sessiond_testkit::FakeClock;

    use super::*;

    fn event(clock: &FakeClock, tenant: &str, kind: EventKind, ip: &str) -> Event {
        Event {
            at: clock.now(),
            kind,
            tenant: Tenant::new(tenant).unwrap(),
            session_id: None,
            subject: None,
            client: Some(ClientInfo {
                ip: Some(ip.to_owned()),
                user_agent: None,
            }),
            count: 1,
        }
    }

    fn kinds(log: &EventLog, tenant: &str) -> Vec<(&'static str, u32)> {
        let query = EventQuery {
            limit: 1_000,
            ..EventQuery::default()
        };
        log.query(&Tenant::new(tenant).unwrap(), &query)
            .iter()
            .map(|e| (e.kind.name(), e.count))
            .collect()
    }

    /// The review's reproduction, at a smaller bound: another tenant's
    /// anonymous failures once pushed a tenant's own events out.
    #[test]
    fn one_tenants_failures_leave_another_tenants_events_alone() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::default();
        let log = EventLog::open(dir.path(), 10, Duration::from_secs(3600), Arc::new(clock.clone())).unwrap();
        log.emit(event(&clock, "shop", EventKind::Created, "192.0.2.1"));
        log.emit(event(
            &clock,
            "shop",
            EventKind::Revoked(sessiond_core::RevokeReason::Logout),
            "192.0.2.1",
        ));
        for i in 0..1_200u32 {
            let ip = format!("198.51.100.{}", i % 3);
            log.emit(event(&clock, "blog", EventKind::VerifyFailed(Rejection::Unknown), &ip));
        }
        assert_eq!(kinds(&log, "shop"), [("revoked", 1), ("created", 1)]);
        // Three addresses: one event each so far, the rest counted.
        assert_eq!(kinds(&log, "blog"), [("verify_failed", 1); 3]);
        clock.advance(Duration::from_secs(61));
        let blog = kinds(&log, "blog");
        assert_eq!(blog.len(), 6, "{blog:?}");
        assert_eq!(blog.iter().map(|(_, n)| n).sum::<u32>(), 1_200);
        // Each tenant's events survive a restart.
        log.close();
        drop(log);
        let log = EventLog::open(dir.path(), 10, Duration::from_secs(3600), Arc::new(clock.clone())).unwrap();
        assert_eq!(kinds(&log, "shop"), [("revoked", 1), ("created", 1)]);
        assert_eq!(kinds(&log, "blog").len(), 6);
    }

    #[test]
    fn each_tenant_keeps_at_most_max_events() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::default();
        let log = EventLog::open(dir.path(), 5, Duration::from_secs(3600), Arc::new(clock.clone())).unwrap();
        for _ in 0..20 {
            log.emit(event(&clock, "a", EventKind::Touched, "192.0.2.1"));
            log.emit(event(&clock, "b", EventKind::Rotated, "192.0.2.1"));
        }
        assert_eq!(kinds(&log, "a"), [("touched", 1); 5]);
        assert_eq!(kinds(&log, "b"), [("rotated", 1); 5]);
    }
}
