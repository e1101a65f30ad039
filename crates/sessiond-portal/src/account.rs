//! The account page: the user's sessions as devices, ending them, and
//! changing the password.
//!
//! Ending sessions needs a recent login (`reauth_window`) or the password
//! again: a session left open on a shared computer must not be enough to
//! lock the owner out of their other devices. Entering the password counts
//! as a fresh login (the session is re-authenticated and gets a new token).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sessiond_core::{RevokeReason, Session as Record, SessionId};
use sessiond_http::{Session, SessionInfo};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::extract::{PortalForm, SignedIn};
use super::passwords::{MIN_PASSWORD_CHARS, check_new_password};
use super::{AccountError, PortalError, State as Portal, client_ip, device};

#[derive(Template)]
#[template(path = "portal/account.html")]
struct AccountPage<'a> {
    subject: &'a str,
    sessions: Vec<DeviceRow>,
    csrf_token: &'a str,
    needs_password: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    min_password: usize,
}

struct DeviceRow {
    id: String,
    device: String,
    ip: String,
    /// The device it signed in on, when unlike the one last seen.
    created_device: Option<String>,
    /// The address it signed in from, when known.
    created_ip: Option<String>,
    created: String,
    created_iso: String,
    last_seen: String,
    last_seen_iso: String,
    remember_me: bool,
    current: bool,
}

fn human(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_default()
}

