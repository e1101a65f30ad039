//! Anonymous sessions: a visitor's session before sign-in, and the sign-in
//! that replaces it.
//!
//! A session can start when a visitor arrives (a cart, preferences) and
//! must get a new token whenever its privilege changes, signing in above
//! all (OWASP's session management guidance). An anonymous session is an ordinary
//! record whose subject is [`Subject::anonymous`]: same tokens, same store,
//! same rules, with its own timeouts and data limit from the [`Policy`]. It
//! never counts towards, nor appears among, anybody's sessions, and is
//! never taken as a proof of identity (no step-up, no access token, no
//! portal or forward-auth login).
//!
//! [`SessionManager::sign_in`] never promotes the record in place: it
//! creates a new session (new id, new token) and ends the anonymous one, so
//! a token planted before login is worth nothing after it.
//!
//! [`Policy`]: crate::Policy

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::counters::{CounterKey, CounterRule, CounterStore, Reserved};
use crate::error::Error;
use crate::events::Rejection;
use crate::ids::Subject;
use crate::manager::{AllowGrace, CreateOptions, SessionData, SessionManager, check_data_size};
use crate::origin::SessionOrigin;
use crate::session::{Aal, ClientInfo, RevokeReason, Session};
use crate::store::SubjectLimit;
use crate::token::Token;

/// What a new anonymous session starts with.
#[derive(Debug, Clone, Default)]
pub struct AnonymousOptions {
    /// Initial data (at most the policy's `anonymous_max_data_bytes`).
    pub data: SessionData,
    /// The visitor's client; its address is what the per-address limit
    /// counts.
    pub client: ClientInfo,
}

/// Which data the signed-in session gets from the anonymous one.
#[derive(Clone, Default)]
pub enum CarryData {
    /// All of it (the default).
    #[default]
    All,
    /// None: the new session starts with [`SignInOptions::create`]'s data.
    Nothing,
    /// What the function makes of the anonymous session's data: keep some
    /// keys, or merge a cart into one the user saved earlier. It may be
    /// called more than once, with the latest data each time, when the
    /// visitor's session changes while the sign-in is under way.
    With(Arc<dyn Fn(&SessionData) -> SessionData + Send + Sync>),
}

impl fmt::Debug for CarryData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarryData::All => f.write_str("All"),
            CarryData::Nothing => f.write_str("Nothing"),
            CarryData::With(_) => f.write_str("With(..)"),
        }
    }
}

/// How [`SessionManager::sign_in`] makes the signed-in session.
#[derive(Debug, Clone, Default)]
pub struct SignInOptions {
    /// As for [`SessionManager::create`]; its `data` is what the new
    /// session has when `carry` is [`CarryData::Nothing`], and is
    /// otherwise replaced by what is carried.
    pub create: CreateOptions,
    /// What to carry over.
    pub carry: CarryData,
}

/// Where and how anonymous creations are counted.
#[derive(Debug, Clone)]
pub(crate) struct AnonymousLimit {
    pub(crate) counters: Arc<dyn CounterStore>,
    pub(crate) rule: CounterRule,
}

/// The counter an anonymous creation from `ip` counts under: the address
/// itself for IPv4, its /64 for IPv6 (one host usually holds a whole /64).
/// `None` for text that is not an address.
pub fn anonymous_counter_key(ip: &str) -> Option<CounterKey> {
    let network = match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    };
    CounterKey::new(format!("anon:{network}")).ok()
}

impl CarryData {
    fn carry(&self, anonymous: &SessionData, own: &SessionData) -> SessionData {
        match self {
            CarryData::All => anonymous.clone(),
            CarryData::Nothing => own.clone(),
            CarryData::With(function) => function(anonymous),
        }
    }
}

