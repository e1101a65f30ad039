//! libFuzzer entry point: see `sessiond_fuzz::return_address`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessiond_fuzz::return_address(data));
