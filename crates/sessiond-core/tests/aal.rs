//! Assurance levels over a session's life (issue 12, finding 10): raising the
//! level, re-authenticating and lowering it are distinct operations, and the
//! level caps the absolute lifetime.

use std::time::Duration;

use sessiond_core::{Aal, CreateOptions, Error, EventKind, Rejection, Rotation, Session, Token};

use crate::lifecycle::{Fixture, alice, fixture, rejected};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

async fn login(f: &Fixture, remember_me: bool, aal: Aal) -> (Token, Session) {
    let options = CreateOptions {
        remember_me,
        aal,
        ..CreateOptions::default()
    };
    f.manager.create(&alice(), options).await.expect("create")
}

/// Uses the session every 20 minutes for `span`, so the idle deadline never
/// decides; only the absolute one can end it.
async fn keep_busy(f: &Fixture, token: &Token, span: Duration) {
    let mut left = span;
    while !left.is_zero() {
        let step = left.min(20 * MIN);
        f.clock.advance(step);
        left -= step;
        f.manager
            .verify(token.expose_secret(), None)
            .await
            .expect("still valid");
    }
}

#[tokio::test]
async fn a_lower_level_is_refused_unless_a_downgrade_is_asked_for() {
    let f = fixture();
    let (token, created) = login(&f, false, Aal::AAL3).await;
    for rotation in [
        Rotation::AtLevel {
            aal: Aal::AAL1,
            reauthenticated: true,
        },
        Rotation::AtLevel {
            aal: Aal::AAL1,
            reauthenticated: false,
        },
        Rotation::StepUp(Aal::AAL1),
    ] {
        let result = f.manager.rotate(token.expose_secret(), rotation).await;
        assert!(
            matches!(
                result,
                Err(Error::AalDowngrade {
                    current: Aal::AAL3,
                    requested: Aal::AAL1
                })
            ),
            "{rotation:?}: {result:?}"
        );
    }
    // Nothing changed: the token still works, at the same level.
    let still = f.manager.verify(token.expose_secret(), None).await.expect("unchanged");
    assert_eq!((still.aal, still.version), (Aal::AAL3, created.version));
}

#[tokio::test]
async fn a_downgrade_asked_for_keeps_authenticated_at_and_never_extends_the_deadline() {
    let f = fixture();
    // Remember-me at AAL3: 12 h absolute (the level's cap), where AAL1
    // alone would allow 30 days.
    let (token, created) = login(&f, true, Aal::AAL3).await;
    f.clock.advance(HOUR);
    let (_, lowered) = f
        .manager
        .rotate(token.expose_secret(), Rotation::Downgrade(Aal::AAL1))
        .await
        .expect("downgrade");
    assert_eq!(lowered.aal, Aal::AAL1);
    assert_eq!(lowered.authenticated_at, created.authenticated_at);
    assert_eq!(lowered.absolute_expires_at, created.absolute_expires_at);
    let kinds: Vec<EventKind> = f.events.take().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Created, EventKind::Rotated]);
}

#[tokio::test]
async fn a_downgrade_must_lower_the_level() {
    let f = fixture();
    let (token, _) = login(&f, false, Aal::AAL2).await;
    for level in [Aal::AAL2, Aal::AAL3] {
        let result = f
            .manager
            .rotate(token.expose_secret(), Rotation::Downgrade(level))
            .await;
        assert!(matches!(result, Err(Error::AalNotLower { .. })), "{level}: {result:?}");
    }
    let result = f
        .manager
        .rotate(token.expose_secret(), Rotation::StepUp(Aal::AAL2))
        .await;
    assert!(matches!(result, Err(Error::AalNotHigher { .. })), "{result:?}");
}

#[tokio::test]
async fn step_up_to_aal3_caps_a_remember_me_session_at_12_hours() {
    let f = fixture();
    let (token, created) = login(&f, true, Aal::AAL1).await;
    assert_eq!(created.absolute_expires_at - created.created_at, 30 * 24 * HOUR);
    f.clock.advance(HOUR);
    let (token, elevated) = f
        .manager
        .rotate(token.expose_secret(), Rotation::StepUp(Aal::AAL3))
        .await
        .expect("step-up");
    assert_eq!(elevated.aal, Aal::AAL3);
    assert_eq!(elevated.authenticated_at, f.manager.now());
    assert_eq!(elevated.absolute_expires_at, f.manager.now() + 12 * HOUR);
    f.clock.advance(12 * HOUR - Duration::from_secs(1));
    f.manager
        .verify(token.expose_secret(), None)
        .await
        .expect("one second left");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::ExpiredAbsolute
    );
}

#[tokio::test]
async fn reauthentication_restarts_the_absolute_deadline() {
    let f = fixture();
    let (token, created) = login(&f, false, Aal::AAL1).await;
    keep_busy(&f, &token, 11 * HOUR).await;
    let (token, again) = f
        .manager
        .rotate(token.expose_secret(), Rotation::Reauthenticate)
        .await
        .expect("reauthenticate");
    assert_eq!(again.aal, Aal::AAL1);
    assert_eq!(again.authenticated_at, created.authenticated_at + 11 * HOUR);
    assert_eq!(again.absolute_expires_at, again.authenticated_at + 12 * HOUR);
    // Two hours past the original 12 h deadline, still valid.
    keep_busy(&f, &token, 3 * HOUR).await;
    assert!(f.manager.now() > created.absolute_expires_at);
}

#[tokio::test]
async fn rotating_at_the_same_level_without_reauthentication_keeps_authenticated_at() {
    let f = fixture();
    let (token, created) = login(&f, false, Aal::AAL2).await;
    f.clock.advance(5 * MIN);
    let same = Rotation::AtLevel {
        aal: Aal::AAL2,
        reauthenticated: false,
    };
    let (_, rotated) = f.manager.rotate(token.expose_secret(), same).await.expect("rotate");
    assert_eq!(rotated.aal, Aal::AAL2);
    assert_eq!(rotated.authenticated_at, created.authenticated_at);
    assert_eq!(rotated.absolute_expires_at, created.absolute_expires_at);
    let kinds: Vec<EventKind> = f.events.take().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Created, EventKind::Rotated]);
}

#[tokio::test]
async fn a_remember_me_login_at_aal2_lives_at_most_24_hours() {
    let f = fixture();
    let (token, created) = login(&f, true, Aal::AAL2).await;
    assert_eq!(created.absolute_expires_at - created.created_at, 24 * HOUR);
    // Remember-me idles for 7 days, so only the absolute deadline can end it.
    f.clock.advance(24 * HOUR);
    assert_eq!(
        rejected(f.manager.verify(token.expose_secret(), None).await),
        Rejection::ExpiredAbsolute
    );
}
