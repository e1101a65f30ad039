//! Signing in and out: `GET`/`POST /login` and `POST /logout`.
//!
//! Every failed login gets the same answer and costs the same time (an
//! unknown or disabled user is checked against a decoy hash), so the form
//! reveals neither which accounts exist nor which are disabled.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sessiond_http::Session;

use super::extract::PortalForm;
use super::{PortalError, PortalState, State as Portal, client_ip};

/// What a person reads after any failed login.
const WRONG_CREDENTIALS: &str = "Wrong username or password.";

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage<'a> {
    error: Option<&'a str>,
    csrf_token: &'a str,
    rd: Option<&'a str>,
    username: &'a str,
    remember_me: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ReturnQuery {
    rd: Option<String>,
}

/// The sign-in form (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct LoginForm {
    /// The user's name.
    #[serde(default)]
    username: String,
    /// The user's password.
    #[serde(default)]
    password: String,
    /// "Keep me signed in" checkbox: present (any value) = on.
    remember_me: Option<String>,
    /// The form's CSRF token: the login cookie's value before sign-in, the
    /// session's CSRF token with a live session.
    csrf_token: Option<String>,
    /// Where to return after signing in (same origin or allow-listed).
    rd: Option<String>,
}

impl PortalState {
    /// Tells burst detection, if any, of a failed sign-in at `name`.
    fn failed_login(&self, name: &str, ip: Option<std::net::IpAddr>, at: time::OffsetDateTime) {
        if let Some(watch) = &self.settings.failed_logins {
            watch.failed(self.accounts.tenant(), name, ip, at);
        }
    }

    /// Where to go after signing in: `rd` if it is safe, else the account page.
    pub(super) fn return_target(&self, headers: &HeaderMap, rd: Option<&str>) -> String {
        rd.and_then(|rd| self.settings.redirects.check(rd, &self.own_origin(headers)))
            .filter(|rd| HeaderValue::from_str(rd).is_ok())
            .unwrap_or("/account")
            .to_owned()
    }
}

fn render(status: StatusCode, page: &LoginPage<'_>, cookie: Option<HeaderValue>) -> Result<Response, PortalError> {
    let html = page.render().map_err(|error| {
        tracing::error!(%error, "portal: cannot render the login page");
        PortalError::Internal
    })?;
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `GET /login`: the form, or straight on when already signed in.
#[utoipa::path(get, path = "/login", operation_id = "login_form", tag = "portal", security(),
    params(("rd" = Option<String>, Query, description = "Where to return after signing in: same origin or allow-listed")),
    responses(
        (status = 200, description = "The sign-in form", body = String, content_type = "text/html",
            headers(("Set-Cookie" = String, description = "The login form's CSRF cookie, when it had none"))),
        (status = 303, description = "Already signed in: on to rd or /account", headers(("Location" = String))),
    ))]
