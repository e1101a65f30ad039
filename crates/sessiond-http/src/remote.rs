//! Remote mode: a [`SessionBackend`] that calls a `sessiond serve` process
//! over its HTTP API (API.md), for apps that share sessions with other
//! services or languages.
//!
//! Anonymous sessions: `POST /v1/sessions` without a subject creates one,
//! and `POST /v1/sessions/login` signs its visitor in (`carry_data` true
//! for [`CarryData::All`], false with `data` for [`CarryData::Nothing`]).
//! A [`CarryData::With`] hook runs here, not in sessiond: the visitor's
//! data is read, the hook applied, and the login made with `carry_data`
//! false and the result as `data`, in one call. Unlike in process, a write
//! to the visitor's session between that read and the login is not
//! carried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;
use sessiond_core::{
    Aal, AccessToken, AnonymousOptions, CarryData, ClientInfo, CreateOptions, Rotation, SessionData, SessionId,
    SignInOptions, Subject, Token,
};
use sessiond_wire::{
    AccessTokenRequest, AccessTokenResponse, ClientView, CreateRequest, ErrorCode, LoginRequest, PatchRequest, Problem,
    RevokeRequest, RotateRequest, SessionResponse, SessionView, TokenResponse, VerifyRequest,
};
use time::OffsetDateTime;

use crate::backend::{BackendError, SessionBackend, SessionInfo};

/// How long one call to sessiond may take before the request fails closed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of a remote sessiond, usable as the layer's backend.
#[derive(Clone)]
pub struct RemoteBackend {
    client: reqwest::Client,
    base: Arc<str>,
    api_key: Arc<str>,
}

impl fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key is a credential: never printed.
        f.debug_struct("RemoteBackend")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A remote backend could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum RemoteConfigError {
    /// The base URL is not `http://` or `https://`.
    #[error("sessiond URL must start with http:// or https://: {0:?}")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl RemoteBackend {
    /// A client of the sessiond at `base_url` (e.g. `http://127.0.0.1:7380`)
    /// authenticating with `api_key`, with a 5 s timeout per call.
    ///
    /// An `https://` URL is verified against the system's roots (rustls).
    /// For a private CA, build the client yourself with
    /// `reqwest::Client::builder().tls_certs_merge([ca])` and use
    /// [`RemoteBackend::with_client`].
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, RemoteConfigError> {
        let client = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(RemoteConfigError::Client)?;
        Self::with_client(client, base_url, api_key)
    }

    /// The same, with a caller-built `reqwest::Client` (TLS, proxies, timeouts).
    pub fn with_client(client: reqwest::Client, base_url: &str, api_key: &str) -> Result<Self, RemoteConfigError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(RemoteConfigError::Url(base_url.to_owned()));
        }
        Ok(Self {
            client,
            base: Arc::from(base_url.trim_end_matches('/')),
            api_key: Arc::from(api_key),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&*self.api_key)
    }
}

