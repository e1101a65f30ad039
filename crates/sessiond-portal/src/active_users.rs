//! Which sessions the portal vouches for (issue 12, finding 3).
//!
//! Forward auth tells other applications who is signed in, and the account
//! pages act for that person, so both accept only a session that
//!
//! - the portal's own login created ([`SessionOrigin::Portal`]): an API key
//!   holder can create a session for any subject, `admin` included, and
//!   that must not become `X-Auth-Subject: admin`;
//! - belongs to a portal user who exists and is not disabled now. Disabling
//!   a user ends their sessions, but a login racing the disable, or a
//!   record changed by another node or by hand, must not outlive it.
//!
//! The user lookup is cached per (tenant, subject) for `portal.user_cache_ttl`
//! (default 5 s, at most 30 s) on the manager's clock, so forward auth — on
//! the path of every proxied request — costs a store read per user every few
//! seconds rather than one per request, and a disabled user is locked out
//! within that time on every node. The cache is bounded: when it is full,
//! stale entries go, and if too few were stale an arbitrary eighth goes
//! too: a node seeing more users than the bound within one TTL loses some
//! answers (which only costs lookups), never all of them at once. A session
//! that fails either check is answered exactly like a missing one, so the
//! answer says nothing about which check failed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sessiond_core::{SessionOrigin, Subject, Tenant};
use sessiond_http::{Session, SessionInfo};
use time::OffsetDateTime;

use super::{AccountError, Accounts, PortalError, PortalState};

/// Most (tenant, subject) answers kept: above the users one node sees
/// signed in within a few seconds even at the scale issue 17 aims for.
/// About 100 bytes each with a short subject, so a few MiB; at most about
/// 22 MiB with every subject at its 256-byte limit.
pub(crate) const MAX_CACHED_USERS: usize = 65_536;

/// A cached answer: whether the user existed and was enabled, and when that
/// was looked up.
#[derive(Debug, Clone, Copy)]
struct Entry {
    active: bool,
    checked_at: OffsetDateTime,
}

/// Recent answers to "is this an existing, enabled portal user?".
#[derive(Debug)]
pub(crate) struct ActiveUsers {
    ttl: Duration,
    // A std mutex: held only for a map operation, never across an await.
    // By tenant, then subject, so a lookup borrows both names instead of
    // cloning them into a key (two allocations on every forward auth).
    entries: Mutex<HashMap<Tenant, HashMap<Subject, Entry>>>,
}

impl ActiveUsers {
    /// Answers are trusted for `ttl` (zero: every check looks the user up).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, entry: Entry, now: OffsetDateTime) -> bool {
        // A clock that went backwards makes the entry stale, not eternal.
        let age = now - entry.checked_at;
        !age.is_negative() && age < self.ttl
    }

    /// The cached answer for `key`, if still fresh at `now`.
    pub(crate) fn get(&self, tenant: &Tenant, subject: &Subject, now: OffsetDateTime) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(tenant)?
            .get(subject)
            .filter(|e| self.fresh(**e, now))
            .map(|e| e.active)
    }

    /// Records an answer looked up (or proved, by a login) at `now`.
    pub(crate) fn remember(&self, tenant: &Tenant, subject: &Subject, active: bool, now: OffsetDateTime) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if count(&entries) >= MAX_CACHED_USERS {
            for subjects in entries.values_mut() {
                subjects.retain(|_, e| self.fresh(*e, now));
            }
            entries.retain(|_, subjects| !subjects.is_empty());
            let kept = count(&entries);
            if kept >= MAX_CACHED_USERS {
                evict(&mut entries, kept - MAX_CACHED_USERS + MAX_CACHED_USERS / 8);
            }
        }
        let entry = Entry {
            active,
            checked_at: now,
        };
        match entries.get_mut(tenant) {
            Some(subjects) => {
                subjects.insert(subject.clone(), entry);
            }
            None => {
                entries.insert(tenant.clone(), HashMap::from([(subject.clone(), entry)]));
            }
        }
    }

    /// How many answers are kept (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| count(&e))
    }
}

/// Answers kept, over every tenant.
fn count(entries: &HashMap<Tenant, HashMap<Subject, Entry>>) -> usize {
    entries.values().map(HashMap::len).sum()
}

/// Drops `n` answers, whichever the maps visit first. The maps' hashers are
/// randomly seeded, so which users lose their answer depends on no name an
/// outsider chooses, and the cost is one pass, paid once per eighth filled
/// (emptying the whole cache instead made every user's next request a
/// store read at once).
fn evict(entries: &mut HashMap<Tenant, HashMap<Subject, Entry>>, mut n: usize) {
    for subjects in entries.values_mut() {
        subjects.retain(|_, _| {
            let keep = n == 0;
            n = n.saturating_sub(1);
            keep
        });
    }
    entries.retain(|_, subjects| !subjects.is_empty());
}

impl PortalState {
    /// The request's session if the portal vouches for it: a portal login
    /// of an existing, enabled user. `None` otherwise — the same answer as
    /// no session at all.
    pub(super) async fn signed_in(&self, session: &Session) -> Result<Option<SessionInfo>, PortalError> {
        let Some(info) = session.current().await? else {
            return Ok(None);
        };
        if info.origin() != SessionOrigin::Portal {
            return Ok(None);
        }
        Ok(self.is_active(info.subject()).await?.then_some(info))
    }

