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
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes).into()))
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
}

/// Who a session belongs to: an opaque user id chosen by the caller.
///
/// Any printable text up to 256 bytes; control characters are refused so that
/// subjects can be logged and put in headers safely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Arc<str>);

impl Subject {
    /// Validates a subject.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
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
        Ok(Self(value.into()))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
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
serde_as_validated_string!(Subject, |s| Subject::new(s).ok(), "subject");
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
    fn tenants_are_restricted_to_a_safe_alphabet() {
        assert!(Tenant::new("acme_prod-1").is_ok());
        assert_eq!(Tenant::new("Acme"), Err(NameError::BadCharacter("tenant")));
        assert_eq!(Tenant::new("a b"), Err(NameError::BadCharacter("tenant")));
        assert_eq!(Tenant::new(""), Err(NameError::Empty("tenant")));
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert!(serde_json::from_str::<SessionId>("\"short\"").is_err());
        assert!(serde_json::from_str::<Subject>("\"\"").is_err());
        assert!(serde_json::from_str::<Tenant>("\"UPPER\"").is_err());
        let id = SessionId::generate().unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::from_str::<SessionId>(&json).ok(), Some(id));
    }
}