/// Sends a request and decodes a success body; `Ok(None)` for 401
/// `invalid_token` (the API's "no such session", whatever the reason).
async fn call<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<Option<T>, BackendError> {
    let response = request
        .send()
        .await
        .map_err(|e| BackendError::Unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        if status == StatusCode::NO_CONTENT {
            return serde_json::from_value(serde_json::Value::Null)
                .map(Some)
                .map_err(|e| BackendError::Internal(e.to_string()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        return serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BackendError::Internal(format!("unexpected response from sessiond: {e}")));
    }
    // Whole seconds (API.md); without a usable header, one second.
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs);
    let code = response.json::<Problem>().await.ok().map(|p| p.code);
    Err(match code {
        Some(ErrorCode::InvalidToken) => return Ok(None),
        Some(ErrorCode::SessionLimit) => BackendError::SessionLimit,
        Some(ErrorCode::TooManySessions) => BackendError::TooManySessions { retry_after },
        // A PATCH on a session that is gone did not happen, like a lost race.
        Some(ErrorCode::VersionConflict | ErrorCode::NotFound) => BackendError::VersionConflict,
        Some(ErrorCode::PayloadTooLarge) => BackendError::DataTooLarge,
        Some(ErrorCode::AalDowngrade) => BackendError::AalDowngrade,
        Some(ErrorCode::AalMismatch) => BackendError::AalMismatch,
        _ if status.is_server_error() => BackendError::Unavailable(format!("sessiond answered {status}")),
        Some(code) => BackendError::Invalid(format!("sessiond answered {status} {code}")),
        None => BackendError::Invalid(format!("sessiond answered {status}")),
    })
}

/// The session object of the API, typed: exactly what the server sent.
#[derive(Debug)]
pub(crate) struct RemoteSession {
    pub(crate) id: SessionId,
    pub(crate) subject: Subject,
    pub(crate) aal: Aal,
    pub(crate) authenticated_at: OffsetDateTime,
    pub(crate) last_seen_at: OffsetDateTime,
    pub(crate) absolute_expires_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    pub(crate) remember_me: bool,
    pub(crate) data: SessionData,
    pub(crate) version: u64,
}

impl RemoteSession {
    pub(crate) fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

fn into_info(view: SessionView) -> Result<SessionInfo, BackendError> {
    let bad = |what: &str| BackendError::Internal(format!("sessiond sent an invalid {what}"));
    Ok(SessionInfo::remote(RemoteSession {
        id: SessionId::parse(&view.id).ok_or_else(|| bad("session id"))?,
        // A record of the server's, under the rule it was written with.
        subject: match view.subject {
            Some(subject) => Subject::from_record(subject).map_err(|_| bad("subject"))?,
            None => Subject::anonymous(),
        },
        aal: Aal::try_from(view.aal).map_err(|_| bad("aal"))?,
        authenticated_at: view.authenticated_at,
        last_seen_at: view.last_seen_at,
        absolute_expires_at: view.absolute_expires_at,
        expires_at: view.expires_at,
        remember_me: view.remember_me,
        data: view.data,
        version: view.version,
    }))
}

fn with_token(body: TokenResponse) -> Result<(Token, SessionInfo), BackendError> {
    let token =
        Token::parse(&body.token).map_err(|_| BackendError::Internal("sessiond sent an invalid token".into()))?;
    Ok((token, into_info(body.session)?))
}

fn client_view(client: &ClientInfo) -> Option<ClientView> {
    (!client.is_empty()).then(|| ClientView::from(client))
}

#[async_trait::async_trait]
impl SessionBackend for RemoteBackend {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        let body = CreateRequest {
            subject: Some(subject.as_str().to_owned()),
            remember_me: options.remember_me,
            aal: Some(options.aal.get()),
            data: Some(options.data),
            client: client_view(&options.client),
        };
        let response: Option<TokenResponse> =
            call(self.request(reqwest::Method::POST, "/v1/sessions").json(&body)).await?;
        // A 401 here means our API key was refused: a configuration error.
        with_token(response.ok_or_else(|| BackendError::Invalid("sessiond refused the API key".into()))?)
    }

    /// `POST /v1/sessions` without a subject.
    async fn create_anonymous(&self, options: AnonymousOptions) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let body = CreateRequest {
            subject: None,
            remember_me: false,
            aal: None,
            data: Some(options.data),
            client: client_view(&options.client),
        };
        let response: Option<TokenResponse> =
            call(self.request(reqwest::Method::POST, "/v1/sessions").json(&body)).await?;
        let response = response.ok_or_else(|| BackendError::Invalid("sessiond refused the API key".into()))?;
        with_token(response).map(Some)
    }

    /// `POST /v1/sessions/login`; a [`CarryData::With`] hook runs here (see
    /// the module comment).
    async fn sign_in(
        &self,
        token: &Token,
        subject: &Subject,
        options: SignInOptions,
    ) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let SignInOptions { create, carry } = options;
        // The new session's data when it is not the visitor's as it is.
        let data = match carry {
            CarryData::All => None,
            CarryData::Nothing => Some(create.data),
            CarryData::With(hook) => {
                let visitor = match self.verify(token, &create.client).await? {
                    Some(visitor) if visitor.is_anonymous() => visitor,
                    _ => return Ok(None),
                };
                Some(hook(visitor.data()))
            }
        };
        let body = LoginRequest {
            token: token.expose_secret().to_owned(),
            subject: subject.as_str().to_owned(),
            remember_me: create.remember_me,
            aal: Some(create.aal.get()),
            carry_data: data.is_none(),
            data,
            client: client_view(&create.client),
        };
        let response: Option<TokenResponse> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/login").json(&body)).await?;
        let Some(response) = response else {
            return Ok(None);
        };
        Ok(Some(with_token(response)?))
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        let body = VerifyRequest {
            token: token.expose_secret().to_owned(),
            client: client_view(client),
        };
        let response: Option<SessionResponse> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/verify").json(&body)).await?;
        response.map(|r| into_info(r.session)).transpose()
    }

    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let body = RotateRequest::new(token.expose_secret().to_owned(), rotation);
        let response: Option<TokenResponse> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/rotate").json(&body)).await?;
        response.map(with_token).transpose()
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        let body = RevokeRequest {
            token: token.expose_secret().to_owned(),
        };
        let _: Option<serde_json::Value> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/revoke").json(&body)).await?;
        Ok(())
    }

    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError> {
        let request = self
            .request(reqwest::Method::PATCH, &format!("/v1/sessions/{}", id.as_str()))
            .header(reqwest::header::IF_MATCH, format!("\"{expected_version}\""))
            .json(&PatchRequest { data });
        let response: Option<SessionResponse> = call(request).await?;
        into_info(
            response
                .ok_or_else(|| BackendError::Invalid("sessiond refused the API key".into()))?
                .session,
        )
    }

    /// `POST /v1/sessions/access-token`: sessiond checks the session again
    /// and signs with its own keys.
    async fn mint_access_token(
        &self,
        token: &Token,
        _session: &SessionInfo,
    ) -> Result<Option<AccessToken>, BackendError> {
        let body = AccessTokenRequest {
            token: token.expose_secret().to_owned(),
        };
        let response: Option<AccessTokenResponse> = call(
            self.request(reqwest::Method::POST, "/v1/sessions/access-token")
                .json(&body),
        )
        .await?;
        Ok(response.map(|r| AccessToken {
            token: r.access_token,
            expires_at: r.access_token_expires_at,
        }))
    }
}
