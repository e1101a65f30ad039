//! Unit tests of the login throttle: delays, the IP limit, reservations,
//! device cookies' own allowances and the byte budget.

use super::*;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn secs(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

/// An attempt without a device cookie, left counted as a failure.
fn attempt(throttle: &LoginThrottle, account: &str, ip: Option<IpAddr>, at: OffsetDateTime) -> Result<(), Duration> {
    throttle.reserve(account, None, ip, at).map(drop)
}

#[test]
fn delays_start_after_the_free_failures_and_double() {
    let throttle = LoginThrottle::new();
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0), Ok(()));
    }
    // The sixth attempt is allowed and starts the delay.
    assert_eq!(attempt(&throttle, "alice", None, T0), Ok(()));
    assert_eq!(attempt(&throttle, "ALICE ", None, T0), Err(Duration::from_secs(1)));
    assert_eq!(attempt(&throttle, "alice", None, T0 + secs(1)), Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, T0 + secs(1)),
        Err(Duration::from_secs(2))
    );
    assert_eq!(attempt(&throttle, "alice", None, T0 + secs(3)), Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, T0 + secs(3)),
        Err(Duration::from_secs(4))
    );
    // Other names are unaffected.
    assert_eq!(attempt(&throttle, "bob", None, T0 + secs(3)), Ok(()));
}

#[test]
fn delays_are_capped_and_forgotten() {
    assert_eq!(delay_after(5, 5), Duration::ZERO);
    assert_eq!(delay_after(6, 5), Duration::from_secs(1));
    assert_eq!(delay_after(200, 5), MAX_DELAY);
    let throttle = LoginThrottle::new();
    for _ in 0..40 {
        count_failure(&mut throttle.table(), Key::Account("alice".into()), T0);
    }
    assert_eq!(attempt(&throttle, "alice", None, T0), Err(MAX_DELAY));
    let later = T0 + secs(2 * 3600);
    assert_eq!(attempt(&throttle, "alice", None, later), Ok(()));
    assert_eq!(
        attempt(&throttle, "alice", None, later),
        Ok(()),
        "old failures forgotten"
    );
}

#[test]
fn an_ip_is_throttled_across_names_and_a_success_does_not_reset_it() {
    let throttle = LoginThrottle::new();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let first = throttle.reserve("user0", None, Some(ip), T0).unwrap();
    for n in 1..=FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0), Ok(()));
    }
    assert_eq!(
        attempt(&throttle, "someone-new", Some(ip), T0),
        Err(Duration::from_secs(1))
    );
    // A success refunds only its own reservation: the IP's other
    // failures stay, and the next one locks it again.
    throttle.succeeded(first);
    assert_eq!(attempt(&throttle, "someone-new", Some(ip), T0), Ok(()));
    assert_eq!(
        attempt(&throttle, "someone-new", Some(ip), T0),
        Err(Duration::from_secs(1))
    );
    assert_eq!(attempt(&throttle, "someone-new", None, T0), Ok(()));
}

#[test]
fn success_clears_the_account() {
    let throttle = LoginThrottle::new();
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0), Ok(()));
    }
    let last = throttle.reserve("alice", None, None, T0).unwrap();
    assert!(attempt(&throttle, "alice", None, T0).is_err());
    throttle.succeeded(last);
    assert_eq!(attempt(&throttle, "alice", None, T0), Ok(()));
}

/// Finding 5: 1 MB user names cost at most a subject's length each,
/// and however many there are, the throttle stays within its byte
/// budget while a recently locked account stays locked.
#[test]
fn long_names_keep_the_throttle_within_its_byte_budget() {
    let throttle = LoginThrottle::new();
    for _ in 0..=FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0 + secs(3000)), Ok(()));
    }
    let tail = "x".repeat(1024 * 1024);
    let huge = format!("{tail}{tail}");
    assert_eq!(attempt(&throttle, &huge, None, T0), Ok(()));
    let per_name = sessiond_core::MAX_SUBJECT_LEN + 256;
    for n in 0..2 * MAX_BYTES / per_name {
        let at = T0 + secs(i64::try_from(n % 3000).unwrap());
        let name = format!("{n:08}{}", &tail[..sessiond_core::MAX_SUBJECT_LEN]);
        assert_eq!(attempt(&throttle, &name, None, at), Ok(()));
    }
    let bytes = throttle.table().bytes();
    assert!(bytes <= MAX_BYTES, "{bytes} bytes");
    assert!(
        attempt(&throttle, "alice", None, T0 + secs(3000)).is_err(),
        "the most recent lock was evicted"
    );
}

