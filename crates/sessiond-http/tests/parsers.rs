//! Property tests: hostile `Cookie` headers and CSRF tokens never panic the
//! parsers, never panic the layer, and never yield a session.

use http::StatusCode;
use proptest::prelude::*;
use sessiond_http::{CookieLookup, DEFAULT_COOKIE_NAME, find_cookie, find_form_token, parse_csrf_token};

use crate::support::*;

proptest! {
    #[test]
    fn arbitrary_cookie_headers_never_panic_the_parser(
        headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4),
    ) {
        let lookup = find_cookie(headers.iter().map(Vec::as_slice), DEFAULT_COOKIE_NAME);
        if let CookieLookup::Found(value) = lookup {
            // Whatever was found really is the value of a pair with our exact name.
            let needle = format!("{DEFAULT_COOKIE_NAME}=");
            prop_assert!(headers.iter().any(|h| h.windows(needle.len()).any(|w| w == needle.as_bytes())));
            prop_assert!(!value.starts_with(' '));
        }
    }

    #[test]
    fn cookie_like_headers_never_panic_the_parser(
        header in "([ \t]*(__Host-sessiond|%5F%5FHost-sessiond|a|)[ \t]*=?[ \t]*[a-zA-Z0-9_\"=%-]{0,50}[ \t]*;?){0,6}",
    ) {
        let lookup = find_cookie([header.as_bytes()], DEFAULT_COOKIE_NAME);
        let count = header
            .split(';')
            .filter(|pair| pair.split_once('=').is_some_and(|(n, _)| n.trim_matches([' ', '\t']) == DEFAULT_COOKIE_NAME))
            .count();
        match count {
            0 => prop_assert_eq!(lookup, CookieLookup::Absent),
            1 => prop_assert!(matches!(lookup, CookieLookup::Found(_))),
            _ => prop_assert_eq!(lookup, CookieLookup::Duplicate),
        }
    }

    #[test]
    fn arbitrary_tokens_and_forms_never_panic(input in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = parse_csrf_token(&input);
        let _ = find_form_token(&bytes);
        let _ = sessiond_core::Token::parse(&input);
    }
}

#[test]
fn arbitrary_cookie_headers_through_the_layer_are_no_session_never_a_failure() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let app = TestApp::new();
    proptest!(|(header in proptest::collection::vec(any::<u8>(), 0..200))| {
        // Only what hyper would let through as a header value.
        let Ok(value) = http::HeaderValue::from_bytes(&header) else { return Ok(()); };
        let status = runtime.block_on(async {
            let mut request = get_req("/me").build();
            request.headers_mut().insert(http::header::COOKIE, value);
            app.send(request).await.status
        });
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    });
}
