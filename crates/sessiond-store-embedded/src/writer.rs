//! The single writer: one OS thread that owns every write transaction and
//! commits concurrent writes together (group commit).
//!
//! Callers queue an [`Op`] with a reply channel and wait. The thread takes
//! the first queued op, then everything else already queued (up to
//! [`MAX_BATCH`]), applies them one after another in one transaction and
//! commits once; only after the commit returns does it answer each caller.
//! An fsync costs the same for one write as for a hundred, so throughput
//! grows with the number of concurrent callers.
//!
//! It is a plain `std::thread`, not a tokio task: commits block on the disk,
//! and the store must work whatever runtime (or none) its callers use.
//!
//! # Touches
//!
//! Touches (sliding expiry) are split from the other writes of a batch and
//! committed first with `Durability::None`: visible to every read at once,
//! but not fsynced, so a verify that touches never waits for the disk. They
//! become durable with the next durable commit, or at the latest after
//! [`TOUCH_FLUSH_AFTER`] by an empty durable commit. A crash can lose them,
//! which is safe: redb recovers to the last durable commit, where that
//! record has its *previous* `idle_expires_at`, which is earlier than the
//! touched one (a touch only slides the deadline forward). The one touch
//! that would move a deadline earlier (a shortened idle timeout) is
//! committed durably instead, so a crash never makes a session live longer.
//!
//! Reordering touches before the other writes of their batch is sound: no
//! op in a batch has been acknowledged yet, so they are concurrent, and any
//! order is a valid serial order.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use sessiond_core::StoreError;
use tokio::sync::oneshot;

use crate::cache::Cache;
use crate::error::{engine, writer_stopped};
use crate::ops::{Done, Op, Outcome};
use crate::tables::Tables;

/// Most ops in one transaction: bounds the latency of the last one in a
/// batch and the memory a transaction holds.
const MAX_BATCH: usize = 1024;

/// Longest time a touch stays non-durable.
const TOUCH_FLUSH_AFTER: Duration = Duration::from_secs(1);

struct Command {
    op: Op,
    reply: oneshot::Sender<Outcome>,
}

/// The handle to the writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.op.fmt(f)
    }
}

impl Writer {
    /// Starts the writer thread over `db`.
    pub(crate) fn spawn(db: Arc<Database>, cache: Arc<Cache>) -> std::io::Result<Self> {
        let (queue, commands) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sessiond-store-writer".into())
            .spawn(move || run(&WriteSide { db, cache }, &commands))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `op` and waits until it is committed (durably, unless it is a
    /// touch) or refused.
    pub(crate) async fn submit(&self, op: Op) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or_else(writer_stopped)?;
        queue.send(Command { op, reply }).map_err(|_| writer_stopped())?;
        // A dropped reply means the thread died before answering.
        answer.await.map_err(|_| writer_stopped())?
    }

    /// False once the thread has ended (after `stop`, or if it died).
    pub(crate) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops accepting writes, lets the thread finish what is queued and
    /// make everything durable, and waits for it. Idempotent.
    pub(crate) fn stop(&mut self) -> Result<(), StoreError> {
        drop(self.queue.take());
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| writer_stopped())?,
            None => Ok(()),
        }
    }
}

/// What the writer thread owns: the database's write side and the cache
/// it keeps coherent.
struct WriteSide {
    db: Arc<Database>,
    cache: Arc<Cache>,
}

fn run(side: &WriteSide, commands: &mpsc::Receiver<Command>) -> Result<(), StoreError> {
    // Set while some commit is not yet durable (only touches are ever left so).
    let mut undurable_since: Option<Instant> = None;
    loop {
        let first = match undurable_since {
            None => match commands.recv() {
                Ok(command) => command,
                Err(mpsc::RecvError) => return Ok(()),
            },
            Some(since) => match commands.recv_timeout(TOUCH_FLUSH_AFTER.saturating_sub(since.elapsed())) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    undurable_since = flush(side).map_or(undurable_since, |()| None);
                    continue;
                }
                // Every handle is gone: graceful shutdown makes touches durable.
                Err(RecvTimeoutError::Disconnected) => return flush(side),
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let (touches, writes): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| c.op.is_touch());
        for (part, durability) in [(touches, Durability::None), (writes, Durability::Immediate)] {
            match commit(side, part, durability) {
                Committed::Durably => undurable_since = None,
                Committed::NotDurably => {
                    undurable_since.get_or_insert_with(Instant::now);
                }
                Committed::Nothing => {}
            }
        }
        if undurable_since.is_some_and(|since| since.elapsed() >= TOUCH_FLUSH_AFTER) {
            undurable_since = flush(side).map_or(undurable_since, |()| None);
        }
    }
}

/// What the last commit that wrote anything left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committed {
    /// Durable, and so is every commit before it.
    Durably,
    /// Visible but not yet on disk.
    NotDurably,
    /// Nothing was written.
    Nothing,
}

/// Applies a batch in one transaction, commits it, and answers every
/// caller.
///
/// If the transaction fails as a whole (an engine error part-way), it is
/// dropped (redb rolls it back) and each op is retried alone, so one op that
/// trips the engine does not fail the ops that happened to share its batch.
fn commit(side: &WriteSide, batch: Vec<Command>, durability: Durability) -> Committed {
    if batch.is_empty() {
        return Committed::Nothing;
    }
    match apply_all(side, &batch, durability) {
        Ok((outcomes, durable)) => {
            for (command, outcome) in batch.into_iter().zip(outcomes) {
                // The caller may have gone away (request cancelled); the
                // write stands either way.
                let _ = command.reply.send(outcome);
            }
            if durable {
                Committed::Durably
            } else {
                Committed::NotDurably
            }
        }
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, ops = batch.len(), "batch failed; retrying its writes one by one");
            let mut last = Committed::Nothing;
            for command in batch {
                match commit(side, vec![command], durability) {
                    Committed::Nothing => {}
                    wrote => last = wrote,
                }
            }
            last
        }
        Err(error) => {
            if let Some(command) = batch.into_iter().next() {
                let _ = command.reply.send(Err(error));
            }
            Committed::Nothing
        }
    }
}

fn apply_all(side: &WriteSide, batch: &[Command], durability: Durability) -> Result<(Vec<Outcome>, bool), StoreError> {
    let mut txn = side.db.begin_write().map_err(engine)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut durable = matches!(durability, Durability::Immediate);
    let changes = {
        let mut tables = Tables::open(&txn)?;
        for command in batch {
            let outcome = command.op.apply(&mut tables)?;
            if matches!(outcome, Ok(Done::Touched { shortened: true, .. })) {
                durable = true;
            }
            outcomes.push(outcome);
        }
        std::mem::take(&mut tables.changes)
    };
    let level = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(level).map_err(engine)?;
    // The cache protocol of `cache.rs`: invalidate, commit, publish.
    side.cache.before_commit(&changes);
    let committed = txn.commit().map_err(engine);
    side.cache.after_commit(changes, committed.is_ok());
    committed?;
    Ok((outcomes, durable))
}

/// An empty durable commit: makes every earlier non-durable one durable.
fn flush(side: &WriteSide) -> Result<(), StoreError> {
    let result = side
        .db
        .begin_write()
        .map_err(engine)
        .and_then(|txn| txn.commit().map_err(engine));
    if let Err(error) = &result {
        tracing::error!(%error, "could not make touches durable; will retry");
    }
    result
}
