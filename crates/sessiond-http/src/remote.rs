//! Remote mode: a [`SessionBackend`] that calls a `sessiond serve` process
//! over its HTTP API (API.md), for apps that share sessions with other
//! services or languages.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sessiond_core::{
    Aal, ClientInfo, CreateOptions, Session, SessionData, SessionId, Subject, Tenant, Token, TokenHash,
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

/// Sends a request and decodes a success body; `Ok(None)` for 401 (the
/// API's "invalid token", whatever the reason).
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
    let code = response.json::<Problem>().await.map(|p| p.code).unwrap_or_default();
    Err(match status {
        StatusCode::UNAUTHORIZED if code == "invalid_token" => return Ok(None),
        StatusCode::CONFLICT if code == "session_limit" => BackendError::SessionLimit,
        // A PATCH on a session that is gone did not happen, like a lost race.
        StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND => BackendError::VersionConflict,
        StatusCode::PAYLOAD_TOO_LARGE => BackendError::DataTooLarge,
        s if s.is_server_error() => BackendError::Unavailable(format!("sessiond answered {s} {code}")),
        s => BackendError::Invalid(format!("sessiond answered {s} {code}")),
    })
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct WithToken {
    token: String,
    session: WireSession,
}

#[derive(Deserialize)]
struct WithSession {
    session: WireSession,
}

/// The session object of API.md.
#[derive(Deserialize)]
struct WireSession {
    id: String,
    subject: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    authenticated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    idle_expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    absolute_expires_at: OffsetDateTime,
    #[serde(default)]
    remember_me: bool,
    aal: Aal,
    #[serde(default)]
    data: SessionData,
    #[serde(default)]
    client: Option<ClientInfo>,
    version: u64,
}

impl WireSession {
    fn into_info(self) -> Result<SessionInfo, BackendError> {
        let bad = |what: &str| BackendError::Internal(format!("sessiond sent an invalid {what}"));
        let session = Session {
            id: SessionId::parse(&self.id).ok_or_else(|| bad("session id"))?,
            // Neither is part of the API's session object, and SessionInfo
            // exposes neither; these placeholders never leave this crate.
            tenant: Tenant::default_tenant(),
            token_hash: TokenHash::from_bytes([0; 32]),
            previous_token: None,
            subject: Subject::new(self.subject).map_err(|_| bad("subject"))?,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            authenticated_at: self.authenticated_at,
            idle_expires_at: self.idle_expires_at,
            absolute_expires_at: self.absolute_expires_at,
            remember_me: self.remember_me,
            aal: self.aal,
            data: self.data,
            client: self.client.unwrap_or_default(),
            version: self.version,
            revoked: None,
        };
        Ok(SessionInfo::new(Arc::new(session)))
    }
}

fn with_token(body: WithToken) -> Result<(Token, SessionInfo), BackendError> {
    let token =
        Token::parse(&body.token).map_err(|_| BackendError::Internal("sessiond sent an invalid token".into()))?;
    Ok((token, body.session.into_info()?))
}

fn client_json(client: &ClientInfo) -> Option<&ClientInfo> {
    (!client.is_empty()).then_some(client)
}

#[async_trait::async_trait]
impl SessionBackend for RemoteBackend {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        let body = serde_json::json!({
            "subject": subject.as_str(),
            "remember_me": options.remember_me,
            "aal": options.aal,
            "data": options.data,
            "client": client_json(&options.client),
        });
        let response: Option<WithToken> = call(self.request(reqwest::Method::POST, "/v1/sessions").json(&body)).await?;
        // A 401 here means our API key was refused: a configuration error.
        with_token(response.ok_or_else(|| BackendError::Invalid("sessiond refused the API key".into()))?)
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        let body = serde_json::json!({ "token": token.expose_secret(), "client": client_json(client) });
        let response: Option<WithSession> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/verify").json(&body)).await?;
        response.map(|r| r.session.into_info()).transpose()
    }

    async fn rotate(&self, token: &Token, aal: Option<Aal>) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let body = match aal {
            Some(aal) => serde_json::json!({ "token": token.expose_secret(), "aal": aal }),
            None => serde_json::json!({ "token": token.expose_secret() }),
        };
        let response: Option<WithToken> =
            call(self.request(reqwest::Method::POST, "/v1/sessions/rotate").json(&body)).await?;
        response.map(with_token).transpose()
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        let body = serde_json::json!({ "token": token.expose_secret() });
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
            .json(&serde_json::json!({ "data": data }));
        let response: Option<WithSession> = call(request).await?;
        response
            .ok_or_else(|| BackendError::Invalid("sessiond refused the API key".into()))?
            .session
            .into_info()
    }
}
