//! The portal's pages over plain HTTP with no TLS in front: refused.
//!
//! Outside `--dev` the portal's cookies are `Secure` and `__Host-`, so a
//! browser talking plain HTTP to it can never sign in: it would type a
//! password over an unencrypted connection for nothing. When sessiond serves
//! plain HTTP and was not told that a proxy in front terminates TLS
//! (`server.behind_proxy`), every page answers `403 https_required`, saying
//! what to configure, before a password or a cookie is sent.
//!
//! `/auth/verify` is left alone: the proxy calls it server to server (over
//! loopback or a private network) with the cookie the browser sent it over
//! HTTPS; it sets nothing and reads no password. Refusing it would break
//! every forward-auth set-up whose proxy reaches sessiond over plain HTTP,
//! and protect nothing: without a login page no portal cookie exists to
//! check.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessiond_wire::{ErrorCode, PROBLEM_CONTENT_TYPE, Problem};

/// The one portal route served over plain HTTP whatever the settings.
pub(crate) const FORWARD_AUTH_PATH: &str = "/auth/verify";

/// What the refusal says (its problem `title`): the two ways out.
pub const TITLE: &str = "the login portal is served only over HTTPS: configure [server.tls], or set \
                                server.behind_proxy = true when a proxy in front of sessiond terminates TLS";

/// The answer to every request but forward auth's when the server refuses
/// plain HTTP (see `edge.rs`): `403 https_required`.
pub(crate) fn refusal() -> Response {
    let code = ErrorCode::HttpsRequired;
    let mut response = (code.status(), Problem::new(code, TITLE).to_json()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
