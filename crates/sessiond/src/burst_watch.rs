//! Bursts: many failures of one kind for one client address, or against
//! one account, within a minute, counted over every node; each burst is
//! recorded as one `anomaly` event. Token guessing
//! ([`crate::guess_watch`]) and failed portal sign-ins ([`LoginBursts`])
//! are both counted here.
//!
//! Each failure is counted in the store ([`CounterStore`]), so failures
//! spread over the nodes behind a load balancer still add up. A counter's
//! key is `<reason>:<minute>:<hash>`, the hash (SHA-256) of the tenant, the
//! scope and the address or account name: bounded whatever was typed, and
//! no name typed into a login form (often a password) reaches the store.
//! The failure that brings a count to the threshold records the event: the
//! store counts atomically, so exactly one failure, on one node, sees that
//! count. An address and an account counted by the same failure reach the
//! threshold together or apart; together, one event names both.
//!
//! The counting never slows a request: failures go through a bounded queue
//! to one task per watch and node (a full queue drops them, counted in
//! `sessiond_burst_notes_dropped_total`). Once a counter has reached the
//! threshold, this node stops counting it: a flood costs the store at most
//! the threshold's worth of calls per counter and minute, plus one per
//! node.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sessiond_core::{
    AnomalyReason, ClientInfo, CounterKey, CounterRule, CounterStore, Event, EventKind, EventSink, Reserved, Subject,
    Tenant,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Failures waiting to be counted; more are dropped.
const QUEUE_DEPTH: usize = 4096;

/// The length of a counting window.
const WINDOW: Duration = Duration::from_secs(60);

/// One failure to count.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The tenant it happened in.
    pub tenant: Tenant,
    /// When.
    pub at: OffsetDateTime,
    /// The client address, counted when given.
    pub ip: Option<String>,
    /// The account, counted when given: the name it is counted under (all
    /// spellings of one account the same), and the subject an event names
    /// (`None` when the name is no valid subject).
    pub account: Option<(String, Option<Subject>)>,
}

/// This node's side of one kind of count: hands failures to its task.
#[derive(Debug, Clone)]
pub struct BurstWatch {
    queue: mpsc::Sender<Failure>,
}

impl BurstWatch {
    /// Starts the counting task over `counters`; an `anomaly` event with
    /// `reason` is recorded through `events` when a counter reaches
    /// `threshold` (at least 1) in a minute. `events` is held weakly: the
    /// task ends when the log is gone, or when every copy of this watch is.
    pub fn start(
        counters: Arc<dyn CounterStore>,
        events: Weak<dyn EventSink>,
        reason: AnomalyReason,
        threshold: u32,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(count(receiver, counters, events, reason, threshold.max(1)));
        Self { queue }
    }

    /// Counts `failure`, later.
    pub fn note(&self, failure: Failure) {
        if self.queue.try_send(failure).is_err() {
            metrics::counter!("sessiond_burst_notes_dropped_total").increment(1);
        }
    }
}

/// The window a failure at `at` falls in.
fn window(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(WINDOW.as_secs() as i64)
}

