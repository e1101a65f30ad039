//! The audit event log: every lifecycle event, kept in the store
//! ([`EventStore`]) so that `/v1/events` answers the same on every node,
//! within a retention bound (count per tenant, and age).
//!
//! Each tenant has its own bound, so no tenant's traffic can push another
//! tenant's events out; and failures that name no session, which anyone
//! can cause at will, are counted per client address and minute rather
//! than recorded one by one ([`crate::failure_tally`]).
//!
//! `emit` never blocks the request: it hands the event to the node's writer
//! task ([`crate::event_writer`]) through a bounded queue; the writer gives
//! it its id and appends it with the others queued in one batch. A full
//! queue, or a store that refuses a batch, drops events and counts them in
//! `sessiond_events_dropped_total`.
//!
//! A query first waits for the writer to write what this node queued, so a
//! node reads its own events at once; another node's appear once that
//! node's writer has written them (at once, unless it is behind).
//!
//! # What a crash loses
//!
//! Nothing of what a session write records: the node's managers are built
//! with [`EventLog::ids`], so the store writes those events in the same
//! atomic change as the sessions (see `sessiond_core::Audit`). What goes
//! through the queue are the events with no write of their own, refused
//! verifies and touches; those still queued when a node dies (`kill -9`,
//! power loss) are lost: normally the few of the last batch in flight, at
//! worst the whole queue ([`QUEUE_DEPTH`]) if the store was slow. A clean
//! stop (`close`) writes everything queued, the counts of open failure
//! windows included.

use std::sync::{Arc, Mutex};

use sessiond_core::{
    Clock, Event, EventFilter, EventIds, EventSink, EventStore, EventStoreError, RandomnessError, StoredEvent, Tenant,
};
use tokio::sync::{mpsc, oneshot};

pub use crate::event_writer::{Bounds, PRUNE_EVERY, QUEUE_DEPTH};
use crate::event_writer::{Msg, Writer};
use crate::failure_tally::FailureTally;
use crate::guess_watch::GuessWatch;

/// Bounded audit log in the store, with this node's writer.
#[derive(Debug)]
pub struct EventLog {
    ids: Arc<EventIds>,
    queue: mpsc::Sender<Msg>,
    tally: Arc<Mutex<FailureTally>>,
    store: Arc<dyn EventStore>,
    guesses: std::sync::OnceLock<GuessWatch>,
}

