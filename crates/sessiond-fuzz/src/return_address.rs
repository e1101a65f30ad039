//! The portal's return address (`rd`) against a browser's URL parser.

use std::sync::OnceLock;

use sessiond_portal::RedirectPolicy;
use url::Url;

/// The portal's own origin in these checks.
const OWN_ORIGIN: &str = "https://portal.example";
/// The one foreign origin allowed.
const ALLOWED: &str = "https://app.example";
/// The page `rd` is resolved against, as the browser would after login.
const LOGIN_PAGE: &str = "https://portal.example/login";

fn policy() -> &'static RedirectPolicy {
    static POLICY: OnceLock<RedirectPolicy> = OnceLock::new();
    POLICY.get_or_init(|| RedirectPolicy::new(&[ALLOWED.to_owned()]).unwrap_or_default())
}

/// Checks `data` as an `rd` value: if the portal accepts it, a browser on
/// the login page must land on the portal's origin or the allowed one, with
/// no credentials in the URL. Panics (a finding) otherwise.
pub fn return_address(data: &[u8]) {
    // `rd` arrives percent-decoded from a query string: any UTF-8 text.
    let Ok(rd) = std::str::from_utf8(data) else {
        return;
    };
    let Some(accepted) = policy().check(rd, OWN_ORIGIN) else {
        return;
    };
    assert_eq!(accepted, rd, "the check hands back the address it was given");
    let Ok(base) = Url::parse(LOGIN_PAGE) else {
        return;
    };
    let resolved = match base.join(rd) {
        Ok(resolved) => resolved,
        Err(error) => panic!("accepted {rd:?}, which a browser cannot follow: {error}"),
    };
    let origin = resolved.origin().ascii_serialization();
    assert!(
        origin == OWN_ORIGIN || origin == ALLOWED,
        "accepted {rd:?}, which a browser resolves to {resolved} (origin {origin})"
    );
    assert!(
        resolved.username().is_empty() && resolved.password().is_none(),
        "accepted {rd:?}, which carries credentials: {resolved}"
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Addresses that trick naive checks; each must either be refused or
    /// land on an allowed origin.
    const SEEDS: &[&str] = &[
        "/account",
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "https://evil.example",
        "https://app.example/x",
        "https://APP.example",
        "https://app.example@evil.example",
        "https://evil.example@app.example",
        "https://app.example.evil.example",
        "https:evil.example",
        "https:/evil.example",
        "http://portal.example",
        "javascript:alert(1)",
        "data:text/html,x",
        "/..//evil.example",
        "/%2F/evil.example",
        "https://portal.example:443/",
        "https://[::1]/",
        "https://app.example#@evil.example",
        "https://app.example?@evil.example",
        "\u{3000}//evil.example",
        "/\u{ff0f}evil.example",
        "https://app。example",
    ];

    #[test]
    fn the_seeds_hold() {
        for seed in SEEDS {
            return_address(seed.as_bytes());
        }
        assert!(policy().check("/account", OWN_ORIGIN).is_some());
        assert!(policy().check("https://app.example/x", OWN_ORIGIN).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn built_from_url_syntax(
            prefix in prop::sample::select(vec![
                "", "/", "//", "https:", "https://", "http://", "https://app.example", "https://portal.example",
                "HTTPS://", "/\\", "https://app.example@",
            ]),
            rest in "[/\\\\:@.?#%a-zA-Z0-9\\[\\] \t]{0,24}",
        ) {
            return_address(format!("{prefix}{rest}").as_bytes());
        }

        #[test]
        fn any_text(text in "\\PC{0,40}") {
            return_address(text.as_bytes());
        }
    }
}
