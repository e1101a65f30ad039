//! The device cookie of OWASP's "Slow Down Online Guessing Attacks with
//! Device Cookies": a browser that has signed in to an account gets a
//! signed cookie saying so, and its later attempts at that account are
//! throttled on their own allowance (see `throttle`), so an attacker's
//! failures from elsewhere cannot lock the account's owner out. (Not to be
//! confused with `device.rs`, which names a User-Agent for the account
//! page.)
//!
//! The value is `<name>|<nonce>|<mac>`, each part base64url without
//! padding: the account's exact name, 16 random bytes, and HMAC-SHA256
//! under the portal secret of a label, the name's length, the name and the
//! nonce. The label keeps a device MAC from ever passing for another MAC
//! made with the same secrets (the session CSRF tokens). The first secret
//! signs, every one verifies, so rotating the secrets does not make
//! every known browser a stranger at once.
//!
//! A new cookie (new nonce) is issued at every sign-in, so a cookie that
//! was locked out is replaced once its owner gets in. A cookie that does
//! not verify, names another account, or is malformed, oversized or
//! duplicated counts as none: the attempt is throttled like any stranger's.
//!
//! The name is matched exactly, not as the throttle folds it: anyone can
//! mint cookies for their own account at will by signing in, and cookies
//! of "alice" must not buy fresh guesses at "Alice".

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, header};
use sessiond_http::{CookieLookup, find_cookie};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::PortalError;
use super::throttle::DeviceNonce as Nonce;

/// Domain separation from every other MAC made with the portal secrets.
const LABEL: &[u8] = b"sessiond-device-v1\0";

/// How long a browser keeps the cookie: long enough that a person who
/// signs in a few times a year stays known.
const MAX_AGE_SECS: u64 = 180 * 24 * 60 * 60;

/// Longest value worth decoding: a name of `MAX_SUBJECT_LEN` bytes, the
/// nonce, the MAC and the separators, encoded.
const MAX_VALUE_LEN: usize = (sessiond_core::MAX_SUBJECT_LEN * 4).div_ceil(3) + 22 + 43 + 2;

/// Issues and checks device cookies.
#[derive(Clone)]
pub(super) struct DeviceCookies {
    name: &'static str,
    attributes: String,
    /// One per secret; the first signs, every one verifies.
    macs: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for DeviceCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCookies")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DeviceCookies {
    /// Signs with `secrets[0]` and verifies with all; `dev` drops `Secure`
    /// and the `__Host-` prefix, like the portal's other cookies.
    pub(super) fn new(secrets: &[[u8; 32]], dev: bool) -> Self {
        // A 32-byte key is always a valid HMAC key, so none is dropped. With
        // no secret at all (the portal always loads one) nothing verifies.
        let macs = secrets
            .iter()
            .filter_map(|secret| <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok())
            .collect();
        let (name, secure) = if dev {
            ("sessiond-device", "")
        } else {
            ("__Host-sessiond-device", " Secure;")
        };
        Self {
            name,
            attributes: format!("Path=/;{secure} HttpOnly; SameSite=Strict; Max-Age={MAX_AGE_SECS}"),
            macs,
        }
    }

