//! Token guessing: many tokens that name no session, presented for one
//! client address within a minute, counted over every node.
//!
//! Each anonymous verify failure with a client address is counted in the
//! store ([`CounterStore`], key `guess:<minute>:<tenant>:<address>`), so
//! a guesser that spreads its attempts over the nodes behind a load
//! balancer still adds up. The failure that brings the count to the
//! threshold records one `anomaly` event (reason `token_guessing`): the
//! store counts atomically, so exactly one failure, on one node, sees that
//! count.
//!
//! The counting never slows a request: failures go through a bounded
//! queue to one task per node (a full queue drops them, counted in
//! `sessiond_guess_notes_dropped_total`). Once a window has reached the
//! threshold, this node stops counting it: a flood costs the store at most
//! the threshold's worth of calls per address and minute, plus one per
//! node.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sessiond_core::{
    AnomalyReason, ClientInfo, CounterKey, CounterRule, CounterStore, Event, EventKind, EventSink, Reserved, Tenant,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Failures waiting to be counted; more are dropped.
const QUEUE_DEPTH: usize = 4096;

/// The length of a counting window.
const WINDOW: Duration = Duration::from_secs(60);

/// A failure to count.
#[derive(Debug)]
struct Note {
    tenant: Tenant,
    ip: String,
    at: OffsetDateTime,
}

/// This node's side of the count: hands failures to its task.
#[derive(Debug, Clone)]
pub struct GuessWatch {
    queue: mpsc::Sender<Note>,
}

impl GuessWatch {
    /// Starts the counting task over `counters`; an anomaly is recorded
    /// through `events` when a window reaches `threshold` (at least 1).
    /// `events` is held weakly: the log holds this watch, and the task ends
    /// when the log is gone.
    pub fn start(counters: Arc<dyn CounterStore>, events: Weak<dyn EventSink>, threshold: u32) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(count(receiver, counters, events, threshold.max(1)));
        Self { queue }
    }

    /// Counts `event` if it is an anonymous failure with a client address.
    pub fn note(&self, event: &Event) {
        if !event.is_anonymous_failure() {
            return;
        }
        let Some(ip) = event.client.as_ref().and_then(|c| c.ip.clone()) else {
            return;
        };
        let note = Note {
            tenant: event.tenant.clone(),
            ip,
            at: event.at,
        };
        if self.queue.try_send(note).is_err() {
            metrics::counter!("sessiond_guess_notes_dropped_total").increment(1);
        }
    }
}

/// The window a failure at `at` falls in.
fn window(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(60)
}

async fn count(
    mut receiver: mpsc::Receiver<Note>,
    counters: Arc<dyn CounterStore>,
    events: Weak<dyn EventSink>,
    threshold: u32,
) {
    // Never locks: a plain counter that forgets its window after the next.
    let rule = CounterRule {
        free: u32::MAX,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        forget_after: 2 * WINDOW,
    };
    // Windows this node knows have reached the threshold.
    let mut done: HashSet<(i64, Tenant, String)> = HashSet::new();
    let mut current = i64::MIN;
    while let Some(note) = receiver.recv().await {
        let minute = window(note.at);
        if minute > current {
            current = minute;
            done.retain(|(m, _, _)| *m >= minute - 1);
        }
        let seen = (minute, note.tenant.clone(), note.ip.clone());
        if done.contains(&seen) {
            continue;
        }
        let Ok(key) = CounterKey::new(format!("guess:{minute}:{}:{}", note.tenant.as_str(), note.ip)) else {
            continue;
        };
        let counted = match counters.reserve(&[(key, rule)], note.at).await {
            Ok(Reserved::Counted(counts)) => counts.first().copied().unwrap_or(0),
            Ok(Reserved::Locked(_)) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot count a verify failure for token-guessing detection");
                continue;
            }
        };
        if counted >= threshold {
            done.insert(seen);
        }
        if counted == threshold {
            let Some(events) = events.upgrade() else {
                return;
            };
            events.emit(Event {
                at: note.at,
                kind: EventKind::Anomaly(AnomalyReason::TokenGuessing),
                tenant: note.tenant,
                session_id: None,
                subject: None,
                client: Some(ClientInfo {
                    ip: Some(note.ip),
                    user_agent: None,
                    sealed: None,
                }),
                count: threshold,
            });
        }
    }
}
