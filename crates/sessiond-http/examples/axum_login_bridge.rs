//! axum-login's flow on sessiond-http: keep your axum-login user and
//! backend (`AuthUser`, `AuthnBackend`), and let sessiond-http hold the
//! session.
//!
//! Run: `cargo run -p sessiond-http --example axum_login_bridge`, then open
//! <http://127.0.0.1:3001> and sign in as `ferris` with the password
//! `hunter42` (`BRIDGE_ADDR` changes the address).
//!
//! Why not axum-login's `AuthManagerLayer` itself: it keeps the user id in
//! a tower-sessions `Session` (its `AuthSession` holds one, and `login`
//! calls `cycle_id` on it), so it cannot run on another session layer
//! without running tower-sessions beside it, with a second cookie that has
//! none of sessiond's guards. Its user and backend traits do not depend on
//! that, and the rest maps one to one onto the small [`Auth`] extractor
//! below:
//!
//! | axum-login | here |
//! |---|---|
//! | `AuthManagerLayerBuilder::new(backend, session_layer)` | `SessionLayer`, and the backend as the router's state |
//! | `AuthSession<Backend>` | `Auth<Backend>`: sessiond-http's `Session` and the backend |
//! | `auth_session.authenticate(creds)` | `auth.authenticate(creds)`: `AuthnBackend::authenticate` |
//! | `auth_session.login(&user)`: `cycle_id`, then the user id into the session | `auth.login(&user)`: `Session::login` with the user id as the subject: a new session and token (a visitor's cart is carried) |
//! | `auth_session.user`: `get_user` and the session-auth-hash check on every request | `auth.user`: the same, against the hash stored in the session at login |
//! | `auth_session.logout()`: `flush` | `auth.logout()`: `Session::logout` (revoked, cookie deleted) |
//! | `login_required!(Backend)` | `middleware::from_extractor::<CurrentSession>()` (401), or check `auth.user` |
//!
//! The session-auth hash works as in axum-login: when the user's hash
//! changes (say it is derived from the password hash and the password
//! changed), sessions made before no longer yield the user, and end. For
//! "sign out everywhere" sessiond can also revoke all of a subject's
//! sessions at once (`SessionManager::revoke_subject`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router, middleware};
use axum_login::{AuthUser, AuthnBackend, UserId};
use serde::Deserialize;
use sessiond_core::{MemoryStore, SessionManager, Subject};
use sessiond_http::{CurrentSession, HttpError, Session, SessionLayer};
use subtle::ConstantTimeEq as _;

/// Where the session-auth hash of the signed-in user is kept.
const AUTH_HASH_KEY: &str = "axum_login.auth_hash";

// ------------------------------------------------------------ axum-login side
// What an axum-login app already has, unchanged.

#[derive(Clone)]
struct User {
    id: String,
    /// A real app keeps a password hash (password-auth, argon2).
    password: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = String;

    fn id(&self) -> String {
        self.id.clone()
    }

    fn session_auth_hash(&self) -> &[u8] {
        // Changes with the password: sessions from before a change end.
        self.password.as_bytes()
    }
}

#[derive(Clone)]
struct Backend {
    users: Arc<HashMap<String, User>>,
}

#[derive(Clone, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = Infallible;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, Infallible> {
        let user = self.users.get(&creds.username);
        Ok(user
            .filter(|u| bool::from(u.password.as_bytes().ct_eq(creds.password.as_bytes())))
            .cloned())
    }

    async fn get_user(&self, id: &String) -> Result<Option<User>, Infallible> {
        Ok(self.users.get(id).cloned())
    }
}

// -------------------------------------------------------------- the bridge

/// axum-login's `AuthSession`, over sessiond-http: the request's session,
/// the backend, and the signed-in user (checked against the session-auth
/// hash stored at login).
struct Auth<B: AuthnBackend> {
    session: Session,
    backend: B,
    user: Option<B::User>,
}

fn backend_failed(error: impl std::error::Error) -> HttpError {
    tracing::error!(%error, "auth backend failed");
    HttpError::Internal
}

