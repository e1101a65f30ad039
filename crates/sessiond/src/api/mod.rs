//! The HTTP API of API.md: routes, shared state and the layers every request
//! passes through (limits, load shedding, request ids, metrics, logs).

mod access_tokens;
mod admin_keys;
mod admin_users;
mod admin_webhooks;
mod body_deadline;
mod budget;
mod client_cert;
mod doc;
mod error;
mod event_stream;
mod extract;
mod layers;
mod observe;
mod ops;
mod revocations;
mod sessions;
mod stream;
mod subjects;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiond_core::SessionManager;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use layers::{BudgetSizes, Limits};

use crate::event_log::EventLog;
use crate::key_ring::KeyRing;

/// What every handler can reach. axum clones the state for every request,
/// so it is a single reference count; the fields are reached through
/// `Deref` to [`Shared`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The manager (default tenant; handlers switch to the caller's).
    pub manager: SessionManager,
    /// API keys.
    pub keys: Arc<KeyRing>,
    /// The audit log.
    pub events: Arc<EventLog>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The served OpenAPI document, rendered once.
    pub openapi: Arc<String>,
    /// What the admin routes work on beside keys.
    pub admin: AdminState,
    /// Mints access tokens.
    pub tokens: sessiond_core::AccessTokenIssuer,
    /// The revocation feed.
    pub revocations: crate::revocations::Revocations,
    /// The webhook endpoints, for their failures.
    pub webhooks: crate::webhooks::Webhooks,
}

/// The stores and tools of the admin routes.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The portal's users.
    pub users: Arc<dyn sessiond_core::UserStore>,
    /// Hashes new passwords (bounded, shared with nothing on the hot path).
    pub passwords: sessiond_portal::Passwords,
}

fn routes() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(sessions::create))
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::verify))
        .routes(routes!(sessions::rotate))
        .routes(routes!(sessions::revoke))
        .routes(routes!(access_tokens::refresh))
        .routes(routes!(access_tokens::access_token))
        .routes(routes!(revocations::list))
        .routes(routes!(sessions::get, sessions::patch, sessions::delete))
        .routes(routes!(subjects::list, subjects::revoke_all))
        .routes(routes!(subjects::events))
        .routes(routes!(event_stream::stream))
        .routes(routes!(admin_keys::create_key, admin_keys::list_keys))
        .routes(routes!(admin_keys::delete_key))
        .routes(routes!(admin_users::create_user, admin_users::list_users))
        .routes(routes!(admin_users::set_password))
        .routes(routes!(admin_users::disable))
        .routes(routes!(admin_users::enable))
        .routes(routes!(admin_users::delete_user))
        .routes(routes!(admin_webhooks::failures))
        .layer(layers::no_store());
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .merge(v1)
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .routes(routes!(access_tokens::jwks))
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = routes().split_for_parts().1;
    doc::complete(&mut doc);
    doc
}

/// What [`app`] serves: the parts of [`Shared`] the server builds.
#[derive(Debug)]
pub struct Parts {
    /// See [`Shared::manager`].
    pub manager: SessionManager,
    /// See [`Shared::keys`].
    pub keys: Arc<KeyRing>,
    /// See [`Shared::events`].
    pub events: Arc<EventLog>,
    /// See [`Shared::metrics`].
    pub metrics: PrometheusHandle,
    /// See [`Shared::admin`].
    pub admin: AdminState,
    /// See [`Shared::tokens`].
    pub tokens: sessiond_core::AccessTokenIssuer,
    /// See [`Shared::revocations`].
    pub revocations: crate::revocations::Revocations,
    /// See [`Shared::webhooks`].
    pub webhooks: crate::webhooks::Webhooks,
}

/// The whole application: routes, state and layers.
pub fn app(parts: Parts, limits: &Limits, portal: Option<(Router, utoipa::openapi::OpenApi)>) -> Router {
    let Parts {
        manager,
        keys,
        events,
        metrics,
        admin,
        tokens,
        revocations,
        webhooks,
    } = parts;
    let (router, mut doc) = routes().split_for_parts();
    let (portal, portal_doc) = portal.unzip();
    if let Some(portal_doc) = portal_doc {
        doc.merge(portal_doc);
    }
    doc::complete(&mut doc);
    let openapi = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".to_owned()));
    let state = AppState(Arc::new(Shared {
        manager,
        keys,
        events,
        metrics,
        openapi,
        admin,
        tokens,
        revocations,
        webhooks,
    }));
    let router = router.with_state(state).merge(portal.unwrap_or_default());
    let router = router
        .fallback(|| async { ApiError::NoSuchRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    // Inside the guard (request ids, logs, metrics and load shedding cover
    // the refusal), outside every handler's API-key check.
    let router = if limits.client_certificates {
        router.layer(axum::middleware::from_fn(client_cert::require))
    } else {
        router
    };
    layers::apply(router, limits)
}
