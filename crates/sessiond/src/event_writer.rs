//! The event log's writer: one task per node that takes the events
//! [`EventLog`](crate::event_log::EventLog) queued, gives each its id and
//! appends them to the store in batches; and that bounds the store's log
//! by pruning it now and then.
//!
//! One task, so ids come from one generator in the order events were
//! queued (ids of one microsecond keep that order). A batch the store
//! refuses is dropped and counted in `sessiond_events_dropped_total`, as an
//! event that found the queue full is: the request that caused it was
//! answered long ago and cannot wait. After a refusal the writer drops what
//! comes for [`RETRY_AFTER`] before it tries again, so an outage costs one
//! attempt a second. The first failure of an outage is logged, and the
//! recovery, not every batch in between.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_core::{Clock, Event, EventIds, EventStore, Retention, StoredEvent};
use tokio::sync::{mpsc, oneshot};

use crate::failure_tally::FailureTally;

/// Events queued at most; past it, events are dropped and counted.
pub const QUEUE_DEPTH: usize = 65_536;
/// Most events in one append.
const BATCH: usize = 1_000;
/// How often counted anonymous failures whose window ended are recorded,
/// when nothing else happens.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the writer prunes the store (every tenant, every node: a prune
/// is idempotent, so nodes need not agree who does it).
pub const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// How long after a refused append the writer drops events without trying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the writer is asked to do, in queue order.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Record one event.
    Event(Event),
    /// Write everything queued before this (and ended failure windows),
    /// then answer.
    Flush(oneshot::Sender<()>),
    /// Write what is queued, prune, and answer how many events went.
    Prune(oneshot::Sender<u64>),
    /// Write everything, the counts of open failure windows too, answer,
    /// and stop.
    Close(oneshot::Sender<()>),
}

/// The bounds of the log.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most events kept per tenant.
    pub max_events: usize,
    /// Events older than this go.
    pub retention: Duration,
}

/// The writer task's state.
pub(crate) struct Writer {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) tally: Arc<Mutex<FailureTally>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) bounds: Bounds,
    pub(crate) ids: Arc<EventIds>,
    pending: Vec<Event>,
    /// Set while the store refuses appends: no append is tried before it,
    /// so a store that is down costs one attempt per [`RETRY_AFTER`], not
    /// one per batch (and a flush waits for no timeouts in a row).
    retry_at: Option<tokio::time::Instant>,
}

impl Writer {
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        tally: Arc<Mutex<FailureTally>>,
        clock: Arc<dyn Clock>,
        bounds: Bounds,
        ids: Arc<EventIds>,
    ) -> Self {
        Self {
            store,
            tally,
            clock,
            bounds,
            ids,
            pending: Vec::new(),
            retry_at: None,
        }
    }

    /// Runs until [`Msg::Close`], or until every sender is gone; either way
    /// writes what is queued first.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<Msg>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A node prunes when it starts (after an imported file, a long
        // stop), before it takes any message, then every PRUNE_EVERY.
        self.prune().await;
        let mut prune = tokio::time::interval_at(tokio::time::Instant::now() + PRUNE_EVERY, PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = queue.recv() => {
                    let Some(message) = message else {
                        self.finish().await;
                        return;
                    };
                    if self.handle(message, &mut queue).await.is_break() {
                        return;
                    }
                }
                _ = sweep.tick() => {
                    self.sweep();
                    self.write().await;
                }
                _ = prune.tick() => {
                    self.write().await;
                    self.prune().await;
                }
            }
        }
    }

    /// Handles `first` and whatever else is queued already, so events that
    /// arrived together are appended together.
    async fn handle(&mut self, first: Msg, queue: &mut mpsc::Receiver<Msg>) -> ControlFlow<()> {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Msg::Event(event) => {
                    self.pending.push(event);
                    if self.pending.len() >= BATCH {
                        self.write().await;
                    }
                }
                Msg::Flush(done) => {
                    self.sweep();
                    self.write().await;
                    // The asker may have given up waiting: nothing to do.
                    let _ = done.send(());
                }
                Msg::Prune(done) => {
                    self.write().await;
                    let _ = done.send(self.prune().await);
                }
                Msg::Close(done) => {
                    self.finish().await;
                    let _ = done.send(());
                    return ControlFlow::Break(());
                }
            }
            next = queue.try_recv().ok();
        }
        self.write().await;
        ControlFlow::Continue(())
    }

    /// Queues the counts of failure windows that ended.
    fn sweep(&mut self) {
        let ended = self
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep(self.clock.now());
        self.pending.extend(ended);
    }

    /// Writes everything, the counts of windows still open included.
    async fn finish(&mut self) {
        let open = self.tally.lock().unwrap_or_else(|p| p.into_inner()).drain();
        self.pending.extend(open);
        self.write().await;
    }

    /// Appends what is pending, in batches of at most [`BATCH`]; drops it
    /// (counted) while the store is failing.
    async fn write(&mut self) {
        if self.retry_at.is_some_and(|at| tokio::time::Instant::now() < at) {
            self.drop_pending();
            return;
        }
        while !self.pending.is_empty() {
            let take = self.pending.len().min(BATCH);
            // Ids are taken now, at the write, not at each event's `at`: a
            // queued event (or a failure window's count, written when the
            // minute ends) then sorts among the events committed with it,
            // so readers that follow the log by id with a settle time (the
            // event and revocation streams, webhooks) see it, instead of it
            // appearing behind their cursor. `at` keeps when it happened.
            let now = self.clock.now();
            let batch: Vec<StoredEvent> = self
                .pending
                .drain(..take)
                .map(|event| StoredEvent {
                    id: self.ids.next_id(now.max(event.at)),
                    event,
                })
                .collect();
            match self.store.append_events(&batch).await {
                Ok(()) => {
                    if self.retry_at.take().is_some() {
                        tracing::info!("audit events are written to the store again");
                    }
                }
                Err(error) => {
                    metrics::counter!("sessiond_events_dropped_total").increment(batch.len() as u64);
                    self.drop_pending();
                    if self.retry_at.is_none() {
                        tracing::error!(error = %error, source = ?std::error::Error::source(&error),
                            "cannot write audit events to the store; dropping them (counted in \
                             sessiond_events_dropped_total) until it recovers");
                    }
                    self.retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
                }
            }
        }
    }

    fn drop_pending(&mut self) {
        metrics::counter!("sessiond_events_dropped_total").increment(self.pending.len() as u64);
        self.pending.clear();
    }

    /// Prunes every tenant's events to the bounds; how many went.
    async fn prune(&mut self) -> u64 {
        let retention = Retention {
            max_events: self.bounds.max_events,
            older_than: self.clock.now() - self.bounds.retention,
        };
        match self.store.prune_events(None, retention).await {
            Ok(removed) => removed,
            Err(error) => {
                // The next prune catches up: pruning is idempotent.
                tracing::warn!(%error, "pruning audit events failed");
                0
            }
        }
    }
}
