//! [`SessionOrigin`]: which entry point created a session.
//!
//! The portal's forward auth and account pages vouch for a person to other
//! applications, so they must accept only sessions the portal itself made
//! at a password check — never one an API key holder created for any
//! subject it liked (issue 12, finding 3). The origin is recorded at
//! creation and copied by every later write; nothing the API receives can
//! set it.

use serde::{Deserialize, Serialize};

/// Which entry point created a session.
///
/// Records written before the field existed read back as [`Api`](Self::Api):
/// an old record is never taken for a portal login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionOrigin {
    /// Created by an application: the service API, or a library caller
    /// that did not say otherwise. The subject is whatever the caller chose.
    #[default]
    Api,
    /// Created by the portal's own login, after checking the password of an
    /// existing, enabled portal user.
    Portal,
}

impl SessionOrigin {
    /// Stable lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOrigin::Api => "api",
            SessionOrigin::Portal => "portal",
        }
    }

    /// The origin a stored name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "api" => Some(SessionOrigin::Api),
            "portal" => Some(SessionOrigin::Portal),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for origin in [SessionOrigin::Api, SessionOrigin::Portal] {
            assert_eq!(SessionOrigin::from_name(origin.as_str()), Some(origin));
            let json = serde_json::to_string(&origin).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", origin.as_str()));
        }
        assert_eq!(SessionOrigin::from_name("Portal"), None);
        assert_eq!(SessionOrigin::default(), SessionOrigin::Api);
    }
}