impl<S, B> FromRequestParts<S> for Auth<B>
where
    S: Send + Sync,
    B: AuthnBackend + FromRef<S> + 'static,
    UserId<B>: FromStr,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let session = Session::from_request_parts(parts, state).await?;
        let backend = B::from_ref(state);
        let mut user = None;
        // Signed-in sessions only: a visitor's anonymous one is nobody.
        if let Some(current) = session.current().await? {
            // The subject is the user id, as `login` wrote it.
            let id = UserId::<B>::from_str(current.subject().as_str()).ok();
            let found = match id {
                Some(id) => backend.get_user(&id).await.map_err(backend_failed)?,
                None => None,
            };
            let stored: Option<Vec<u8>> = session.get(AUTH_HASH_KEY).await?;
            match (found, stored) {
                (Some(found), Some(hash)) if bool::from(found.session_auth_hash().ct_eq(&hash)) => user = Some(found),
                // Gone, or its hash changed since login: the session ends.
                _ => session.logout(),
            }
        }
        Ok(Self { session, backend, user })
    }
}

impl<B: AuthnBackend> Auth<B> {
    async fn authenticate(&self, creds: B::Credentials) -> Result<Option<B::User>, HttpError> {
        self.backend.authenticate(creds).await.map_err(backend_failed)
    }

    /// A new session for `user` after the handler (fixation-proof: new id,
    /// new token), holding its session-auth hash.
    async fn login(&mut self, user: &B::User) -> Result<(), HttpError> {
        let subject = Subject::new(user.id().to_string()).map_err(|_| HttpError::BadRequest)?;
        self.session.login(subject, false);
        // After `login`: written into the new session.
        self.session.insert(AUTH_HASH_KEY, user.session_auth_hash()).await?;
        self.user = Some(user.clone());
        Ok(())
    }

    fn logout(&mut self) -> Option<B::User> {
        self.session.logout();
        self.user.take()
    }
}

// ------------------------------------------------------------------ the app

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>axum-login bridge</title></head>\
         <body style=\"font-family:sans-serif;max-width:30em;margin:2em auto\">{body}</body></html>"
    ))
}

async fn home(auth: Auth<Backend>) -> Result<Html<String>, HttpError> {
    let csrf = auth.session.csrf_token().await?.unwrap_or_default();
    let csrf = format!("<input type=hidden name=csrf_token value=\"{csrf}\">");
    Ok(page(&match &auth.user {
        // Ids are ours (no markup in them); a real app escapes anyway.
        Some(user) => format!(
            "<p>Signed in as <b>{}</b>. <a href=/protected>Protected page</a></p>\
             <form method=post action=/logout>{csrf}<button>Sign out</button></form>",
            user.id
        ),
        None => format!(
            "<form method=post action=/login>{csrf}\
             <p><label>Name <input name=username required></label></p>\
             <p><label>Password <input name=password type=password required></label></p>\
             <button>Sign in</button></form>"
        ),
    }))
}

async fn login(mut auth: Auth<Backend>, Form(creds): Form<Credentials>) -> Result<Response, HttpError> {
    let Some(user) = auth.authenticate(creds).await? else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            page("<p>Wrong name or password. <a href=/>Again</a></p>"),
        )
            .into_response());
    };
    auth.login(&user).await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(mut auth: Auth<Backend>) -> Redirect {
    auth.logout();
    Redirect::to("/")
}

async fn protected(current: CurrentSession) -> String {
    format!("only for {}", current.subject().as_str())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let ferris = User {
        id: "ferris".to_owned(),
        password: "hunter42".to_owned(),
    };
    let backend = Backend {
        users: Arc::new(HashMap::from([(ferris.id.clone(), ferris)])),
    };
    let manager = SessionManager::builder(Arc::new(MemoryStore::new())).build()?;
    let layer = SessionLayer::in_process(manager).dev_mode(true).build()?;
    let app = Router::new()
        // login_required!: the extractor as a middleware, 401 unless signed in.
        .route("/protected", get(protected))
        .route_layer(middleware::from_extractor::<CurrentSession>())
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(backend)
        .layer(layer);
    let addr = std::env::var("BRIDGE_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum-login bridge listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
