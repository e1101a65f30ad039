//! Client binding through the manager: signals, the anomaly events they
//! record (once per change), and the revocation under `revoke`.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    AnomalyReason, BindMode, ClientBinding, ClientInfo, CreateOptions, EventKind, MemoryStore, Policy, Rejection,
    RevokeReason, Rotation, SessionStore, Signals,
};

use crate::lifecycle::{alice, fixture_with, rejected};

const CHROME_120: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const CHROME_131: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36";
const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn client(ip: &str, user_agent: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.to_owned()),
        user_agent: Some(user_agent.to_owned()),
        sealed: None,
    }
}

fn policy(ip: BindMode, user_agent: BindMode) -> Policy {
    Policy {
        client_binding: ClientBinding {
            ip,
            user_agent,
            ..ClientBinding::default()
        },
        ..Policy::default()
    }
}

fn anomalies(kinds: &[EventKind]) -> Vec<AnomalyReason> {
    kinds
        .iter()
        .filter_map(|kind| match kind {
            EventKind::Anomaly(reason) => Some(*reason),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn under_signal_a_new_network_is_signalled_and_recorded_once() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        policy(BindMode::Signal, BindMode::Signal),
    );
    let home = client("203.0.113.7", CHROME_120);
    let options = CreateOptions {
        client: home.clone(),
        ..CreateOptions::default()
    };
    let (token, created) = f.manager.create(&alice(), options).await.expect("create");
    assert_eq!(created.created_client, home);
    f.events.take();

    // Same /24, a browser update: nothing.
    let nearby = client("203.0.113.200", CHROME_131);
    let session = f
        .manager
        .verify(token.expose_secret(), Some(&nearby))
        .await
        .expect("verify");
    assert_eq!(f.manager.signals(&session, Some(&nearby)), Signals::default());
    assert_eq!(
        anomalies(&f.events.take().iter().map(|e| e.kind).collect::<Vec<_>>()),
        []
    );

    // Another network: signalled, one event, the client written as last
    // seen (a touch, which needs a later time than the last one).
    f.clock.advance(Duration::from_secs(1));
    let away = client("198.51.100.4", CHROME_131);
    let session = f
        .manager
        .verify(token.expose_secret(), Some(&away))
        .await
        .expect("verify");
    assert_eq!(
        f.manager.signals(&session, Some(&away)),
        Signals {
            ip_changed: true,
            user_agent_changed: false
        }
    );
    let events = f.events.take();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(anomalies(&kinds), [AnomalyReason::IpChanged], "{kinds:?}");
    let anomaly = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Anomaly(_)))
        .expect("anomaly");
    assert_eq!(anomaly.session_id.as_ref(), Some(&created.id));
    assert_eq!(
        anomaly.client.as_ref().and_then(|c| c.ip.as_deref()),
        Some("198.51.100.4")
    );
    let stored = store.get_by_id(&created.id).await.expect("read").expect("live");
    assert_eq!(stored.client.ip.as_deref(), Some("198.51.100.4"));
    assert_eq!(stored.created_client, home, "the creating client is never overwritten");

    // The same change again records nothing more; the session stays valid.
    f.clock.advance(Duration::from_secs(5));
    f.manager
        .verify(token.expose_secret(), Some(&away))
        .await
        .expect("verify");
    assert_eq!(
        anomalies(&f.events.take().iter().map(|e| e.kind).collect::<Vec<_>>()),
        []
    );

    // Then another browser family: its own signal, once.
    let other_browser = client("198.51.100.4", FIREFOX_LINUX);
    f.manager
        .verify(token.expose_secret(), Some(&other_browser))
        .await
        .expect("verify");
    let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind).collect();
    assert_eq!(anomalies(&kinds), [AnomalyReason::UserAgentChanged], "{kinds:?}");
}

#[tokio::test]
async fn under_revoke_a_new_network_ends_the_session_as_hijack_suspected() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        policy(BindMode::Revoke, BindMode::Signal),
    );
    let home = client("203.0.113.7", CHROME_120);
    let options = CreateOptions {
        client: home.clone(),
        ..CreateOptions::default()
    };
    let (token, created) = f.manager.create(&alice(), options).await.expect("create");
    // Inside the prefix and a version bump: still fine.
    f.manager
        .verify(token.expose_secret(), Some(&client("203.0.113.8", CHROME_131)))
        .await
        .expect("same network");
    f.events.take();

    let thief = client("198.51.100.4", CHROME_120);
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), Some(&thief)).await),
        Rejection::Revoked
    );
    let stored = store.get_by_id(&created.id).await.expect("read").expect("tombstone");
    assert_eq!(stored.revoked.map(|r| r.reason), Some(RevokeReason::HijackSuspected));
    let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind).collect();
    assert_eq!(anomalies(&kinds), [AnomalyReason::IpChanged], "{kinds:?}");
    assert!(
        kinds.contains(&EventKind::Revoked(RevokeReason::HijackSuspected)),
        "{kinds:?}"
    );
    // The owner's next request, from home, is refused too.
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), Some(&home)).await),
        Rejection::Revoked
    );
}

#[tokio::test]
async fn under_revoke_a_rotation_from_another_browser_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        policy(BindMode::Signal, BindMode::Revoke),
    );
    let options = CreateOptions {
        client: client("203.0.113.7", CHROME_120),
        ..CreateOptions::default()
    };
    let (token, created) = f.manager.create(&alice(), options).await.expect("create");
    let other = client("203.0.113.7", FIREFOX_LINUX);
    assert_eq!(
        rejected(
            f.manager
                .rotate_from(token.expose_secret(), Rotation::Plain, Some(&other))
                .await
        ),
        Rejection::Revoked
    );
    let stored = store.get_by_id(&created.id).await.expect("read").expect("tombstone");
    assert_eq!(stored.revoked.map(|r| r.reason), Some(RevokeReason::HijackSuspected));
}

#[tokio::test]
async fn off_compares_nothing() {
    let f = fixture_with(Arc::new(MemoryStore::new()), policy(BindMode::Off, BindMode::Off));
    let options = CreateOptions {
        client: client("203.0.113.7", CHROME_120),
        ..CreateOptions::default()
    };
    let (token, _) = f.manager.create(&alice(), options).await.expect("create");
    f.events.take();
    let elsewhere = client("198.51.100.4", FIREFOX_LINUX);
    let session = f
        .manager
        .verify(token.expose_secret(), Some(&elsewhere))
        .await
        .expect("verify");
    assert_eq!(f.manager.signals(&session, Some(&elsewhere)), Signals::default());
    assert_eq!(f.events.take(), []);
}

#[tokio::test]
async fn theft_records_an_anomaly_with_the_revocation() {
    let f = fixture_with(Arc::new(MemoryStore::new()), Policy::default());
    let (old, _) = f
        .manager
        .create(&alice(), CreateOptions::default())
        .await
        .expect("create");
    f.manager
        .rotate(old.expose_secret(), Rotation::Plain)
        .await
        .expect("rotate");
    f.clock.advance(Duration::from_secs(1));
    f.events.take();
    assert_eq!(
        rejected(f.manager.verify(old.expose_secret(), None).await),
        Rejection::Superseded
    );
    let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind).collect();
    let theft = kinds
        .iter()
        .position(|k| *k == EventKind::Anomaly(AnomalyReason::Theft));
    let revoked = kinds.iter().position(|k| *k == EventKind::Revoked(RevokeReason::Theft));
    assert!(theft.is_some() && theft < revoked, "{kinds:?}");
}