    fn mac_of(mac: &Hmac<Sha256>, account: &str, nonce: &Nonce) -> [u8; 32] {
        let mut mac = mac.clone();
        mac.update(LABEL);
        // The length keeps name and nonce from sliding into each other.
        let len = u32::try_from(account.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(account.as_bytes());
        mac.update(nonce);
        mac.finalize().into_bytes().into()
    }

    /// The cookie's value for `account` and `nonce`, signed with the first
    /// secret.
    fn value(&self, account: &str, nonce: &Nonce) -> String {
        let mac = self
            .macs
            .first()
            .map(|signer| Self::mac_of(signer, account, nonce))
            .unwrap_or_default();
        format!(
            "{}|{}|{}",
            URL_SAFE_NO_PAD.encode(account),
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// A `Set-Cookie` with a new device cookie for `account` (its exact,
    /// stored name).
    pub(super) fn issue(&self, account: &str) -> Result<HeaderValue, PortalError> {
        let mut nonce = Nonce::default();
        getrandom::fill(&mut nonce).map_err(|error| {
            tracing::error!(%error, "no randomness for the device cookie");
            PortalError::Internal
        })?;
        let text = format!("{}={}; {}", self.name, self.value(account, &nonce), self.attributes);
        HeaderValue::from_str(&text).map_err(|error| {
            tracing::error!(%error, "the device cookie is no header value");
            PortalError::Internal
        })
    }

    /// The nonce of the request's device cookie if it is valid and was
    /// issued for exactly `account`.
    pub(super) fn presented(&self, headers: &HeaderMap, account: &str) -> Option<Nonce> {
        match find_cookie(
            headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
            self.name,
        ) {
            CookieLookup::Found(value) => self.verify(value, account),
            _ => None,
        }
    }

    /// The nonce of `value` if it is a device cookie for `account`.
    fn verify(&self, value: &str, account: &str) -> Option<Nonce> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let mut parts = value.split('|');
        let (Some(name), Some(nonce), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let name = URL_SAFE_NO_PAD.decode(name).ok()?;
        let mut nonce_bytes = Nonce::default();
        let mut mac_bytes = [0u8; 32];
        if URL_SAFE_NO_PAD.decode_slice(nonce, &mut nonce_bytes).ok()? != nonce_bytes.len()
            || URL_SAFE_NO_PAD.decode_slice(mac, &mut mac_bytes).ok()? != mac_bytes.len()
        {
            return None;
        }
        // Every secret is tried, so the time taken does not say which one
        // matched; the name is compared after, it is no secret.
        let signed = self.macs.iter().fold(false, |found, key| {
            found | bool::from(mac_bytes.ct_eq(&Self::mac_of(key, account, &nonce_bytes)))
        });
        (signed && name == account.as_bytes()).then_some(nonce_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [u8; 32] = [7; 32];
    const NEW: [u8; 32] = [9; 32];

    fn cookie_of(set_cookie: &HeaderValue) -> (String, String) {
        let text = set_cookie.to_str().unwrap();
        let pair = text.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        (name.to_owned(), value.to_owned())
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{name}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_cookie_vouches_for_its_own_account_only() {
        let cookies = DeviceCookies::new(&[NEW], false);
        let set = cookies.issue("alice").unwrap();
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-sessiond-device="), "{text}");
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=15552000"] {
            assert!(text.contains(attribute), "{attribute} missing in {text}");
        }
        let (name, value) = cookie_of(&set);
        let nonce = cookies.presented(&headers(&name, &value), "alice");
        assert!(nonce.is_some());
        // Each sign-in gets a new nonce.
        let (_, again) = cookie_of(&cookies.issue("alice").unwrap());
        assert_ne!(cookies.presented(&headers(&name, &again), "alice"), nonce);
        // Another account, even one the throttle folds together with it.
        for other in ["bob", "Alice", "alice ", ""] {
            assert_eq!(cookies.presented(&headers(&name, &value), other), None, "{other:?}");
        }
        // A look-alike name, a duplicate, no cookie.
        assert_eq!(cookies.presented(&headers("sessiond-device", &value), "alice"), None);
        let mut dup = HeaderMap::new();
        dup.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{name}={value}; {name}={value}")).unwrap(),
        );
        assert_eq!(cookies.presented(&dup, "alice"), None);
        assert_eq!(cookies.presented(&HeaderMap::new(), "alice"), None);

        let dev = DeviceCookies::new(&[NEW], true).issue("alice").unwrap();
        let dev = dev.to_str().unwrap();
        assert!(dev.starts_with("sessiond-device=") && !dev.contains("Secure"), "{dev}");
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let cookies = DeviceCookies::new(&[NEW], false);
        let value = cookies.value("alice", &[1; 16]);
        assert_eq!(cookies.verify(&value, "alice"), Some([1; 16]));
        let parts: Vec<&str> = value.split('|').collect();
        let swap = |i: usize, with: String| {
            let mut parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
            parts[i] = with;
            parts.join("|")
        };
        let forged = [
            // The name changed, the MAC kept.
            swap(0, URL_SAFE_NO_PAD.encode("bob")),
            // Another nonce under the old MAC.
            swap(1, URL_SAFE_NO_PAD.encode([2u8; 16])),
            // A MAC of zeros, a short one, a long one.
            swap(2, URL_SAFE_NO_PAD.encode([0u8; 32])),
            swap(2, URL_SAFE_NO_PAD.encode([0u8; 31])),
            swap(2, URL_SAFE_NO_PAD.encode([0u8; 33])),
            format!("{value}|"),
            parts[..2].join("|"),
            value.replace('|', "."),
            "x".repeat(MAX_VALUE_LEN + 1),
            String::new(),
        ];
        for bad in &forged {
            assert_eq!(cookies.verify(bad, "alice"), None, "{bad}");
            assert_eq!(cookies.verify(bad, "bob"), None, "{bad}");
        }
        // Signed for bob, presented with bob's name swapped for alice's.
        let bobs = cookies.value("bob", &[1; 16]);
        let relabelled = bobs.replacen(&URL_SAFE_NO_PAD.encode("bob"), &URL_SAFE_NO_PAD.encode("alice"), 1);
        assert_eq!(cookies.verify(&relabelled, "alice"), None);
        // The longest name still fits the size check.
        let longest = "é".repeat(sessiond_core::MAX_SUBJECT_LEN / 2);
        let value = cookies.value(&longest, &[1; 16]);
        assert_eq!(cookies.verify(&value, &longest), Some([1; 16]));
    }

    #[test]
    fn an_old_secret_verifies_and_an_unknown_one_does_not() {
        let before = DeviceCookies::new(&[OLD], false);
        let rotated = DeviceCookies::new(&[NEW, OLD], false);
        let stranger = DeviceCookies::new(&[NEW], false);
        let old_value = before.value("alice", &[3; 16]);
        assert_eq!(rotated.verify(&old_value, "alice"), Some([3; 16]));
        assert_eq!(stranger.verify(&old_value, "alice"), None);
        // The rotated portal signs with the new secret.
        let new_value = rotated.value("alice", &[3; 16]);
        assert_eq!(stranger.verify(&new_value, "alice"), Some([3; 16]));
        assert_eq!(before.verify(&new_value, "alice"), None);
    }

    /// The label keeps a device MAC apart from any other MAC of the same
    /// secret over the same bytes.
    #[test]
    fn the_mac_is_domain_separated() {
        let key = <Hmac<Sha256> as KeyInit>::new_from_slice(&NEW).unwrap();
        let mut plain = key.clone();
        plain.update(&5u32.to_be_bytes());
        plain.update(b"alice");
        plain.update(&[1; 16]);
        let plain: [u8; 32] = plain.finalize().into_bytes().into();
        assert_ne!(DeviceCookies::mac_of(&key, "alice", &[1; 16]), plain);
    }
}