/// The key of one counter: a hash of who is counted, so it is bounded and
/// holds nothing typed.
fn key(reason: AnomalyReason, minute: i64, tenant: &Tenant, scope: &str, value: &str) -> Option<CounterKey> {
    let mut hash = Sha256::new();
    for part in [tenant.as_str(), scope, value] {
        hash.update(part.as_bytes());
        // A separator no part holds: ("ab", "c") and ("a", "bc") differ.
        hash.update([0]);
    }
    let mut text = format!("{}:{minute}:", reason.as_str());
    for byte in hash.finalize() {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    CounterKey::new(text).ok()
}

async fn count(
    mut receiver: mpsc::Receiver<Failure>,
    counters: Arc<dyn CounterStore>,
    events: Weak<dyn EventSink>,
    reason: AnomalyReason,
    threshold: u32,
) {
    // Never locks: a plain counter that forgets its window after the next.
    let rule = CounterRule {
        free: u32::MAX,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        forget_after: 2 * WINDOW,
    };
    // Counters this node knows have reached the threshold, by window.
    let mut done: HashSet<(i64, CounterKey)> = HashSet::new();
    let mut current = i64::MIN;
    while let Some(failure) = receiver.recv().await {
        let minute = window(failure.at);
        if minute > current {
            current = minute;
            done.retain(|(m, _)| *m >= minute - 1);
        }
        let ip = failure
            .ip
            .as_deref()
            .and_then(|ip| key(reason, minute, &failure.tenant, "ip", ip));
        let account = failure
            .account
            .as_ref()
            .and_then(|(name, _)| key(reason, minute, &failure.tenant, "account", name));
        let counted: Vec<CounterKey> = [ip.clone(), account.clone()]
            .into_iter()
            .flatten()
            .filter(|key| !done.contains(&(minute, key.clone())))
            .collect();
        if counted.is_empty() {
            continue;
        }
        let reservation: Vec<(CounterKey, CounterRule)> = counted.iter().map(|key| (key.clone(), rule)).collect();
        let counts = match counters.reserve(&reservation, failure.at).await {
            Ok(Reserved::Counted(counts)) => counts,
            Ok(Reserved::Locked(_)) => continue,
            Err(error) => {
                tracing::warn!(%error, reason = reason.as_str(), "cannot count a failure for burst detection");
                continue;
            }
        };
        let mut reached = Vec::new();
        for (key, n) in counted.into_iter().zip(counts) {
            if n == threshold {
                reached.push(key.clone());
            }
            if n >= threshold {
                done.insert((minute, key));
            }
        }
        if reached.is_empty() {
            continue;
        }
        let Some(events) = events.upgrade() else {
            return;
        };
        let by_ip = ip.is_some_and(|key| reached.contains(&key));
        let by_account = account.is_some_and(|key| reached.contains(&key));
        events.emit(Event {
            at: failure.at,
            kind: EventKind::Anomaly(reason),
            tenant: failure.tenant,
            session_id: None,
            subject: failure.account.and_then(|(_, subject)| subject).filter(|_| by_account),
            client: failure.ip.filter(|_| by_ip).map(|ip| ClientInfo {
                ip: Some(ip),
                user_agent: None,
                sealed: None,
            }),
            count: threshold,
        });
    }
}

/// Failed portal sign-ins, per account and per client address: a
/// `login_burst` anomaly when either reaches the threshold in a minute.
#[derive(Debug, Clone)]
pub struct LoginBursts(BurstWatch);

impl LoginBursts {
    /// Starts counting into `counters`, recording through `events`.
    pub fn start(counters: Arc<dyn CounterStore>, events: Weak<dyn EventSink>, threshold: u32) -> Self {
        Self(BurstWatch::start(
            counters,
            events,
            AnomalyReason::LoginBurst,
            threshold,
        ))
    }
}

impl sessiond_portal::FailedLogins for LoginBursts {
    fn failed(&self, tenant: &Tenant, name: &str, ip: Option<IpAddr>, at: OffsetDateTime) {
        self.0.note(Failure {
            tenant: tenant.clone(),
            at,
            ip: ip.map(|ip| ip.to_string()),
            account: Some((
                sessiond_portal::throttle::account_name(name),
                sessiond_portal::user_name(name).ok(),
            )),
        });
    }
}

#[cfg(test)]
mod tests {
    use sessiond_core::{MemoryEvents, MemoryStore};

    use super::*;

    fn failure(at: OffsetDateTime, ip: &str, name: &str) -> Failure {
        Failure {
            tenant: Tenant::new("shop").unwrap(),
            at,
            ip: Some(ip.to_owned()),
            account: Some((name.to_owned(), Subject::new(name).ok())),
        }
    }

    /// Two watches over one store (two nodes): an address and an account
    /// reaching the threshold with the same failure are one event naming
    /// both, and failures past it add none; an account reaching it from
    /// several addresses is one event naming the account only; and nothing
    /// below it is recorded.
    #[tokio::test]
    async fn each_burst_is_one_event_over_every_node() {
        let store = Arc::new(MemoryStore::new());
        let events = Arc::new(MemoryEvents::new());
        let sink: Arc<dyn EventSink> = events.clone();
        let nodes =
            [0, 1].map(|_| BurstWatch::start(store.clone(), Arc::downgrade(&sink), AnomalyReason::LoginBurst, 4));
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for i in 0..6 {
            nodes[i % 2].note(failure(at, "192.0.2.1", "alice"));
        }
        for i in 0..3 {
            nodes[i % 2].note(failure(at, "192.0.2.9", "bob"));
        }
        for i in 0..4 {
            nodes[i % 2].note(failure(at, &format!("198.51.100.{i}"), "carol"));
        }
        // Each node's task counts its failures in order: wait until both
        // have counted everything above, with a marker burst on each.
        for (i, node) in nodes.iter().enumerate() {
            for _ in 0..4 {
                node.note(failure(at, &format!("203.0.113.{i}"), &format!("marker{i}")));
            }
        }
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen.extend(events.take());
            let markers = seen.iter().filter(|e| {
                e.client
                    .as_ref()
                    .is_some_and(|c| c.ip.as_deref().is_some_and(|ip| ip.starts_with("203.0.113.")))
            });
            if markers.count() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut named: Vec<(Option<&str>, Option<&str>)> = seen
            .iter()
            .map(|e| {
                assert_eq!(e.kind, EventKind::Anomaly(AnomalyReason::LoginBurst));
                assert_eq!(e.count, 4);
                (
                    e.subject.as_ref().map(Subject::as_str),
                    e.client.as_ref().and_then(|c| c.ip.as_deref()),
                )
            })
            .filter(|(subject, _)| !subject.is_some_and(|s| s.starts_with("marker")))
            .collect();
        named.sort();
        assert_eq!(
            named,
            [(Some("alice"), Some("192.0.2.1")), (Some("carol"), None)],
            "{seen:?}"
        );
    }
}
