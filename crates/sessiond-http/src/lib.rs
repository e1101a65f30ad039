//! Browser sessions for Rust web apps, secure with zero configuration:
//! the sessiond cookie, CSRF defence and fixation-proof login, as a tower
//! [`SessionLayer`] and axum extractors, over an in-process
//! [`SessionManager`](sessiond_core::SessionManager) or a remote sessiond.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use sessiond_core::{MemoryStore, SessionManager, Subject};
//! use sessiond_http::{CurrentSession, HttpError, Session, SessionLayer};
//!
//! async fn login(session: Session) -> Result<&'static str, HttpError> {
//!     // (check the password first)
//!     let alice = Subject::new("alice").map_err(|_| HttpError::BadRequest)?;
//!     session.login(alice, false); // new session + cookie after the handler
//!     Ok("welcome")
//! }
//!
//! async fn me(current: CurrentSession) -> String {
//!     current.subject().as_str().to_owned() // 401 unless signed in
//! }
//!
//! async fn logout(session: Session) -> &'static str {
//!     session.logout(); // revoke + deletion cookie after the handler
//!     "bye"
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::builder(Arc::new(MemoryStore::new())).build()?;
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .route("/logout", post(logout))
//!     .layer(SessionLayer::in_process(manager).build()?);
//! # drop(app);
//! # Ok(())
//! # }
//! ```
//!
//! What the layer does on every request:
//!
//! - reads the session cookie (`__Host-sessiond`, `Secure; HttpOnly;
//!   SameSite=Lax; Path=/`) strictly: duplicates, look-alikes and oversized
//!   headers are "no session";
//! - for unsafe methods, refuses cross-site requests (Fetch Metadata, then
//!   `Origin`) with 403 `cross_site_request`, and, when the cookie names a
//!   live session, requires that session's CSRF token (header `X-CSRF-Token` or form
//!   field `csrf_token`) or answers 403 `csrf_failed` (routes other sites
//!   must POST to, such as webhooks, can be
//!   [exempted](SessionLayerBuilder::csrf_exempt));
//! - verifies the session only when a handler asks ([`Session::current`],
//!   [`CurrentSession`], [`CsrfToken`]) or, for unsafe methods with a
//!   session cookie, when the CSRF check needs to know it names a live
//!   session (a stale cookie must not block the login that replaces it);
//! - after the handler, unless it answered 5xx, applies login, logout,
//!   rotation, step-up and data changes ([`Session::insert`] and
//!   [`Session::remove`] key by key, retried on a concurrent write) and
//!   sets or deletes the cookie; a data write without a session starts an
//!   anonymous one (a visitor's cart, see [`Session`]), which login turns
//!   into a signed-in session under a new id and token, data carried; a
//!   request that only reads never writes to the store;
//! - marks responses that depend on the session `Cache-Control: no-store`
//!   and `Vary: Cookie`.
//!
//! [`SessionLayerBuilder::dev_mode`] is for plain-HTTP development: the
//! cookie is `sessiond` without `Secure`, a warning is logged at startup,
//! and requests whose `Host` is not localhost are refused (403
//! `dev_mode_not_local`). Remote mode (cargo feature `remote`):
//! `SessionLayer::remote` with a `RemoteBackend` speaks the sessiond HTTP
//! API instead of calling a manager in-process; handlers do not change.
//!
//! Coming from tower-sessions? See
//! [`docs::coming_from_tower_sessions`]: the same `get` / `insert` /
//! `remove`, and what changes. Coming from axum-login? Its `AuthManagerLayer`
//! needs tower-sessions' own session, but its `AuthUser` and `AuthnBackend`
//! carry over: `examples/axum_login_bridge.rs` maps `AuthSession` onto
//! [`Session`].
//!
//! # Access-token cookie (opt-in)
//!
//! [`SessionLayerBuilder::access_tokens`] makes the layer also keep a
//! short-lived signed access token (an EdDSA JWT, checked by other services
//! against sessiond's JWKS) in a second cookie, `__Host-sessiond_at`
//! (`sessiond_at` in dev mode; `HttpOnly`, `Path=/`, the session cookie's
//! `SameSite`, `Max-Age` of the token's remaining life). After the handler,
//! when the request ends with a live session, the token is minted if the
//! cookie is missing, unreadable or for another session, when the session
//! was just created or rotated, or when less than half its lifetime is
//! left; logout, or a cookie naming no session, deletes it. A failed mint
//! is logged (never the token) and the session cookie works as before.
//! Handlers do not change.
//!
//! ```
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use sessiond_core::{MemoryStore, SessionManager, SystemClock, KeySchedule, Sealer, SigningKeys, AccessTokenIssuer};
//! # use sessiond_http::SessionLayer;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let schedule = KeySchedule::new(Duration::from_secs(300), Duration::from_secs(30 * 86_400))?;
//! let keys = SigningKeys::new(store.clone(), Sealer::off(), Arc::new(SystemClock), schedule);
//! keys.maintain().await?; // then keys.spawn_maintenance(..) to rotate them
//! let issuer = AccessTokenIssuer::new(keys, "https://auth.shop.example", "shop");
//! let manager = SessionManager::builder(store).build()?;
//! let layer = SessionLayer::in_process(manager).access_tokens(issuer).build()?;
//! // Remote mode: sessiond signs them.
//! // SessionLayer::remote(remote).access_tokens(AccessTokenCookie::from_backend())
//! # drop(layer);
//! # Ok(())
//! # }
//! ```

mod access_token;
mod backend;
mod config;
mod cookie;
mod csrf;
mod data;
pub mod docs;
mod error;
mod extract;
mod layer;
#[cfg(feature = "remote")]
mod remote;
mod session;

pub use access_token::{AccessTokenCookie, DEFAULT_ACCESS_TOKEN_COOKIE_NAME, DEV_ACCESS_TOKEN_COOKIE_NAME};
pub use backend::{BackendError, SessionBackend, SessionInfo};
pub use config::{ConfigError, DEFAULT_MAX_FORM_BYTES, SessionLayerBuilder};
pub use cookie::{
    CookieConfigError, CookieLookup, DEFAULT_COOKIE_NAME, DEV_COOKIE_NAME, MAX_COOKIE_HEADER_BYTES, SameSite,
    find_cookie,
};
pub use csrf::{CSRF_FIELD, CSRF_HEADER, CSRF_TOKEN_LEN, find_form_token, parse_csrf_token};
pub use error::HttpError;
pub use extract::{CsrfToken, CurrentSession};
pub use layer::{SessionLayer, SessionService};
#[cfg(feature = "remote")]
pub use remote::{RemoteBackend, RemoteConfigError};
pub use session::Session;
