//! [`Shards`]: where a sharded store needs a session's keys to fall.
//!
//! A Redis Cluster runs a script only over keys of one hash slot, and a
//! write of a session changes its record (found by token hash), its id's
//! key and its subject's index together. So a sharded store splits its
//! keyspace into a fixed number of shards, each under a hash tag of its
//! own, and needs all of a session's keys in one shard: its subject's, so
//! that the subject's index and all of its sessions change together
//! (revoking every session of a user is one script).
//!
//! Token hashes and ids are random, so sessiond draws them to fall there
//! ([`Shards::id_in`], [`Shards::token_in`]):
//!
//! - an id's shard is read from its first character, which the draw sets
//!   (an id is public; it keeps 122 random bits of 128 with 64 shards);
//! - a token's shard is read from its hash, which nobody can set, so a
//!   token is drawn again until its hash falls in the shard: `count` draws
//!   on average. The token stays uniform over the tokens whose hash falls
//!   there, so it loses `log2(count)` of its 256 bits (6 with 64 shards),
//!   and its shard tells its holder nothing they could not learn from the
//!   store's key names.
//!
//! An anonymous session belongs to nobody, so it takes the shard its
//! freely drawn id falls in. A record never changes shard: its id does not
//! change, and every new token of a rotation is drawn in the id's shard
//! ([`Shards::of_id`]), for signed-in and anonymous sessions alike.
//!
//! The manager draws placed ids and tokens whenever its store answers
//! [`SessionStore::shards`](crate::SessionStore::shards): the Redis store
//! on a Cluster (64 shards by default). The conformance suites and the
//! manager's model test also run over a memory store held to this
//! placement (`sessiond_testkit::sharded`).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::RandomnessError;
use crate::ids::{SessionId, Subject, Tenant};
use crate::session::Session;
use crate::token::{TOKEN_BYTES, Token, TokenHash};

/// Token draws before [`Shards::token_in`] gives up: far beyond any run of
/// misses a working random source makes (with 64 shards the chance of
/// missing this often is below 2^-1400), so only a broken one reaches it.
const MAX_TOKEN_DRAWS: usize = 1 << 16;

/// Candidate tokens read from the operating system per call.
const TOKENS_PER_FILL: usize = 16;

/// A number of shards, a power of two from 1 to [`Shards::MAX`]. Fixed for
/// the life of a store: it decides which key a session lives under.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shards {
    count: u8,
}

impl Shards {
    /// The most shards a store can have (an id's first character holds six
    /// bits).
    pub const MAX: u8 = 64;

    /// `count` shards, if it is a power of two from 1 to [`Shards::MAX`].
    pub const fn new(count: u8) -> Option<Self> {
        if count.is_power_of_two() && count <= Self::MAX {
            Some(Self { count })
        } else {
            None
        }
    }

    /// How many there are.
    pub fn count(self) -> u8 {
        self.count
    }

    fn mask(self) -> u8 {
        self.count - 1
    }

    /// The shard of a token's record: the low bits of the hash's first byte.
    pub fn of_token(self, hash: &TokenHash) -> u8 {
        hash.as_bytes()[0] & self.mask()
    }

    /// The shard of an id (and of its session's record): the low bits of
    /// its first character's base64url value. Every id
    /// [`SessionId::parse`] accepts has one.
    pub fn of_id(self, id: &SessionId) -> u8 {
        let first = id.as_str().as_bytes().first().copied().unwrap_or(b'A');
        base64url_value(first) & self.mask()
    }

    /// The shard of a subject's sessions and index: the low bits of the
    /// first byte of its [`subject_digest`].
    pub fn of_subject(self, tenant: &Tenant, subject: &Subject) -> u8 {
        subject_digest(tenant, subject)[0] & self.mask()
    }

    /// A new session's shard: its subject's, or for an anonymous session
    /// `None` (any shard: the one its id is drawn in).
    pub fn for_subject(self, tenant: &Tenant, subject: &Subject) -> Option<u8> {
        (!subject.is_anonymous()).then(|| self.of_subject(tenant, subject))
    }

    /// Whether a record's id, token hashes and subject are all in one shard
    /// (the id's; an anonymous record has no subject's to agree with), as
    /// a sharded store needs them.
    pub fn places(self, session: &Session) -> bool {
        let shard = self.of_id(&session.id);
        let hashes = std::iter::once(&session.token_hash).chain(session.previous_token.as_ref().map(|p| &p.hash));
        self.for_subject(&session.tenant, &session.subject)
            .is_none_or(|subject| subject == shard)
            && hashes.into_iter().all(|hash| self.of_token(hash) == shard)
    }

