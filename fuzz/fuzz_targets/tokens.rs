//! Session-token, CSRF-token and form-field parsing: any bytes. Must never
//! panic; anything accepted must round-trip to its one canonical spelling.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::Token;
use sessiond_http::{CSRF_TOKEN_LEN, find_form_token, parse_csrf_token};

fuzz_target!(|data: &[u8]| {
    let _ = find_form_token(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = Token::parse(text) {
        assert_eq!(token.expose_secret(), text);
    }
    if parse_csrf_token(text).is_some() {
        assert_eq!(text.len(), CSRF_TOKEN_LEN);
    }
});
