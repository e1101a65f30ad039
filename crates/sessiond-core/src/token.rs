//! The bearer token a client holds, and the hash under which stores keep it.
//!
//! A token is 32 bytes from the operating system's CSPRNG, encoded as URL-safe
//! base64 without padding behind the fixed prefix `sd_`: 46 characters in all.
//! Stores never see the token itself, only its SHA-256 ([`TokenHash`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::RandomnessError;

/// The recognisable prefix of every sessiond token. It lets secret scanners
/// find leaked tokens and lets us reject foreign strings cheaply.
pub const TOKEN_PREFIX: &str = "sd_";

/// Number of random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// Length of the encoded token: the prefix plus 43 base64 characters.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;

/// A secret session token.
///
/// `Debug` and `Display` never print the secret; use [`Token::expose_secret`]
/// where the value must be handed to the client (a cookie, a JSON body).
#[derive(Clone)]
pub struct Token {
    // The encoding is kept inline (it is ASCII) so parsing a token allocates
    // nothing: verify is the hot path.
    encoded: [u8; TOKEN_LEN],
    bytes: [u8; TOKEN_BYTES],
}

/// Why a string is not a token. Callers treat every variant as "no session";
/// the variants exist for events and tests, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenParseError {
    /// The string does not have exactly [`TOKEN_LEN`] bytes.
    #[error("token has the wrong length")]
    Length,
    /// The string does not start with [`TOKEN_PREFIX`].
    #[error("token has the wrong prefix")]
    Prefix,
    /// The body is not canonical URL-safe base64 of 32 bytes.
    #[error("token is not valid base64url")]
    Alphabet,
}

impl Token {
    /// Draws a new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(RandomnessError::new)?;
        Ok(Self::from_random(bytes))
    }

    /// The token of these random bytes ([`crate::Shards::token_in`] draws
    /// its own).
    pub(crate) fn from_random(bytes: [u8; TOKEN_BYTES]) -> Self {
        let mut encoded = [0u8; TOKEN_LEN];
        encoded[..TOKEN_PREFIX.len()].copy_from_slice(TOKEN_PREFIX.as_bytes());
        // 32 bytes always encode to exactly 43 characters, which is the room left.
        let _ = URL_SAFE_NO_PAD.encode_slice(bytes, &mut encoded[TOKEN_PREFIX.len()..]);
        Self { encoded, bytes }
    }

    /// Parses a token presented by a client.
    ///
    /// The check is strict and bounded: the length is tested before anything
    /// else, so hostile input costs at most one pass over 46 bytes. Only the
    /// canonical encoding is accepted (no padding, no whitespace, no
    /// non-canonical trailing bits), so each token has exactly one spelling.
    pub fn parse(input: &str) -> Result<Self, TokenParseError> {
        if input.len() != TOKEN_LEN {
            return Err(TokenParseError::Length);
        }
        let Some(body) = input.strip_prefix(TOKEN_PREFIX) else {
            return Err(TokenParseError::Prefix);
        };
        let mut bytes = [0u8; TOKEN_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(body, &mut bytes) {
            Ok(TOKEN_BYTES) => {
                let mut encoded = [0u8; TOKEN_LEN];
                encoded.copy_from_slice(input.as_bytes());
                Ok(Self { encoded, bytes })
            }
            _ => Err(TokenParseError::Alphabet),
        }
    }

    /// The token as the client must present it. Handle with care: this is
    /// the bearer secret.
    pub fn expose_secret(&self) -> &str {
        // Always ASCII: the prefix and base64url characters.
        std::str::from_utf8(&self.encoded).unwrap_or_default()
    }

    /// The SHA-256 of the token's random bytes: the only form a store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.bytes).into())
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for Token {}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(sd_…redacted)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sd_…redacted")
    }
}

/// SHA-256 of a token: the key under which stores find a session.
///
/// Not secret on its own (a leaked hash cannot be presented as a token), but
/// still kept out of logs to avoid giving correlation handles away.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

/// Hashes only the first 8 bytes: the value is already a uniform SHA-256
/// output, so any 8 of its bytes are as good as all 32, and equality still
/// compares all of them.
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl TokenHash {
    /// Wraps 32 bytes read back from a store.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes, for use as a store key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for engines whose keys are text.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses the form written by [`TokenHash::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        let raw = hex.as_bytes();
        if raw.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            *slot = (hi << 4) | lo;
        }
        Some(Self(out))
    }
}