impl EventLog {
    /// Starts the writer task (on the current tokio runtime) over `store`.
    pub fn start(
        store: Arc<dyn EventStore>,
        bounds: Bounds,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, RandomnessError> {
        let ids = Arc::new(EventIds::new()?);
        let tally = Arc::new(Mutex::new(FailureTally::default()));
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer::new(Arc::clone(&store), Arc::clone(&tally), clock, bounds, Arc::clone(&ids));
        tokio::spawn(writer.run(receiver));
        Ok(Arc::new(Self {
            ids,
            queue,
            tally,
            store,
            guesses: std::sync::OnceLock::new(),
        }))
    }

    /// Counts anonymous verify failures per client address over every
    /// node, recording a `token_guessing` anomaly in this log when one
    /// address reaches `threshold` in a minute ([`crate::guess_watch`]).
    /// A second call changes nothing.
    pub fn watch_guesses(self: &Arc<Self>, counters: Arc<dyn sessiond_core::CounterStore>, threshold: u32) {
        let weak: std::sync::Weak<Self> = Arc::downgrade(self);
        let _ = self.guesses.set(GuessWatch::start(counters, weak, threshold));
    }

    /// This node's event ids, for `SessionManagerBuilder::store_events`:
    /// the store then writes session events with the sessions, numbered
    /// from the same sequence as the queued ones.
    pub fn ids(&self) -> Arc<EventIds> {
        Arc::clone(&self.ids)
    }

    /// Events of `tenant` matching `filter`, newest first, after this
    /// node's queued events are written.
    pub async fn query(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.flush().await;
        self.store.query_events(tenant, filter).await
    }

    /// Events of `tenant` matching `filter`, newest first, as the store
    /// holds them now, without waiting for this node's queue: for the kinds
    /// every engine stores in the same write as their change (`revoked`,
    /// `rotated`, ...), which are never queued.
    pub async fn query_written(
        &self,
        tenant: &Tenant,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.query_events(tenant, filter).await
    }

    /// Waits until everything queued so far (and the counts of failure
    /// windows that ended) has been written, or dropped by a failing store.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        // A writer that is gone has nothing left to write.
        if self.queue.send(Msg::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Prunes the store to the bounds now (the writer also does it every
    /// [`PRUNE_EVERY`]); how many events went.
    pub async fn prune_now(&self) -> u64 {
        let (done, removed) = oneshot::channel();
        if self.queue.send(Msg::Prune(done)).await.is_err() {
            return 0;
        }
        removed.await.unwrap_or(0)
    }

    /// Writes everything queued, and the counts of the open failure
    /// windows, then stops the writer. Events emitted afterwards are
    /// dropped and counted.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Msg::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }

    fn queue(&self, event: Event) {
        if self.queue.try_send(Msg::Event(event)).is_err() {
            metrics::counter!("sessiond_events_dropped_total").increment(1);
        }
    }
}

fn count(event: &Event) {
    let reason = event.kind.reason().unwrap_or("");
    metrics::counter!("sessiond_events_total", "kind" => event.kind.name(), "reason" => reason).increment(1);
}

impl EventSink for EventLog {
    fn stored(&self, event: &Event) {
        count(event);
    }

    fn emit(&self, event: Event) {
        count(&event);
        if let Some(guesses) = self.guesses.get() {
            guesses.note(&event);
        }
        let admitted = self.tally.lock().unwrap_or_else(|p| p.into_inner()).admit(event);
        for event in admitted {
            self.queue(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sessiond_core::{ClientInfo, EventKind, MemoryStore, Rejection, Retention, RevokeReason};
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
                sealed: None,
            }),
            count: 1,
        }
    }

    async fn kinds(log: &EventLog, tenant: &str) -> Vec<(&'static str, u32)> {
        let filter = EventFilter {
            limit: 1_000,
            ..EventFilter::default()
        };
        let found = log.query(&Tenant::new(tenant).unwrap(), &filter).await.unwrap();
        found.iter().map(|s| (s.event.kind.name(), s.event.count)).collect()
    }

    fn bounds(max_events: usize) -> Bounds {
        Bounds {
            max_events,
            retention: Duration::from_secs(3600),
        }
    }

    /// The review's reproduction, at a smaller bound: another tenant's
    /// anonymous failures once pushed a tenant's own events out.
    #[tokio::test]
    async fn one_tenants_failures_leave_another_tenants_events_alone() {
        let store = Arc::new(MemoryStore::new());
        let clock = FakeClock::default();
        let log = EventLog::start(store.clone(), bounds(10), Arc::new(clock.clone())).unwrap();
        log.emit(event(&clock, "shop", EventKind::Created, "192.0.2.1"));
        log.emit(event(
            &clock,
            "shop",
            EventKind::Revoked(RevokeReason::Logout),
            "192.0.2.1",
        ));
        for i in 0..1_200u32 {
            let ip = format!("198.51.100.{}", i % 3);
            log.emit(event(&clock, "blog", EventKind::VerifyFailed(Rejection::Unknown), &ip));
        }
        log.prune_now().await;
        assert_eq!(kinds(&log, "shop").await, [("revoked", 1), ("created", 1)]);
        // Three addresses: one event each so far, the rest counted.
        assert_eq!(kinds(&log, "blog").await, [("verify_failed", 1); 3]);
        clock.advance(Duration::from_secs(61));
        let blog = kinds(&log, "blog").await;
        assert_eq!(blog.len(), 6, "{blog:?}");
        assert_eq!(blog.iter().map(|(_, n)| n).sum::<u32>(), 1_200);
        // Another node's log over the same store reads the same events.
        log.close().await;
        let other = EventLog::start(store, bounds(10), Arc::new(clock.clone())).unwrap();
        assert_eq!(kinds(&other, "shop").await, [("revoked", 1), ("created", 1)]);
        assert_eq!(kinds(&other, "blog").await.len(), 6);
    }

    /// A failure window's count is written when its minute ends, up to a
    /// minute after its last failure: its id is taken at that write, so a
    /// reader that follows the log by id with a settle time (the event
    /// stream, webhooks) finds it after the cursor it holds by then.
    #[tokio::test]
    async fn a_failure_windows_count_sorts_at_its_write_not_at_its_last_failure() {
        let clock = FakeClock::default();
        let log = EventLog::start(Arc::new(MemoryStore::new()), bounds(100), Arc::new(clock.clone())).unwrap();
        for _ in 0..3 {
            log.emit(event(
                &clock,
                "blog",
                EventKind::VerifyFailed(Rejection::Unknown),
                "198.51.100.1",
            ));
        }
        let last_failure = clock.now();
        log.flush().await;
        clock.advance(Duration::from_secs(61));
        let settled = sessiond_core::EventId::first_at(clock.now() - Duration::from_secs(1));
        log.flush().await;
        let filter = EventFilter {
            limit: 100,
            ..EventFilter::default()
        };
        let found = log.query(&Tenant::new("blog").unwrap(), &filter).await.unwrap();
        let counted = found.iter().find(|s| s.event.count == 2).expect("the window's count");
        assert!(counted.id > settled, "{} is behind {settled}", counted.id);
        assert_eq!(counted.event.at, last_failure, "`at` keeps when it happened");
    }

    #[tokio::test]
    async fn each_tenant_keeps_at_most_max_events_and_ages_out() {
        let clock = FakeClock::default();
        let log = EventLog::start(Arc::new(MemoryStore::new()), bounds(5), Arc::new(clock.clone())).unwrap();
        for _ in 0..20 {
            log.emit(event(&clock, "a", EventKind::Touched, "192.0.2.1"));
            log.emit(event(&clock, "b", EventKind::Rotated, "192.0.2.1"));
        }
        log.flush().await;
        assert_eq!(kinds(&log, "a").await.len(), 20, "pruned before its time");
        log.prune_now().await;
        assert_eq!(kinds(&log, "a").await, [("touched", 1); 5]);
        assert_eq!(kinds(&log, "b").await, [("rotated", 1); 5]);
        clock.advance(Duration::from_secs(3601));
        log.emit(event(&clock, "a", EventKind::Created, "192.0.2.1"));
        assert_eq!(log.prune_now().await, 10);
        assert_eq!(kinds(&log, "a").await, [("created", 1)]);
        assert!(kinds(&log, "b").await.is_empty());
    }

    /// A memory store that can be taken down, and counts append attempts.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryStore,
        down: std::sync::atomic::AtomicBool,
        appends: std::sync::atomic::AtomicUsize,
    }

    impl Flaky {
        fn check(&self) -> Result<(), EventStoreError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(EventStoreError::Unavailable("down".into()));
            }
            Ok(())
        }
    }

    #[sessiond_core::async_trait]
    impl EventStore for Flaky {
        async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
            self.appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.check()?;
            self.inner.append_events(events).await
        }
        async fn query_events(
            &self,
            tenant: &Tenant,
            filter: &EventFilter,
        ) -> Result<Vec<StoredEvent>, EventStoreError> {
            self.check()?;
            self.inner.query_events(tenant, filter).await
        }
        async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
            self.check()?;
            self.inner.prune_events(tenant, retention).await
        }
    }

    /// A store that is down neither blocks `emit` nor wedges the writer: it
    /// is tried once, not once per batch, while down; flushes finish,
    /// queries say it is down; once it is back and the pause is over,
    /// events are written again.
    #[tokio::test(start_paused = true)]
    async fn a_failing_store_drops_events_without_blocking_and_recovers() {
        use std::sync::atomic::Ordering::SeqCst;
        let clock = FakeClock::default();
        let store = Arc::new(Flaky::default());
        store.down.store(true, SeqCst);
        let log = EventLog::start(store.clone(), bounds(5), Arc::new(clock.clone())).unwrap();
        for _ in 0..(QUEUE_DEPTH + 10) {
            log.emit(event(&clock, "a", EventKind::Touched, "192.0.2.1"));
        }
        log.flush().await;
        assert_eq!(
            store.appends.load(SeqCst),
            1,
            "the writer kept trying a store that is down"
        );
        let failed = log.query(&Tenant::new("a").unwrap(), &EventFilter::default()).await;
        assert!(failed.is_err_and(|e| e.is_unavailable()));
        assert_eq!(log.prune_now().await, 0);

        store.down.store(false, SeqCst);
        tokio::time::advance(crate::event_writer::RETRY_AFTER).await;
        log.emit(event(&clock, "a", EventKind::Created, "192.0.2.1"));
        assert_eq!(kinds(&log, "a").await, [("created", 1)]);
        log.close().await;
        log.close().await;
    }

    /// `close` writes what is still queued, and counted failures of a
    /// window that has not ended.
    #[tokio::test]
    async fn close_writes_everything_queued() {
        let store = Arc::new(MemoryStore::new());
        let clock = FakeClock::default();
        let log = EventLog::start(store.clone(), bounds(100), Arc::new(clock.clone())).unwrap();
        for _ in 0..4 {
            log.emit(event(
                &clock,
                "a",
                EventKind::VerifyFailed(Rejection::Malformed),
                "192.0.2.9",
            ));
        }
        log.emit(event(&clock, "a", EventKind::Created, "192.0.2.9"));
        log.close().await;
        let all = EventFilter {
            limit: 100,
            ..EventFilter::default()
        };
        let found = store.query_events(&Tenant::new("a").unwrap(), &all).await.unwrap();
        let counts: Vec<u32> = found.iter().map(|s| s.event.count).collect();
        assert_eq!(counts.iter().sum::<u32>(), 5, "{found:?}");
        assert_eq!(found.len(), 3);
    }
}
