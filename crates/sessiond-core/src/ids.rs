//! Public identifiers: the session id, the subject and the tenant.
//!
//! None of these is secret. Each is validated at construction so that
//! every value in the system is bounded and printable.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::RandomnessError;

/// Length of an encoded [`SessionId`]: 16 random bytes in base64url.
const SESSION_ID_LEN: usize = 22;

/// Longest subject accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// Longest tenant name accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

/// The public, non-secret handle of a session: used in device lists, admin
/// calls, URLs and audit events. Knowing it grants nothing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// Draws a new random id (128 bits, enough that collisions are never
    /// expected; stores still refuse one rather than overwrite).
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(RandomnessError::new)?;
        Ok(Self::from_random(bytes))
    }

    /// The id of these random bytes ([`crate::Shards::id_in`] sets the
    /// first ones).
    pub(crate) fn from_random(bytes: [u8; 16]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// Parses an id from a URL or a store. Anything that is not 22
    /// characters of canonical base64url is rejected.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() != SESSION_ID_LEN {
            return None;
        }
        let mut bytes = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(input, &mut bytes) {
            Ok(16) => Some(Self(input.into())),
            _ => None,
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a subject or tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The name is longer than allowed.
    #[error("{what} is longer than {max} bytes")]
    TooLong {
        /// Which kind of name.
        what: &'static str,
        /// The limit in bytes.
        max: usize,
    },
    /// The name holds a character that is not allowed.
    #[error("{0} contains a character that is not allowed")]
    BadCharacter(&'static str),
    /// A new subject holds a character [`is_refused_in_subject`] refuses.
    #[error(
        "subject must not contain {}: no control, bidirectional, space or separator \
         characters, nor , ; < > \" ' \\",
        CharName(*.0)
    )]
    RefusedInSubject(char),
}

/// A character as an error message shows it: itself when it is visible
/// ASCII, else its code point (a bidi control would reorder the message).
struct CharName(char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0)
        } else {
            write!(f, "U+{:04X}", u32::from(self.0))
        }
    }
}

/// Who a session belongs to: an opaque user id chosen by the caller, or
/// nobody yet ([`Subject::anonymous`]).
///
/// 1 to 256 bytes of UTF-8 that is safe to log, to put in a header and to
/// show in a page: [`Subject::new`] refuses every character for which
/// [`is_refused_in_subject`] holds. Emails, UUIDs, `user:123`,
/// `tenant/alice` and non-ASCII letters (`zoë`) are all fine.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Arc<str>);

/// Whether `c` may not appear in a new subject:
///
/// - control characters (Unicode `Cc`): they break logs and headers;
/// - bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069): they make a subject display as another one;
/// - separators and white space (Unicode `Z*`, and whatever
///   [`char::is_whitespace`] says): ` admin` or `alice admin` look like
///   other names, and header parsers split or trim on them;
/// - `,` `;` `<` `>` `"` `'` `\`: a comma makes `alice, admin` read as two
///   values of a list header, `;` starts parameters, and the rest quote or
///   open markup.
///
/// The list is written out rather than taken from a Unicode table so that
/// the OpenAPI pattern of a subject can say exactly the same.
pub fn is_refused_in_subject(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            // Bidirectional controls.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Separators (Zs, Zl, Zp): `is_whitespace` covers them today;
            // listed so the list reads like the OpenAPI pattern.
            | '\u{0020}' | '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}'
            | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
            // Header list, parameter and quoting characters, and markup.
            | ',' | ';' | '<' | '>' | '"' | '\'' | '\\'
        )
}

impl Subject {
    /// Validates a new subject: non-empty, at most [`MAX_SUBJECT_LEN`]
    /// bytes, and no character [`is_refused_in_subject`] refuses.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        check_recorded(&value)?;
        check_characters(&value)?;
        Ok(Self(value.into()))
    }

    /// A subject read back from a store, an event log or another sessiond.
    ///
    /// Checks only the rule records were written under before the character
    /// rule of [`Subject::new`] (non-empty, bounded, no control characters),
    /// so that sessions, users and events stored earlier still load, and
    /// reads the empty string as [`Subject::anonymous`]. Never use it for a
    /// subject that arrives in a request:
    /// [`SessionManager::create`](crate::SessionManager::create) refuses a
    /// subject that [`Subject::new`] would refuse, whatever made it.
    pub fn from_record(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if value.is_empty() {
            return Ok(Self::anonymous());
        }
        check_recorded(&value)?;
        Ok(Self(value.into()))
    }

    /// The subject of an anonymous session: a visitor who has not signed
    /// in. Stored as the empty string, which no other subject can be
    /// ([`Subject::new`] refuses it), so every engine keeps anonymous
    /// sessions in its existing layout and none can be mistaken for a
    /// user's. Never listed, counted or revoked as a subject.
    pub fn anonymous() -> Self {
        Self(Arc::from(""))
    }

    /// Whether this is [`Subject::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the rule of [`Subject::new`] again: it fails for a subject
    /// read back by [`Subject::from_record`] that predates the rule, and
    /// for [`Subject::anonymous`].
    pub fn check_new(&self) -> Result<(), NameError> {
        if self.is_anonymous() {
            return Err(NameError::Empty("subject"));
        }
        check_characters(&self.0)
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rule every stored subject meets: non-empty, bounded, no control
/// characters.
fn check_recorded(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty("subject"));
    }
    if value.len() > MAX_SUBJECT_LEN {
        return Err(NameError::TooLong {
            what: "subject",
            max: MAX_SUBJECT_LEN,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(NameError::BadCharacter("subject"));
    }
    Ok(())
}

/// The character rule of a new subject.
fn check_characters(value: &str) -> Result<(), NameError> {
    match value.chars().find(|c| is_refused_in_subject(*c)) {
        Some(c) => Err(NameError::RefusedInSubject(c)),
        None => Ok(()),
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", self.0)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace a session lives in. Every API key belongs to one tenant and
/// nothing crosses tenants. Lower-case ASCII letters, digits, `-` and `_`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant used when none is configured (library use, a fresh service).
    pub fn default_tenant() -> Self {
        Self("default".into())
    }

    /// Validates a tenant name.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if value.is_empty() {
            return Err(NameError::Empty("tenant"));
        }
        if value.len() > MAX_TENANT_LEN {
            return Err(NameError::TooLong {
                what: "tenant",
                max: MAX_TENANT_LEN,
            });
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if !value.chars().all(allowed) {
            return Err(NameError::BadCharacter("tenant"));
        }
        Ok(Self(value.into()))
    }

    /// The tenant name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", self.0)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! serde_as_validated_string {
    ($ty:ident, $parse:expr, $what:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let parse: fn(String) -> Option<$ty> = $parse;
                parse(text).ok_or_else(|| serde::de::Error::custom(concat!("invalid ", $what)))
            }
        }
    };
}

