//! `Cookie` header parsing: any bytes, split into up to four headers.
//! Must never panic, and whatever is found must be one well-delimited value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_http::{CookieLookup, DEFAULT_COOKIE_NAME, find_cookie};

fuzz_target!(|data: &[u8]| {
    // A 0xFF byte separates headers, as if sent as several `Cookie` lines.
    let headers: Vec<&[u8]> = data.split(|&b| b == 0xFF).take(4).collect();
    if let CookieLookup::Found(value) = find_cookie(headers.iter().copied(), DEFAULT_COOKIE_NAME) {
        assert!(!value.contains(';'));
        assert!(!value.starts_with([' ', '\t']) && !value.ends_with([' ', '\t']));
    }
});
