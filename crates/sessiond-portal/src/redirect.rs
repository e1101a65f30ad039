//! Where a login may send the browser afterwards (`rd`): a path on the
//! portal's own origin, or a URL on an origin the operator allowed. Anything
//! else falls back to the account page, so `/login?rd=https://evil.example`
//! can never be used as an open redirect.

use http::Uri;

/// Longest `rd` considered.
pub const MAX_RETURN_URL_LEN: usize = 2048;

/// The origins a login may return to.
#[derive(Debug, Clone, Default)]
pub struct RedirectPolicy {
    /// Lower-case `scheme://host[:port]` of allowed foreign origins.
    allowed: Vec<String>,
}

/// An allow-list entry that is not a plain origin.
#[derive(Debug, thiserror::Error)]
#[error("redirect_allowlist entry {0:?} is not an origin such as https://app.example.com")]
pub struct BadOrigin(pub String);

impl RedirectPolicy {
    /// Allows `origins` (each `http[s]://host[:port]`, nothing after it).
    pub fn new(origins: &[String]) -> Result<Self, BadOrigin> {
        let allowed = origins
            .iter()
            .map(|o| match origin_of(o) {
                Some((origin, rest)) if rest.is_empty() || rest == "/" => Ok(origin),
                _ => Err(BadOrigin(o.clone())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// The allowed foreign origins (for the CSP `form-action`).
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed
    }

    /// `rd` if it is safe to redirect to from a page on `own_origin`.
    pub fn check<'a>(&self, rd: &'a str, own_origin: &str) -> Option<&'a str> {
        if rd.is_empty()
            || rd.len() > MAX_RETURN_URL_LEN
            || rd.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return None;
        }
        if rd.starts_with('/') {
            // "//host" and "/\host" are other hosts to a browser.
            return (!rd.starts_with("//")).then_some(rd);
        }
        let (origin, _) = origin_of(rd)?;
        (origin.eq_ignore_ascii_case(own_origin) || self.allowed.contains(&origin)).then_some(rd)
    }
}

/// The lower-case origin of an absolute http(s) URL, and the rest of it.
/// `None` for other schemes or a URL with credentials in it.
fn origin_of(url: &str) -> Option<(String, &str)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
    let after = url.get(scheme.len() + 3 + authority.as_str().len()..).unwrap_or("");
    Some((origin, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://portal.example";

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new(&["https://App.Example:8443".to_owned()]).unwrap()
    }

    #[test]
    fn own_paths_and_allowed_origins_pass() {
        let p = policy();
        for ok in [
            "/account",
            "/app/x?y=1&z=2#f",
            "https://portal.example/app",
            "HTTPS://PORTAL.EXAMPLE/app",
            "https://app.example:8443/",
            "https://app.example:8443/deep/path?q",
        ] {
            assert_eq!(p.check(ok, OWN), Some(ok), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let p = policy();
        for bad in [
            "",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "https://portal.example.evil.example/",
            "https://portal.example@evil.example/",
            "https://app.example/",   // allowed host, wrong port
            "http://portal.example/", // wrong scheme
            "javascript:alert(1)",
            "data:text/html,hi",
            "evil.example",
            "/ok\r\nSet-Cookie: x=y",
            " /account",
        ] {
            assert_eq!(p.check(bad, OWN), None, "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_RETURN_URL_LEN));
        assert_eq!(p.check(&long, OWN), None);
    }

    #[test]
    fn the_allow_list_takes_origins_only() {
        assert!(RedirectPolicy::new(&["https://a.example".into(), "http://b.example:81/".into()]).is_ok());
        for bad in [
            "a.example",
            "https://a.example/path",
            "ftp://a.example",
            "https://u@a.example",
        ] {
            assert!(RedirectPolicy::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
