//! Guides that are documentation only (no items).

/// # Coming from tower-sessions
///
/// Handlers written for tower-sessions' `Session` mostly keep their shape:
/// the same extractor name, the same `get` / `insert` / `remove` with serde
/// types, and `?` on a [`HttpError`](crate::HttpError), which is also the
/// response (problem+json with a stable `code`). What changes is who a
/// session belongs to and what guards it.
///
/// | tower-sessions | sessiond-http |
/// |---|---|
/// | `SessionManagerLayer::new(store)` | [`SessionLayer::in_process(manager).build()?`](crate::SessionLayer::in_process) (or `SessionLayer::remote`, cargo feature `remote`, for a sessiond server) |
/// | `session.get::<T>(key).await?` | [`session.get::<T>(key).await?`](crate::Session::get): `None` without a session |
/// | `session.insert(key, value).await?` | [`session.insert(key, value).await?`](crate::Session::insert): without a session, starts an anonymous one, as tower-sessions does |
/// | `session.remove::<T>(key).await?` | [`session.remove::<T>(key).await?`](crate::Session::remove) |
/// | `get_value` / `insert_value` / `remove_value` | the same names, with [`serde_json::Value`] |
/// | login: `session.cycle_id().await?` then `session.insert("user_id", id)` | [`session.login(subject, remember_me)`](crate::Session::login): the user id *is* the session's subject; a new session with a new id and token starts (fixation-proof), carrying a visitor's data ([`login_carrying`](crate::Session::login_carrying) to choose) |
/// | `session.flush().await?` (logout) | [`session.logout()`](crate::Session::logout): the session is revoked and the cookie deleted ([`logout_to_anonymous`](crate::Session::logout_to_anonymous) to keep writing) |
/// | `session.id()` | [`CurrentSession`](crate::CurrentSession)`.id()`: a public handle; the secret is the cookie's token |
/// | whole record saved at the end of the request, last writer wins | key-level changes, written as one compare-and-set update and re-applied on the current data when another request wrote meanwhile (412 `version_conflict` after three lost races) |
/// | no CSRF defence | unsafe requests are refused cross-site (403 `cross_site_request`), and with a session they need its CSRF token ([`CsrfToken`](crate::CsrfToken), header `X-CSRF-Token` or form field `csrf_token`; 403 `csrf_failed`); webhooks get [`csrf_exempt`](crate::SessionLayerBuilder::csrf_exempt) |
///
/// Differences to plan for:
///
/// - **Anonymous sessions are not signed in.** As in tower-sessions the
///   first `insert` starts a session (an anonymous one; reads never do),
///   but [`CurrentSession`](crate::CurrentSession),
///   [`Session::current`](crate::Session::current) and
///   [`Session::require`](crate::Session::require) see signed-in sessions
///   only: check for a user there, not for "a session".
/// - **Login starts a new session.** From an anonymous session the data
///   moves to the new one (new id, new token); from a signed-in one nothing
///   is carried (the two share nothing). Insert what the new session needs
///   after `login`, in the same handler: it goes on top.
/// - **Changes apply after the handler**, and not at all when it answers
///   5xx. A handler's `get` sees its own `insert`s and `remove`s at once.
/// - **The cookie is `__Host-sessiond`** (`Secure; HttpOnly; SameSite=Lax;
///   Path=/`). For plain-HTTP development on localhost use
///   [`dev_mode(true)`](crate::SessionLayerBuilder::dev_mode).
/// - **Expiry is policy**, not per-session `Expiry`: idle and absolute
///   timeouts (with remember-me variants) are set on the
///   [`SessionManager`](sessiond_core::SessionManager)'s policy.
///
/// ## A tower-sessions handler set, ported
///
/// A cart filled before sign-in and kept by it, a counter, a value set at
/// login, read and removed, and a login/logout cycle, driven with `tower::ServiceExt::oneshot` the way a test would
/// (same-origin `POST`s carry `Origin` and `Sec-Fetch-Site`, and, once
/// there is a session, its CSRF token):
///
/// ```
/// use std::sync::Arc;
///
/// use axum::extract::Query;
/// use axum::routing::{get, post};
/// use axum::Router;
/// use serde::{Deserialize, Serialize};
/// use sessiond_core::{MemoryStore, SessionManager, Subject};
/// use sessiond_http::{CsrfToken, CurrentSession, HttpError, Session, SessionLayer};
///
/// const COUNTER_KEY: &str = "counter";
///
/// #[derive(Default, Deserialize, Serialize)]
/// struct Counter(usize);
///
/// // tower-sessions' counter: only the error type changed (and it is a
/// // POST: state changes go on unsafe methods, which CSRF defence guards).
/// async fn count(session: Session) -> Result<String, HttpError> {
///     let counter: Counter = session.get(COUNTER_KEY).await?.unwrap_or_default();
///     session.insert(COUNTER_KEY, Counter(counter.0 + 1)).await?;
///     Ok(format!("Current count: {}", counter.0))
/// }
///
/// #[derive(Deserialize)]
/// struct LoginForm {
///     user: String,
/// }
///
/// // tower-sessions: `session.cycle_id().await?; session.insert("user_id", id).await?;`
/// async fn login(session: Session, Query(form): Query<LoginForm>) -> Result<&'static str, HttpError> {
///     // (check the password first)
///     let subject = Subject::new(form.user).map_err(|_| HttpError::BadRequest)?;
///     session.login(subject, false); // a new session and token after the handler
///     session.insert("theme", "dark").await?; // the new session's initial data
///     Ok("welcome")
/// }
///
/// #[derive(Deserialize)]
/// struct Item {
///     item: String,
/// }
///
/// // Works for visitors too: the first write starts an anonymous session.
/// async fn add_to_cart(session: Session, Query(form): Query<Item>) -> Result<&'static str, HttpError> {
///     let mut cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
///     cart.push(form.item);
///     session.insert("cart", cart).await?;
///     Ok("added")
/// }
///
/// async fn cart(session: Session) -> Result<String, HttpError> {
///     let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
///     Ok(cart.join(","))
/// }
///
/// async fn theme(session: Session) -> Result<String, HttpError> {
///     let theme: Option<String> = session.get("theme").await?;
///     Ok(theme.unwrap_or_else(|| "default".to_owned()))
/// }
///
/// async fn reset_theme(session: Session) -> Result<String, HttpError> {
///     let old: Option<String> = session.remove("theme").await?;
///     Ok(format!("was {}", old.unwrap_or_default()))
/// }
///
/// async fn me(current: CurrentSession) -> String {
///     current.subject().as_str().to_owned() // 401 without a session
/// }
///
/// // For pages and scripts: the token unsafe requests must carry.
/// async fn csrf(CsrfToken(token): CsrfToken) -> String {
///     token
/// }
///
/// // tower-sessions: `session.flush().await?`
/// async fn logout(session: Session) -> &'static str {
///     session.logout();
///     "bye"
/// }
///
/// # use axum::body::Body;
/// # use http::{Request, StatusCode};
/// # use http_body_util::BodyExt as _;
/// # use tower::ServiceExt as _;
/// # type TestResult<T> = Result<T, Box<dyn std::error::Error>>;
/// #
/// # /// Sends a same-origin request with the session cookie and CSRF token
/// # /// given; answers the status, the new session cookie (if set) and the body.
/// # async fn send(
/// #     app: &Router,
/// #     method: &str,
/// #     path: &str,
/// #     cookie: Option<&str>,
/// #     csrf: Option<&str>,
/// # ) -> TestResult<(StatusCode, Option<String>, String)> {
/// #     let mut request = Request::builder().method(method).uri(path).header("host", "shop.example");
/// #     if method == "POST" {
/// #         request = request.header("origin", "https://shop.example").header("sec-fetch-site", "same-origin");
/// #     }
/// #     if let Some(cookie) = cookie {
/// #         request = request.header("cookie", format!("__Host-sessiond={cookie}"));
/// #     }
/// #     if let Some(csrf) = csrf {
/// #         request = request.header("x-csrf-token", csrf);
/// #     }
/// #     let response = app.clone().oneshot(request.body(Body::empty())?).await?;
/// #     let status = response.status();
/// #     let new_cookie = response
/// #         .headers()
/// #         .get_all("set-cookie")
/// #         .iter()
/// #         .filter_map(|v| v.to_str().ok()?.strip_prefix("__Host-sessiond=")?.split(';').next())
/// #         .find(|v| !v.is_empty())
/// #         .map(str::to_owned);
/// #     let body = String::from_utf8(response.into_body().collect().await?.to_bytes().to_vec())?;
/// #     Ok((status, new_cookie, body))
/// # }
/// #
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> TestResult<()> {
/// let manager = SessionManager::builder(Arc::new(MemoryStore::new())).build()?;
/// let app: Router = Router::new()
///     .route("/cart", get(cart))
///     .route("/cart/add", post(add_to_cart))
///     .route("/count", post(count))
///     .route("/login", post(login))
///     .route("/theme", get(theme))
///     .route("/theme/reset", post(reset_theme))
///     .route("/me", get(me))
///     .route("/csrf", get(csrf))
///     .route("/logout", post(logout))
///     .layer(SessionLayer::in_process(manager).build()?);
///
/// // A visitor: reading starts no session, the first write does.
/// let (status, cookie, body) = send(&app, "GET", "/cart", None, None).await?;
/// assert_eq!((status, cookie, body.as_str()), (StatusCode::OK, None, ""));
/// let (status, cookie, _) = send(&app, "POST", "/cart/add?item=socks", None, None).await?;
/// assert_eq!(status, StatusCode::OK);
/// let visitor = cookie.ok_or("the first write starts an anonymous session")?;
/// assert_eq!(send(&app, "GET", "/cart", Some(&visitor), None).await?.2, "socks");
/// // It is guarded by its CSRF token, and signs nobody in.
/// let (_, _, token) = send(&app, "GET", "/csrf", Some(&visitor), None).await?;
/// let (status, _, _) = send(&app, "POST", "/cart/add?item=hat", Some(&visitor), None).await?;
/// assert_eq!(status, StatusCode::FORBIDDEN);
/// send(&app, "POST", "/cart/add?item=hat", Some(&visitor), Some(&token)).await?;
/// assert_eq!(send(&app, "GET", "/me", Some(&visitor), None).await?.0, StatusCode::UNAUTHORIZED);
///
/// // Log in: a new session and cookie, holding the cart; the visitor's
/// // cookie is dead.
/// let (status, cookie, _) = send(&app, "POST", "/login?user=alice", Some(&visitor), Some(&token)).await?;
/// assert_eq!(status, StatusCode::OK);
/// let alice = cookie.ok_or("login sets the cookie")?;
/// assert_ne!(alice, visitor);
/// assert_eq!(send(&app, "GET", "/cart", Some(&alice), None).await?.2, "socks,hat");
/// assert_eq!(send(&app, "GET", "/cart", Some(&visitor), None).await?.2, "");
/// assert_eq!(send(&app, "GET", "/me", Some(&alice), None).await?.2, "alice");
/// let (_, _, token) = send(&app, "GET", "/csrf", Some(&alice), None).await?;
///
/// // The counter, as in tower-sessions.
/// for expected in ["Current count: 0", "Current count: 1"] {
///     let (status, _, body) = send(&app, "POST", "/count", Some(&alice), Some(&token)).await?;
///     assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
/// }
/// // Without the CSRF token an unsafe request with a session is refused.
/// let (status, _, body) = send(&app, "POST", "/count", Some(&alice), None).await?;
/// assert_eq!(status, StatusCode::FORBIDDEN);
/// assert!(body.contains("\"code\":\"csrf_failed\""));
///
/// // Set at login, read, removed.
/// assert_eq!(send(&app, "GET", "/theme", Some(&alice), None).await?.2, "dark");
/// let (_, _, body) = send(&app, "POST", "/theme/reset", Some(&alice), Some(&token)).await?;
/// assert_eq!(body, "was dark");
/// assert_eq!(send(&app, "GET", "/theme", Some(&alice), None).await?.2, "default");
///
/// // Logging in again (another user on this browser) starts a new session:
/// // new cookie, fresh data (nothing carried from a signed-in session), and
/// // the old cookie is dead.
/// let (status, cookie, _) = send(&app, "POST", "/login?user=bob", Some(&alice), Some(&token)).await?;
/// assert_eq!(status, StatusCode::OK);
/// let bob = cookie.ok_or("login sets the cookie")?;
/// assert_ne!(bob, alice);
/// assert_eq!(send(&app, "GET", "/me", Some(&alice), None).await?.0, StatusCode::UNAUTHORIZED);
/// assert_eq!(send(&app, "GET", "/me", Some(&bob), None).await?.2, "bob");
/// let (_, _, token) = send(&app, "GET", "/csrf", Some(&bob), None).await?;
/// let (_, _, body) = send(&app, "POST", "/count", Some(&bob), Some(&token)).await?;
/// assert_eq!(body, "Current count: 0");
///
/// // Log out: the session ends, with its data, and the cookie is deleted.
/// send(&app, "POST", "/cart/add?item=scarf", Some(&bob), Some(&token)).await?;
/// let (status, cookie, _) = send(&app, "POST", "/logout", Some(&bob), Some(&token)).await?;
/// assert_eq!((status, cookie), (StatusCode::OK, None));
/// assert_eq!(send(&app, "GET", "/me", Some(&bob), None).await?.0, StatusCode::UNAUTHORIZED);
/// assert_eq!(send(&app, "GET", "/cart", Some(&bob), None).await?.2, "");
/// # Ok(())
/// # }
/// ```
pub mod coming_from_tower_sessions {}
