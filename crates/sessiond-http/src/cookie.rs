//! The session cookie: its attributes, strict parsing of `Cookie` headers,
//! and the `Set-Cookie` values that create and delete it.
//!
//! Parsing never guesses. Two cookies with the session cookie's name (in one
//! header or across several) mean "no session": a sibling subdomain or a
//! network attacker can plant a second cookie, and "pick the first" would
//! let them choose which one the server uses. Names are compared byte for
//! byte without percent-decoding, so `%5F%5FHost-sessiond` is a different
//! cookie. Oversized headers are not parsed at all.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use sessiond_core::Token;

/// The default cookie name: `__Host-` makes browsers refuse it unless it is
/// `Secure`, `Path=/` and has no `Domain`, so no subdomain can overwrite it.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-sessiond";

/// The cookie name in development mode (plain HTTP cannot carry `__Host-`).
pub const DEV_COOKIE_NAME: &str = "sessiond";

/// Total bytes of `Cookie` headers the parser looks at; above it the request
/// has no session. Browsers cap one cookie at 4 KiB; 16 KiB leaves room for
/// the app's other cookies while bounding the work hostile input costs.
pub const MAX_COOKIE_HEADER_BYTES: usize = 16 * 1024;

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level cross-site navigations (GET links): the default.
    #[default]
    Lax,
    /// Sent everywhere; requires `Secure`.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// What the request's `Cookie` headers say about the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieLookup<'a> {
    /// No cookie with the session cookie's name.
    Absent,
    /// Exactly one, with this value (not yet checked to be a token).
    Found(&'a str),
    /// More than one: no session, whatever the values.
    Duplicate,
    /// The headers exceed [`MAX_COOKIE_HEADER_BYTES`]: not parsed.
    TooLarge,
    /// The session cookie's value is not UTF-8, so it cannot be a token.
    Malformed,
}

/// Finds the cookie called `name` in raw `Cookie` header values.
///
/// Bounded and panic-free on any input: this is what the fuzz target and
/// the property test drive.
pub fn find_cookie<'a, I>(header_values: I, name: &str) -> CookieLookup<'a>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    // No collecting into a Vec first: this runs on every request. The size
    // limit is checked before each header is looked at, so a request over
    // it is TooLarge whatever came earlier.
    let mut total = 0usize;
    let mut found: Option<&'a [u8]> = None;
    let mut duplicate = false;
    for value in header_values {
        total = total.saturating_add(value.len());
        if total > MAX_COOKIE_HEADER_BYTES {
            return CookieLookup::TooLarge;
        }
        for pair in value.split(|&b| b == b';') {
            let pair = trim_ows(pair);
            let (pair_name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..])),
                // A nameless or valueless fragment is not our cookie.
                None => continue,
            };
            if pair_name != name.as_bytes() {
                continue;
            }
            duplicate |= found.is_some();
            found = Some(value);
        }
    }
    if duplicate {
        return CookieLookup::Duplicate;
    }
    match found {
        None => CookieLookup::Absent,
        Some(value) => match std::str::from_utf8(value) {
            Ok(value) => CookieLookup::Found(value),
            Err(_) => CookieLookup::Malformed,
        },
    }
}

/// Spaces and tabs around a cookie pair or its parts (RFC 6265 `OWS`).
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Why a cookie configuration was refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieConfigError {
    /// The name is empty or has characters a cookie name cannot have.
    #[error("invalid cookie name {0:?}")]
    InvalidName(String),
    /// `__Host-` cookies must not have a `Domain`.
    #[error("a __Host- cookie cannot have a Domain attribute")]
    HostPrefixWithDomain,
    /// `__Host-` cookies must have `Path=/`.
    #[error("a __Host- cookie must have Path=/")]
    HostPrefixWithPath,
    /// `__Host-` and `__Secure-` cookies must be `Secure`.
    #[error("a __Host- or __Secure- cookie must be Secure (not available in development mode)")]
    PrefixWithoutSecure,
    /// Browsers drop `SameSite=None` cookies without `Secure`.
    #[error("SameSite=None requires Secure (not available in development mode)")]
    SameSiteNoneWithoutSecure,
    /// A `Domain` or `Path` that would break the header.
    #[error("invalid cookie attribute {0:?}")]
    InvalidAttribute(String),
}

/// The session cookie's settings, validated once at startup.
#[derive(Debug, Clone)]
pub(crate) struct CookieCodec {
    name: String,
    /// Everything after `name=value`, precomputed: `; Path=/; Secure; …`.
    attributes: String,
    deletion: HeaderValue,
}

