//! Model-based property test of [`SessionManager`] over any store.
//!
//! Random sequences of operations and clock advances run against the real
//! manager and against a deliberately simple model of the lifecycle rules in
//! DESIGN.md. After every step the answers and the stored state must agree.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sessiond_core::{
    AnonymousOptions, CreateOptions, Error, LimitAction, Policy, Rejection, RevokeReason, Rotation, SessionId,
    SessionManager, SessionStore, SignInOptions, Subject,
};
use time::OffsetDateTime;

use crate::FakeClock;

const SUBJECTS: usize = 3;
const LIMIT: usize = 3;

/// The policy the model implements: short enough that sequences reach every
/// deadline, with a grace period and a limit so those paths run too.
pub fn model_policy() -> Policy {
    Policy {
        idle_timeout: Duration::from_secs(30 * 60),
        absolute_timeout: Duration::from_secs(2 * 3600),
        remember_me_idle_timeout: Duration::from_secs(3600),
        remember_me_absolute_timeout: Duration::from_secs(4 * 3600),
        // Sessions here are all AAL1, which these caps do not touch.
        aal2_absolute_timeout: Duration::from_secs(4 * 3600),
        aal3_absolute_timeout: Duration::from_secs(2 * 3600),
        touch_interval: Duration::from_secs(60),
        rotation_grace: Duration::from_secs(10),
        reuse_detection: true,
        max_sessions_per_subject: LIMIT as u32,
        on_session_limit: LimitAction::EvictOldest,
        max_data_bytes: 256,
        // The model tracks no clients; binding has its own tests.
        client_binding: sessiond_core::ClientBinding {
            ip: sessiond_core::BindMode::Off,
            user_agent: sessiond_core::BindMode::Off,
            ..sessiond_core::ClientBinding::default()
        },
        // Shorter than a signed-in session's, so both paths are reached.
        anonymous_idle_timeout: Duration::from_secs(10 * 60),
        anonymous_absolute_timeout: Duration::from_secs(3600),
        anonymous_max_data_bytes: 256,
    }
}

/// One step of a sequence. Indices pick among what exists, modulo its count.
#[derive(Debug, Clone)]
enum Op {
    /// Log a subject in.
    Create { subject: usize, remember_me: bool },
    /// A visitor arrives: an anonymous session.
    CreateAnonymous,
    /// Sign a subject in with one of the tokens ever issued (only an
    /// anonymous session's current token signs in).
    SignIn { token: usize, subject: usize },
    /// Verify one of the tokens ever issued.
    Verify { token: usize },
    /// Rotate with one of the tokens ever issued.
    Rotate { token: usize },
    /// Log out with one of the tokens ever issued.
    RevokeToken { token: usize },
    /// Revoke a session by id.
    RevokeId { session: usize },
    /// Revoke a subject's sessions, maybe sparing one.
    RevokeSubject { subject: usize, except: Option<usize> },
    /// Replace a session's data, with the right version, a stale one, or none.
    UpdateData {
        session: usize,
        value: u8,
        version: Option<bool>,
    },
    /// Move the clock.
    Advance { seconds: u64 },
    /// Reclaim expired records.
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    let steps = prop::sample::select(vec![1u64, 9, 11, 30, 59, 61, 600, 1799, 1801, 3600, 7200]);
    prop_oneof![
        3 => (0..SUBJECTS, any::<bool>()).prop_map(|(subject, remember_me)| Op::Create { subject, remember_me }),
        2 => Just(Op::CreateAnonymous),
        2 => (any::<usize>(), 0..SUBJECTS).prop_map(|(token, subject)| Op::SignIn { token, subject }),
        4 => any::<usize>().prop_map(|token| Op::Verify { token }),
        2 => any::<usize>().prop_map(|token| Op::Rotate { token }),
        1 => any::<usize>().prop_map(|token| Op::RevokeToken { token }),
        1 => any::<usize>().prop_map(|session| Op::RevokeId { session }),
        1 => (0..SUBJECTS, prop::option::of(any::<usize>()))
            .prop_map(|(subject, except)| Op::RevokeSubject { subject, except }),
        2 => (any::<usize>(), any::<u8>(), prop::option::of(any::<bool>()))
            .prop_map(|(session, value, version)| Op::UpdateData { session, value, version }),
        3 => steps.prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::Purge),
    ]
}

