//! The login form's CSRF defence, before any session exists ("login CSRF":
//! a forged login would sign the victim into the attacker's account).
//!
//! Two parts, both required: the session layer's origin check (Fetch
//! Metadata, then `Origin`) runs on every POST, and the form carries a
//! random value that must equal a cookie set with the form (double submit).
//! The cookie is `__Host-` prefixed, `HttpOnly` and `SameSite=Strict`, so
//! another site can neither read it, plant it from a sibling subdomain, nor
//! have the browser send it with a cross-site POST. It needs no server
//! state, so it works unchanged across the nodes of a cluster.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use sessiond_http::{CookieLookup, find_cookie};
use subtle::ConstantTimeEq;

use super::PortalError;

/// Length of the encoded value (32 random bytes).
const VALUE_LEN: usize = 43;

/// Issues and checks the login form's double-submit cookie.
#[derive(Debug)]
pub(super) struct LoginCsrf {
    name: &'static str,
    attributes: &'static str,
}

impl LoginCsrf {
    pub(super) fn new(dev: bool) -> Self {
        if dev {
            Self {
                name: "sessiond-login",
                attributes: "Path=/; HttpOnly; SameSite=Strict; Max-Age=3600",
            }
        } else {
            Self {
                name: "__Host-sessiond-login",
                attributes: "Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600",
            }
        }
    }

    /// The value the request's cookie holds, if it is well-formed.
    pub(super) fn presented<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        match find_cookie(
            headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
            self.name,
        ) {
            CookieLookup::Found(value) if is_value(value) => Some(value),
            _ => None,
        }
    }

    /// The value to put in the form: the cookie's if it has a good one (so
    /// two open tabs both work), else a new one with the `Set-Cookie` for it.
    pub(super) fn for_form(&self, headers: &HeaderMap) -> Result<(String, Option<HeaderValue>), PortalError> {
        if let Some(value) = self.presented(headers) {
            return Ok((value.to_owned(), None));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| {
            tracing::error!(%error, "no randomness for the login form token");
            PortalError::Internal
        })?;
        let value = URL_SAFE_NO_PAD.encode(bytes);
        let cookie = HeaderValue::from_str(&format!("{}={value}; {}", self.name, self.attributes))
            .map_err(|_| PortalError::Internal)?;
        Ok((value, Some(cookie)))
    }

    /// True when the form's value equals the cookie's (constant time).
    pub(super) fn verify(&self, headers: &HeaderMap, form_value: Option<&str>) -> bool {
        match (self.presented(headers), form_value) {
            (Some(cookie), Some(form)) if is_value(form) => bool::from(cookie.as_bytes().ct_eq(form.as_bytes())),
            _ => false,
        }
    }

    /// Deletes the cookie once the login succeeded.
    pub(super) fn deletion(&self) -> HeaderValue {
        let text = format!(
            "{}=; {}",
            self.name,
            self.attributes.replace("Max-Age=3600", "Max-Age=0")
        );
        // Built only from the fixed names and attributes above, which are
        // valid header text.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("sessiond-login=; Max-Age=0"))
    }
}

fn is_value(value: &str) -> bool {
    value.len() == VALUE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn the_form_value_must_equal_the_cookie() {
        let csrf = LoginCsrf::new(false);
        let (value, set) = csrf.for_form(&HeaderMap::new()).unwrap();
        let set = set.unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-sessiond-login="), "{set}");
        assert!(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let with_cookie = headers(&format!("__Host-sessiond-login={value}"));
        assert!(csrf.verify(&with_cookie, Some(&value)));
        // The same cookie is reused for a second form.
        let (again, none) = csrf.for_form(&with_cookie).unwrap();
        assert_eq!((again.as_str(), none), (value.as_str(), None));

        let other = "A".repeat(VALUE_LEN);
        assert!(!csrf.verify(&with_cookie, Some(&other)));
        assert!(!csrf.verify(&with_cookie, None));
        assert!(!csrf.verify(&HeaderMap::new(), Some(&value)));
        // A look-alike cookie name or a duplicate is no cookie.
        assert!(!csrf.verify(&headers(&format!("sessiond-login={value}")), Some(&value)));
        let dup = headers(&format!("__Host-sessiond-login={value}; __Host-sessiond-login={value}"));
        assert!(!csrf.verify(&dup, Some(&value)));
        // Malformed values never match, even each other.
        assert!(!csrf.verify(&headers("__Host-sessiond-login=x"), Some("x")));
    }
}
