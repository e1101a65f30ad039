//! [`Audit`]: the events a session write stores in its own atomic change.
//!
//! An event written after the change it records can be lost between the
//! two (a crash, a full queue), and then an acknowledged revocation has no
//! trace in the log. So the manager hands each write the events it records
//! and the engine stores them in the same step as the sessions: the same
//! Redis script, PostgreSQL transaction or embedded commit. Either both are
//! stored or neither is.
//!
//! Some events the caller cannot name in advance: the sessions an insert
//! evicts, the ones "sign out everywhere" ends, the expired ones a purge
//! removes are picked by the store inside the write. For those the audit
//! carries a [`Picked`] template and a block of ids, and the engine makes
//! one event per picked record with [`Picked::event`].

use time::OffsetDateTime;

use crate::event_id::IdBlock;
use crate::event_store::StoredEvent;
use crate::events::{Event, EventKind};
use crate::session::Session;

/// Events to store with one session write. The default records nothing:
/// the caller then emits its events itself, after the write.
///
/// Which method writes what is on [`crate::SessionStore`]'s methods; the
/// rule for all of them: events are stored if and only if the write
/// changes the store, in the same atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Events the caller knows before the write: a login's `created`, a
    /// rotation's `rotated`, a revocation's `revoked` (for `insert`,
    /// `update` and `revoke`).
    pub events: Vec<StoredEvent>,
    /// The template of the events of records the store picks itself.
    pub picked: Option<Picked>,
}

impl Audit {
    /// Records nothing.
    pub const NONE: Audit = Audit {
        events: Vec::new(),
        picked: None,
    };

    /// True when there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.picked.is_none()
    }

    /// The events of the records a write picked, in the order given, when
    /// the audit has a template (engines that build events in Rust).
    pub fn picked_events<'a>(&self, records: impl IntoIterator<Item = &'a Session>) -> Vec<StoredEvent> {
        match &self.picked {
            Some(picked) => records
                .into_iter()
                .enumerate()
                .map(|(i, session)| picked.event(i, session))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Everything to store for a write that picked `records`: the known
    /// events, then one per picked record.
    pub fn all_events<'a>(&self, records: impl IntoIterator<Item = &'a Session>) -> Vec<StoredEvent> {
        let mut all = self.events.clone();
        all.extend(self.picked_events(records));
        all
    }
}

/// The event of every record a write picks: the same time and kind, the
/// record's own tenant, id and subject (none for an anonymous record), no
/// client, and the `i`th id of a reserved block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    /// When.
    pub at: OffsetDateTime,
    /// What: `revoked` with the write's reason, or `expired_purged`.
    pub kind: EventKind,
    /// Where the ids come from.
    pub ids: IdBlock,
}

impl Picked {
    /// The event of the `i`th record the write picked.
    pub fn event(&self, i: usize, session: &Session) -> StoredEvent {
        StoredEvent {
            id: self.ids.id(i),
            event: Event {
                at: self.at,
                kind: self.kind,
                tenant: session.tenant.clone(),
                session_id: Some(session.id.clone()),
                // An anonymous session's events name nobody.
                subject: session.signed_in_subject().cloned(),
                client: None,
                count: 1,
            },
        }
    }

    /// The event's JSON up to the tenant: `{"at":…,"kind":…` with no closing
    /// brace, for engines that finish it in a script with the record's
    /// tenant, session id and subject. Reading it back gives
    /// [`Picked::event`]'s event.
    pub fn json_head(&self) -> Result<String, serde_json::Error> {
        let mut head = serde_json::to_string(&Head {
            at: self.at,
            kind: self.kind,
        })?;
        head.pop();
        Ok(head)
    }
}

#[derive(serde::Serialize)]
struct Head {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_id::EventIds;
    use crate::ids::{SessionId, Subject, Tenant};
    use crate::origin::SessionOrigin;
    use crate::session::{Aal, ClientInfo, RevokeReason};
    use crate::token::Token;

    fn session() -> Session {
        let at = OffsetDateTime::UNIX_EPOCH;
        Session {
            id: SessionId::generate().unwrap(),
            tenant: Tenant::new("acme").unwrap(),
            // Read from an old record: characters a script must escape.
            subject: Subject::from_record("alice\"/\\\u{e9}").unwrap(),
            token_hash: Token::generate().unwrap().hash(),
            previous_token: None,
            created_at: at,
            last_seen_at: at,
            authenticated_at: at,
            idle_expires_at: at,
            absolute_expires_at: at,
            remember_me: false,
            aal: Aal::AAL1,
            data: crate::SessionData::new(),
            created_client: ClientInfo::default(),
            client: ClientInfo::default(),
            version: 1,
            revoked: None,
            origin: SessionOrigin::Api,
        }
    }

    #[test]
    fn a_script_finishing_the_head_writes_the_same_event() {
        let ids = EventIds::with_node(9);
        let picked = Picked {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1_767_225_600_123_456),
            kind: EventKind::Revoked(RevokeReason::Limit),
            ids: ids.reserve(OffsetDateTime::UNIX_EPOCH),
        };
        let session = session();
        // What a script appends: tenant, session id and subject as JSON strings.
        let json = format!(
            "{},\"tenant\":{},\"session_id\":{},\"subject\":{}}}",
            picked.json_head().unwrap(),
            serde_json::to_string(session.tenant.as_str()).unwrap(),
            serde_json::to_string(session.id.as_str()).unwrap(),
            serde_json::to_string(session.subject.as_str()).unwrap(),
        );
        let read: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(read, picked.event(0, &session).event);
    }

    #[test]
    fn picked_ids_are_the_block_in_order_and_follow_the_prefix() {
        let ids = EventIds::with_node(0xabc);
        let before = ids.next_id(OffsetDateTime::UNIX_EPOCH);
        let block = ids.reserve(OffsetDateTime::UNIX_EPOCH);
        let after = ids.next_id(OffsetDateTime::UNIX_EPOCH);
        let picked = Picked {
            at: OffsetDateTime::UNIX_EPOCH,
            kind: EventKind::ExpiredPurged,
            ids: block,
        };
        let audit = Audit {
            events: Vec::new(),
            picked: Some(picked),
        };
        let (a, b) = (session(), session());
        let events = audit.picked_events([&a, &b]);
        assert_eq!(events[0].id, block.id(0));
        assert_eq!(events[1].id, block.id(1));
        assert!(before < events[0].id && events[0].id < events[1].id && events[1].id < after);
        assert_eq!(
            events[1].id.as_str(),
            format!("{}{:08x}", block.prefix(), block.first() + 1)
        );
        assert_eq!(
            events[1].event.session_id,
            Some(SessionId::parse(b.id.as_str()).unwrap())
        );
        assert_eq!(
            events[1].event.subject,
            Some(Subject::from_record(b.subject.as_str()).unwrap())
        );
    }
}