/// The model's view of one session.
#[derive(Debug, Clone)]
struct ModelSession {
    id: SessionId,
    /// `None`: anonymous.
    subject: Option<usize>,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    remember_me: bool,
    revoked: bool,
    purged: bool,
    version: u64,
    value: Option<u8>,
    /// Index into `tokens` of the current and previous token.
    current: usize,
    previous: Option<(usize, OffsetDateTime)>,
}

impl ModelSession {
    fn live(&self, now: OffsetDateTime) -> bool {
        !self.revoked && !self.purged && now < self.idle_expires_at && now < self.absolute_expires_at
    }
    fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
}

#[derive(Debug, Default)]
struct Model {
    sessions: Vec<ModelSession>,
    /// Every token ever issued, with the session it was issued to.
    tokens: Vec<(String, usize)>,
}

/// The idle timeout the manager gives `s`.
fn idle_of(policy: &Policy, s: &ModelSession) -> Duration {
    if s.subject.is_none() {
        policy.anonymous_idle_timeout
    } else {
        policy.timeouts(s.remember_me).0
    }
}

impl Model {
    /// A new session of `subject` (`None`: anonymous) created at `now` with
    /// token `token`, after the subject's oldest live sessions beyond the
    /// limit are revoked, as the manager's evicting limit does.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        policy: &Policy,
        subject: Option<usize>,
        remember_me: bool,
        token: String,
        id: SessionId,
        value: Option<u8>,
        now: OffsetDateTime,
    ) {
        if let Some(who) = subject {
            let mut live: Vec<usize> = (0..self.sessions.len())
                .filter(|&i| self.sessions[i].subject == Some(who) && self.sessions[i].live(now))
                .collect();
            if live.len() >= LIMIT {
                live.sort_by(|&a, &b| {
                    let (x, y) = (&self.sessions[a], &self.sessions[b]);
                    x.created_at.cmp(&y.created_at).then_with(|| x.id.cmp(&y.id))
                });
                for &i in live.iter().take(live.len() + 1 - LIMIT) {
                    self.sessions[i].revoked = true;
                    self.sessions[i].version += 1;
                }
            }
        }
        let (idle, absolute) = match subject {
            Some(_) => policy.timeouts(remember_me),
            None => (policy.anonymous_idle_timeout, policy.anonymous_absolute_timeout),
        };
        let current = self.tokens.len();
        self.tokens.push((token, self.sessions.len()));
        self.sessions.push(ModelSession {
            id,
            subject,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: (now + idle).min(now + absolute),
            absolute_expires_at: now + absolute,
            remember_me,
            revoked: false,
            purged: false,
            version: 1,
            value,
            current,
            previous: None,
        });
    }

    /// What verify (or logout/rotate, with `grace`) should say about a token.
    fn judge(&self, token: usize, now: OffsetDateTime, grace: bool) -> Result<usize, Rejection> {
        let (_, index) = &self.tokens[token];
        let s = &self.sessions[*index];
        let is_current = s.current == token;
        let is_previous = s.previous.is_some_and(|(t, _)| t == token);
        if s.purged || (!is_current && !is_previous) {
            return Err(Rejection::Unknown);
        }
        if s.revoked {
            return Err(Rejection::Revoked);
        }
        let in_grace = grace && s.previous.is_some_and(|(_, until)| now < until);
        if !is_current && !in_grace {
            return Err(Rejection::Superseded);
        }
        if now >= s.absolute_expires_at {
            return Err(Rejection::ExpiredAbsolute);
        }
        if now >= s.idle_expires_at {
            return Err(Rejection::ExpiredIdle);
        }
        Ok(*index)
    }

    /// Theft detection: `token` is a session's rotated-out token used
    /// after its grace while the session is live; the manager revokes it.
    fn steal(&mut self, token: usize, now: OffsetDateTime) {
        let index = self.tokens[token].1;
        let s = &mut self.sessions[index];
        if s.live(now) && s.previous.is_some_and(|(t, until)| t == token && now >= until) {
            s.revoked = true;
            s.version += 1;
        }
    }
}

fn subject(i: usize) -> Subject {
    Subject::new(format!("user-{i}")).expect("valid subject")
}

fn data(value: u8) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    map.insert("v".into(), value.into());
    map
}

fn rejection(result: Result<impl std::fmt::Debug, Error>) -> Rejection {
    match result {
        Err(Error::Rejected(why)) => why,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Runs `cases` random sequences against stores made by `factory`.
pub fn check_manager_against_model<F>(cases: u32, factory: F)
where
    F: Fn() -> Arc<dyn SessionStore>,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..60), |ops| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_sequence(factory(), ops));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("manager disagrees with the model: {failure}");
    }
}

