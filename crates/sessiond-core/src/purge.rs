//! The background task that reclaims expired records.
//!
//! Expiry never depends on it (every read checks deadlines); it only keeps
//! the store from growing. It works in bounded batches so a large backlog
//! never holds a store's writer for long, and it stops when asked.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::manager::SessionManager;

/// Most batches run back to back in one round; the rest waits for the next
/// tick so a huge backlog cannot starve other writers.
const MAX_BATCHES_PER_ROUND: usize = 64;

/// A running purge task; see [`spawn_purger`].
#[derive(Debug)]
pub struct PurgeTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl PurgeTask {
    /// Asks the task to stop and waits until it has (a batch in progress
    /// finishes first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.handle.await {
            tracing::warn!(%error, "purge task ended abnormally");
        }
    }
}

/// Starts a task on the current tokio runtime that, every `every`, removes
/// expired records in batches of `batch` until none are left (or a round's
/// bound is reached).
pub fn spawn_purger(manager: SessionManager, every: Duration, batch: usize) -> PurgeTask {
    let (stop, mut stopped) = watch::channel(false);
    let batch = batch.max(1);
    let handle = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped.changed() => return,
            }
            for _ in 0..MAX_BATCHES_PER_ROUND {
                if *stopped.borrow() {
                    return;
                }
                match manager.purge_expired(batch).await {
                    Ok(n) if n < batch => break,
                    Ok(_) => tokio::task::yield_now().await,
                    Err(error) => {
                        tracing::warn!(%error, "purging expired sessions failed; will retry");
                        break;
                    }
                }
            }
        }
    });
    PurgeTask { stop, handle }
}
