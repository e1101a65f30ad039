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

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use sessiond_http::{CookieLookup, find_cookie};
use subtle::ConstantTimeEq;

use super::{PortalError, PortalSetupError};

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

/// Most secrets the file may hold: a rotation needs two; a few more leave
/// room for a slow one.
pub(super) const MAX_SECRETS: usize = 8;

/// The secrets of the session CSRF tokens, kept in `path` (mode 0600) so
/// tokens in open forms stay valid across restarts: 32 bytes each, one to
/// [`MAX_SECRETS`] of them. The first signs new tokens, every one verifies,
/// so a secret is rotated by putting a new one in front and dropping the old
/// one later. Created (one secret) on first use; a file of the wrong size is
/// an error, never silently replaced.
pub(super) fn load_or_create_secrets(path: &Path) -> Result<Vec<[u8; 32]>, PortalSetupError> {
    let fail = |source: std::io::Error| PortalSetupError::Secret {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            refuse_if_exposed(path).map_err(fail)?;
            return parse_secrets(&bytes).map_err(fail);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&secret).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            Ok(vec![secret])
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_secrets(path),
        Err(e) => Err(fail(e)),
    }
}

/// The secrets in a file's bytes, each checked.
fn parse_secrets(bytes: &[u8]) -> std::io::Result<Vec<[u8; 32]>> {
    let count = bytes.len() / 32;
    if !bytes.len().is_multiple_of(32) || !(1..=MAX_SECRETS).contains(&count) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "expected 1 to {MAX_SECRETS} secrets of exactly 32 bytes each, found {} bytes; delete the file \
                 to make a new secret (open forms will need reloading)",
                bytes.len()
            ),
        ));
    }
    let mut secrets = Vec::with_capacity(count);
    for chunk in bytes.chunks_exact(32) {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(chunk);
        refuse_if_predictable(&secret)?;
        secrets.push(secret);
    }
    Ok(secrets)
}

/// Fewest distinct byte values 32 random bytes may show: a random secret has
/// about 30, and fewer than 16 happens once in about 3 * 10^16 draws, while
/// a file of zeros, one repeated byte or a short pattern has a handful.
const MIN_DISTINCT_BYTES: usize = 16;

/// A secret that is plainly not random (all zeros, a repeated pattern) is
/// refused rather than trusted to sign anything.
fn refuse_if_predictable(secret: &[u8; 32]) -> std::io::Result<()> {
    let distinct = secret.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "only {distinct} distinct byte values: not random; delete the file to make a new secret (open forms will need reloading)"
            ),
        ));
    }
    Ok(())
}

/// A secret others can read (or anyone but its owner can change) is not a
/// secret: refused, with what to do about it.
fn refuse_if_exposed(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o026 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "readable by others or writable by group or others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
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

    #[test]
    fn the_secret_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        let first = load_or_create_secrets(&path).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(load_or_create_secrets(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        let error = load_or_create_secrets(&path).unwrap_err().to_string();
        assert!(error.contains("portal-secret"), "{error}");
    }

    #[test]
    fn a_secret_that_is_not_random_is_refused() {
        use std::error::Error as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        let pattern: Vec<u8> = (0..32u8).map(|i| i % 8).collect();
        for weak in [vec![0u8; 32], vec![0xAB; 32], pattern] {
            std::fs::write(&path, &weak).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let error = load_or_create_secrets(&path).unwrap_err();
            let cause = error.source().map(ToString::to_string).unwrap_or_default();
            assert!(cause.contains("not random"), "{cause}");
        }
        // One weak secret among good ones spoils the file.
        let good = load_or_create_secrets(&dir.path().join("good")).unwrap()[0];
        std::fs::write(&path, [good, [0u8; 32]].concat()).unwrap();
        let error = load_or_create_secrets(&path).unwrap_err();
        assert!(
            error
                .source()
                .map(ToString::to_string)
                .unwrap_or_default()
                .contains("not random")
        );
        std::fs::remove_file(&path).unwrap();
        // Fresh secrets pass (each a new draw).
        for _ in 0..100 {
            load_or_create_secrets(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn a_file_may_hold_several_secrets_for_rotation() {
        use std::error::Error as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let draw = |name: &str| load_or_create_secrets(&dir.path().join(name)).unwrap()[0];
        let (new, old) = (draw("a"), draw("b"));
        let path = dir.path().join("portal-secret");
        std::fs::write(&path, [new, old].concat()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create_secrets(&path).unwrap(), vec![new, old]);
        for bad in [
            [new, old].concat()[..40].to_vec(),
            Vec::new(),
            vec![new; MAX_SECRETS + 1].concat(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let error = load_or_create_secrets(&path).unwrap_err();
            let cause = error.source().map(ToString::to_string).unwrap_or_default();
            assert!(cause.contains("32 bytes each"), "{} bytes: {cause}", bad.len());
        }
    }

    #[test]
    fn a_secret_others_can_read_or_change_is_refused() {
        use std::error::Error as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-secret");
        load_or_create_secrets(&path).unwrap();
        for mode in [0o644, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = load_or_create_secrets(&path).unwrap_err();
            let cause = error.source().map(ToString::to_string).unwrap_or_default();
            assert!(cause.contains("chmod 600"), "{mode:o}: {cause}");
        }
        for mode in [0o600, 0o640, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(load_or_create_secrets(&path).is_ok(), "{mode:o}");
        }
    }
}
