//! The tower [`Layer`]: before the handler, CSRF checks and the [`Session`]
//! handle; after it, the recorded changes, cookies and cache headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Request, header, request};
use http_body_util::BodyExt as _;
use sessiond_core::{
    AnonymousOptions, CarryData, ClientInfo, CreateOptions, SessionData, SessionOrigin, SignInOptions, Token,
};
use tower::{Layer, Service};

use crate::access_token::{AccessTokens, Outcome, Presented};
use crate::backend::{SessionBackend, SessionInfo};
use crate::cookie::{CookieCodec, CookieLookup};
use crate::csrf::{self, CSRF_HEADER, CsrfGuard, Exemptions};
use crate::data;
use crate::error::HttpError;
use crate::session::{Changes, Session};

/// Everything a layer's requests share, built once by
/// [`SessionLayerBuilder`](crate::SessionLayerBuilder).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn SessionBackend>,
    /// The access-token cookie, when turned on.
    pub(crate) access: Option<AccessTokens>,
    pub(crate) cookie: CookieCodec,
    pub(crate) csrf: CsrfGuard,
    pub(crate) max_form_bytes: usize,
    /// Paths whose unsafe requests skip the CSRF checks (and the session).
    pub(crate) csrf_exempt: Exemptions,
    /// Whether a write without a session starts an anonymous one.
    pub(crate) anonymous: bool,
    pub(crate) dev: bool,
}

/// Adds sessions to a service: see the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct SessionLayer {
    pub(crate) shared: Arc<Shared>,
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`SessionLayer`] wraps around a handler or router.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<Request<Body>> for SessionService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The provenance check of an unsafe request decides on these
            // headers: a cache must not answer one request with another's.
            let exempt = is_exempt(&shared, &parts);
            let provenance_checked = !csrf::is_safe(&parts.method) && !exempt;
            // An exempt request is served without the session, so it must
            // not renew or delete the access-token cookie either.
            let presented = if exempt {
                None
            } else {
                shared.access.as_ref().map(|a| a.presented(&parts.headers))
            };
            let mut response = match prepare(&shared, &mut parts, body, exempt).await {
                Ok((session, body)) => {
                    parts.extensions.insert(session.clone());
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    finish(&shared, &session, presented, response).await
                }
                Err(error) => error.into_response(),
            };
            if provenance_checked {
                add_vary(response.headers_mut(), "Sec-Fetch-Site");
                add_vary(response.headers_mut(), "Origin");
            }
            Ok(response)
        })
    }
}

/// Whether `parts` is an unsafe request to a CSRF-exempt path.
fn is_exempt(shared: &Shared, parts: &request::Parts) -> bool {
    !shared.csrf_exempt.is_empty() && !csrf::is_safe(&parts.method) && shared.csrf_exempt.matches(parts.uri.path())
}

/// Before the handler: development-mode host check, the session cookie,
/// and the CSRF checks of unsafe methods. An `exempt` request skips the
/// CSRF checks and is served as if it had no session cookie.
async fn prepare(
    shared: &Arc<Shared>,
    parts: &mut request::Parts,
    body: Body,
    exempt: bool,
) -> Result<(Session, Body), HttpError> {
    if shared.dev && !csrf::request_host(parts).is_some_and(crate::config::is_loopback_authority) {
        return Err(HttpError::DevModeNotLocal);
    }
    if exempt {
        // Other sites POST here: such a request never starts a session.
        return Ok((Session::new(Arc::clone(shared), None, client_info(parts), false), body));
    }
    let token = match shared.cookie.lookup(&parts.headers) {
        CookieLookup::Found(value) => Token::parse(value).ok(),
        CookieLookup::Duplicate => {
            tracing::info!(
                cookie = shared.cookie.name(),
                "duplicate session cookies: treated as no session"
            );
            None
        }
        CookieLookup::TooLarge => {
            tracing::info!("oversized Cookie header: treated as no session");
            None
        }
        CookieLookup::Absent | CookieLookup::Malformed => None,
    };
    let session = Session::new(Arc::clone(shared), token, client_info(parts), shared.anonymous);
    let mut body = body;
    if !csrf::is_safe(&parts.method) {
        shared.csrf.check_origin(parts)?;
        // Only a cookie naming a live session carries authority worth
        // forging (an anonymous one too: a cart is worth protecting); a
        // stale or planted unknown cookie must not block the login form
        // that replaces it. The origin check above still guards every
        // unsafe request, logins and first writes (which start an anonymous
        // session) included.
        if let (Some(token), Some(_)) = (session.token(), session.current_or_anonymous().await?) {
            body = check_csrf_token(shared, parts, body, token).await?;
        }
    }
    Ok((session, body))
}

