//! Sealing at rest: a keyring of AEAD keys for what a store must not
//! show in clear (session `data`, the client's IP and User-Agent).
//!
//! A sealed value is the text `v1.<key id>.<base64url(nonce ‖ ciphertext)>`:
//! XChaCha20-Poly1305 with a random 192-bit nonce (random nonces are safe
//! at any volume with 192 bits, so no counter has to be shared between
//! nodes), sealed under the keyring's first key. The key id (8 hex digits
//! derived from the key) names which key opens it, so keys rotate without
//! downtime: put a new key first, keep the old ones after it until
//! `sessiond store reseal` has rewritten what they sealed.
//!
//! The associated data binds a value to its place: what it is
//! ([`Place`]) and the record it belongs to. A sealed value copied into
//! another record, or into another field, does not open.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::Aead as _;
use chacha20poly1305::aead::Payload;
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};

use crate::error::RandomnessError;

/// Length of a data key in bytes.
pub const DATA_KEY_LEN: usize = 32;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
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
    /// An audit event's `client`, bound to its tenant and event id.
    EventClient {
        /// The event's tenant.
        tenant: &'a str,
        /// The event's id.
        id: &'a str,
    },
}

impl Place<'_> {
    /// The associated data: a label, then each part length-prefixed so no
    /// two places share an encoding.
    fn associated_data(&self) -> Vec<u8> {
        let (label, parts): (&[u8], [&str; 2]) = match *self {
            Place::SessionData { tenant, id } => (b"sessiond/v1/session-data", [tenant, id]),
            Place::SessionClient { id } => (b"sessiond/v1/session-client", ["", id]),
            Place::EventClient { tenant, id } => (b"sessiond/v1/event-client", [tenant, id]),
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
    /// No nonce: the system's randomness failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// Beyond what the cipher takes (256 GiB); records are bounded far below.
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
    cipher: XChaCha20Poly1305,
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
                cipher: XChaCha20Poly1305::new(&key.into()),
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
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(RandomnessError::new)?;
        let aad = place.associated_data();
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        let sealed = key
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::TooLong)?;
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        Ok(format!("{VERSION}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(body)))
    }

    /// Opens a value sealed for `place` by any key of the ring.
    pub fn open(&self, place: Place<'_>, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let (id, body) = parse(sealed)?;
        let key = self.keys.iter().find(|k| k.id == id).ok_or(OpenError::UnknownKey(id))?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let aad = place.associated_data();
        key.cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Forged)
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
    if body.len() < NONCE_LEN + TAG_LEN {
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
