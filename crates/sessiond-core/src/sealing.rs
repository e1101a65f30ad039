//! Sealing at rest: a keyring of AEAD keys for what a store must not
//! show in clear (session `data`, the IP and User-Agent of the client last
//! seen and of the client at creation).
//!
//! A sealed value is the text `v1.<key id>.<base64url(salt ‖ ciphertext ‖ tag)>`:
//! AES-256-GCM under a key used for this one value, derived from the data
//! key and a random 192-bit salt (HMAC-SHA256). A fresh key per value means
//! no nonce is ever reused, whatever the volume and with no counter shared
//! between nodes; with one data key and random 96-bit nonces, GCM would
//! have to be retired after about 2^32 seals (NIST SP 800-38D, 8.3), and a
//! busy cluster touching clients reaches that within weeks. This is the
//! extended-nonce construction of XChaCha20, done with what `ring` offers.
//!
//! Why `ring` and not the `chacha20poly1305` crate STACK.md names: in the
//! `sealing` benchmark on this 2-core machine, XChaCha20-Poly1305 of that
//! crate took 2.3 µs for 64 bytes and 8.8 µs for 4 KiB, ring's AES-256-GCM
//! 0.31 µs and 1.5 µs (a SHA-256 of the same 64 bytes: 0.12 µs). Every
//! verify opens a record, so this is on the hot path; `ring` is already
//! what rustls uses here.
//!
//! The key id (8 hex digits derived from the key) names which key opens a
//! value, so keys rotate without downtime: put a new key first, keep the
//! old ones after it until `sessiond store reseal` has rewritten what they
//! sealed.
//!
//! The associated data binds a value to its place: what it is
//! ([`Place`]) and the record it belongs to. A sealed value copied into
//! another record, or into another field, does not open.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN as GCM_NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use sha2::{Digest as _, Sha256};

use crate::error::RandomnessError;

/// Length of a data key in bytes.
pub const DATA_KEY_LEN: usize = 32;

const VERSION: &str = "v1";
const SALT_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_ID_LEN: usize = 4;

/// Where a sealed value lives: part of its associated data, so a value
/// sealed for one place cannot be opened as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// A session's `data`, bound to its tenant and id.
    SessionData {
        /// The session's tenant.
        tenant: &'a str,
        /// The session's id.
        id: &'a str,
    },
    /// A session's `client`, bound to its id (ids are unique across the
    /// whole store; a touch names the session by id alone).
    SessionClient {
        /// The session's id.
        id: &'a str,
    },
    /// A session's `created_client`, bound to its id. A place of its own,
    /// apart from [`Place::SessionClient`]: the client at creation is what
    /// client binding compares with, so the last-seen client (which any
    /// touch writes) must not open in its place, nor the reverse.
    SessionCreatedClient {
        /// The session's id.
        id: &'a str,
    },
    /// An audit event's `client`, bound to its tenant and event id.
    EventClient {
        /// The event's tenant.
        tenant: &'a str,
        /// The event's id.
        id: &'a str,
    },
    /// A record of the secret store, bound to its name (the signing keys).
    Secret {
        /// The record's name.
        name: &'a str,
    },
}

impl Place<'_> {
    /// The associated data: a label, then each part length-prefixed so no
    /// two places share an encoding.
    fn associated_data(&self) -> Vec<u8> {
        let (label, parts): (&[u8], [&str; 2]) = match *self {
            Place::SessionData { tenant, id } => (b"sessiond/v1/session-data", [tenant, id]),
            Place::SessionClient { id } => (b"sessiond/v1/session-client", ["", id]),
            Place::SessionCreatedClient { id } => (b"sessiond/v1/session-created-client", ["", id]),
            Place::EventClient { tenant, id } => (b"sessiond/v1/event-client", [tenant, id]),
            Place::Secret { name } => (b"sessiond/v1/secret", ["", name]),
        };
        let mut aad = Vec::with_capacity(label.len() + 8 + parts[0].len() + parts[1].len());
        aad.extend_from_slice(label);
        for part in parts {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// The id of a data key: the first four bytes of a SHA-256 of the key,
/// shown as 8 hex digits. It names a key without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKeyId([u8; KEY_ID_LEN]);

impl DataKeyId {
    fn of(key: &[u8; DATA_KEY_LEN]) -> Self {
        let digest = Sha256::new_with_prefix(b"sessiond data key id\0")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self(id)
    }

    fn parse(text: &str) -> Option<Self> {
        if text.len() != 2 * KEY_ID_LEN {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(id))
    }
}

impl fmt::Display for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKeyId({self})")
    }
}

/// A data key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataKeyError {
    /// The text is not base64 of exactly 32 bytes.
    #[error("a data key is 32 random bytes, base64-encoded on one line (openssl rand -base64 32)")]
    Malformed,
    /// A keyring needs at least one key.
    #[error("no data key given")]
    Empty,
    /// The same key (or two keys with the same id) twice.
    #[error("data key {0} is given twice")]
    Duplicate(DataKeyId),
}