    /// Whether `subject` is an existing, enabled user of the portal's
    /// tenant, from the cache when it is fresh.
    pub(super) async fn is_active(&self, subject: &Subject) -> Result<bool, PortalError> {
        Ok(self
            .active_users
            .check(&self.accounts, subject, self.manager.now())
            .await?)
    }
}

impl ActiveUsers {
    /// Whether `subject` is an existing, enabled user of `accounts`' tenant
    /// at `now`: the cached answer while fresh, else a lookup (remembered).
    /// A failed lookup is an error, never an answer: fail closed.
    pub(crate) async fn check(
        &self,
        accounts: &Accounts,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<bool, AccountError> {
        let tenant = accounts.tenant();
        if let Some(active) = self.get(tenant, subject, now) {
            return Ok(active);
        }
        let active = accounts.is_active(subject).await?;
        self.remember(tenant, subject, active, now);
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

    fn names() -> (Tenant, Subject) {
        (
            Tenant::default_tenant(),
            Subject::new("alice").unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[test]
    fn answers_are_kept_for_the_ttl_and_no_longer() {
        let cache = ActiveUsers::new(Duration::from_secs(5));
        let (t, alice) = names();
        assert_eq!(cache.get(&t, &alice, NOW), None);
        cache.remember(&t, &alice, true, NOW);
        assert_eq!(cache.get(&t, &alice, NOW + Duration::from_millis(4_999)), Some(true));
        assert_eq!(cache.get(&t, &alice, NOW + Duration::from_secs(5)), None);
        assert_eq!(
            cache.get(&t, &alice, NOW - Duration::from_secs(1)),
            None,
            "clock went back"
        );
        let other = Tenant::new("other").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.get(&other, &alice, NOW), None, "per tenant");
    }

    /// A user disabled behind the portal's back (no session ended: another
    /// node, a race with a login, a hand edit) stops passing once the
    /// cached answer is older than the TTL; a user who never existed never
    /// passes.
    #[tokio::test]
    async fn a_disabled_user_is_refused_once_the_cached_answer_expires() {
        use std::sync::Arc;

        use sessiond_core::{SessionManager, SessionStore, UserStore};

        use crate::Passwords;

        let store = Arc::new(sessiond_core::MemoryStore::new());
        let clock = sessiond_testkit::FakeClock::default();
        let manager = SessionManager::builder(Arc::clone(&store) as Arc<dyn SessionStore>)
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let accounts = Accounts::new(
            Arc::clone(&store) as Arc<dyn UserStore>,
            manager.clone(),
            Passwords::new(1),
        );
        let (tenant, alice) = names();
        accounts
            .add(&alice, "correct horse".into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let cache = ActiveUsers::new(Duration::from_secs(5));
        let check = |who: Subject| {
            let (cache, accounts, manager) = (&cache, &accounts, &manager);
            async move {
                cache
                    .check(accounts, &who, manager.now())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        };
        assert!(check(alice.clone()).await);
        let admin = Subject::new("admin").unwrap_or_else(|e| panic!("{e}"));
        assert!(!check(admin.clone()).await, "no such portal user");

        let mut user = store
            .get_user(&tenant, &alice)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("alice was added"));
        user.disabled = true;
        user.version += 1;
        store
            .update_user(&user, user.version - 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::from_secs(4));
        assert!(check(alice.clone()).await, "cached for the TTL");
        clock.advance(Duration::from_secs(1));
        assert!(
            !check(alice.clone()).await,
            "disabled, and the cache no longer says otherwise"
        );
        assert!(!check(admin).await);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = ActiveUsers::new(Duration::ZERO);
        let (t, alice) = names();
        cache.remember(&t, &alice, true, NOW);
        assert_eq!(cache.get(&t, &alice, NOW), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ActiveUsers::new(Duration::from_secs(5));
        let t = Tenant::default_tenant();
        for i in 0..(MAX_CACHED_USERS + 10) {
            let s = Subject::new(format!("user-{i}")).unwrap_or_else(|e| panic!("{e}"));
            cache.remember(&t, &s, true, NOW);
            assert!(cache.len() <= MAX_CACHED_USERS);
        }
        let last = Subject::new(format!("user-{}", MAX_CACHED_USERS + 9)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.get(&t, &last, NOW), Some(true));
    }

    /// Full of fresh answers, the cache makes room by dropping an eighth,
    /// not everything: most users keep their answer (it used to start
    /// over, and every one of them went to the store at once).
    #[test]
    fn a_full_cache_of_fresh_answers_loses_an_eighth_not_all() {
        let cache = ActiveUsers::new(Duration::from_secs(5));
        let t = Tenant::default_tenant();
        let other = Tenant::new("other").unwrap_or_else(|e| panic!("{e}"));
        let subject = |i: usize| Subject::new(format!("user-{i}")).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..MAX_CACHED_USERS {
            cache.remember(if i % 2 == 0 { &t } else { &other }, &subject(i), true, NOW);
        }
        assert_eq!(cache.len(), MAX_CACHED_USERS);
        let later = NOW + Duration::from_secs(1);
        cache.remember(&t, &subject(MAX_CACHED_USERS), false, later);
        assert_eq!(cache.len(), MAX_CACHED_USERS - MAX_CACHED_USERS / 8 + 1);
        assert_eq!(cache.get(&t, &subject(MAX_CACHED_USERS), later), Some(false));
        let kept = (0..MAX_CACHED_USERS)
            .filter(|&i| cache.get(if i % 2 == 0 { &t } else { &other }, &subject(i), later) == Some(true))
            .count();
        assert_eq!(kept, MAX_CACHED_USERS - MAX_CACHED_USERS / 8);
    }
}
