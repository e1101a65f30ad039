//! [`EventId`]: the unique, time-ordered id of a stored audit event, and
//! [`EventIds`], the generator each node writes with.
//!
//! An id is 35 characters of fixed width, so ids compare as text exactly
//! as they compare in time, in every engine (a redb key, a Redis sorted
//! set read by lex range, a `COLLATE "C"` column):
//!
//! ```text
//! 01767225600000000-1a2b3c4d-00000007
//! ^ µs since epoch  ^ node   ^ sequence
//!   (17 digits)       (8 hex)  (8 hex)
//! ```
//!
//! * The time is the event's `at`, whole microseconds (before the epoch
//!   counts as 0; 17 digits last until the year 5138).
//! * The node part is random, drawn once per generator, so two nodes
//!   writing in the same microsecond still make different ids.
//! * The sequence counts up per generator, so events one node records in
//!   the same microsecond keep the order it recorded them in.
//!
//! Events of different nodes in the same microsecond are ordered by node
//! part: arbitrary, but the same on every node, which is all a cursor
//! needs. The id says nothing secret: it is a time and two counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::RandomnessError;

/// Length of every [`EventId`], in bytes.
pub const EVENT_ID_LEN: usize = 35;

const MICROS_DIGITS: usize = 17;

/// The id of a stored event, and the `before` cursor of a query. See the
/// module docs for its layout; ids sort as text in time order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Arc<str>);

/// Text that is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is 17 digits, '-', 8 hex digits, '-', 8 hex digits")]
pub struct BadEventId;

impl EventId {
    /// The id of an event at `at`, made by generator `node` as its `seq`th.
    pub fn compose(at: OffsetDateTime, node: u32, seq: u32) -> Self {
        let micros = (at.unix_timestamp_nanos() / 1_000).clamp(0, 99_999_999_999_999_999);
        Self(format!("{micros:017}-{node:08x}-{seq:08x}").into())
    }

    /// The smallest id any event at `at` can have: every event older than
    /// `at` has a smaller id, every event at or after it a larger or equal
    /// one. Engines prune by age with it.
    pub fn first_at(at: OffsetDateTime) -> Self {
        Self::compose(at, 0, 0)
    }