/// A value that cannot be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No salt: the system's randomness failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// Beyond what the cipher takes (64 GiB); records are bounded far below.
    #[error("value too long to seal")]
    TooLong,
}

/// A sealed value that does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed value of a version this build reads.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed by a key that is not in the keyring.
    #[error("sealed by data key {0}, which is not configured")]
    UnknownKey(DataKeyId),
    /// The key is known but the value does not authenticate: it was
    /// altered, or moved from another record or field.
    #[error("sealed value does not authenticate (altered, or moved from another record)")]
    Forged,
    /// The store holds sealed values but encryption is off.
    #[error("the store holds sealed values but encryption is off")]
    NoKeyring,
}

struct DataKey {
    id: DataKeyId,
    /// Derives the key of one value from its salt.
    derive: hmac::Key,
}

impl DataKey {
    /// The AES-256-GCM key of the value with this salt. Each is used for
    /// one value only, so its nonce can be constant.
    fn value_key(&self, salt: &[u8; SALT_LEN]) -> Result<LessSafeKey, ring::error::Unspecified> {
        let mut input = [0u8; 16 + SALT_LEN];
        input[..16].copy_from_slice(b"sessiond seal v1");
        input[16..].copy_from_slice(salt);
        let tag = hmac::sign(&self.derive, &input);
        Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, tag.as_ref())?))
    }
}

/// The nonce of every value: each value has a key of its own.
fn value_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; GCM_NONCE_LEN])
}

/// Data keys: the first seals, every one opens.
pub struct Keyring {
    keys: Vec<DataKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.key_ids()).finish()
    }
}

impl Keyring {
    /// A keyring from raw keys, the sealing key first.
    pub fn new(keys: impl IntoIterator<Item = [u8; DATA_KEY_LEN]>) -> Result<Self, DataKeyError> {
        let mut ring: Vec<DataKey> = Vec::new();
        for key in keys {
            let id = DataKeyId::of(&key);
            if ring.iter().any(|k| k.id == id) {
                return Err(DataKeyError::Duplicate(id));
            }
            ring.push(DataKey {
                id,
                derive: hmac::Key::new(hmac::HMAC_SHA256, &key),
            });
        }
        if ring.is_empty() {
            return Err(DataKeyError::Empty);
        }
        Ok(Self { keys: ring })
    }

    /// Parses one key file's text: base64 of 32 bytes, surrounding
    /// whitespace ignored.
    pub fn parse_key(text: &str) -> Result<[u8; DATA_KEY_LEN], DataKeyError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| DataKeyError::Malformed)?;
        <[u8; DATA_KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| DataKeyError::Malformed)
    }

    /// A new random key as a key file's text (base64 and a newline).
    pub fn generate_key_text() -> Result<String, RandomnessError> {
        let mut key = [0u8; DATA_KEY_LEN];
        getrandom::fill(&mut key).map_err(RandomnessError::new)?;
        Ok(format!("{}\n", STANDARD.encode(key)))
    }

    /// The id of the key that seals.
    pub fn sealing_key(&self) -> DataKeyId {
        self.keys[0].id
    }

    /// Every key's id, the sealing key first.
    pub fn key_ids(&self) -> Vec<DataKeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Seals `plaintext` for `place` with the first key.
    pub fn seal(&self, place: Place<'_>, plaintext: &[u8]) -> Result<String, SealError> {
        let key = &self.keys[0];
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(RandomnessError::new)?;
        let aad = place.associated_data();
        let mut body = Vec::with_capacity(SALT_LEN + plaintext.len() + TAG_LEN);
        body.extend_from_slice(&salt);
        body.extend_from_slice(plaintext);
        let mut sealed = body.split_off(SALT_LEN);
        key.value_key(&salt)
            .and_then(|k| k.seal_in_place_append_tag(value_nonce(), Aad::from(&aad), &mut sealed))
            .map_err(|_| SealError::TooLong)?;
        body.extend_from_slice(&sealed);
        Ok(format!("{VERSION}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(body)))
    }

    /// Opens a value sealed for `place` by any key of the ring.
    pub fn open(&self, place: Place<'_>, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let (id, mut body) = parse(sealed)?;
        let key = self.keys.iter().find(|k| k.id == id).ok_or(OpenError::UnknownKey(id))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&body[..SALT_LEN]);
        let aad = place.associated_data();
        let mut ciphertext = body.split_off(SALT_LEN);
        let len = key
            .value_key(&salt)
            .and_then(|k| k.open_in_place(value_nonce(), Aad::from(&aad), &mut ciphertext))
            .map_err(|_| OpenError::Forged)?
            .len();
        ciphertext.truncate(len);
        Ok(ciphertext)
    }
}

/// The key id a sealed value names, if it is one.
pub fn sealed_by(sealed: &str) -> Option<DataKeyId> {
    parse(sealed).ok().map(|(id, _)| id)
}

