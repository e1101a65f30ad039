//! The problem+json shape, for the OpenAPI document.

use serde::Serialize;
use utoipa::ToSchema;

/// An error body (`application/problem+json`, RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable summary.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_token`.
    pub code: String,
}