    /// Reads an id from a query string or a store.
    pub fn parse(text: &str) -> Result<Self, BadEventId> {
        let bytes = text.as_bytes();
        let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        let ok = bytes.len() == EVENT_ID_LEN
            && bytes[..MICROS_DIGITS].iter().all(u8::is_ascii_digit)
            && bytes[MICROS_DIGITS] == b'-'
            && bytes[MICROS_DIGITS + 1..MICROS_DIGITS + 9].iter().all(hex)
            && bytes[MICROS_DIGITS + 9] == b'-'
            && bytes[MICROS_DIGITS + 10..].iter().all(hex);
        if ok { Ok(Self(text.into())) } else { Err(BadEventId) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time the id begins with, to the microsecond.
    pub fn at(&self) -> OffsetDateTime {
        let micros: i128 = self.0[..MICROS_DIGITS].parse().unwrap_or(0);
        OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EventId {
    type Error = BadEventId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0.to_string()
    }
}

/// Makes the ids of one node: a random node part, and a sequence. Shared
/// (in an `Arc`) by the node's event writer and its session manager, so
/// that ids one node makes never repeat.
#[derive(Debug)]
pub struct EventIds {
    node: u32,
    seq: AtomicU32,
}

/// Ids reserved for the events a store picks itself during one write (the
/// sessions an insert evicts, say): the `i`th such event gets [`IdBlock::id`]
/// of `i`. See [`crate::Audit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    at: OffsetDateTime,
    node: u32,
    first: u32,
}

/// Sequence numbers an [`IdBlock`] reserves. A write that picks more events
/// runs into the next block's numbers, which only matters if the same node
/// makes another write in the same microsecond: the ids of the two writes
/// could then meet. 65,536 sessions of one subject ended in one step, and
/// another write within its microsecond, do not happen.
pub const ID_BLOCK_LEN: u32 = 1 << 16;

impl IdBlock {
    /// The id of the `i`th event of the block.
    pub fn id(&self, i: usize) -> EventId {
        // Truncation is the wrapping the block's docs describe.
        EventId::compose(self.at, self.node, self.first.wrapping_add(i as u32))
    }

    /// What every id of the block starts with: its time and node parts and
    /// the `-` before the sequence (for engines that number the events in a
    /// script: append [`IdBlock::first`] plus `i` as 8 hex digits, wrapping).
    pub fn prefix(&self) -> String {
        let mut id = self.id(0).as_str().to_owned();
        id.truncate(EVENT_ID_LEN - 8);
        id
    }

    /// The sequence number of the block's first id.
    pub fn first(&self) -> u32 {
        self.first
    }
}

impl EventIds {
    /// A generator with a random node part from the OS.
    pub fn new() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(RandomnessError::new)?;
        Ok(Self::with_node(u32::from_be_bytes(bytes)))
    }

    /// A generator with a chosen node part (tests, and tools that must be
    /// repeatable).
    pub fn with_node(node: u32) -> Self {
        Self {
            node,
            seq: AtomicU32::new(0),
        }
    }

    /// The id of the next event, which happened at `at`.
    pub fn next_id(&self, at: OffsetDateTime) -> EventId {
        // Wrapping is harmless: two ids collide only if one node made 2^32
        // events within one microsecond.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        EventId::compose(at, self.node, seq)
    }

    /// Reserves [`ID_BLOCK_LEN`] ids for events at `at` that a store will
    /// number itself.
    pub fn reserve(&self, at: OffsetDateTime) -> IdBlock {
        let first = self.seq.fetch_add(ID_BLOCK_LEN, Ordering::Relaxed).wrapping_add(1);
        IdBlock {
            at,
            node: self.node,
            first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_tells_its_time_to_the_microsecond() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_767_225_600_123_456_789).unwrap();
        let id = EventId::compose(at, 7, 1);
        assert_eq!(id.at().unix_timestamp_nanos(), 1_767_225_600_123_456_000);
        assert_eq!(EventId::first_at(id.at()).at(), id.at());
    }

    fn at(micros: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(micros)
    }

    #[test]
    fn ids_are_fixed_width_and_sort_as_text_in_time_order() {
        let ids = EventIds::with_node(0xdead_beef);
        let a = ids.next_id(at(1_767_225_600_000_000));
        let b = ids.next_id(at(1_767_225_600_000_000));
        let c = ids.next_id(at(1_767_225_600_000_001));
        assert_eq!(a.as_str(), "01767225600000000-deadbeef-00000001");
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        let other = EventIds::with_node(0).next_id(at(1_767_225_600_000_001));
        assert!(b < other && other < c);
        assert_eq!(EventId::compose(at(-5), 1, 1).as_str().len(), EVENT_ID_LEN);
    }

    #[test]
    fn first_at_splits_older_from_the_rest() {
        let ids = EventIds::with_node(u32::MAX);
        let older = ids.next_id(at(999));
        let same = EventIds::with_node(0).next_id(at(1_000));
        assert!(older < EventId::first_at(at(1_000)));
        assert!(EventId::first_at(at(1_000)) < same);
    }

    #[test]
    fn parse_takes_exactly_what_compose_writes() {
        let id = EventId::compose(at(1_767_225_600_123_456), 0xabc, 42);
        assert_eq!(EventId::parse(id.as_str()), Ok(id.clone()));
        let text = id.to_string();
        for bad in [
            "",
            &text[1..],
            &format!("{text}0"),
            &text.replace('-', "_"),
            &text.to_uppercase().replacen("0", "A", 1),
            "01767225600000000-DEADBEEF-00000001",
            "0176722560000000x-deadbeef-00000001",
        ] {
            assert_eq!(EventId::parse(bad), Err(BadEventId), "{bad:?}");
        }
    }
}
