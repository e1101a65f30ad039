//! Configuring a [`Verifier`]: where sessiond is, what the tokens must say,
//! and whether to follow revocations.

use std::time::Duration;

use crate::error::BuildError;
use crate::revocations::DEFAULT_CAPACITY;
use crate::verifier::Verifier;

/// The default leeway for clock skew.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The largest leeway a builder accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Builds a [`Verifier`]; made by [`Verifier::builder`].
///
/// [`issuer`](Self::issuer) and [`audience`](Self::audience) are required:
/// a token minted for another audience is exactly what RFC 9068 wants a
/// resource server to refuse. Everything else has a default.
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    pub(crate) base_url: String,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) leeway: Duration,
    pub(crate) api_key: Option<String>,
    pub(crate) client: Option<reqwest::Client>,
    pub(crate) revocation_capacity: usize,
}

impl VerifierBuilder {
    pub(crate) fn new(base_url: impl Into<String>) -> Self {
        VerifierBuilder {
            base_url: base_url.into(),
            issuer: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
            api_key: None,
            client: None,
            revocation_capacity: DEFAULT_CAPACITY,
        }
    }

    /// The `iss` every token must carry exactly (sessiond's `tokens.issuer`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` every token must be, or contain (sessiond's `tokens.audience`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Tolerated clock skew for `exp`, `nbf` and `iat`: default 30 s, at most
    /// 5 minutes. Counted in whole seconds (fractions are dropped).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// A sessiond API key: [`build`](Self::build) then starts following the
    /// revocation feed, and tokens of revoked sessions are refused with
    /// [`VerifyError::Revoked`](crate::VerifyError::Revoked). Any role will do.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// The HTTP client to reach sessiond with, for proxies, extra root
    /// certificates or client certificates. A client-wide `timeout` also
    /// cuts the revocation stream, which then reconnects: prefer
    /// `read_timeout` or none. Default: a rustls client with a 5 s
    /// connection timeout.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The most revoked sessions held at once (default 1,000,000). Past it
    /// the verifier fails closed for tokens issued before the newest
    /// revocation, until the dropped entries would have expired; see
    /// [`Verifier::follow_revocations`].
    pub fn revocation_capacity(mut self, capacity: usize) -> Self {
        self.revocation_capacity = capacity;
        self
    }

    /// Checks the configuration and makes the verifier. Does no I/O: keys
    /// are fetched by the first [`Verifier::verify_async`] (or an explicit
    /// [`Verifier::refresh_keys`]).
    ///
    /// With an [`api_key`](Self::api_key), this also starts following
    /// revocations, which needs a tokio runtime: outside one it fails with
    /// [`BuildError::NoRuntime`] rather than silently not following.
    pub fn build(self) -> Result<Verifier, BuildError> {
        if self.leeway > MAX_LEEWAY {
            return Err(BuildError::LeewayTooLarge);
        }
        let verifier = Verifier::from_builder(self)?;
        if verifier.has_api_key() {
            verifier.follow_revocations()?;
        }
        Ok(verifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens there: no test reaches beyond loopback.
    const BASE: &str = "http://127.0.0.1:1";

    fn builder() -> VerifierBuilder {
        Verifier::builder(BASE).issuer(BASE).audience("api")
    }

    #[test]
    fn issuer_and_audience_are_required() {
        let no_issuer = Verifier::builder(BASE).audience("api").build();
        assert!(matches!(no_issuer, Err(BuildError::MissingIssuer)));
        let no_audience = Verifier::builder(BASE).issuer("x").build();
        assert!(matches!(no_audience, Err(BuildError::MissingAudience)));
        assert!(builder().build().is_ok());
    }

    #[test]
    fn leeway_is_capped_at_five_minutes() {
        assert!(builder().leeway(MAX_LEEWAY).build().is_ok());
        let too_much = builder().leeway(MAX_LEEWAY + Duration::from_secs(1)).build();
        assert!(matches!(too_much, Err(BuildError::LeewayTooLarge)));
    }

    #[test]
    fn following_revocations_needs_a_runtime() {
        let built = builder().api_key("sk_test").build();
        assert!(matches!(built, Err(BuildError::NoRuntime)));
    }

    #[tokio::test]
    async fn following_revocations_needs_an_api_key() -> Result<(), BuildError> {
        let verifier = builder().build()?;
        assert!(matches!(verifier.follow_revocations(), Err(BuildError::NoApiKey)));
        let verifier = builder().api_key("sk_test").build()?;
        // Idempotent.
        verifier.follow_revocations()?;
        Ok(())
    }
}