pub(super) async fn form(
    State(state): State<Portal>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Result<Response, PortalError> {
    let rd = query.map(|Query(q)| q.rd).unwrap_or_default();
    // Only a session the portal vouches for skips the form; any other (an
    // API session in the cookie, a disabled user's) gets it, or the account
    // page and the login page would send the browser to each other forever.
    if state.signed_in(&session).await?.is_some() {
        return Ok(Redirect::to(&state.return_target(&headers, rd.as_deref())).into_response());
    }
    let rd = rd.filter(|rd| state.return_target(&headers, Some(rd)) == *rd);
    let (csrf_token, cookie) = state.login_csrf.for_form(&headers)?;
    let page = LoginPage {
        error: None,
        csrf_token: &csrf_token,
        rd: rd.as_deref(),
        username: "",
        remember_me: false,
    };
    render(StatusCode::OK, &page, cookie)
}

/// `POST /login`.
#[utoipa::path(post, path = "/login", operation_id = "login", tag = "portal", security(),
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: on to rd or /account, with the session cookie",
            headers(("Location" = String), ("Set-Cookie" = String,
                description = "The session cookie, and a new device cookie (sessiond-device): this browser then has a sign-in allowance of its own"))),
        (status = 400, description = "The form could not be read", body = String, content_type = "text/html"),
        (status = 401, description = "Wrong username or password (one message for every failure): the form again",
            body = String, content_type = "text/html"),
        (status = 403, description = "Login CSRF: the form's token missing or not matching its cookie: the form again",
            body = String, content_type = "text/html"),
        (status = 429, description = "Throttled after repeated failures: the form again",
            body = String, content_type = "text/html",
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ))]
pub(super) async fn submit(
    State(state): State<Portal>,
    session: Session,
    parts: request::Parts,
    PortalForm(form): PortalForm<LoginForm>,
) -> Result<Response, PortalError> {
    let headers = &parts.headers;
    let target = state.return_target(headers, form.rd.as_deref());
    let rd = form.rd.as_deref().filter(|rd| *rd == target);
    let remember_me = form.remember_me.is_some();
    let failure = |status: StatusCode, error: &str| -> Result<Response, PortalError> {
        let (csrf_token, cookie) = state.login_csrf.for_form(headers)?;
        let page = LoginPage {
            error: Some(error),
            csrf_token: &csrf_token,
            rd,
            username: &form.username,
            remember_me,
        };
        render(status, &page, cookie)
    };

    // With a live session the layer has already checked the session's own
    // CSRF token; without one, the login form's double-submit value.
    let signed_in = session.current().await?.is_some();
    if !signed_in && !state.login_csrf.verify(headers, form.csrf_token.as_deref()) {
        return failure(
            StatusCode::FORBIDDEN,
            "This sign-in form has expired. Please try again.",
        );
    }
    let ip = client_ip::of(&parts);
    let now = state.manager.now();
    let device = state.device_cookies.presented(headers, &form.username);
    // A store that cannot count refuses the attempt (`?`): never unthrottled.
    let reservation = match state.throttle.reserve(&form.username, device.as_ref(), ip, now).await? {
        Ok(reservation) => reservation,
        Err(wait) => {
            // Refused unchecked, yet an attempt: a burst goes on under the
            // throttle's delays, which alone would keep an account's count
            // low.
            state.failed_login(&form.username, ip, now);
            return throttled(failure, wait);
        }
    };

    let checked = match state
        .accounts
        .check_credentials(&form.username, form.password.clone())
        .await
    {
        Ok(checked) => checked,
        Err(error) => {
            state.throttle.release_or_log(reservation).await;
            return Err(error.into());
        }
    };
    // The attempt was counted as a failure when it was reserved.
    let Some(user) = checked else {
        tracing::info!(ip = ?ip, trusted_device = reservation.trusted(), "portal: failed sign-in");
        state.failed_login(&form.username, ip, now);
        return failure(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS);
    };
    state.throttle.succeed_or_log(reservation).await;
    // The password check just read the user as enabled: a fresh answer for
    // forward auth, which also replaces a cached "disabled" after an enable.
    state
        .active_users
        .remember(state.accounts.tenant(), &user.name, true, now);
    // A new cookie at every sign-in: one that was locked out is replaced.
    // Without one (no randomness) the sign-in still stands.
    let device_cookie = state.device_cookies.issue(user.name.as_str()).ok();
    session.login(user.name, remember_me);
    let mut response = Redirect::to(&target).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, state.login_csrf.deletion());
    headers.extend(device_cookie.map(|cookie| (header::SET_COOKIE, cookie)));
    Ok(response)
}

/// The 429 answer to a throttled attempt, with `Retry-After`.
fn throttled(
    failure: impl FnOnce(StatusCode, &str) -> Result<Response, PortalError>,
    wait: std::time::Duration,
) -> Result<Response, PortalError> {
    let mut response = failure(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-ins. Please wait a little and try again.",
    )?;
    if let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// `POST /logout`: ends the session, deletes the cookie, and asks the
/// browser to drop the site's cookies, cache and storage (a shared computer
/// keeps nothing of the account).
#[utoipa::path(post, path = "/logout", operation_id = "logout", tag = "portal", security(),
    request_body(content = super::account::CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed out: to /login, cookie deleted",
        headers(("Location" = String), ("Set-Cookie" = String, description = "Deletes the session cookie"),
            ("Clear-Site-Data" = String, description = "\"cache\", \"cookies\", \"storage\"")))))]
pub(super) async fn logout(session: Session) -> Response {
    session.logout();
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}
