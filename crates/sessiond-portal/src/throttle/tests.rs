//! Unit tests of the login throttle over the memory engine: delays, the IP
//! limit, reservations, device cookies' own allowances and bounded keys.
//! Time is the `now` each call is given; nothing sleeps.

use super::*;
use sessiond_core::{MAX_COUNTER_KEY_LEN, MemoryStore};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn secs(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

fn throttle() -> (LoginThrottle, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    (LoginThrottle::new(Arc::clone(&store) as Arc<dyn CounterStore>), store)
}

async fn reserve(
    throttle: &LoginThrottle,
    account: &str,
    device: Option<&DeviceNonce>,
    ip: Option<IpAddr>,
    at: OffsetDateTime,
) -> Result<Reservation, Duration> {
    throttle
        .reserve(account, device, ip, at)
        .await
        .expect("the memory store")
}

/// An attempt without a device cookie, left counted as a failure.
async fn attempt(
    throttle: &LoginThrottle,
    account: &str,
    ip: Option<IpAddr>,
    at: OffsetDateTime,
) -> Result<(), Duration> {
    reserve(throttle, account, None, ip, at).await.map(drop)
}

async fn failures(store: &MemoryStore, key: &CounterKey) -> Option<u32> {
    store.counter(key, T0).await.expect("the memory store").map(|r| r.count)
}

#[tokio::test]
async fn delays_start_after_the_free_failures_and_double() {
    let (throttle, _) = throttle();
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0).await, Ok(()));
    }
    // The sixth attempt is allowed and starts the delay.
    assert_eq!(attempt(&throttle, "alice", None, T0).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "ALICE ", None, T0).await,
        Err(Duration::from_secs(1))
    );
    assert_eq!(attempt(&throttle, "alice", None, T0 + secs(1)).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, T0 + secs(1)).await,
        Err(Duration::from_secs(2))
    );
    assert_eq!(attempt(&throttle, "alice", None, T0 + secs(3)).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, T0 + secs(3)).await,
        Err(Duration::from_secs(4))
    );
    // Other names are unaffected.
    assert_eq!(attempt(&throttle, "bob", None, T0 + secs(3)).await, Ok(()));
}

#[tokio::test]
async fn delays_are_capped_and_forgotten() {
    let (throttle, _) = throttle();
    // Forty failures, each made as soon as the lock before it ended.
    let (mut at, mut counted) = (T0, 0);
    while counted < 40 {
        match attempt(&throttle, "alice", None, at).await {
            Ok(()) => counted += 1,
            Err(wait) => at += wait,
        }
    }
    assert_eq!(attempt(&throttle, "alice", None, at).await, Err(MAX_DELAY));
    let later = at + secs(2 * 3600);
    assert_eq!(attempt(&throttle, "alice", None, later).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, later).await,
        Ok(()),
        "old failures forgotten"
    );
}

#[tokio::test]
async fn an_ip_is_throttled_across_names_and_a_success_does_not_reset_it() {
    let (throttle, _) = throttle();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let first = reserve(&throttle, "user0", None, Some(ip), T0).await.unwrap();
    for n in 1..=FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0).await, Ok(()));
    }
    assert_eq!(
        attempt(&throttle, "someone-new", Some(ip), T0).await,
        Err(Duration::from_secs(1))
    );
    // A success refunds only its own reservation: the IP's other
    // failures stay, and the next one locks it again.
    throttle.succeeded(first).await.unwrap();
    assert_eq!(attempt(&throttle, "someone-new", Some(ip), T0).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "someone-new", Some(ip), T0).await,
        Err(Duration::from_secs(1))
    );
    assert_eq!(attempt(&throttle, "someone-new", None, T0).await, Ok(()));
}

#[tokio::test]
async fn success_clears_the_account() {
    let (throttle, _) = throttle();
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0).await, Ok(()));
    }
    let last = reserve(&throttle, "alice", None, None, T0).await.unwrap();
    assert!(attempt(&throttle, "alice", None, T0).await.is_err());
    throttle.succeeded(last).await.unwrap();
    assert_eq!(attempt(&throttle, "alice", None, T0).await, Ok(()));
}

/// Finding 5: 1 MB user names cost a bounded key each (the name is cut at
/// a subject's length and hashed), so the store's records stay small
/// whatever is typed; the memory engine's byte budget is tested in core.
#[tokio::test]
async fn long_names_cost_a_bounded_key() {
    let (throttle, store) = throttle();
    let huge = "x".repeat(2 * 1024 * 1024);
    assert_eq!(attempt(&throttle, &huge, None, T0).await, Ok(()));
    assert!(
        store.counter_bytes() < 1024,
        "{} bytes for one name",
        store.counter_bytes()
    );
    let longest = [
        account_key(&huge).unwrap(),
        device_key(&huge, &[0xff; 16]).unwrap(),
        ip_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()).unwrap(),
    ];
    for key in longest {
        assert!(key.as_str().len() <= MAX_COUNTER_KEY_LEN, "{key}");
    }
    assert_eq!(failures(&store, &account_key(&huge).unwrap()).await, Some(1));
}

/// Parallel attempts cannot all pass a check made before any of them
/// failed: the remaining allowance is all that gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_attempts_get_only_the_remaining_allowance() {
    let (throttle, _) = throttle();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..3 {
        assert_eq!(attempt(&throttle, "alice", Some(ip), T0).await, Ok(()));
    }
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let throttle = throttle.clone();
            tokio::spawn(async move { attempt(&throttle, "alice", Some(ip), T0).await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap_or(false));
    }
    // Two free failures left, and the attempt that starts the delay.
    assert_eq!(allowed, 3);
}