/// The synchronizer token from the `X-CSRF-Token` header or, for forms,
/// the `csrf_token` field; the body read for it is handed on intact.
async fn check_csrf_token(
    shared: &Shared,
    parts: &request::Parts,
    body: Body,
    token: &Token,
) -> Result<Body, HttpError> {
    let mut headers = parts.headers.get_all(CSRF_HEADER).iter();
    if let Some(value) = headers.next() {
        let ok = headers.next().is_none()
            && value
                .to_str()
                .is_ok_and(|presented| shared.csrf.verify(token, presented));
        return if ok { Ok(body) } else { Err(HttpError::CsrfFailed) };
    }
    if !is_form(&parts.headers) {
        return Err(HttpError::CsrfFailed);
    }
    let bytes = http_body_util::Limited::new(body, shared.max_form_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::PayloadTooLarge
            } else {
                HttpError::BadRequest
            }
        })?
        .to_bytes();
    match csrf::find_form_token(&bytes) {
        Some(presented) if shared.csrf.verify(token, presented) => Ok(Body::from(bytes)),
        _ => Err(HttpError::CsrfFailed),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// IP from the connection (never from `X-Forwarded-For`, which a client
/// controls unless a trusted proxy rewrites it) and the User-Agent, kept
/// raw: turned into a [`ClientInfo`] only if the session is used.
fn client_info(parts: &request::Parts) -> RawClient {
    RawClient {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
        // A HeaderValue clone shares the bytes hyper already holds.
        user_agent: parts.headers.get(header::USER_AGENT).cloned(),
    }
}

/// Where the request came from, before any allocation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawClient {
    ip: Option<std::net::IpAddr>,
    user_agent: Option<HeaderValue>,
}

impl RawClient {
    pub(crate) fn to_client_info(&self) -> ClientInfo {
        ClientInfo {
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: self
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            sealed: None,
        }
    }
}