async fn run_sequence(store: Arc<dyn SessionStore>, ops: Vec<Op>) {
    let clock = FakeClock::default();
    let policy = model_policy();
    let manager = SessionManager::builder(Arc::clone(&store))
        .policy(policy.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid policy");
    let mut model = Model::default();
    for op in ops {
        let now = sessiond_core::Clock::now(&clock);
        apply(&manager, &policy, &mut model, &op, now).await;
        check_state(&store, &model, now).await;
        if let Op::Advance { seconds } = op {
            clock.advance(Duration::from_secs(seconds));
        }
    }
}

async fn apply(manager: &SessionManager, policy: &Policy, model: &mut Model, op: &Op, now: OffsetDateTime) {
    let n_tokens = model.tokens.len();
    let n_sessions = model.sessions.len();
    match *op {
        Op::Create {
            subject: who,
            remember_me,
        } => {
            let options = CreateOptions {
                remember_me,
                ..CreateOptions::default()
            };
            let (token, session) = manager.create(&subject(who), options).await.expect("create");
            let token = token.expose_secret().to_owned();
            model.create(policy, Some(who), remember_me, token, session.id, None, now);
        }
        Op::CreateAnonymous => {
            let (token, session) = manager
                .create_anonymous(AnonymousOptions::default())
                .await
                .expect("create anonymous");
            assert!(session.is_anonymous());
            let token = token.expose_secret().to_owned();
            model.create(policy, None, false, token, session.id, None, now);
        }
        Op::SignIn { token, subject: who } if n_tokens > 0 => {
            let t = token % n_tokens;
            let result = manager
                .sign_in(&model.tokens[t].0, &subject(who), SignInOptions::default())
                .await;
            match model.judge(t, now, false) {
                Ok(i) if model.sessions[i].subject.is_some() => {
                    assert!(matches!(result, Err(Error::WrongKind)), "got {result:?}");
                }
                Ok(i) => {
                    let (new_token, got) = result.expect("model says a visitor signs in");
                    assert_ne!(got.id, model.sessions[i].id);
                    assert_eq!(got.subject, subject(who));
                    let value = model.sessions[i].value;
                    let token = new_token.expose_secret().to_owned();
                    model.create(policy, Some(who), false, token, got.id, value, now);
                    let visitor = &mut model.sessions[i];
                    visitor.revoked = true;
                    visitor.version += 1;
                }
                Err(why) => {
                    assert_eq!(rejection(result), why, "sign-in with token {t}");
                    model.steal(t, now);
                }
            }
        }
        Op::Verify { token } if n_tokens > 0 => {
            let t = token % n_tokens;
            let result = manager.verify(&model.tokens[t].0, None).await;
            match model.judge(t, now, true) {
                Ok(i) => {
                    let got = result.expect("model says valid");
                    let s = &mut model.sessions[i];
                    assert_eq!(got.id, s.id);
                    if now - s.last_seen_at >= policy.touch_interval {
                        let idle = idle_of(policy, s);
                        s.last_seen_at = now;
                        s.idle_expires_at = (now + idle).min(s.absolute_expires_at);
                    }
                    assert_eq!(
                        (got.last_seen_at, got.idle_expires_at),
                        (s.last_seen_at, s.idle_expires_at)
                    );
                }
                Err(why) => {
                    assert_eq!(rejection(result), why, "verify of token {t}");
                    model.steal(t, now);
                }
            }
        }
        Op::Rotate { token } if n_tokens > 0 => {
            let t = token % n_tokens;
            let result = manager.rotate(&model.tokens[t].0, Rotation::Plain).await;
            match model.judge(t, now, false) {
                Ok(i) => {
                    let (new_token, got) = result.expect("model says rotatable");
                    model.tokens.push((new_token.expose_secret().to_owned(), i));
                    let s = &mut model.sessions[i];
                    let idle = idle_of(policy, s);
                    s.previous = Some((s.current, now + policy.rotation_grace));
                    s.current = n_tokens;
                    s.last_seen_at = now;
                    s.idle_expires_at = (now + idle).min(s.absolute_expires_at);
                    s.version += 1;
                    assert_eq!((got.id.clone(), got.version), (s.id.clone(), s.version));
                }
                Err(why) => {
                    assert_eq!(rejection(result), why, "rotate with token {t}");
                    model.steal(t, now);
                }
            }
        }
        Op::RevokeToken { token } if n_tokens > 0 => {
            let t = token % n_tokens;
            let got = manager
                .revoke_token(&model.tokens[t].0, RevokeReason::Logout)
                .await
                .expect("revoke_token");
            match model.judge(t, now, true) {
                Ok(i) => {
                    let s = &mut model.sessions[i];
                    s.revoked = true;
                    s.version += 1;
                    assert_eq!(got.map(|g| g.id), Some(s.id.clone()));
                }
                Err(_) => {
                    assert_eq!(got, None);
                    model.steal(t, now);
                }
            }
        }
        Op::RevokeId { session } if n_sessions > 0 => {
            let s = &mut model.sessions[session % n_sessions];
            let result = manager.revoke_id(&s.id, RevokeReason::Admin).await;
            if s.live(now) {
                s.revoked = true;
                s.version += 1;
                assert_eq!(result.expect("live session").version, s.version);
            } else {
                assert!(matches!(result, Err(Error::NotFound)), "got {result:?}");
            }
        }
        Op::RevokeSubject { subject: who, except } => {
            let except = except
                .filter(|_| n_sessions > 0)
                .map(|e| model.sessions[e % n_sessions].id.clone());
            let count = manager
                .revoke_subject(&subject(who), except.as_ref(), RevokeReason::PasswordChange)
                .await
                .expect("revoke_subject");
            let mut expected = 0;
            for s in model
                .sessions
                .iter_mut()
                .filter(|s| s.subject == Some(who) && s.live(now))
            {
                if Some(&s.id) != except.as_ref() {
                    s.revoked = true;
                    s.version += 1;
                    expected += 1;
                }
            }
            assert_eq!(count, expected);
        }
        Op::UpdateData {
            session,
            value,
            version,
        } if n_sessions > 0 => {
            let s = &mut model.sessions[session % n_sessions];
            let expected = version.map(|right| if right { s.version } else { s.version + 7 });
            let result = manager.update_data(&s.id, data(value), expected).await;
            if !s.live(now) {
                assert!(matches!(result, Err(Error::NotFound)), "got {result:?}");
            } else if version == Some(false) {
                assert!(
                    matches!(result, Err(Error::VersionConflict { current }) if current == s.version),
                    "got {result:?}"
                );
            } else {
                s.version += 1;
                s.value = Some(value);
                assert_eq!(result.expect("update").version, s.version);
            }
        }
        Op::Purge => {
            let purged = manager.purge_expired(usize::MAX).await.expect("purge");
            let mut expected = 0;
            for s in model.sessions.iter_mut().filter(|s| !s.purged && s.expires_at() <= now) {
                s.purged = true;
                expected += 1;
            }
            assert_eq!(purged, expected);
        }
        _ => {}
    }
    // The subject listing agrees with the model, newest first.
    for who in 0..SUBJECTS {
        let listed: Vec<SessionId> = manager
            .list_subject(&subject(who))
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.id)
            .collect();
        let mut expected: Vec<&ModelSession> = model
            .sessions
            .iter()
            .filter(|s| s.subject == Some(who) && s.live(now))
            .collect();
        expected.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        let expected: Vec<SessionId> = expected.into_iter().map(|s| s.id.clone()).collect();
        assert_eq!(listed, expected, "listing of subject {who}");
    }
}

/// The stored records agree with the model.
async fn check_state(store: &Arc<dyn SessionStore>, model: &Model, now: OffsetDateTime) {
    for s in &model.sessions {
        let stored = store.get_by_id(&s.id).await.expect("get_by_id");
        if s.purged {
            assert!(stored.is_none(), "purged session still stored");
            continue;
        }
        let Some(stored) = stored else {
            // Engines with native expiry may drop expired records early.
            assert!(s.expires_at() <= now, "live session {:?} missing", s.id);
            continue;
        };
        assert_eq!(stored.version, s.version, "version of {:?}", s.id);
        assert_eq!(stored.revoked.is_some(), s.revoked, "revocation of {:?}", s.id);
        assert_eq!(stored.idle_expires_at, s.idle_expires_at, "idle deadline of {:?}", s.id);
        assert_eq!(stored.absolute_expires_at, s.absolute_expires_at);
        assert_eq!(
            stored.data.get("v").and_then(serde_json::Value::as_u64),
            s.value.map(u64::from)
        );
    }
}