#[test]
fn account_names_are_folded_and_cut() {
    let long = "é".repeat(100_000);
    assert!(account_name(&long).len() <= sessiond_core::MAX_SUBJECT_LEN * 2);
    assert_eq!(account_name(" Alice "), "alice");
    assert_eq!(account_key(" Alice ").ok(), account_key("alice").ok());
    assert_ne!(account_key("alice").ok(), account_key("bob").ok());
}

#[tokio::test]
async fn a_success_gives_the_ip_its_reservation_back() {
    let (throttle, _) = throttle();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for n in 0..FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0).await, Ok(()));
    }
    // The 21st attempt is the right password: refunded, so the IP is
    // not locked by it.
    let alice = reserve(&throttle, "alice", None, Some(ip), T0).await.unwrap();
    throttle.succeeded(alice).await.unwrap();
    assert_eq!(attempt(&throttle, "bob", Some(ip), T0).await, Ok(()));
    assert_eq!(
        attempt(&throttle, "carol", Some(ip), T0).await,
        Err(Duration::from_secs(1))
    );
}

/// Finding 9: an attacker's failures lock the account for strangers,
/// not for a browser that signed in before; its success leaves the
/// lock in place for the others.
#[tokio::test]
async fn a_known_device_gets_past_a_locked_account() {
    let (throttle, _) = throttle();
    for _ in 0..=FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0).await, Ok(()));
    }
    assert!(attempt(&throttle, "alice", None, T0).await.is_err());
    let known = reserve(&throttle, "alice", Some(&[1; 16]), None, T0).await.unwrap();
    assert!(known.trusted());
    throttle.succeeded(known).await.unwrap();
    assert!(
        attempt(&throttle, "alice", None, T0).await.is_err(),
        "the lock was lifted"
    );
    // The IP's limit applies to a known device too.
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for n in 0..=FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0).await, Ok(()));
    }
    assert!(reserve(&throttle, "alice", Some(&[1; 16]), Some(ip), T0).await.is_err());
}

/// A device cookie's failures lock out only that cookie: after its
/// allowance it is a stranger (counted against the account), other
/// cookies stay trusted, and it is trusted again once forgotten.
#[tokio::test]
async fn failures_with_a_device_cookie_lock_out_only_that_cookie() {
    let (throttle, store) = throttle();
    let (stolen, owners) = ([1; 16], [2; 16]);
    for _ in 0..FREE_FAILURES_PER_DEVICE {
        let r = reserve(&throttle, "alice", Some(&stolen), None, T0).await.unwrap();
        assert!(r.trusted());
    }
    // The account has not been touched: strangers have their allowance.
    assert_eq!(failures(&store, &account_key("alice").unwrap()).await, None);
    let listed = reserve(&throttle, "Alice", Some(&stolen), None, T0).await.unwrap();
    assert!(!listed.trusted(), "a locked-out cookie is a stranger");
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert!(reserve(&throttle, "alice", Some(&stolen), None, T0).await.is_ok());
    }
    assert!(reserve(&throttle, "alice", Some(&stolen), None, T0).await.is_err());
    assert!(attempt(&throttle, "alice", None, T0).await.is_err());
    let owner = reserve(&throttle, "alice", Some(&owners), None, T0).await.unwrap();
    assert!(owner.trusted(), "another cookie was locked out too");
    // A failure that could not be checked is given back to the cookie.
    throttle.released(owner).await.unwrap();
    let record = failures(&store, &device_key("alice", &owners).unwrap()).await;
    assert_eq!(record, Some(0));
    let later = T0 + secs(2 * 3600);
    assert!(
        reserve(&throttle, "alice", Some(&stolen), None, later)
            .await
            .unwrap()
            .trusted()
    );
}

/// A store that cannot be reached refuses the attempt: nothing lets it
/// through uncounted.
#[tokio::test]
async fn an_unavailable_store_refuses_the_attempt() {
    #[derive(Debug)]
    struct Down;
    #[sessiond_core::async_trait]
    impl CounterStore for Down {
        async fn reserve(
            &self,
            _: &[(CounterKey, CounterRule)],
            _: OffsetDateTime,
        ) -> Result<Reserved, CounterStoreError> {
            Err(CounterStoreError::Unavailable("down".into()))
        }
        async fn release(&self, _: &[(CounterKey, CounterRule)], _: OffsetDateTime) -> Result<(), CounterStoreError> {
            Err(CounterStoreError::Unavailable("down".into()))
        }
        async fn clear(&self, _: &CounterKey) -> Result<(), CounterStoreError> {
            Err(CounterStoreError::Unavailable("down".into()))
        }
        async fn counter(
            &self,
            _: &CounterKey,
            _: OffsetDateTime,
        ) -> Result<Option<sessiond_core::CounterRecord>, CounterStoreError> {
            Err(CounterStoreError::Unavailable("down".into()))
        }
    }
    let throttle = LoginThrottle::new(Arc::new(Down));
    let refused = throttle.reserve("alice", Some(&[1; 16]), None, T0).await;
    assert!(refused.is_err_and(|e| e.is_unavailable()));
}
