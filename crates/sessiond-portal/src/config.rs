//! `[portal]`: what the portal reads from the configuration file, checked
//! once into [`PortalSettings`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessiond_core::{Tenant, humane};

use crate::redirect::RedirectPolicy;

/// `[portal]`: the login portal, account page and forward auth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Serve `/login`, `/account`, `/logout` and `/auth/verify`.
    pub enabled: bool,
    /// The tenant whose users and sessions the portal uses.
    pub tenant: String,
    /// Origins besides the portal's own that a login may return to (`rd`).
    pub redirect_allowlist: Vec<String>,
    /// How recent a login must be to end sessions without re-entering the password.
    #[serde(with = "humane")]
    pub reauth_window: Duration,
    /// Proxies whose `X-Forwarded-For` is believed for the client's IP.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A portal secret file of an earlier version, imported into the store
    /// (which now keeps the portal's CSRF secrets) if the store has none,
    /// then renamed to `<name>.imported`. Defaults to
    /// `<data_dir>/portal-secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// How long forward auth and the account pages trust a lookup of
    /// "this user exists and is enabled" (per tenant and user): a disabled
    /// user is locked out within this time on every node. At most
    /// [`MAX_USER_CACHE_TTL`]; `0s` looks the user up on every request.
    #[serde(with = "humane")]
    pub user_cache_ttl: Duration,
}

/// The longest `portal.user_cache_ttl` accepted: a disabled user must be
/// locked out within seconds, not minutes.
pub const MAX_USER_CACHE_TTL: Duration = Duration::from_secs(30);

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tenant: "default".to_owned(),
            redirect_allowlist: Vec::new(),
            reauth_window: Duration::from_secs(5 * 60),
            trusted_proxies: Vec::new(),
            secret_file: None,
            user_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// A `[portal]` setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("portal.{key}: {message}")]
pub struct PortalConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// What the portal runs with: `[portal]` checked, plus the server's mode.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// The tenant of the portal's users and sessions.
    pub tenant: Tenant,
    /// Where logins may return to.
    pub redirects: RedirectPolicy,
    /// How recent a login must be to end sessions without the password.
    pub reauth_window: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Plain-HTTP localhost development mode.
    pub dev: bool,
    /// The secret file to import (`None`: `<data_dir>/portal-secret`).
    pub secret_file: Option<PathBuf>,
    /// How long a user lookup is trusted (`portal.user_cache_ttl`).
    pub user_cache_ttl: Duration,
    /// Answer every page but forward auth with `403 https_required`: set
    /// by a server that speaks plain HTTP with no TLS in front of it (see
    /// `https_only.rs`). `false` from [`PortalConfig::settings`].
    pub refuse_plain_http: bool,
    /// Hears of every failed sign-in (wrong credentials, or refused by the
    /// throttle): the server's burst detection. `None` from
    /// [`PortalConfig::settings`].
    pub failed_logins: Option<std::sync::Arc<dyn crate::FailedLogins>>,
}

impl PortalConfig {
    /// Checks the settings (the one place they are checked) and combines
    /// them with the server's development mode.
    pub fn settings(&self, dev: bool) -> Result<PortalSettings, PortalConfigError> {
        let invalid = |key: &'static str, message: String| PortalConfigError { key, message };
        if self.reauth_window.is_zero() {
            return Err(invalid("reauth_window", "must be greater than zero".to_owned()));
        }
        if self.user_cache_ttl > MAX_USER_CACHE_TTL {
            return Err(invalid(
                "user_cache_ttl",
                format!("must be at most {}s", MAX_USER_CACHE_TTL.as_secs()),
            ));
        }
        Ok(PortalSettings {
            tenant: Tenant::new(&self.tenant).map_err(|e| invalid("tenant", e.to_string()))?,
            redirects: RedirectPolicy::new(&self.redirect_allowlist)
                .map_err(|e| invalid("redirect_allowlist", e.to_string()))?,
            reauth_window: self.reauth_window,
            trusted_proxies: self.trusted_proxies.clone(),
            dev,
            secret_file: self.secret_file.clone(),
            user_cache_ttl: self.user_cache_ttl,
            refuse_plain_http: false,
            failed_logins: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_setting_is_named() {
        let bad = [
            (
                PortalConfig {
                    tenant: String::new(),
                    ..PortalConfig::default()
                },
                "tenant",
            ),
            (
                PortalConfig {
                    redirect_allowlist: vec!["not a url".to_owned()],
                    ..PortalConfig::default()
                },
                "redirect_allowlist",
            ),
            (
                PortalConfig {
                    reauth_window: Duration::ZERO,
                    ..PortalConfig::default()
                },
                "reauth_window",
            ),
            (
                PortalConfig {
                    user_cache_ttl: Duration::from_secs(31),
                    ..PortalConfig::default()
                },
                "user_cache_ttl",
            ),
        ];
        for (config, key) in bad {
            assert_eq!(config.settings(false).err().map(|e| e.key), Some(key));
        }
        assert!(PortalConfig::default().settings(true).is_ok_and(|s| s.dev));
    }
}
