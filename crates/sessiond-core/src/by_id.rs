//! Operations on sessions named by id or subject: reading, updating data,
//! revoking, and reclaiming expired records.

use std::sync::Arc;

use crate::error::Error;
use crate::events::{Event, EventKind};
use crate::ids::{SessionId, Subject};
use crate::manager::{AllowGrace, SessionData, SessionManager, check_data_size};
use crate::session::{Revocation, RevokeReason, Session};
use crate::store::StoreError;

/// Attempts of a data update that keeps losing races with
/// touches-free writers (rotation, other updates) before it reports a conflict.
const MAX_BLIND_ATTEMPTS: usize = 8;

impl SessionManager {
    /// The live session with this id in this tenant.
    ///
    /// Expired, revoked and other tenants' sessions are all [`Error::NotFound`].
    pub async fn get(&self, id: &SessionId) -> Result<Arc<Session>, Error> {
        let now = self.now();
        match self.shared.store.get_by_id(id).await? {
            Some(s) if s.tenant == self.tenant && s.is_live(now) => Ok(s),
            _ => Err(Error::NotFound),
        }
    }

    /// Replaces the session's data as a whole.
    ///
    /// With `expected_version`, the write happens only if the session still
    /// has that version ([`Error::VersionConflict`] otherwise): the way to
    /// read-modify-write without losing a concurrent update. Without it, the
    /// last writer wins. Either way the version goes up by one.
    pub async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: Option<u64>,
    ) -> Result<Session, Error> {
        let expected = expected_version.map(|v| [v]);
        self.update_data_if(id, data, expected.as_ref().map(<[u64; 1]>::as_slice))
            .await
    }

    /// Replaces the session's data as a whole if its version is one of
    /// `versions` (`None`: whatever it is); HTTP `If-Match` with a list of
    /// entity tags. An empty list matches no version.
    ///
    /// The condition is checked against the version the write is made over,
    /// and the write is a compare-and-set on that version. If a concurrent
    /// write gets in between, the session is read again and the condition
    /// checked again: no update is lost, and none lands on a version the
    /// caller did not name. When it does not hold: [`Error::VersionConflict`]
    /// with the current version.
    pub async fn update_data_if(
        &self,
        id: &SessionId,
        data: SessionData,
        versions: Option<&[u64]>,
    ) -> Result<Session, Error> {
        for _ in 0..MAX_BLIND_ATTEMPTS {
            let current = self.get(id).await?;
            // The limit depends on the kind, which never changes: a sign-in
            // makes a new session.
            check_data_size(&data, self.shared.policy.max_data_bytes_of(&current))?;
            if let Some(versions) = versions
                && !versions.contains(&current.version)
            {
                return Err(Error::VersionConflict {
                    current: current.version,
                });
            }
            let mut next = Session::clone(&current);
            next.data = data.clone();
            next.version = current.version + 1;
            let updated = self.event(self.now(), EventKind::DataUpdated, Some(&next), None);
            let audit = self.audit(vec![updated.clone()], None);
            match self.shared.store.update(&next, current.version, &audit).await {
                Ok(()) => {
                    self.emit_unless_stored([&updated]);
                    return Ok(next);
                }
                // Read again: the condition is checked against the new version.
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::NotFound) => return Err(Error::NotFound),
                Err(other) => return Err(other.into()),
            }
        }
        let current = self.get(id).await?;
        Err(Error::VersionConflict {
            current: current.version,
        })
    }

    /// Ends the session a token names (logout). Returns the session if one
    /// was ended; `None` if the token is malformed, unknown, already dead, or
    /// a rotated-out token past its grace (so logout is idempotent and
    /// reveals nothing).
    pub async fn revoke_token(&self, token: &str, reason: RevokeReason) -> Result<Option<Session>, Error> {
        let now = self.now();
        let session = match self.find_valid(token, now, None, AllowGrace::Yes).await {
            Ok((_, session)) => session,
            Err(Error::Rejected(_)) => return Ok(None),
            Err(other) => return Err(other),
        };
        self.revoke_live(&session, reason).await
    }

    /// Ends the session with this id; [`Error::NotFound`] if it is not live
    /// in this tenant.
    pub async fn revoke_id(&self, id: &SessionId, reason: RevokeReason) -> Result<Session, Error> {
        let session = self.get(id).await?;
        self.revoke_live(&session, reason).await?.ok_or(Error::NotFound)
    }

    /// Revokes `session` (as read: its tenant, id and subject name the
    /// event, and none of them changes).
    pub(crate) async fn revoke_live(&self, session: &Session, reason: RevokeReason) -> Result<Option<Session>, Error> {
        self.revoke_for(session, reason, Vec::new()).await
    }

    /// Revokes `session` because of what `anomalies` (events of kind
    /// `anomaly`) saw: they are stored in the same write as the
    /// revocation, so the reason for it is never lost. Nothing is recorded
    /// when another request revoked it first.
    pub(crate) async fn revoke_for(
        &self,
        session: &Session,
        reason: RevokeReason,
        anomalies: Vec<Event>,
    ) -> Result<Option<Session>, Error> {
        let now = self.now();
        let mut events = anomalies;
        events.push(self.event(now, EventKind::Revoked(reason), Some(session), None));
        let audit = self.audit(events.clone(), None);
        let revoked = self
            .shared
            .store
            .revoke(&session.id, Revocation { at: now, reason }, &audit)
            .await?;
        if revoked.is_some() {
            self.emit_unless_stored(&events);
        }
        Ok(revoked)
    }

    /// Ends every live session of `subject`, except `except` if given (the
    /// caller's own: "sign out everywhere else"). Returns how many ended;
    /// none for [`Subject::anonymous`], which is nobody.
    pub async fn revoke_subject(
        &self,
        subject: &Subject,
        except: Option<&SessionId>,
        reason: RevokeReason,
    ) -> Result<usize, Error> {
        if subject.is_anonymous() {
            return Ok(0);
        }
        let now = self.now();
        let revocation = Revocation { at: now, reason };
        let audit = self.audit(Vec::new(), Some((now, EventKind::Revoked(reason))));
        let revoked = self
            .shared
            .store
            .revoke_subject(&self.tenant, subject, except, revocation, now, &audit)
            .await?;
        let events: Vec<Event> = revoked
            .iter()
            .map(|s| self.event(now, EventKind::Revoked(reason), Some(s), None))
            .collect();
        self.emit_unless_stored(&events);
        Ok(revoked.len())
    }

    /// The subject's live sessions, newest first. Anonymous sessions
    /// belong to nobody: listing [`Subject::anonymous`] gives none.
    pub async fn list_subject(&self, subject: &Subject) -> Result<Vec<Session>, Error> {
        if subject.is_anonymous() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let mut sessions = self.shared.store.list_subject(&self.tenant, subject, now).await?;
        sessions.retain(|s| s.is_live(now));
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(sessions)
    }

    /// Removes up to `limit` expired records (of every tenant) from the
    /// store and returns how many. This only reclaims space: expired
    /// sessions are already refused by every read.
    pub async fn purge_expired(&self, limit: usize) -> Result<usize, Error> {
        let now = self.now();
        let audit = self.audit(Vec::new(), Some((now, EventKind::ExpiredPurged)));
        let purged = self.shared.store.purge_expired(now, limit, &audit).await?;
        let events: Vec<Event> = purged
            .iter()
            .filter(|s| s.revoked.is_none())
            .map(|s| self.event(now, EventKind::ExpiredPurged, Some(s), None))
            .collect();
        self.emit_unless_stored(&events);
        Ok(purged.len())
    }
}
