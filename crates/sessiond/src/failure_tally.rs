//! Anonymous verify failures, counted instead of recorded one by one.
//!
//! A token that names no session (malformed, or unknown) costs its sender
//! nothing, so one event per failure let anyone flood the audit log: 1,200
//! random cookies sent to `/auth/verify` pushed another tenant's `created`
//! and `revoked` events out of the one shared ring. The first such failure
//! per (tenant, client address, reason) in a window is recorded as it
//! happens; the rest of the window is counted, and one event with that
//! count is recorded when the window is over. Failures that name a session
//! (expired, revoked, a rotated-out token) are rare and telling, and stay
//! one event each.
//!
//! The open windows are bounded: past [`MAX_WINDOWS`], failures from new
//! addresses are counted under no address at all.

use std::collections::HashMap;
use std::time::Duration;

use sessiond_core::{ClientInfo, Event, EventKind, Tenant};
use time::OffsetDateTime;

/// How long failures from one address are counted into one event.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most (tenant, address, reason) windows open at once.
pub const MAX_WINDOWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: Tenant,
    ip: Option<String>,
    kind: EventKind,
}

#[derive(Debug)]
struct Window {
    started: OffsetDateTime,
    /// Failures after the first, not yet recorded.
    counted: u32,
    last_at: OffsetDateTime,
}

/// Open counting windows. Not thread-safe on its own: the event log holds
/// it under its lock.
#[derive(Debug, Default)]
pub struct FailureTally {
    windows: HashMap<Key, Window>,
    next_sweep: Option<OffsetDateTime>,
}

impl FailureTally {
    /// What to record for `event` now: itself, or nothing (it was counted),
    /// plus the count of any window that ended.
    pub fn admit(&mut self, event: Event) -> Vec<Event> {
        let mut out = self.sweep(event.at);
        if !event.is_anonymous_failure() {
            out.push(event);
            return out;
        }
        let mut key = Key {
            tenant: event.tenant.clone(),
            ip: event.client.as_ref().and_then(|c| c.ip.clone()),
            kind: event.kind,
        };
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_WINDOWS {
            key.ip = None;
        }
        match self.windows.get_mut(&key) {
            Some(window) if event.at < window.started + WINDOW => {
                window.counted = window.counted.saturating_add(1);
                window.last_at = event.at;
            }
            _ => {
                if let Some(ended) = self.windows.remove(&key) {
                    out.extend(summary(&key, &ended));
                }
                self.windows.insert(
                    key,
                    Window {
                        started: event.at,
                        counted: 0,
                        last_at: event.at,
                    },
                );
                out.push(event);
            }
        }
        out
    }

    /// The counts of every window that ended by `now`. Cheap when called
    /// often: it looks at the windows at most once a second.
    pub fn sweep(&mut self, now: OffsetDateTime) -> Vec<Event> {
        if self.next_sweep.is_some_and(|next| now < next) {
            return Vec::new();
        }
        self.next_sweep = Some(now + Duration::from_secs(1));
        let ended: Vec<Key> = self
            .windows
            .iter()
            .filter(|(_, w)| now >= w.started + WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in ended {
            if let Some(window) = self.windows.remove(&key) {
                out.extend(summary(&key, &window));
            }
        }
        out.sort_by_key(|e| e.at);
        out
    }

    /// The counts of every open window (at shutdown).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.windows.drain().filter_map(|(k, w)| summary(&k, &w)).collect();
        out.sort_by_key(|e| e.at);
        out
    }
}

/// The event that records a window's counted failures, if it counted any.
fn summary(key: &Key, window: &Window) -> Option<Event> {
    (window.counted > 0).then(|| Event {
        at: window.last_at,
        kind: key.kind,
        tenant: key.tenant.clone(),
        session_id: None,
        subject: None,
        client: key.ip.clone().map(|ip| ClientInfo {
            ip: Some(ip),
            user_agent: None,
            sealed: None,
        }),
        count: window.counted,
    })
}

#[cfg(test)]
mod tests {
    use sessiond_core::{Rejection, SessionId};

    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn failure(tenant: &str, ip: &str, at: OffsetDateTime) -> Event {
        Event {
            at,
            kind: EventKind::VerifyFailed(Rejection::Unknown),
            tenant: Tenant::new(tenant).unwrap(),
            session_id: None,
            subject: None,
            client: Some(ClientInfo {
                ip: Some(ip.to_owned()),
                user_agent: Some("bot".to_owned()),
                sealed: None,
            }),
            count: 1,
        }
    }

    #[test]
    fn a_flood_from_one_address_is_one_event_and_one_count_per_window() {
        let mut tally = FailureTally::default();
        let mut recorded = Vec::new();
        for i in 0..1_200 {
            recorded.extend(tally.admit(failure("a", "192.0.2.1", t0() + Duration::from_millis(i * 10))));
        }
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].count, 1);
        let after = t0() + WINDOW + Duration::from_secs(1);
        let counted = tally.sweep(after);
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].count, 1_199);
        assert_eq!(
            counted[0].client.as_ref().and_then(|c| c.ip.as_deref()),
            Some("192.0.2.1")
        );
        assert!(tally.drain().is_empty());
    }

    #[test]
    fn addresses_tenants_and_named_sessions_are_kept_apart() {
        let mut tally = FailureTally::default();
        let mut recorded = Vec::new();
        recorded.extend(tally.admit(failure("a", "192.0.2.1", t0())));
        recorded.extend(tally.admit(failure("a", "192.0.2.2", t0())));
        recorded.extend(tally.admit(failure("b", "192.0.2.1", t0())));
        let mut revoked = failure("a", "192.0.2.1", t0());
        revoked.kind = EventKind::VerifyFailed(Rejection::Revoked);
        revoked.session_id = Some(SessionId::generate().unwrap());
        for _ in 0..3 {
            recorded.extend(tally.admit(revoked.clone()));
        }
        assert_eq!(recorded.len(), 6);
        assert!(tally.drain().is_empty(), "nothing was counted");
    }

    #[test]
    fn a_new_window_starts_after_the_old_one_and_reports_it() {
        let mut tally = FailureTally::default();
        tally.admit(failure("a", "192.0.2.1", t0()));
        tally.admit(failure("a", "192.0.2.1", t0() + Duration::from_secs(1)));
        // The next failure, a window later, comes with the old count.
        let recorded = tally.admit(failure("a", "192.0.2.1", t0() + WINDOW + Duration::from_secs(5)));
        assert_eq!(recorded.iter().map(|e| e.count).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(recorded[0].at, t0() + Duration::from_secs(1));
        let later = tally.admit(failure("a", "192.0.2.1", t0() + WINDOW + Duration::from_secs(6)));
        assert!(later.is_empty());
        assert_eq!(tally.drain()[0].count, 1);
    }

    #[test]
    fn open_windows_are_bounded() {
        let mut tally = FailureTally::default();
        for i in 0..(MAX_WINDOWS as u32 + 500) {
            let ip = std::net::Ipv4Addr::from(i).to_string();
            tally.admit(failure("a", &ip, t0()));
        }
        assert_eq!(tally.windows.len(), MAX_WINDOWS + 1);
        let counted = tally.drain();
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].count, 499);
        assert!(counted[0].client.is_none());
    }
}
