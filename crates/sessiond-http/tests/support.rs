//! A test app over the layer, and helpers to drive it with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use sessiond_core::{Aal, MemoryStore, Policy, SessionData, SessionManager, Subject};
use sessiond_http::{CsrfToken, CurrentSession, HttpError, Session, SessionLayer, SessionLayerBuilder};
use sessiond_testkit::FakeClock;
use tower::ServiceExt as _;

pub const HOST: &str = "shop.example";
pub const ORIGIN: &str = "https://shop.example";
pub const COOKIE: &str = "__Host-sessiond";

/// The app under test, its manager and its clock.
pub struct TestApp {
    pub router: Router,
    pub manager: SessionManager,
    pub clock: FakeClock,
}

pub fn manager(clock: &FakeClock, policy: Policy) -> SessionManager {
    SessionManager::builder(Arc::new(MemoryStore::new()))
        .clock(Arc::new(clock.clone()))
        .policy(policy)
        .build()
        .unwrap()
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(Policy::default(), |b| b)
    }

    /// With a policy and extra layer configuration.
    pub fn with(policy: Policy, configure: impl FnOnce(SessionLayerBuilder) -> SessionLayerBuilder) -> Self {
        Self::with_routes(policy, Router::new(), configure)
    }

    /// With routes of a test's own besides the common ones.
    pub fn with_routes(
        policy: Policy,
        extra: Router,
        configure: impl FnOnce(SessionLayerBuilder) -> SessionLayerBuilder,
    ) -> Self {
        let clock = FakeClock::default();
        let manager = manager(&clock, policy);
        let layer = configure(SessionLayer::in_process(manager.clone())).build().unwrap();
        Self {
            router: routes().merge(extra).layer(layer),
            manager,
            clock,
        }
    }

    /// Sends a request and collects the response.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        Reply::from(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// Logs `user` in (same-origin) and returns the session cookie value.
    pub async fn login(&self, user: &str, remember: bool) -> String {
        let reply = self
            .send(post_req(&format!("/login?user={user}&remember={remember}")).build())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.session_cookie().expect("login sets the session cookie")
    }

    /// The session data `cookie`'s session holds, as `/me` shows it.
    pub async fn data(&self, cookie: &str) -> serde_json::Value {
        let reply = self.send(get_req("/me").cookie(cookie).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()["data"].clone()
    }

    /// The CSRF token of the session `cookie` names.
    pub async fn csrf(&self, cookie: &str) -> String {
        let reply = self.send(get_req("/csrf").cookie(cookie).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }
}

/// The routes every test drives.
pub fn routes() -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/csrf", get(csrf))
        .route("/logout", post(logout))
        .route("/rotate", post(rotate))
        .route("/elevate", post(elevate))
        .route("/reauthenticate", post(reauthenticate))
        .route("/cart", post(cart))
        .route("/echo", post(echo))
        .route("/fail", post(fail))
        .route("/public", get(|| async { "hello" }))
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    user: String,
    #[serde(default)]
    remember: bool,
}

async fn login(session: Session, query: axum::extract::Query<LoginQuery>) -> Result<&'static str, HttpError> {
    let subject = Subject::new(query.user.clone()).map_err(|_| HttpError::BadRequest)?;
    session.login(subject, query.remember);
    Ok("logged in")
}

async fn me(current: CurrentSession) -> String {
    serde_json::json!({
        "subject": current.subject().as_str(),
        "aal": current.aal().get(),
        "authenticated_at": current.authenticated_at().unix_timestamp(),
        "data": current.data(),
        "id": current.id().as_str(),
    })
    .to_string()
}

async fn csrf(CsrfToken(token): CsrfToken) -> String {
    token
}

async fn logout(session: Session) -> &'static str {
    session.logout();
    "bye"
}

async fn rotate(session: Session) -> Result<&'static str, HttpError> {
    session.rotate().await?;
    Ok("rotated")
}

#[derive(serde::Deserialize)]
struct ElevateQuery {
    aal: Option<u8>,
}

/// Steps up to `?aal=` (default 2).
async fn elevate(session: Session, query: axum::extract::Query<ElevateQuery>) -> Result<&'static str, HttpError> {
    let aal = Aal::try_from(query.aal.unwrap_or(2)).map_err(|_| HttpError::BadRequest)?;
    session.elevate(aal).await?;
    Ok("elevated")
}

async fn reauthenticate(session: Session) -> Result<&'static str, HttpError> {
    session.reauthenticate().await?;
    Ok("reauthenticated")
}

/// Adds one `item` to the cart kept in the session data.
async fn cart(session: Session, body: String) -> Result<&'static str, HttpError> {
    let current = session.require().await?;
    let mut data: SessionData = current.data().clone();
    let items = data
        .entry("cart")
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
        .ok_or(HttpError::Internal)?;
    items.push(serde_json::Value::String(body));
    session.update_data(data).await?;
    Ok("added")
}

/// Echoes the body: proves the form body read for the CSRF token survives.
async fn echo(body: String) -> String {
    body
}

/// Records a login and then fails: nothing may be written.
async fn fail(session: Session) -> Response {
    session.login(Subject::new("mallory").unwrap(), true);
    (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
}

/// A request under construction, same-origin by default.
pub struct Req {
    builder: http::request::Builder,
    body: Body,
}

pub fn get_req(path: &str) -> Req {
    Req {
        builder: Request::get(path).header(header::HOST, HOST),
        body: Body::empty(),
    }
}

/// A same-origin POST (`Sec-Fetch-Site: same-origin`, `Origin`).
pub fn post_req(path: &str) -> Req {
    Req {
        builder: Request::post(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header("sec-fetch-site", "same-origin"),
        body: Body::empty(),
    }
}

/// A POST with no provenance headers at all.
pub fn bare_post(path: &str) -> Req {
    Req {
        builder: Request::post(path).header(header::HOST, HOST),
        body: Body::empty(),
    }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn cookie(self, value: &str) -> Self {
        self.header("cookie", &format!("{COOKIE}={value}"))
    }

    pub fn csrf(self, token: &str) -> Self {
        self.header("x-csrf-token", token)
    }

    pub fn form(mut self, body: &str) -> Self {
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.body = Body::from(body.to_owned());
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Body::from(body.to_owned());
        self
    }

    pub fn build(self) -> Request<Body> {
        self.builder.body(self.body).unwrap()
    }
}

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn from(response: Response) -> Self {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of the session cookie set by this response (not a deletion).
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{COOKIE}="))?.split(';').next()?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }

    /// The problem body's `code`.
    pub fn code(&self) -> String {
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json",
            "{}",
            self.body
        );
        let problem: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        problem["code"].as_str().unwrap().to_owned()
    }

    /// Asserts an exact failure.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.code(), code);
        assert!(self.set_cookies().is_empty(), "a refused request must not set cookies");
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub fn long_policy() -> Policy {
    Policy {
        rotation_grace: Duration::from_secs(30),
        ..Policy::default()
    }
}
