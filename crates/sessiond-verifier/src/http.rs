//! What the verifier needs to talk to sessiond: the base URL, the API key
//! (kept out of `Debug` output and marked sensitive on the wire), and a body
//! reader with a size limit, so a misbehaving server cannot make us buffer
//! without bound.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, RequestBuilder, Response, Url};

use crate::error::BuildError;

/// Timeout of a JWKS request or a revocation poll, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout to connect, also for the revocation stream.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client the builder makes when none is given.
pub(crate) fn default_client() -> Result<Client, BuildError> {
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("sessiond-verifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(BuildError::HttpClient)
}

/// Parses the base URL and makes it end in `/`, so that joining a relative
/// path keeps any path prefix (`https://auth.example/sessiond/`).
pub(crate) fn base_url(base: &str) -> Result<Url, BuildError> {
    let mut url = Url::parse(base).map_err(|_| BuildError::InvalidBaseUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(BuildError::InvalidBaseUrl);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BuildError::InvalidBaseUrl);
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `base` joined with a relative `path` (no leading `/`).
pub(crate) fn endpoint(base: &Url, path: &str) -> Result<Url, BuildError> {
    base.join(path).map_err(|_| BuildError::InvalidBaseUrl)
}

/// An API key: sent as `Authorization: Bearer`, never printed.
#[derive(Clone)]
pub(crate) struct ApiKey(HeaderValue);

impl ApiKey {
    pub(crate) fn new(key: &str) -> Result<Self, BuildError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| BuildError::InvalidApiKey)?;
        value.set_sensitive(true);
        Ok(ApiKey(value))
    }

    /// The request with the key attached.
    pub(crate) fn attach(&self, request: RequestBuilder) -> RequestBuilder {
        request.header(AUTHORIZATION, self.0.clone())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

/// Reads the whole body, failing once it exceeds `limit` bytes.
pub(crate) async fn read_limited(response: &mut Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_their_path_prefix() -> Result<(), BuildError> {
        let base = base_url("https://auth.example/sessiond")?;
        assert_eq!(
            endpoint(&base, ".well-known/jwks.json")?.as_str(),
            "https://auth.example/sessiond/.well-known/jwks.json"
        );
        let base = base_url("http://127.0.0.1:8080")?;
        assert_eq!(
            endpoint(&base, "v1/revocations")?.as_str(),
            "http://127.0.0.1:8080/v1/revocations"
        );
        Ok(())
    }

    #[test]
    fn odd_base_urls_are_refused() {
        for bad in ["ftp://x", "not a url", "mailto:a@b", "https://x/?q=1", "https://x/#f"] {
            assert!(matches!(base_url(bad), Err(BuildError::InvalidBaseUrl)), "{bad}");
        }
    }

    #[test]
    fn the_api_key_is_not_printed() -> Result<(), BuildError> {
        let key = ApiKey::new("sk_secret")?;
        assert!(!format!("{key:?}").contains("sk_secret"));
        assert!(matches!(ApiKey::new("a\nb"), Err(BuildError::InvalidApiKey)));
        Ok(())
    }
}
