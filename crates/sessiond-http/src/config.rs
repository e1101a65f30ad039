//! Building a [`SessionLayer`]: secure defaults, and refusal at startup of
//! any configuration that contradicts them.

use std::sync::Arc;

use sessiond_core::{Clock, SessionManager, SystemClock};

use crate::access_token::{
    AccessTokenCookie, AccessTokens, DEFAULT_ACCESS_TOKEN_COOKIE_NAME, DEV_ACCESS_TOKEN_COOKIE_NAME,
};
use crate::backend::{Issuing, ManagerClock, SessionBackend};
use crate::cookie::{CookieCodec, CookieConfigError, DEFAULT_COOKIE_NAME, DEV_COOKIE_NAME, SameSite};
use crate::csrf::{CsrfGuard, Exemptions};
use crate::layer::{SessionLayer, Shared};
#[cfg(feature = "remote")]
use crate::remote::RemoteBackend;

/// Default bound on a form body read to find its `csrf_token`.
pub const DEFAULT_MAX_FORM_BYTES: usize = 64 * 1024;

/// Why a layer configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cookie settings contradict each other or the cookie prefix.
    #[error(transparent)]
    Cookie(#[from] CookieConfigError),
    /// An allowed origin is not `scheme://host[:port]`.
    #[error("invalid origin {0:?}: expected scheme://host[:port]")]
    Origin(String),
    /// Development mode with an origin that is not on this machine.
    #[error("development mode is for localhost only, but {0:?} was allowed")]
    DevModeNotLocal(String),
    /// No randomness for the CSRF secret.
    #[error("cannot draw a CSRF secret from the operating system")]
    Randomness,
    /// `SameSite=None` without [`SessionLayerBuilder::allow_cross_site_cookie`].
    #[error(
        "SameSite=None sends the session cookie with requests from every other site;          it needs allow_cross_site_cookie(true)"
    )]
    CrossSiteCookieNotAllowed,
    /// An access-token cookie whose tokens nobody can mint: in-process
    /// mode needs an `AccessTokenIssuer`, and only in-process mode can use one.
    #[error(
        "access tokens: SessionLayer::in_process mints them with an AccessTokenIssuer \
         (.access_tokens(issuer)); other backends mint their own (AccessTokenCookie::from_backend())"
    )]
    AccessTokenSource,
    /// A [`csrf_exempt`](SessionLayerBuilder::csrf_exempt) pattern that is
    /// not an exact path or a `/prefix/*`.
    #[error("invalid CSRF exemption {pattern:?}: {reason}")]
    CsrfExempt {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The access-token cookie would have the session cookie's name.
    #[error("the access-token cookie needs a name other than the session cookie's ({0:?})")]
    AccessTokenCookieName(String),
}

/// Configures a [`SessionLayer`]. Every setting has a secure default; see
/// [`SessionLayer::in_process`].
#[derive(Debug)]
pub struct SessionLayerBuilder {
    backend: Arc<dyn SessionBackend>,
    cookie_name: Option<String>,
    domain: Option<String>,
    path: String,
    same_site: SameSite,
    cross_site_cookie: bool,
    dev: bool,
    origins: Vec<String>,
    allow_same_site: bool,
    allow_missing_origin: bool,
    secrets: Vec<[u8; 32]>,
    max_form_bytes: usize,
    csrf_exempt: Vec<String>,
    access_tokens: Option<AccessTokenCookie>,
    anonymous: bool,
    /// Set by [`SessionLayer::in_process`]: the manager an issuer mints for.
    manager: Option<SessionManager>,
}

impl SessionLayer {
    /// A layer over any backend.
    pub fn builder(backend: Arc<dyn SessionBackend>) -> SessionLayerBuilder {
        SessionLayerBuilder {
            backend,
            cookie_name: None,
            domain: None,
            path: "/".to_owned(),
            same_site: SameSite::Lax,
            cross_site_cookie: false,
            dev: false,
            origins: Vec::new(),
            allow_same_site: false,
            allow_missing_origin: false,
            secrets: Vec::new(),
            max_form_bytes: DEFAULT_MAX_FORM_BYTES,
            csrf_exempt: Vec::new(),
            anonymous: true,
            access_tokens: None,
            manager: None,
        }
    }

    /// A layer over an in-process [`SessionManager`].
    pub fn in_process(manager: SessionManager) -> SessionLayerBuilder {
        let mut builder = Self::builder(Arc::new(manager.clone()));
        builder.manager = Some(manager);
        builder
    }

    /// A layer over a remote sessiond (feature `remote`).
    #[cfg(feature = "remote")]
    pub fn remote(remote: RemoteBackend) -> SessionLayerBuilder {
        Self::builder(Arc::new(remote))
    }
}