/// A `<time datetime>` value: whole seconds, since HTML allows only one to
/// three fractional digits.
fn iso(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl DeviceRow {
    fn new(record: &Record, current: &SessionId) -> Self {
        let device = device::describe(record.client.user_agent.as_deref());
        let ip = record.client.ip.clone().unwrap_or_else(|| "unknown".to_owned());
        // Records from before the creating client was kept have none.
        let created = &record.created_client;
        let created_device = created
            .user_agent
            .as_deref()
            .map(|agent| device::describe(Some(agent)))
            .filter(|described| *described != device);
        let created_ip = created.ip.clone();
        Self {
            id: record.id.as_str().to_owned(),
            device,
            ip,
            created_device,
            created_ip,
            created: human(record.created_at),
            created_iso: iso(record.created_at),
            last_seen: human(record.last_seen_at),
            last_seen_iso: iso(record.last_seen_at),
            remember_me: record.remember_me,
            current: record.id == *current,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn datetime_attributes_have_whole_seconds() {
        assert_eq!(
            super::iso(datetime!(2026-11-29 17:35:04.123456 UTC)),
            "2026-11-29T17:35:04Z"
        );
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Notice {
    done: Option<String>,
}

/// Ending sessions (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct ReauthForm {
    /// The user's password, needed when the login is older than
    /// `portal.reauth_window`.
    password: Option<String>,
    /// The session's CSRF token (checked by the session layer before the
    /// handler runs; here for the form's schema).
    #[expect(dead_code, reason = "read by the session layer; declared for the OpenAPI schema")]
    csrf_token: Option<String>,
}

/// Changing the password (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct PasswordForm {
    /// The password now.
    #[serde(default)]
    current_password: String,
    /// The new password: 8 characters to 1024 bytes.
    #[serde(default)]
    new_password: String,
    /// The session's CSRF token (checked by the session layer before the
    /// handler runs; here for the form's schema).
    #[expect(dead_code, reason = "read by the session layer; declared for the OpenAPI schema")]
    csrf_token: Option<String>,
}

/// A form with nothing but the session's CSRF token (`POST /logout`),
/// checked by the session layer; only the OpenAPI schema reads this.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI schema of the form")]
pub(super) struct CsrfForm {
    /// The session's CSRF token.
    csrf_token: Option<String>,
}

async fn render(
    state: &Portal,
    session: &Session,
    info: &SessionInfo,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PortalError> {
    let records = state.manager.list_subject(info.subject()).await?;
    let sessions = records.iter().map(|r| DeviceRow::new(r, info.id())).collect();
    let csrf_token = session.csrf_token().await?.unwrap_or_default();
    let page = AccountPage {
        subject: info.subject().as_str(),
        sessions,
        csrf_token: &csrf_token,
        needs_password: !state.is_fresh(info),
        notice,
        error,
        min_password: MIN_PASSWORD_CHARS,
    };
    let html = page.render().map_err(|error| {
        tracing::error!(%error, "portal: cannot render the account page");
        PortalError::Internal
    })?;
    Ok((status, Html(html)).into_response())
}

impl super::PortalState {
    fn is_fresh(&self, info: &SessionInfo) -> bool {
        let age = self.manager.now() - info.authenticated_at();
        age < self.settings.reauth_window
    }

    /// Checks the user's password, throttled like a login. `Ok(false)` for
    /// a wrong password (or a user that no longer exists or is disabled).
    async fn password_matches(
        &self,
        info: &SessionInfo,
        password: String,
        parts: &request::Parts,
    ) -> Result<Result<bool, std::time::Duration>, PortalError> {
        let name = info.subject().as_str();
        let ip = client_ip::of(parts);
        let now = self.manager.now();
        // The account's owner may be re-entering their password while
        // someone else guesses it: their device cookie counts here too.
        let device = self.device_cookies.presented(&parts.headers, name);
        let reservation = match self.throttle.reserve(name, device.as_ref(), ip, now).await? {
            Ok(reservation) => reservation,
            Err(wait) => return Ok(Err(wait)),
        };
        let matched = match self.accounts.check_credentials(name, password).await {
            Ok(user) => user.is_some(),
            Err(error) => {
                self.throttle.release_or_log(reservation).await;
                return Err(error.into());
            }
        };
        // A wrong password stays counted, as its reservation was.
        if matched {
            self.throttle.succeed_or_log(reservation).await;
        }
        Ok(Ok(matched))
    }

    /// Allows ending sessions: a fresh login, or the right password (which
    /// then re-authenticates this session). `Err` is the page to answer.
    async fn reauthenticate(
        self: &std::sync::Arc<Self>,
        session: &Session,
        info: &SessionInfo,
        password: Option<String>,
        parts: &request::Parts,
    ) -> Result<Result<(), Response>, PortalError> {
        if self.is_fresh(info) {
            return Ok(Ok(()));
        }
        let message = match password.filter(|p| !p.is_empty()) {
            None => "Enter your password to sign out other devices.",
            Some(password) => match self.password_matches(info, password, parts).await? {
                Ok(true) => {
                    session.reauthenticate().await?;
                    return Ok(Ok(()));
                }
                Ok(false) => "Wrong password.",
                Err(_) => "Too many failed attempts. Please wait a little and try again.",
            },
        };
        let page = render(self, session, info, StatusCode::FORBIDDEN, None, Some(message)).await?;
        Ok(Err(page))
    }
}

/// `GET /account`.
#[utoipa::path(get, path = "/account", operation_id = "account_page", tag = "portal", security(),
    params(("done" = Option<String>, Query, description = "What was just done: `password`, `revoked` or `others` (a notice)")),
    responses(
        (status = 200, description = "The user's sessions as devices", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to /login?rd=%2Faccount", headers(("Location" = String))),
    ))]
pub(super) async fn page(
    State(state): State<Portal>,
    session: Session,
    SignedIn(info): SignedIn,
    notice: Result<Query<Notice>, QueryRejection>,
) -> Result<Response, PortalError> {
    let notice = match notice.ok().and_then(|Query(n)| n.done).as_deref() {
        Some("password") => Some("Your password was changed and every other device was signed out."),
        Some("revoked") => Some("The device was signed out."),
        Some("others") => Some("Every other device was signed out."),
        _ => None,
    };
    render(&state, &session, &info, StatusCode::OK, notice, None).await
}

/// `POST /account/sessions/{id}/revoke`: ends one of the user's sessions.
#[utoipa::path(post, path = "/account/sessions/{id}/revoke", operation_id = "revoke_account_session", tag = "portal", security(),
    params(("id" = String, Path, description = "One of the user's sessions", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")),
    request_body(content = ReauthForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Ended: to /account?done=revoked, or to /login when it was this session; \
            not signed in: to /login?rd=%2Faccount", headers(("Location" = String))),
        (status = 400, description = "The form could not be read", body = String, content_type = "text/html"),
        (status = 403, description = "The login is not recent and no or a wrong password was given (or too many tries): the page again",
            body = String, content_type = "text/html"),
        (status = 404, description = "`not_found`: no such session of this user", body = String, content_type = "text/html"),
    ))]
pub(super) async fn revoke_one(
    State(state): State<Portal>,
    session: Session,
    SignedIn(info): SignedIn,
    Path(id): Path<String>,
    parts: request::Parts,
    PortalForm(form): PortalForm<ReauthForm>,
) -> Result<Response, PortalError> {
    let id = SessionId::parse(&id).ok_or(PortalError::NotFound)?;
    // Another user's session is "not found", exactly like a missing one.
    let target = state.manager.get(&id).await?;
    if target.subject != *info.subject() || target.revoked.is_some() {
        return Err(PortalError::NotFound);
    }
    if let Err(page) = state.reauthenticate(&session, &info, form.password, &parts).await? {
        return Ok(page);
    }
    if id == *info.id() {
        session.logout();
        return Ok(Redirect::to("/login").into_response());
    }
    state.manager.revoke_id(&id, RevokeReason::User).await?;
    Ok(Redirect::to("/account?done=revoked").into_response())
}

/// `POST /account/sessions/revoke-others`: "sign out everywhere else".
#[utoipa::path(post, path = "/account/sessions/revoke-others", operation_id = "revoke_other_sessions", tag = "portal", security(),
    request_body(content = ReauthForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Every other session ended: to /account?done=others; \
            not signed in: to /login?rd=%2Faccount", headers(("Location" = String))),
        (status = 400, description = "The form could not be read", body = String, content_type = "text/html"),
        (status = 403, description = "The login is not recent and no or a wrong password was given (or too many tries): the page again",
            body = String, content_type = "text/html"),
    ))]
pub(super) async fn revoke_others(
    State(state): State<Portal>,
    session: Session,
    SignedIn(info): SignedIn,
    parts: request::Parts,
    PortalForm(form): PortalForm<ReauthForm>,
) -> Result<Response, PortalError> {
    if let Err(page) = state.reauthenticate(&session, &info, form.password, &parts).await? {
        return Ok(page);
    }
    state
        .manager
        .revoke_subject(info.subject(), Some(info.id()), RevokeReason::User)
        .await?;
    Ok(Redirect::to("/account?done=others").into_response())
}

/// `POST /account/password`: needs the current password; then every other
/// session of the user ends and this one is re-authenticated with a new
/// token, so a thief holding an old cookie is out.
#[utoipa::path(post, path = "/account/password", operation_id = "change_password", tag = "portal", security(),
    request_body(content = PasswordForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Changed: this session rotated, every other one ended, to /account?done=password; \
            not signed in: to /login?rd=%2Faccount", headers(("Location" = String))),
        (status = 400, description = "The new password is too short or too long, or the form could not be read",
            body = String, content_type = "text/html"),
        (status = 403, description = "Wrong current password: the page again", body = String, content_type = "text/html"),
        (status = 404, description = "`not_found`: the account no longer exists", body = String, content_type = "text/html"),
        (status = 409, description = "The account changed concurrently: the page again", body = String, content_type = "text/html"),
        (status = 429, description = "Throttled: the page again", body = String, content_type = "text/html"),
    ))]
pub(super) async fn change_password(
    State(state): State<Portal>,
    session: Session,
    SignedIn(info): SignedIn,
    parts: request::Parts,
    PortalForm(form): PortalForm<PasswordForm>,
) -> Result<Response, PortalError> {
    let refuse = |status, message| render(&state, &session, &info, status, None, Some(message));
    if check_new_password(&form.new_password).is_err() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The new password must be at least 8 characters long (and at most 1024 bytes).",
        )
        .await;
    }
    match state.password_matches(&info, form.current_password, &parts).await? {
        Ok(true) => {}
        Ok(false) => return refuse(StatusCode::FORBIDDEN, "Your current password is not correct.").await,
        Err(_) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Please wait a little and try again.",
            )
            .await;
        }
    }
    let changed = state
        .accounts
        .change_password(info.subject(), form.new_password, Some(info.id()))
        .await;
    match changed {
        Ok(_) => {}
        Err(AccountError::Conflict) => {
            return refuse(
                StatusCode::CONFLICT,
                "Your account changed at the same time. Please try again.",
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    }
    session.reauthenticate().await?;
    Ok(Redirect::to("/account?done=password").into_response())
}
