//! The login portal: `/login`, `/logout`, `/account` and forward auth at
//! `/auth/verify`, server-rendered and working without JavaScript.
//!
//! It is an ordinary user of the library: the session cookie, CSRF defence
//! and fixation-proof login come from [`sessiond_http::SessionLayer`] over the
//! service's own [`SessionManager`]; accounts come from the store's
//! [`UserStore`]. What is added here is what only a portal needs: password
//! checks, login throttling, the pre-session CSRF token of the login form,
//! safe return addresses and the security headers of every page.

mod account;
mod accounts;
mod active_users;
mod backend;
mod client_ip;
mod config;
mod device;
mod device_cookie;
mod edge;
mod error;
mod extract;
mod failed_logins;
mod forward_auth;
mod headers;
mod https_only;
mod login;
mod login_csrf;
pub mod passwords;
mod portal_secrets;
mod redirect;
mod secret_file;
pub mod throttle;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use sessiond_core::{CounterStore, SecretStore, SecretStoreError, SessionManager, UserStore};
use sessiond_http::SessionLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use accounts::{AccountError, Accounts, user_name};
pub use client_ip::client_ip;
pub use config::{MAX_USER_CACHE_TTL, PortalConfig, PortalConfigError, PortalSettings};
pub use error::PortalError;
pub use failed_logins::FailedLogins;
pub use https_only::TITLE as HTTPS_REQUIRED_TITLE;
pub use passwords::{PasswordError, Passwords};
pub use portal_secrets::rotate_portal_secret;
pub use redirect::{BadOrigin, RedirectPolicy};

use throttle::LoginThrottle;