impl CookieCodec {
    pub(crate) fn new(
        name: &str,
        domain: Option<&str>,
        path: &str,
        same_site: SameSite,
        secure: bool,
    ) -> Result<Self, CookieConfigError> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(CookieConfigError::InvalidName(name.to_owned()));
        }
        let host_prefix = name.starts_with("__Host-");
        if (host_prefix || name.starts_with("__Secure-")) && !secure {
            return Err(CookieConfigError::PrefixWithoutSecure);
        }
        if host_prefix && domain.is_some() {
            return Err(CookieConfigError::HostPrefixWithDomain);
        }
        if host_prefix && path != "/" {
            return Err(CookieConfigError::HostPrefixWithPath);
        }
        if same_site == SameSite::None && !secure {
            return Err(CookieConfigError::SameSiteNoneWithoutSecure);
        }
        let safe = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
        if !path.starts_with('/') || !safe(path) {
            return Err(CookieConfigError::InvalidAttribute(path.to_owned()));
        }
        let mut attributes = format!("; Path={path}");
        if let Some(domain) = domain {
            if !safe(domain) {
                return Err(CookieConfigError::InvalidAttribute(domain.to_owned()));
            }
            attributes.push_str("; Domain=");
            attributes.push_str(domain);
        }
        if secure {
            attributes.push_str("; Secure");
        }
        attributes.push_str("; HttpOnly; SameSite=");
        attributes.push_str(same_site.as_str());
        // The deletion cookie must carry the same name, Path, Domain and
        // prefix-relevant attributes, or the browser keeps the original.
        let deletion = format!("{name}={attributes}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        let deletion =
            HeaderValue::from_str(&deletion).map_err(|_| CookieConfigError::InvalidAttribute(deletion.clone()))?;
        Ok(Self {
            name: name.to_owned(),
            attributes,
            deletion,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The session cookie of `headers`, strictly.
    pub(crate) fn lookup<'a>(&self, headers: &'a HeaderMap) -> CookieLookup<'a> {
        find_cookie(
            headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
            &self.name,
        )
    }

    /// `Set-Cookie` for a new token. `max_age` makes it persistent
    /// (remember-me); `None` is a browser-session cookie.
    pub(crate) fn set_cookie(&self, token: &Token, max_age: Option<Duration>) -> Option<HeaderValue> {
        self.set_secret(token.expose_secret(), max_age)
    }

    /// `Set-Cookie` for any secret value (a session token, an access
    /// token), marked sensitive so it stays out of logs and HPACK tables.
    /// `None` if the value cannot be a header.
    pub(crate) fn set_secret(&self, secret: &str, max_age: Option<Duration>) -> Option<HeaderValue> {
        let mut value = format!("{}={}{}", self.name, secret, self.attributes);
        if let Some(max_age) = max_age {
            value.push_str(&format!("; Max-Age={}", max_age.as_secs()));
        }
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub(crate) fn deletion(&self) -> HeaderValue {
        self.deletion.clone()
    }
}

/// RFC 6265 cookie-name characters (an RFC 7230 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(header: &str) -> CookieLookup<'_> {
        find_cookie([header.as_bytes()], DEFAULT_COOKIE_NAME)
    }

    #[test]
    fn finds_exactly_one_cookie_among_others() {
        assert_eq!(lookup("a=1; __Host-sessiond=v ;b=2"), CookieLookup::Found("v"));
        assert_eq!(lookup("a=1"), CookieLookup::Absent);
        assert_eq!(lookup(""), CookieLookup::Absent);
    }

    #[test]
    fn duplicates_and_look_alikes_are_not_the_session_cookie() {
        assert_eq!(lookup("__Host-sessiond=a; __Host-sessiond=a"), CookieLookup::Duplicate);
        assert_eq!(lookup("%5F%5FHost-sessiond=a"), CookieLookup::Absent);
        assert_eq!(lookup("__host-sessiond=a"), CookieLookup::Absent);
        let split = find_cookie(
            [&b"__Host-sessiond=a"[..], &b"__Host-sessiond=b"[..]],
            DEFAULT_COOKIE_NAME,
        );
        assert_eq!(split, CookieLookup::Duplicate);
    }

    #[test]
    fn prefix_rules_are_enforced() {
        let c = |name, domain, path, ss, secure| CookieCodec::new(name, domain, path, ss, secure).err();
        assert_eq!(
            c("__Host-x", Some("example.com"), "/", SameSite::Lax, true),
            Some(CookieConfigError::HostPrefixWithDomain)
        );
        assert_eq!(
            c("__Host-x", None, "/a", SameSite::Lax, true),
            Some(CookieConfigError::HostPrefixWithPath)
        );
        assert_eq!(
            c("__Host-x", None, "/", SameSite::Lax, false),
            Some(CookieConfigError::PrefixWithoutSecure)
        );
        assert_eq!(
            c("x", None, "/", SameSite::None, false),
            Some(CookieConfigError::SameSiteNoneWithoutSecure)
        );
        assert_eq!(
            c("a b", None, "/", SameSite::Lax, true),
            Some(CookieConfigError::InvalidName("a b".into()))
        );
        assert_eq!(
            c("x", Some("a;b"), "/", SameSite::Lax, true),
            Some(CookieConfigError::InvalidAttribute("a;b".into()))
        );
    }

    #[test]
    fn deletion_matches_the_attributes() {
        let codec = CookieCodec::new(DEFAULT_COOKIE_NAME, None, "/", SameSite::Lax, true).unwrap();
        assert_eq!(
            codec.deletion().to_str().unwrap(),
            "__Host-sessiond=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