/// Parallel attempts cannot all pass a check made before any of them
/// failed: the remaining allowance is all that gets through.
#[test]
fn parallel_attempts_get_only_the_remaining_allowance() {
    let throttle = std::sync::Arc::new(LoginThrottle::new());
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..3 {
        assert_eq!(attempt(&throttle, "alice", Some(ip), T0), Ok(()));
    }
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let throttle = std::sync::Arc::clone(&throttle);
            std::thread::spawn(move || attempt(&throttle, "alice", Some(ip), T0).is_ok())
        })
        .collect();
    let allowed = threads
        .into_iter()
        .map(|t| t.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    // Two free failures left, and the attempt that starts the delay.
    assert_eq!(allowed, 3);
}

#[test]
fn account_keys_are_bounded() {
    let long = "é".repeat(100_000);
    let key = account_name(&long);
    assert!(key.len() <= sessiond_core::MAX_SUBJECT_LEN * 2, "{}", key.len());
    assert_eq!(account_name(" Alice "), "alice");
}

#[test]
fn a_success_gives_the_ip_its_reservation_back() {
    let throttle = LoginThrottle::new();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for n in 0..FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0), Ok(()));
    }
    // The 21st attempt is the right password: refunded, so the IP is
    // not locked by it.
    let alice = throttle.reserve("alice", None, Some(ip), T0).unwrap();
    throttle.succeeded(alice);
    assert_eq!(attempt(&throttle, "bob", Some(ip), T0), Ok(()));
    assert_eq!(attempt(&throttle, "carol", Some(ip), T0), Err(Duration::from_secs(1)));
}

/// Finding 9: an attacker's failures lock the account for strangers,
/// not for a browser that signed in before; its success leaves the
/// lock in place for the others.
#[test]
fn a_known_device_gets_past_a_locked_account() {
    let throttle = LoginThrottle::new();
    for _ in 0..=FREE_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt(&throttle, "alice", None, T0), Ok(()));
    }
    assert!(attempt(&throttle, "alice", None, T0).is_err());
    let known = throttle.reserve("alice", Some(&[1; 16]), None, T0).unwrap();
    assert!(known.trusted());
    throttle.succeeded(known);
    assert!(attempt(&throttle, "alice", None, T0).is_err(), "the lock was lifted");
    // The IP's limit applies to a known device too.
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for n in 0..=FREE_FAILURES_PER_IP {
        assert_eq!(attempt(&throttle, &format!("user{n}"), Some(ip), T0), Ok(()));
    }
    assert!(throttle.reserve("alice", Some(&[1; 16]), Some(ip), T0).is_err());
}

/// A device cookie's failures lock out only that cookie: after its
/// allowance it is a stranger (counted against the account), other
/// cookies stay trusted, and it is trusted again once forgotten.
#[test]
fn failures_with_a_device_cookie_lock_out_only_that_cookie() {
    let throttle = LoginThrottle::new();
    let (stolen, owners) = ([1; 16], [2; 16]);
    for _ in 0..FREE_FAILURES_PER_DEVICE {
        let r = throttle.reserve("alice", Some(&stolen), None, T0).unwrap();
        assert!(r.trusted());
    }
    // The account has not been touched: strangers have their allowance.
    assert!(throttle.table().get(&Key::Account("alice".into())).is_none());
    let listed = throttle.reserve("Alice", Some(&stolen), None, T0).unwrap();
    assert!(!listed.trusted(), "a locked-out cookie is a stranger");
    for _ in 0..FREE_FAILURES_PER_ACCOUNT {
        assert!(throttle.reserve("alice", Some(&stolen), None, T0).is_ok());
    }
    assert!(throttle.reserve("alice", Some(&stolen), None, T0).is_err());
    assert!(attempt(&throttle, "alice", None, T0).is_err());
    let owner = throttle.reserve("alice", Some(&owners), None, T0).unwrap();
    assert!(owner.trusted(), "another cookie was locked out too");
    // A failure that could not be checked is given back to the cookie.
    throttle.released(owner);
    let record = throttle.table().get(&Key::Device("alice".into(), owners)).copied();
    assert_eq!(record.map(|r| r.failures), Some(0));
    let later = T0 + secs(2 * 3600);
    assert!(throttle.reserve("alice", Some(&stolen), None, later).unwrap().trusted());
}