    /// A new random id in `shard` (taken modulo the count), or in any shard
    /// when `None`.
    pub fn id_in(self, shard: Option<u8>) -> Result<SessionId, RandomnessError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(RandomnessError::new)?;
        if let Some(shard) = shard {
            // The first character encodes the first byte's top six bits.
            let value = ((bytes[0] >> 2) & !self.mask()) | (shard & self.mask());
            bytes[0] = (value << 2) | (bytes[0] & 0b11);
        }
        Ok(SessionId::from_random(bytes))
    }

    /// A new random token whose hash falls in `shard` (taken modulo the
    /// count).
    pub fn token_in(self, shard: u8) -> Result<Token, RandomnessError> {
        let shard = shard & self.mask();
        let mut pool = [0u8; TOKEN_BYTES * TOKENS_PER_FILL];
        for _ in 0..MAX_TOKEN_DRAWS / TOKENS_PER_FILL {
            getrandom::fill(&mut pool).map_err(RandomnessError::new)?;
            for chunk in pool.chunks_exact(TOKEN_BYTES) {
                let mut bytes = [0u8; TOKEN_BYTES];
                bytes.copy_from_slice(chunk);
                let token = Token::from_random(bytes);
                if self.of_token(&token.hash()) == shard {
                    return Ok(token);
                }
            }
        }
        Err(RandomnessError::new(getrandom::Error::UNEXPECTED))
    }
}

/// SHA-256 over tenant, a newline and subject: what a store derives a
/// subject's place from (its shard here; the Redis store's index tag too),
/// so that every engine reads the pair the same way.
pub fn subject_digest(tenant: &Tenant, subject: &Subject) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_str().as_bytes());
    // A tenant never holds '\n', so the pair is encoded unambiguously.
    hasher.update(b"\n");
    hasher.update(subject.as_str().as_bytes());
    hasher.finalize().into()
}

impl fmt::Debug for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shards({})", self.count)
    }
}

/// The six-bit value of a base64url character (0 for anything else: ids
/// are checked where they are parsed).
fn base64url_value(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(count: u8) -> Shards {
        Shards::new(count).unwrap_or_else(|| panic!("{count} shards"))
    }

    #[test]
    fn counts_are_powers_of_two_up_to_64() {
        for ok in [1, 2, 4, 8, 16, 32, 64] {
            assert_eq!(Shards::new(ok).map(Shards::count), Some(ok));
        }
        for bad in [0, 3, 48, 65, 128, 255] {
            assert_eq!(Shards::new(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_fall_in_the_shard_asked_for_and_stay_valid() {
        for count in [1, 2, 16, 64] {
            let s = shards(count);
            for shard in 0..count {
                for _ in 0..20 {
                    let id = s.id_in(Some(shard)).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(s.of_id(&id), shard);
                    assert_eq!(SessionId::parse(id.as_str()), Some(id));
                }
            }
        }
    }

    #[test]
    fn free_ids_cover_every_shard() {
        let s = shards(4);
        let mut seen = [false; 4];
        for _ in 0..400 {
            let id = s.id_in(None).unwrap_or_else(|e| panic!("{e}"));
            seen[usize::from(s.of_id(&id))] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn tokens_are_drawn_until_their_hash_falls_in_the_shard() {
        let s = shards(64);
        for shard in [0, 1, 37, 63] {
            let token = s.token_in(shard).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.of_token(&token.hash()), shard);
            // Still a token like any other: it parses back to itself.
            assert_eq!(Token::parse(token.expose_secret()).ok(), Some(token));
        }
    }

    #[test]
    fn one_shard_takes_every_token_and_id() {
        let s = shards(1);
        let token = s.token_in(5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.of_token(&token.hash()), 0);
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let subject = Subject::new("alice").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.for_subject(&t, &subject), Some(0));
    }

    #[test]
    fn a_subjects_shard_is_fixed_and_anonymous_sessions_have_none() {
        let s = shards(64);
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let alice = Subject::new("alice").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.for_subject(&t, &alice), Some(s.of_subject(&t, &alice)));
        assert_eq!(s.of_subject(&t, &alice), s.of_subject(&t, &alice));
        assert_eq!(s.for_subject(&t, &Subject::anonymous()), None);
        // Subjects spread: 200 of them do not all share one shard.
        let first = s.of_subject(&t, &alice);
        let spread = (0..200).any(|i| {
            let other = Subject::new(format!("user-{i}")).unwrap_or_else(|e| panic!("{e}"));
            s.of_subject(&t, &other) != first
        });
        assert!(spread);
    }
}