/// After the handler: apply the changes unless it failed, keep the
/// access-token cookie in step, then mark the response private if it
/// depends on the session.
async fn finish(shared: &Shared, session: &Session, presented: Option<Presented>, mut response: Response) -> Response {
    let changes = session.take_changes();
    let mut applied = None;
    if !response.status().is_server_error() {
        if changes.is_empty() {
            applied = Some(Applied::Kept);
        } else {
            match apply(shared, session, changes).await {
                Ok(done) => applied = Some(done),
                Err(error) => {
                    tracing::warn!(%error, "session change after the handler failed");
                    response = error.into_response();
                }
            }
        }
    }
    if let Some(Applied::Issued { cookie, .. } | Applied::Ended { cookie }) = &applied {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    if let (Some(access), Some(presented), Some(applied)) = (&shared.access, &presented, &applied) {
        let verified = session.verification();
        let outcome = match (applied, &verified, session.token()) {
            // An anonymous session proves nobody's identity: no access token.
            (Applied::Issued { info, .. }, _, _) if info.is_anonymous() => Outcome::NoSession,
            (Applied::Kept, Some(Some(info)), _) if info.is_anonymous() => Outcome::NoSession,
            (Applied::Issued { token, info, .. }, _, _) => Outcome::Live {
                token,
                info,
                fresh: true,
            },
            (Applied::Ended { .. }, _, _) => Outcome::Ended,
            (Applied::Kept, Some(Some(info)), Some(token)) => Outcome::Live {
                token,
                info,
                fresh: false,
            },
            (Applied::Kept, Some(None), _) => Outcome::NoSession,
            (Applied::Kept, _, _) => Outcome::Unknown,
        };
        if let Some(cookie) = access.settle(shared.backend.as_ref(), outcome, presented).await {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    if session.touched() {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        add_vary(headers, "Cookie");
    }
    response
}

/// What [`apply`] did to the session.
enum Applied {
    /// The session (if any) goes on under the same token.
    Kept,
    /// A new token (login or rotation), with its cookie.
    Issued {
        token: Token,
        info: SessionInfo,
        cookie: HeaderValue,
    },
    /// Logged out; the cookie deletes the session cookie.
    Ended { cookie: HeaderValue },
}

/// Performs the recorded changes.
async fn apply(shared: &Shared, session: &Session, changes: Changes) -> Result<Applied, HttpError> {
    let backend = &shared.backend;
    if let Some(login) = changes.login {
        return log_in(shared, session, login, changes.data, changes.patch).await;
    }
    if changes.logout {
        if let Some(token) = session.token() {
            backend.revoke(token).await?;
        }
        if changes.fresh
            && let Some(applied) = start_anonymous(shared, session, changes.data, &changes.patch).await?
        {
            return Ok(applied);
        }
        return Ok(Applied::Ended {
            cookie: shared.cookie.deletion(),
        });
    }
    // rotate was only recorded after a successful verify, and data changes
    // either after one or when no session was found.
    let (Some(token), Some(current)) = (session.token(), session.verified()) else {
        if changes.rotate.is_some() {
            return Err(HttpError::Unauthenticated);
        }
        return Ok(start_anonymous(shared, session, changes.data, &changes.patch)
            .await?
            .unwrap_or(Applied::Kept));
    };
    if let Some(mut data) = changes.data {
        // A whole object: no merge is possible, a lost race is a conflict.
        changes.patch.apply(&mut data);
        backend.update_data(current.id(), data, current.version()).await?;
    } else if !changes.patch.is_empty() {
        data::write_patch(backend.as_ref(), token, session.client(), current, &changes.patch).await?;
    }
    let Some(rotation) = changes.rotate else {
        return Ok(Applied::Kept);
    };
    match backend.rotate(token, rotation).await? {
        Some((token, info)) => issued(shared, token, info),
        // The token was superseded meanwhile (a concurrent rotation; this
        // request ran on grace). Do not touch the cookie: the browser
        // already holds the newer one, and deleting it would log them out.
        None => Err(HttpError::Unauthenticated),
    }
}

/// A login. From a visitor's anonymous session the backend signs them in
/// (new session and token, the data carried as `login.carry` says, then
/// this request's own writes on top); from any other session, or none,
/// that session ends and a new one starts with this request's writes only.
async fn log_in(
    shared: &Shared,
    session: &Session,
    login: crate::session::Login,
    data: Option<SessionData>,
    patch: data::Patch,
) -> Result<Applied, HttpError> {
    let backend = &shared.backend;
    let create = CreateOptions {
        remember_me: login.remember_me,
        aal: login.aal,
        data: {
            let mut own = data.clone().unwrap_or_default();
            patch.apply(&mut own);
            own
        },
        client: session.client().to_client_info(),
        // The backend decides: the portal's marks its logins as its own.
        origin: SessionOrigin::Api,
    };
    if let Some(old) = session.token() {
        // A session already known to be signed in (or unknown) cannot be a
        // visitor's: no sign-in attempt for it.
        let maybe_visitor = match session.verification() {
            Some(Some(info)) => info.is_anonymous(),
            Some(None) => false,
            None => true,
        };
        if maybe_visitor {
            // A whole object written in this request replaces what would be
            // carried; key-level writes apply on top of it.
            let carry = match (data, login.carry) {
                (Some(_), _) | (None, CarryData::Nothing) => CarryData::Nothing,
                (None, carry) if patch.is_empty() => carry,
                (None, carry) => CarryData::With(Arc::new(move |visitor: &SessionData| {
                    let mut carried = match &carry {
                        CarryData::With(hook) => hook(visitor),
                        _ => visitor.clone(),
                    };
                    patch.apply(&mut carried);
                    carried
                })),
            };
            let options = SignInOptions {
                create: create.clone(),
                carry,
            };
            if let Some((token, info)) = backend.sign_in(old, &login.subject, options).await? {
                return issued(shared, token, info);
            }
        }
        // Fixation defence: whatever session the client brought ends here,
        // and the new one shares nothing with it.
        backend.revoke(old).await?;
    }
    let (token, info) = backend.create(&login.subject, create).await?;
    issued(shared, token, info)
}

/// Starts an anonymous session holding `data` (or nothing) with `patch`
/// applied, unless that leaves nothing to keep (`None`: no session, no
/// store write) or this request may not start one (401).
async fn start_anonymous(
    shared: &Shared,
    session: &Session,
    data: Option<SessionData>,
    patch: &data::Patch,
) -> Result<Option<Applied>, HttpError> {
    let mut data = data.unwrap_or_default();
    patch.apply(&mut data);
    if data.is_empty() {
        return Ok(None);
    }
    if !session.lazy() {
        return Err(HttpError::Unauthenticated);
    }
    let options = AnonymousOptions {
        data,
        client: session.client().to_client_info(),
    };
    match shared.backend.create_anonymous(options).await? {
        Some((token, info)) => issued(shared, token, info).map(Some),
        // This backend keeps no anonymous sessions: data needs a sign-in.
        None => Err(HttpError::Unauthenticated),
    }
}

fn issued(shared: &Shared, token: Token, info: SessionInfo) -> Result<Applied, HttpError> {
    let cookie = set_cookie(shared, &token, &info)?;
    Ok(Applied::Issued { token, info, cookie })
}

/// The cookie for a new token. A token is always a valid header value, but
/// if it ever were not, the client must hear of the failure rather than
/// believe it is signed in.
fn set_cookie(shared: &Shared, token: &Token, info: &SessionInfo) -> Result<HeaderValue, HttpError> {
    shared
        .cookie
        .set_cookie(token, max_age(info))
        .ok_or(HttpError::Internal)
}

/// Remember-me cookies live as long as the session can, never longer;
/// others end with the browser session.
fn max_age(info: &SessionInfo) -> Option<Duration> {
    info.remember_me().then(|| {
        let remaining = info.absolute_expires_at() - info.last_seen_at();
        Duration::try_from(remaining).unwrap_or(Duration::ZERO)
    })
}

/// Adds `name` to `Vary` unless it is already there (or `*`).
fn add_vary(headers: &mut HeaderMap, name: &'static str) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(name) || v.trim() == "*");
    if !present {
        headers.append(header::VARY, HeaderValue::from_static(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_gets_cookie_once() {
        let add_vary_cookie = |headers: &mut HeaderMap| add_vary(headers, "Cookie");
        let mut headers = HeaderMap::new();
        add_vary_cookie(&mut headers);
        add_vary_cookie(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);

        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        add_vary_cookie(&mut headers);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Cookie"]);

        for already in ["accept, COOKIE", "*"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::VARY, HeaderValue::from_static(already));
            add_vary_cookie(&mut headers);
            assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        }
    }
}
