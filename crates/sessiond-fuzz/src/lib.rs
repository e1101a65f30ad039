//! Fuzz targets for the parsers at sessiond's edge, each checked against an
//! independent oracle rather than only for panics:
//!
//! - [`return_address`]: the portal's `rd` check. Whatever it accepts, a
//!   browser (the WHATWG URL parser of the `url` crate) must resolve to the
//!   portal's own origin or an allow-listed one.
//! - [`origin_host`]: the session layer's cross-site check of unsafe
//!   requests. It must pass exactly the requests whose `Sec-Fetch-Site` is
//!   `same-origin` or `none`, or, without that header, whose `Origin` is
//!   `https://` and the `Host` they were sent to.
//!
//! The same functions run as property tests in the normal test suite; the
//! libFuzzer entry points (`fuzz_targets/`, feature `libfuzzer`) run them
//! under coverage guidance with `scripts/fuzz`.
//!
//! ```
//! sessiond_fuzz::return_address(b"/account");
//! sessiond_fuzz::origin_host(b"\x00https://shop.example\xffshop.example");
//! ```

mod origin_host;
mod return_address;

pub use origin_host::origin_host;
pub use return_address::return_address;