/// Builds the hasher for maps keyed by [`TokenHash`]: it passes the
/// value's own first 8 bytes through. Safe against flooding because the keys
/// are SHA-256 outputs, already uniform, and nobody chooses which get stored.
pub type TokenHashBuildHasher = std::hash::BuildHasherDefault<PrehashedHasher>;

/// The hasher behind [`TokenHashBuildHasher`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl std::hash::Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

impl serde::Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text).ok_or_else(|| serde::de::Error::custom("invalid token hash"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> Token {
        Token::generate().unwrap_or_else(|e| panic!("randomness: {e}"))
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let t = token();
        assert_eq!(t.expose_secret().len(), TOKEN_LEN);
        assert!(t.expose_secret().starts_with("sd_"));
        assert_ne!(token(), t);
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let t = token();
        let secret_body = &t.expose_secret()[3..];
        assert!(!format!("{t:?}").contains(secret_body));
        assert!(!format!("{t}").contains(secret_body));
        assert!(!format!("{:?}", t.hash()).contains(&t.hash().to_hex()));
    }

    #[test]
    fn parse_rejects_each_kind_of_bad_input() {
        let good = token();
        let s = good.expose_secret();
        assert_eq!(Token::parse(""), Err(TokenParseError::Length));
        assert_eq!(Token::parse(" "), Err(TokenParseError::Length));
        assert_eq!(Token::parse(&format!(" {}", &s[1..])), Err(TokenParseError::Prefix));
        assert_eq!(Token::parse(&format!("xx_{}", &s[3..])), Err(TokenParseError::Prefix));
        assert_eq!(Token::parse(&format!("{s}=")), Err(TokenParseError::Length));
        assert_eq!(Token::parse(&s[..TOKEN_LEN - 1]), Err(TokenParseError::Length));
        // '+' and '/' belong to the standard alphabet, not the URL-safe one.
        let std_alphabet = format!("sd_{}", "+".repeat(43));
        assert_eq!(Token::parse(&std_alphabet), Err(TokenParseError::Alphabet));
        let trailing_space = format!("{} ", &s[..TOKEN_LEN - 1]);
        assert_eq!(Token::parse(&trailing_space), Err(TokenParseError::Alphabet));
        // A multi-byte character that keeps the byte length right.
        let unicode = format!("sd_é{}", "A".repeat(41));
        assert_eq!(Token::parse(&unicode), Err(TokenParseError::Alphabet));
        assert_eq!(Token::parse(s), Ok(good));
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // 43 base64 characters carry 258 bits; the last 2 must be zero.
        let canonical = format!("sd_{}A", "A".repeat(42));
        let non_canonical = format!("sd_{}B", "A".repeat(42));
        assert!(Token::parse(&canonical).is_ok());
        assert_eq!(Token::parse(&non_canonical), Err(TokenParseError::Alphabet));
    }

    #[test]
    fn hash_is_sha256_of_the_random_bytes_and_round_trips_as_hex() {
        let t = Token::parse(&format!("sd_{}A", "A".repeat(42))).unwrap_or_else(|e| panic!("{e}"));
        // SHA-256 of 32 zero bytes.
        assert_eq!(
            t.hash().to_hex(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert_eq!(TokenHash::from_hex(&t.hash().to_hex()), Some(t.hash()));
        assert_eq!(TokenHash::from_hex("ABCD"), None);
        assert_eq!(TokenHash::from_hex(&"G".repeat(64)), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,80}") {
            let _ = Token::parse(&input);
        }

        #[test]
        fn parse_round_trips_every_valid_token(bytes in any::<[u8; 32]>()) {
            let t = Token::from_random(bytes);
            let back = Token::parse(t.expose_secret());
            prop_assert_eq!(back, Ok(t));
        }

        #[test]
        fn near_misses_of_valid_tokens_never_panic(bytes in any::<[u8; 32]>(), pos in 0usize..TOKEN_LEN, c in any::<char>()) {
            let t = Token::from_random(bytes);
            let mut s: Vec<char> = t.expose_secret().chars().collect();
            s[pos] = c;
            let mutated: String = s.into_iter().collect();
            if let Ok(parsed) = Token::parse(&mutated) {
                prop_assert_eq!(parsed.expose_secret(), mutated.as_str());
            }
        }
    }
}
