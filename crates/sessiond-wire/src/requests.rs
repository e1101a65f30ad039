//! What requests to the API carry. Every type refuses unknown fields: a typo
//! in a security setting must not be silently ignored.

use serde::{Deserialize, Serialize};
use sessiond_core::SessionData;

use crate::ClientView;

/// `POST /v1/sessions`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Who logged in: 1 to 256 bytes of UTF-8 without control,
    /// bidirectional-control, space or separator characters and without
    /// `"` `'` `,` `;` `<` `>` `\` (refused: 400 `invalid_request`).
    /// (`maxLength` would count characters, not bytes: left out, see
    /// [`SUBJECT_PATTERN`](crate::SUBJECT_PATTERN).) Absent or null: an
    /// anonymous session (a visitor before sign-in), which takes no
    /// `remember_me` nor `aal` (the document shows the two forms as
    /// [`CreateBody`]'s two schemas).
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            min_length = 1,
            pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Longer timeouts.
    #[serde(default)]
    pub remember_me: bool,
    /// Assurance level of the login, 1 to 3 (default 1).
    #[serde(
        default,
        deserialize_with = "crate::strict::aal",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3))]
    pub aal: Option<u8>,
    /// Initial data object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<SessionData>,
    /// The end user's client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
}

/// The documented body of `POST /v1/sessions`: a login ([`CreateRequest`]
/// with its `subject`) or an anonymous session (no subject, or null; a
/// `data` object and a `client`; `remember_me` false and `aal` 1 at most,
/// as they are for every anonymous session). Schema only: the server reads
/// both into a [`CreateRequest`].
#[cfg(feature = "openapi")]
pub struct CreateBody;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CreateBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
        use utoipa::openapi::{Ref, RefOr};
        let typed = |kind: Type| ObjectBuilder::new().schema_type(SchemaType::new(kind));
        let or_null = |item: RefOr<Schema>| -> RefOr<Schema> {
            RefOr::T(Schema::OneOf(
                OneOfBuilder::new().item(item).item(typed(Type::Null)).build(),
            ))
        };
        let anonymous = ObjectBuilder::new()
            .description(Some("An anonymous session: a visitor before sign-in."))
            .property("subject", typed(Type::Null))
            .property("remember_me", typed(Type::Boolean).enum_values(Some([false])))
            .property("aal", or_null(typed(Type::Integer).enum_values(Some([1])).into()))
            .property(
                "data",
                or_null(typed(Type::Object).description(Some("Initial data object.")).into()),
            )
            .property("client", or_null(Ref::from_schema_name("ClientView").into()))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(Ref::from_schema_name("CreateRequest"))
                .item(anonymous)
                .build(),
        ))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CreateBody {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((
            "CreateRequest".to_owned(),
            <CreateRequest as utoipa::PartialSchema>::schema(),
        ));
        <CreateRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// `POST /v1/sessions/login`: signs the visitor of an anonymous session in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The anonymous session's token.
    pub token: String,
    /// Who signed in (the rule of `CreateRequest.subject`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$"
        )
    )]
    pub subject: String,
    /// Longer timeouts.
    #[serde(default)]
    pub remember_me: bool,
    /// Assurance level of the login, 1 to 3 (default 1).
    #[serde(
        default,
        deserialize_with = "crate::strict::aal",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3))]
    pub aal: Option<u8>,
    /// Whether the anonymous session's data moves to the new session
    /// (default true).
    #[serde(default = "yes")]
    pub carry_data: bool,
    /// Keys set on the new session over what is carried (the visitor's
    /// data, or nothing with `carry_data` false): what an application made
    /// of the visitor's data, a merged cart, in the same call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<SessionData>,
    /// The end user's client at sign-in (default: the one the anonymous
    /// session saw last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
}

fn yes() -> bool {
    true
}

/// `POST /v1/sessions/verify`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token the end user presented.
    pub token: String,
    /// The end user's client, recorded on touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
}

/// `POST /v1/sessions/rotate`
///
/// Without `aal` and `reauthenticated`: a new token only. `reauthenticated`:
/// the user proved who they are again (`authenticated_at` and the absolute
/// deadline restart). An `aal` above the session's is a step-up (a fresh
/// authentication at that level); the same `aal` changes nothing but the
/// token unless `reauthenticated`; a lower one is refused (`aal_downgrade`)
/// unless `downgrade` asks for it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The current token.
    pub token: String,
    /// The assurance level, 1 to 3, the user has now proven: above the
    /// session's it is a step-up; below it, refused unless `downgrade`.
    #[serde(
        default,
        deserialize_with = "crate::strict::aal",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3))]
    pub aal: Option<u8>,
    /// The user has just authenticated again (e.g. re-entered a password):
    /// `authenticated_at` becomes now and the absolute deadline restarts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reauthenticated: bool,
    /// Lower the session to `aal` (required, and below the session's level)
    /// on purpose. Not an authentication: `authenticated_at` is kept and the
    /// absolute deadline is never extended. Not combinable with
    /// `reauthenticated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub downgrade: bool,
}

/// `POST /v1/sessions/revoke`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The token to end.
    pub token: String,
}

/// `PATCH /v1/sessions/{id}`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    /// The new data object, replacing the old one as a whole.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: SessionData,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only events of this kind (`created`, `verify_failed`, …).
    pub kind: Option<String>,
    /// Only events older than this one: the `id` of the last event of the
    /// previous page.
    pub before: Option<String>,
    /// At most this many (1 to [`MAX_EVENTS_PER_QUERY`], default 100).
    pub limit: Option<usize>,
}

/// Most events one query returns.
pub const MAX_EVENTS_PER_QUERY: usize = 1000;

/// Query of `DELETE /v1/subjects/{subject}/sessions`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSubjectParams {
    /// Keep this session (the caller's own).
    pub except: Option<String>,
}