serde_as_validated_string!(SessionId, |s| SessionId::parse(&s), "session id");
// Deserialized subjects are records (stores, event logs); requests parse
// theirs with `Subject::new`.
serde_as_validated_string!(Subject, |s| Subject::from_record(s).ok(), "subject");
serde_as_validated_string!(Tenant, |s| Tenant::new(s).ok(), "tenant");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_parse_back() {
        let a = SessionId::generate().unwrap_or_else(|e| panic!("{e}"));
        let b = SessionId::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(SessionId::parse(""), None);
        assert_eq!(SessionId::parse(&"!".repeat(22)), None);
        assert_eq!(SessionId::parse(&format!("{a}x")), None);
    }

    #[test]
    fn subjects_are_bounded_and_printable() {
        assert!(Subject::new("user-42").is_ok());
        assert_eq!(Subject::new(""), Err(NameError::Empty("subject")));
        assert_eq!(Subject::new("a\nb"), Err(NameError::BadCharacter("subject")));
        assert_eq!(
            Subject::new("x".repeat(257)),
            Err(NameError::TooLong {
                what: "subject",
                max: 256
            })
        );
    }

    #[test]
    fn the_anonymous_subject_is_only_read_back_never_named() {
        let anonymous = Subject::anonymous();
        assert!(anonymous.is_anonymous());
        assert_eq!(Subject::from_record(""), Ok(Subject::anonymous()));
        assert_eq!(anonymous.check_new(), Err(NameError::Empty("subject")));
        assert!(!Subject::new("a").unwrap_or_else(|e| panic!("{e}")).is_anonymous());
    }

    #[test]
    fn ordinary_ids_are_subjects() {
        for ok in [
            "a.b+c@example.com",
            "0b6f8e4c-2d1a-4c7e-9a51-3f0e2b7d9c11",
            "user:123",
            "tenant/alice",
            "zoë",
            "用户",
            "user}{42",
        ] {
            assert!(Subject::new(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn subjects_that_would_confuse_headers_pages_or_readers_are_refused() {
        for bad in [
            "alice, admin",
            "<script>",
            " ",
            "a\u{202e}b",
            "alice admin",
            "a\u{a0}b",
            "a\u{2028}b",
            "a\u{3000}b",
            "a\u{2066}b",
            "a;b",
            "\"a\"",
            "it's",
            "a\\b",
            "a\u{85}b",
            "a\tb",
        ] {
            assert!(
                matches!(
                    Subject::new(bad),
                    Err(NameError::RefusedInSubject(_) | NameError::BadCharacter("subject"))
                ),
                "{bad:?}"
            );
        }
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if c.is_whitespace() || c.is_control() {
                assert!(Subject::new(format!("a{c}b")).is_err(), "U+{:04X}", u32::from(c));
            }
        }
    }

    #[test]
    fn the_refusal_names_the_character_safely() {
        let message = |s: &str| Subject::new(s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message("alice, admin").starts_with("subject must not contain ','"));
        assert!(message("a\u{202e}b").starts_with("subject must not contain U+202E"));
        assert!(message(" ").starts_with("subject must not contain U+0020"));
    }

    #[test]
    fn records_written_under_the_old_rule_still_load() {
        let old = Subject::from_record("jane doe").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.check_new(), Err(NameError::RefusedInSubject(' ')));
        assert!(Subject::new("jane doe").is_err());
        assert!(Subject::from_record("a\nb").is_err());
        // The empty subject is the anonymous one, the only record no
        // request can name.
        assert_eq!(Subject::from_record(""), Ok(Subject::anonymous()));
        let read: Subject = serde_json::from_str("\"jane doe\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, old);
        assert!(Subject::new("jane").is_ok_and(|s| s.check_new().is_ok()));
    }

    #[test]
    fn tenants_are_restricted_to_a_safe_alphabet() {
        assert!(Tenant::new("acme_prod-1").is_ok());
        assert_eq!(Tenant::new("Acme"), Err(NameError::BadCharacter("tenant")));
        assert_eq!(Tenant::new("a b"), Err(NameError::BadCharacter("tenant")));
        assert_eq!(Tenant::new(""), Err(NameError::Empty("tenant")));
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert!(serde_json::from_str::<SessionId>("\"short\"").is_err());
        assert!(serde_json::from_str::<Subject>("\"a\\nb\"").is_err());
        assert_eq!(serde_json::from_str::<Subject>("\"\"").ok(), Some(Subject::anonymous()));
        assert!(serde_json::from_str::<Tenant>("\"UPPER\"").is_err());
        let id = SessionId::generate().unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::from_str::<SessionId>(&json).ok(), Some(id));
    }
}