/// Largest form body the portal reads, in bytes: its largest form (a
/// password change: two passwords of at most 1,024 bytes, a CSRF token)
/// fits many times over, and a 1 MB user name does not get in.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Why the portal could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PortalSetupError {
    /// The session layer refused its configuration.
    #[error("session layer: {0}")]
    Layer(#[from] sessiond_http::ConfigError),
    /// The secret file of an earlier version, which is imported into the
    /// store, cannot be read or is refused (weak, exposed, wrong size).
    #[error("cannot import the portal secret file {path}")]
    Secret {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not give or keep the portal's secrets.
    #[error("cannot read or store the portal secrets")]
    Store(#[source] SecretStoreError),
    /// The secrets in the store are plainly not random.
    #[error("the portal secrets in the store are refused")]
    WeakStoredSecret(#[source] std::io::Error),
    /// The OS gave no randomness for a fresh secret.
    #[error("no randomness for a new portal secret")]
    Randomness(#[source] std::io::Error),
}

/// Shared state of every portal handler.
#[derive(Debug)]
struct PortalState {
    manager: SessionManager,
    accounts: Accounts,
    throttle: LoginThrottle,
    settings: PortalSettings,
    login_csrf: login_csrf::LoginCsrf,
    device_cookies: device_cookie::DeviceCookies,
    active_users: active_users::ActiveUsers,
}

type State = Arc<PortalState>;

impl PortalState {
    /// The origin pages are served from, as the browser sees it.
    fn own_origin(&self, headers: &axum::http::HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_ascii_lowercase();
        let scheme = if self.settings.dev { "http" } else { "https" };
        format!("{scheme}://{host}")
    }
}

/// The portal's routes with their layers, and their OpenAPI description
/// (merged into `/openapi.json`). `manager` may be scoped to any
/// tenant; the portal scopes it to its own. The secrets the session CSRF
/// tokens and device cookies are signed with come from `secrets`, the store
/// the sessions are in, so they survive restarts and every node over the
/// store agrees on them (the first signs, all verify). A secret file of an
/// earlier version (`portal.secret_file`, by default
/// `<data_dir>/portal-secret`) is imported into an empty store once and
/// renamed to `<name>.imported`; see `portal_secrets.rs`. The login
/// throttle counts failures in `counters`, the same store again, so nodes
/// over it throttle as one (see `throttle.rs`).
pub async fn router(
    manager: &SessionManager,
    users: Arc<dyn UserStore>,
    secrets: &dyn SecretStore,
    counters: Arc<dyn CounterStore>,
    settings: PortalSettings,
    data_dir: &Path,
) -> Result<(Router, utoipa::openapi::OpenApi), PortalSetupError> {
    let manager = manager.for_tenant(settings.tenant.clone());
    let secret_file = settings
        .secret_file
        .clone()
        .unwrap_or_else(|| data_dir.join("portal-secret"));
    let secrets = portal_secrets::portal_secrets(secrets, &secret_file).await?;
    // Sessions this layer creates (only `POST /login` does) are marked as
    // portal logins: the only ones forward auth and the account pages accept.
    let session_layer = SessionLayer::builder(Arc::new(backend::PortalBackend(manager.clone())))
        .max_form_bytes(MAX_FORM_BYTES)
        .dev_mode(settings.dev)
        .csrf_secrets(secrets.clone())
        .build()?;
    let concurrency = std::thread::available_parallelism().map_or(2, |n| n.get());
    let edge = edge::Edge::new(&settings);
    let state = Arc::new(PortalState {
        accounts: Accounts::new(users, manager.clone(), Passwords::new(concurrency)),
        manager,
        throttle: LoginThrottle::new(counters),
        login_csrf: login_csrf::LoginCsrf::new(settings.dev),
        device_cookies: device_cookie::DeviceCookies::new(&secrets, settings.dev),
        active_users: active_users::ActiveUsers::new(settings.user_cache_ttl),
        settings,
    });
    let (routes, mut doc) = OpenApiRouter::new()
        .routes(routes!(login::form, login::submit))
        .routes(routes!(login::logout))
        .routes(routes!(account::page))
        .routes(routes!(account::change_password))
        .routes(routes!(account::revoke_others))
        .routes(routes!(account::revoke_one))
        .routes(routes!(forward_auth::verify))
        .with_state(state)
        .split_for_parts();
    document_shared_responses(&mut doc);
    // The edge is outside the session layer: a request it refuses gets no
    // cookie and has no form read.
    let routes = routes
        .layer(session_layer)
        // Inside the API's larger body limit, so it wins for these routes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .route("/static/portal.css", get(stylesheet))
        .layer(axum::middleware::from_fn_with_state(edge, edge::apply));
    Ok((routes, doc))
}

/// The answers every portal route can give besides its own: the HTML error
/// pages of [`PortalError`], and the session layer's refusals, which are
/// problem+json (`--dev` refuses other hosts on every route; unsafe
/// requests are checked for their origin and CSRF token, reading the form),
/// and the refusal of plain HTTP on every page (see `https_only.rs`).
fn document_shared_responses(doc: &mut utoipa::openapi::OpenApi) {
    use sessiond_wire::PROBLEM_CONTENT_TYPE;
    use sessiond_wire::openapi::{add_response, operations_mut, problem_content, problem_response};
    use utoipa::openapi::{Content, ResponseBuilder};

    let html = || {
        Content::new(Some(utoipa::openapi::schema::Object::with_type(
            utoipa::openapi::Type::String,
        )))
    };
    for (path, method, operation) in operations_mut(doc) {
        let https = if path == https_only::FORWARD_AUTH_PATH {
            ""
        } else {
            "; `https_required`: plain HTTP with no TLS in front (neither `[server.tls]`, `--dev` nor `server.behind_proxy`)"
        };
        let mut page = |status: &str, description: &str| {
            let response = || {
                ResponseBuilder::new()
                    .description(description)
                    .content("text/html", html())
                    .build()
                    .into()
            };
            add_response(operation, status, response, "text/html", html, description);
        };
        page("500", "`internal`: an error page");
        page("503", "`store_unavailable` or `overloaded`: an error page");
        if method == "post" {
            page("400", "`invalid_request`: the form could not be read (an error page)");
            page(
                "413",
                "`payload_too_large`: a form over `MAX_FORM_BYTES` (16 KiB) (an error page)",
            );
        }
        let mut problem = |status: &str, description: &str| {
            let response = || problem_response(description).into();
            add_response(
                operation,
                status,
                response,
                PROBLEM_CONTENT_TYPE,
                problem_content,
                description,
            );
        };
        if method == "post" {
            problem(
                "403",
                &format!(
                    "`cross_site_request`: not from the portal's own origin; `csrf_failed`: a live session without its CSRF token; `dev_mode_not_local`{https}"
                ),
            );
            problem("400", "`invalid_request`: the session layer could not read the form");
            problem(
                "413",
                "`payload_too_large`: the form is too large to look for its CSRF token in",
            );
        } else {
            problem(
                "403",
                &format!("`dev_mode_not_local`: `--dev` answers only requests to a loopback host{https}"),
            );
        }
    }
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/portal.css"),
    )
}
