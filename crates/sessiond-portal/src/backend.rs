//! The session backend of the portal's own layer: the in-process manager,
//! except that every session it creates is marked as a portal login
//! ([`SessionOrigin::Portal`]), the only kind forward auth and the account
//! pages accept (issue 12, finding 3).
//!
//! The portal's layer creates sessions only in `POST /login`, after the
//! password of an existing, enabled user was checked, so the mark means
//! what it says. Sessions made anywhere else (the API, library callers)
//! keep the default origin.

use sessiond_core::{
    ClientInfo, CreateOptions, Rotation, SessionData, SessionId, SessionManager, SessionOrigin, Subject, Token,
};
use sessiond_http::{BackendError, SessionBackend, SessionInfo};

/// [`SessionManager`] as the portal's backend; see the module comment.
#[derive(Debug, Clone)]
pub(crate) struct PortalBackend(pub(crate) SessionManager);

#[sessiond_core::async_trait]
impl SessionBackend for PortalBackend {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        let options = CreateOptions {
            origin: SessionOrigin::Portal,
            ..options
        };
        SessionBackend::create(&self.0, subject, options).await
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        SessionBackend::verify(&self.0, token, client).await
    }

    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        SessionBackend::rotate(&self.0, token, rotation).await
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        SessionBackend::revoke(&self.0, token).await
    }

    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError> {
        SessionBackend::update_data(&self.0, id, data, expected_version).await
    }
}
