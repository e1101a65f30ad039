//! Token guessing: many tokens that name no session, presented for one
//! client address within a minute, counted over every node and recorded
//! as one `anomaly` event (reason `token_guessing`) per address and
//! minute. The counting is [`crate::burst_watch`]'s.

use std::sync::{Arc, Weak};

use sessiond_core::{AnomalyReason, CounterStore, Event, EventSink};

use crate::burst_watch::{BurstWatch, Failure};

/// This node's side of the count.
#[derive(Debug, Clone)]
pub struct GuessWatch(BurstWatch);

impl GuessWatch {
    /// Starts the counting task over `counters`; an anomaly is recorded
    /// through `events` when an address reaches `threshold` (at least 1)
    /// in a minute. `events` is held weakly: the log holds this watch, and
    /// the task ends when the log is gone.
    pub fn start(counters: Arc<dyn CounterStore>, events: Weak<dyn EventSink>, threshold: u32) -> Self {
        Self(BurstWatch::start(
            counters,
            events,
            AnomalyReason::TokenGuessing,
            threshold,
        ))
    }

    /// Counts `event` if it is an anonymous failure with a client address.
    pub fn note(&self, event: &Event) {
        if !event.is_anonymous_failure() {
            return;
        }
        let Some(ip) = event.client.as_ref().and_then(|c| c.ip.clone()) else {
            return;
        };
        self.0.note(Failure {
            tenant: event.tenant.clone(),
            at: event.at,
            ip: Some(ip),
            account: None,
        });
    }
}