fn parse(sealed: &str) -> Result<(DataKeyId, Vec<u8>), OpenError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(OpenError::Malformed);
    };
    let id = DataKeyId::parse(id).ok_or(OpenError::Malformed)?;
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| OpenError::Malformed)?;
    if body.len() < SALT_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    Ok((id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: Place<'static> = Place::SessionData {
        tenant: "default",
        id: "s1",
    };

    fn ring(keys: &[u8]) -> Keyring {
        match Keyring::new(keys.iter().map(|&k| [k; DATA_KEY_LEN])) {
            Ok(ring) => ring,
            Err(e) => panic!("keyring: {e}"),
        }
    }

    fn seal(ring: &Keyring, place: Place<'_>, text: &str) -> String {
        match ring.seal(place, text.as_bytes()) {
            Ok(sealed) => sealed,
            Err(e) => panic!("seal: {e}"),
        }
    }

    #[test]
    fn opens_what_it_sealed_and_hides_it() {
        let ring = ring(&[1]);
        let sealed = seal(&ring, DATA, "{\"cart\":\"marker-7\"}");
        assert!(!sealed.contains("marker"));
        assert!(sealed.starts_with(&format!("v1.{}.", ring.sealing_key())));
        assert_eq!(ring.open(DATA, &sealed), Ok(b"{\"cart\":\"marker-7\"}".to_vec()));
        // A fresh nonce each time: equal plaintexts do not look equal.
        assert_ne!(seal(&ring, DATA, "same"), seal(&ring, DATA, "same"));
    }

    #[test]
    fn a_value_moved_to_another_place_does_not_open() {
        let ring = ring(&[1]);
        let sealed = seal(&ring, DATA, "x");
        let elsewhere = [
            Place::SessionData {
                tenant: "default",
                id: "s2",
            },
            Place::SessionData {
                tenant: "other",
                id: "s1",
            },
            Place::SessionClient { id: "s1" },
            Place::SessionCreatedClient { id: "s1" },
            Place::EventClient {
                tenant: "default",
                id: "s1",
            },
        ];
        for place in elsewhere {
            assert_eq!(ring.open(place, &sealed), Err(OpenError::Forged), "{place:?}");
        }
    }

    #[test]
    fn the_two_clients_of_a_session_do_not_open_as_each_other() {
        let ring = ring(&[1]);
        let last = Place::SessionClient { id: "s1" };
        let created = Place::SessionCreatedClient { id: "s1" };
        let sealed_last = seal(&ring, last, "{\"ip\":\"192.0.2.1\"}");
        let sealed_created = seal(&ring, created, "{\"ip\":\"192.0.2.2\"}");
        assert_eq!(ring.open(created, &sealed_last), Err(OpenError::Forged));
        assert_eq!(ring.open(last, &sealed_created), Err(OpenError::Forged));
        assert_eq!(
            ring.open(created, &sealed_created),
            Ok(b"{\"ip\":\"192.0.2.2\"}".to_vec())
        );
        let elsewhere = Place::SessionCreatedClient { id: "s2" };
        assert_eq!(ring.open(elsewhere, &sealed_created), Err(OpenError::Forged));
    }

    #[test]
    fn old_keys_open_and_the_first_seals() {
        let old = ring(&[1]);
        let sealed_before = seal(&old, DATA, "x");
        let rotated = ring(&[2, 1]);
        assert_eq!(rotated.open(DATA, &sealed_before), Ok(b"x".to_vec()));
        assert_eq!(sealed_by(&seal(&rotated, DATA, "x")), Some(rotated.sealing_key()));
        assert_ne!(rotated.sealing_key(), old.sealing_key());
        let retired = ring(&[2]);
        assert_eq!(
            retired.open(DATA, &sealed_before),
            Err(OpenError::UnknownKey(old.sealing_key()))
        );
    }

    #[test]
    fn altered_or_malformed_values_are_refused() {
        let ring = ring(&[1]);
        let sealed = seal(&ring, DATA, "hello");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert_eq!(ring.open(DATA, &altered), Err(OpenError::Forged));
        for bad in [
            "",
            "v1",
            "v2.00000000.AAAA",
            "v1.zz.AAAA",
            "v1.0102.AAAA",
            "v1.01020304.short",
        ] {
            assert_eq!(ring.open(DATA, bad), Err(OpenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn keys_parse_from_one_base64_line_and_are_distinct() {
        let text = match Keyring::generate_key_text() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert!(Keyring::parse_key(&text).is_ok());
        assert_eq!(Keyring::parse_key("c2hvcnQ="), Err(DataKeyError::Malformed));
        assert_eq!(Keyring::parse_key("not base64!"), Err(DataKeyError::Malformed));
        assert!(matches!(
            Keyring::new([[3; DATA_KEY_LEN], [3; DATA_KEY_LEN]]),
            Err(DataKeyError::Duplicate(_))
        ));
        assert!(matches!(Keyring::new([]), Err(DataKeyError::Empty)));
    }
}
