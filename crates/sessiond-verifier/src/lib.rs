//! Verify sessiond's access tokens offline: a service checks each request's
//! token against cached public keys and a followed revocation feed, with no
//! call to sessiond on the request path.
//!
//! ```
//! use axum::{Router, extract::FromRef, routing::get};
//! use sessiond_verifier::{AccessToken, BuildError, Verifier};
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     verifier: Verifier,
//! }
//!
//! // 401 + `WWW-Authenticate: Bearer …` unless the bearer token verifies.
//! async fn me(AccessToken(claims): AccessToken) -> String {
//!     format!("{} (session {}, tenant {}, aal {})", claims.sub, claims.sid, claims.tid, claims.aal)
//! }
//!
//! fn main() -> Result<(), BuildError> {
//!     let verifier = Verifier::builder("https://sessiond.example")
//!         .issuer("https://sessiond.example") // sessiond's tokens.issuer
//!         .audience("orders-api") //             sessiond's tokens.audience
//!         .build()?; // no I/O yet: keys are fetched on first use
//!     let app: Router = Router::new()
//!         .route("/me", get(me))
//!         .with_state(AppState { verifier });
//!     # drop(app);
//!     Ok(())
//! }
//! ```
//!
//! Without axum, call [`Verifier::verify_async`] (fetches the JWKS when a
//! token names a key not yet cached) or [`Verifier::verify`] (synchronous,
//! no I/O). To refuse tokens of revoked sessions too, give an API key; the
//! verifier then follows sessiond's revocation feed in the background:
//!
//! ```no_run
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use sessiond_verifier::{Verifier, VerifyError};
//!
//! let verifier = Verifier::builder("https://sessiond.example")
//!     .issuer("https://sessiond.example")
//!     .audience("orders-api")
//!     .api_key(std::env::var("SESSIOND_API_KEY")?)
//!     .build()?; // inside a tokio runtime: starts following revocations
//! verifier.refresh_keys().await?; // optional: so that `verify` finds the keys at once
//! match verifier.verify(token) {
//!     Ok(claims) => println!("{} in session {}", claims.sub, claims.sid),
//!     Err(VerifyError::Revoked) => println!("logged out"),
//!     Err(other) => println!("refused: {}", other.code()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What is checked, in order
//!
//! 1. At most 4 KiB ([`VerifyError::TooLarge`]), before any parsing.
//! 2. Three `.`-separated parts; the header canonical unpadded base64url of
//!    a JSON object, without `crit` ([`VerifyError::Malformed`]).
//! 3. `alg` exactly `EdDSA` ([`VerifyError::UnsupportedAlgorithm`]): the
//!    header never picks the algorithm, so `none` and HMAC keyed with the
//!    public key fail here.
//! 4. `typ` `at+jwt` or `application/at+jwt`, any case
//!    ([`VerifyError::WrongType`], RFC 9068).
//! 5. Payload and signature canonical unpadded base64url, the signature 64
//!    bytes ([`VerifyError::Malformed`]).
//! 6. `kid` names a key of the JWKS ([`VerifyError::UnknownKey`],
//!    [`VerifyError::JwksUnavailable`]).
//! 7. The Ed25519 signature ([`VerifyError::BadSignature`]). Nothing in the
//!    payload is read before this.
//! 8. Required claims present and well typed ([`VerifyError::MissingClaim`],
//!    [`VerifyError::Malformed`]), then `iss` ([`VerifyError::WrongIssuer`]),
//!    `aud` ([`VerifyError::WrongAudience`]), `exp`
//!    ([`VerifyError::Expired`]), `nbf` and `iat`
//!    ([`VerifyError::NotYetValid`]), with the leeway (default 30 s).
//! 9. The session is not revoked ([`VerifyError::Revoked`]), when following
//!    revocations.
//!
//! Every error has a stable [`code`](VerifyError::code) and none contains
//! the token.
//!
//! # Features
//!
//! - `axum` (default): the [`AccessToken`] extractor.
#![forbid(unsafe_code)]

mod builder;
mod claims;
mod error;
#[cfg(feature = "axum")]
pub mod extract;
mod follow;
mod http;
mod jwks;
mod revocations;
mod sse;
mod token;
mod verifier;

pub use builder::{DEFAULT_LEEWAY, MAX_LEEWAY, VerifierBuilder};
pub use claims::AccessClaims;
pub use error::{BuildError, JwksError, MAX_KID_IN_ERROR, VerifyError};
#[cfg(feature = "axum")]
pub use extract::{AccessToken, AccessTokenRejection};
pub use jwks::REFETCH_FLOOR;
pub use revocations::DEFAULT_CAPACITY;
pub use token::MAX_TOKEN_LEN;
pub use verifier::Verifier;