impl SessionManager {
    /// Starts an anonymous session (a visitor who has not signed in) and
    /// returns its token, shown only this once.
    ///
    /// It lives for the policy's anonymous timeouts, holds at most
    /// `anonymous_max_data_bytes`, and is counted against its client
    /// address when an [anonymous limit] is set
    /// ([`Error::AnonymousLimit`] past it). Create one only when there is
    /// something to keep (the first write), never for a page read, so that
    /// crawlers cost no store writes.
    ///
    /// [anonymous limit]: crate::SessionManagerBuilder::anonymous_limit
    pub async fn create_anonymous(&self, options: AnonymousOptions) -> Result<(Token, Session), Error> {
        let policy = self.policy();
        check_data_size(&options.data, policy.anonymous_max_data_bytes)?;
        let client = options.client.sanitized();
        self.count_anonymous(&client).await?;
        let create = CreateOptions {
            remember_me: false,
            aal: Aal::AAL1,
            data: options.data,
            client,
            // Never a portal login, whoever asks.
            origin: SessionOrigin::Api,
        };
        self.insert_new(
            &Subject::anonymous(),
            policy.anonymous_idle_timeout,
            policy.anonymous_absolute_timeout,
            SubjectLimit::Unlimited,
            create,
        )
        .await
    }

    /// Counts one anonymous creation against `client`'s address.
    async fn count_anonymous(&self, client: &ClientInfo) -> Result<(), Error> {
        let Some(limit) = &self.shared.anonymous_limit else {
            return Ok(());
        };
        let Some(key) = client.ip.as_deref().and_then(anonymous_counter_key) else {
            return Ok(());
        };
        let now = self.now();
        match limit
            .counters
            .reserve(&[(key, limit.rule)], now)
            .await
            .map_err(Error::Counters)?
        {
            Reserved::Counted(_) => Ok(()),
            Reserved::Locked(until) => {
                let until = until.into_iter().flatten().max().unwrap_or(now);
                Err(Error::AnonymousLimit {
                    retry_after: (until - now).try_into().unwrap_or_default(),
                })
            }
        }
    }

    /// Signs the visitor of an anonymous session in as `subject`: creates
    /// a session for `subject` under a new token and a new id, with the data
    /// `options.carry` takes from the anonymous one, and ends the anonymous
    /// session (reason `signed_in`). Returns the new token and session.
    ///
    /// [`Error::Rejected`] if `token` names no live session, and
    /// [`Error::WrongKind`] if it names a signed-in one: both mean "not a
    /// visitor to sign in". The new session is created before the
    /// anonymous one ends, so a failure leaves the visitor's data where it
    /// was; data written to the anonymous session meanwhile is carried
    /// too. Of two sign-ins from one anonymous session, one wins; the
    /// other's session is ended and it gets [`Error::Rejected`].
    pub async fn sign_in(
        &self,
        token: &str,
        subject: &Subject,
        options: SignInOptions,
    ) -> Result<(Token, Session), Error> {
        subject.check_new()?;
        let now = self.now();
        let client = Some(&options.create.client).filter(|c| !c.is_empty());
        let (_, visitor) = self.find_valid(token, now, client, AllowGrace::No).await?;
        if !visitor.is_anonymous() {
            return Err(Error::WrongKind);
        }
        let mut create = options.create.clone();
        create.data = options.carry.carry(&visitor.data, &options.create.data);
        let (new_token, mut session) = self.create(subject, create).await?;
        let Some(ended) = self.revoke_live(&visitor, RevokeReason::SignedIn).await? else {
            // Another sign-in (or a logout) ended the visitor's session
            // first: this one must not leave a second session behind.
            self.revoke_live(&session, RevokeReason::SignedIn).await?;
            return Err(Error::Rejected(Rejection::Revoked));
        };
        // The revocation moved the version by one; more means the data
        // changed between our read and the end: carry the final data.
        if ended.version != visitor.version + 1 && !matches!(options.carry, CarryData::Nothing) {
            let data = options.carry.carry(&ended.data, &options.create.data);
            session = self.update_data(&session.id, data, Some(session.version)).await?;
        }
        Ok((new_token, session))
    }
}