impl SessionLayerBuilder {
    /// Cookie name (default `__Host-sessiond`, or `sessiond` in dev mode).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = Some(name.into());
        self
    }

    /// A `Domain` attribute (refused with a `__Host-` name).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// A `Path` other than `/` (refused with a `__Host-` name).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// `SameSite` (default `Lax`; `None` needs `Secure` and
    /// [`allow_cross_site_cookie`](Self::allow_cross_site_cookie)).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Allows `SameSite=None`: the browser then sends the session cookie
    /// with requests other sites start (embedded frames, cross-site
    /// fetches), and only the origin check and CSRF token stand between
    /// them and the session. Off by default; without it `SameSite=None` is
    /// refused at build time, so it is never set by accident.
    pub fn allow_cross_site_cookie(mut self, allow: bool) -> Self {
        self.cross_site_cookie = allow;
        self
    }

    /// Plain-HTTP localhost development: cookie `sessiond` without
    /// `Secure`; only loopback hosts are served. Logged loudly.
    pub fn dev_mode(mut self, dev: bool) -> Self {
        self.dev = dev;
        self
    }

    /// An origin (`https://shop.example`) whose unsafe requests are
    /// accepted. Without any, the origin is derived from the `Host` header.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Accept `Sec-Fetch-Site: same-site` (sibling subdomains). Off by default.
    pub fn allow_same_site(mut self, allow: bool) -> Self {
        self.allow_same_site = allow;
        self
    }

    /// Accept unsafe requests with neither `Sec-Fetch-Site` nor `Origin`
    /// (non-browser clients). Off by default; the CSRF token still applies.
    pub fn allow_missing_origin(mut self, allow: bool) -> Self {
        self.allow_missing_origin = allow;
        self
    }

    /// The CSRF secret. Defaults to a random one per process; set the same
    /// value on every instance of an app behind a load balancer.
    pub fn csrf_secret(self, secret: [u8; 32]) -> Self {
        self.csrf_secrets([secret])
    }

    /// Several CSRF secrets, for rotating them: the first signs new
    /// tokens, every one verifies. Put a new secret first, and drop the
    /// old one once the pages it signed have expired. An empty list is the
    /// default (one random secret per process).
    pub fn csrf_secrets(mut self, secrets: impl IntoIterator<Item = [u8; 32]>) -> Self {
        self.secrets = secrets.into_iter().collect();
        self
    }

    /// Largest form body read to find the CSRF token (default 64 KiB).
    pub fn max_form_bytes(mut self, bytes: usize) -> Self {
        self.max_form_bytes = bytes;
        self
    }

    /// Exempts unsafe requests (POST, PUT, PATCH, DELETE, …) to `pattern`
    /// from both CSRF checks: the cross-site check (403
    /// `cross_site_request`) and the CSRF token (403 `csrf_failed`). For
    /// routes other sites must be able to call: payment or Git webhooks, a
    /// SAML assertion consumer. Call it once per pattern.
    ///
    /// A pattern is an exact path (`/saml/acs`) or a prefix ending in `/*`
    /// (`/webhooks/*` matches `/webhooks/stripe` and `/webhooks/a/b`, but
    /// neither `/webhooks` nor `/webhooksX`). It is compared with the
    /// request's path as sent: case-sensitive, still percent-encoded, with
    /// no normalisation, as axum routes; under `Router::nest`, with the
    /// path inside the nest when the layer is on the nested router.
    /// Anything else (no leading `/`, a `*` elsewhere, `/*` alone, a query,
    /// `//`, `.` or `..` segments, spaces or non-ASCII) is refused by
    /// [`build`](Self::build) with [`ConfigError::CsrfExempt`].
    ///
    /// **Exempt routes must authenticate their requests some other way**,
    /// e.g. by checking the sender's signature over the body, because any
    /// site can make a browser send them. So that such a forged request
    /// carries no user's authority, an exempt unsafe request is served as
    /// if it had no session cookie: its handler sees no session
    /// ([`Session::current`](crate::Session::current) is `None`), and a
    /// [`login`](crate::Session::login) there starts a new session without
    /// ending the one the browser had. Safe methods (GET, HEAD) are never
    /// CSRF-checked and keep their session.
    pub fn csrf_exempt(mut self, pattern: impl Into<String>) -> Self {
        self.csrf_exempt.push(pattern.into());
        self
    }

    /// Whether a data write ([`Session::insert`](crate::Session::insert),
    /// [`remove`](crate::Session::remove),
    /// [`update_data`](crate::Session::update_data)) on a request without a
    /// session starts an anonymous session holding it (on by default).
    /// Off, such a write is 401 `unauthenticated` and data is kept for
    /// signed-in sessions only. Reads never start one, and neither do
    /// requests to [`csrf_exempt`](SessionLayerBuilder::csrf_exempt) paths.
    pub fn anonymous_sessions(mut self, on: bool) -> Self {
        self.anonymous = on;
        self
    }

    /// Also keeps a current access token for the session in a second
    /// cookie (`__Host-sessiond_at`); off by default. See
    /// [`AccessTokenCookie`] for when it is minted, renewed and deleted.
    ///
    /// In-process mode passes the [`AccessTokenIssuer`](sessiond_core::AccessTokenIssuer)
    /// that signs the tokens (`.access_tokens(issuer)`); remote mode lets
    /// sessiond sign them (`.access_tokens(AccessTokenCookie::from_backend())`).
    /// Any other pairing is refused at build time
    /// ([`ConfigError::AccessTokenSource`]).
    pub fn access_tokens(mut self, cookie: impl Into<AccessTokenCookie>) -> Self {
        self.access_tokens = Some(cookie.into());
        self
    }

    /// Validates everything and builds the layer.
    pub fn build(self) -> Result<SessionLayer, ConfigError> {
        if self.same_site == SameSite::None && !self.cross_site_cookie {
            return Err(ConfigError::CrossSiteCookieNotAllowed);
        }
        let default_name = if self.dev { DEV_COOKIE_NAME } else { DEFAULT_COOKIE_NAME };
        let name = self.cookie_name.as_deref().unwrap_or(default_name);
        let cookie = CookieCodec::new(name, self.domain.as_deref(), &self.path, self.same_site, !self.dev)?;
        let mut backend = self.backend;
        let access = match self.access_tokens {
            None => None,
            Some(config) => {
                let clock: Arc<dyn Clock> = match (config.issuer, self.manager) {
                    (Some(issuer), Some(manager)) => {
                        backend = Arc::new(Issuing::new(manager.clone(), issuer));
                        Arc::new(ManagerClock(manager))
                    }
                    (None, None) => Arc::new(SystemClock),
                    _ => return Err(ConfigError::AccessTokenSource),
                };
                let default = if self.dev {
                    DEV_ACCESS_TOKEN_COOKIE_NAME
                } else {
                    DEFAULT_ACCESS_TOKEN_COOKIE_NAME
                };
                let at_name = config.name.as_deref().unwrap_or(default);
                if at_name == name {
                    return Err(ConfigError::AccessTokenCookieName(at_name.to_owned()));
                }
                let codec = CookieCodec::new(at_name, None, "/", self.same_site, !self.dev)?;
                Some(AccessTokens::new(codec, clock))
            }
        };
        let mut origins = Vec::with_capacity(self.origins.len());
        for origin in self.origins {
            let Some(authority) = origin_authority(&origin) else {
                return Err(ConfigError::Origin(origin));
            };
            if self.dev && !(origin.starts_with("http://") && is_loopback_authority(authority)) {
                return Err(ConfigError::DevModeNotLocal(origin));
            }
            origins.push(origin.to_ascii_lowercase());
        }
        let mut csrf_exempt = Exemptions::default();
        for pattern in self.csrf_exempt {
            if let Err(reason) = csrf_exempt.add(&pattern) {
                return Err(ConfigError::CsrfExempt { pattern, reason });
            }
        }
        let mut secrets = self.secrets;
        if secrets.is_empty() {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|_| ConfigError::Randomness)?;
            secrets.push(secret);
        }
        if self.dev {
            tracing::warn!(
                cookie = name,
                "sessiond-http DEVELOPMENT MODE: session cookie without Secure, plain HTTP on localhost only; \
                 never use this in production"
            );
        }
        let csrf = CsrfGuard::new(
            &secrets,
            origins,
            self.allow_same_site,
            self.allow_missing_origin,
            self.dev,
        );
        Ok(SessionLayer {
            shared: Arc::new(Shared {
                backend,
                access,
                cookie,
                csrf,
                max_form_bytes: self.max_form_bytes,
                csrf_exempt,
                anonymous: self.anonymous,
                dev: self.dev,
            }),
        })
    }
}

/// The `host[:port]` of `scheme://host[:port]`, if that is all there is.
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let ok = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then_some(rest)
}

/// Whether `host[:port]` names this machine.
pub(crate) fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        // `[::1]:3000` or `localhost:3000`, but not the bare `::1`.
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => authority,
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_authorities() {
        for yes in [
            "localhost",
            "localhost:3000",
            "127.0.0.1:80",
            "[::1]:8080",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_authority(yes), "{yes}");
        }
        for no in ["example.com", "localhost.example.com", "127.0.0.2", "10.0.0.1:3000", ""] {
            assert!(!is_loopback_authority(no), "{no}");
        }
    }

    #[test]
    fn origins_are_scheme_host_port() {
        assert_eq!(origin_authority("https://shop.example:8443"), Some("shop.example:8443"));
        assert_eq!(origin_authority("https://shop.example/"), None);
        assert_eq!(origin_authority("ftp://shop.example"), None);
    }
}
