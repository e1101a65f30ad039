//! libFuzzer entry point: see `sessiond_fuzz::origin_host`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessiond_fuzz::origin_host(data));
