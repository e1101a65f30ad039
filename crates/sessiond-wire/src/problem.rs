//! The error body: `application/problem+json` (RFC 9457) with a stable code.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error body. `type` is `urn:sessiond:problem:<code>` and `status` the
/// code's status, so the body alone says everything the status line does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URN naming the problem: `urn:sessiond:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short human-readable summary; never contains a token or a key.
    pub title: String,
    /// The HTTP status.
    #[cfg_attr(feature = "openapi", schema(minimum = 400, maximum = 599))]
    pub status: u16,
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// For `version_conflict`: the version the record has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl Problem {
    /// The body for `code` with a human `title`.
    pub fn new(code: ErrorCode, title: impl Into<String>) -> Self {
        Self {
            kind: code.type_uri(),
            title: title.into(),
            status: code.status().as_u16(),
            code,
            current_version: None,
        }
    }

    /// With the record's current version (for `version_conflict`).
    pub fn with_current_version(mut self, current: Option<u64>) -> Self {
        self.current_version = current;
        self
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, numbers and a unit enum: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_code_in_type_code_and_status() {
        let problem = Problem::new(ErrorCode::VersionConflict, "changed").with_current_version(Some(4));
        let json: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "urn:sessiond:problem:version_conflict",
                "title": "changed",
                "status": 412,
                "code": "version_conflict",
                "current_version": 4,
            })
        );
        let back: Option<Problem> = serde_json::from_value(json).ok();
        assert_eq!(back, Some(problem));
    }
}
