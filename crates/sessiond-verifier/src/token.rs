//! The compact JWS form of an access token, up to the `kid`.
//!
//! What this parser refuses, and why:
//!
//! - more than [`MAX_TOKEN_LEN`] bytes, before looking at a single one, so a
//!   huge header costs nothing;
//! - anything but exactly three parts separated by `.`;
//! - a header that is not canonical base64url of a JSON object, repeats a
//!   member it reads, or has `crit` (we understand no extension, so RFC 7515
//!   §4.1.11 says refuse);
//! - `alg` other than exactly `EdDSA`, checked before any key is looked up:
//!   the header never chooses the algorithm (no `none`, no HMAC keyed with
//!   the public key);
//! - `typ` other than `at+jwt` or `application/at+jwt`, compared without
//!   regard to case (RFC 9068 §4), so an ID token or a JWT of another kind
//!   cannot pass for an access token;
//! - then, a payload or signature that is empty or not canonical base64url
//!   without padding (no `=`, no whitespace, no stray low bits): one token
//!   has one spelling, so a cache or deny-list keyed on the string cannot be
//!   dodged by re-encoding; a signature that is not 64 bytes (Ed25519).
//!
//! Header members it does not read (`jku`, `x5u`, `jwk`, …) are ignored:
//! keys come only from the configured JWKS, never from the token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::VerifyError;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// An Ed25519 signature's length in bytes.
const SIGNATURE_LEN: usize = 64;

/// A token whose structure and header passed; its signature is not yet
/// checked, so nothing in `payload` may be trusted.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The signature part, still base64url.
    pub signature: &'a str,
    /// The decoded payload (JSON, unverified).
    pub payload: Vec<u8>,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Splits and checks a token up to its `kid`.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("not three dot-separated parts"));
    };
    // The header first: a token with the wrong `alg` (`none` has an empty
    // signature) is refused for that, whatever its other parts look like.
    let header: Header = serde_json::from_slice(&decode_part(header)?)
        .map_err(|_| VerifyError::Malformed("header is not a JSON object of the expected types"))?;
    if header.crit.is_some() {
        return Err(VerifyError::Malformed("critical header extensions are not supported"));
    }
    if header.alg.as_deref() != Some("EdDSA") {
        return Err(VerifyError::UnsupportedAlgorithm);
    }
    if !header.typ.as_deref().is_some_and(is_access_token_type) {
        return Err(VerifyError::WrongType);
    }
    let payload = decode_part(payload)?;
    if decode_part(signature)?.len() != SIGNATURE_LEN {
        return Err(VerifyError::Malformed("signature is not 64 bytes"));
    }
    // Length of header + payload: the signature is the last part.
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(Parsed {
        signing_input,
        signature,
        payload,
        kid: header.kid,
    })
}

/// Decodes one part: non-empty canonical base64url without padding.
fn decode_part(part: &str) -> Result<Vec<u8>, VerifyError> {
    if part.is_empty() {
        return Err(VerifyError::Malformed("empty part"));
    }
    // The engine refuses padding, characters outside the URL-safe alphabet
    // and non-zero trailing bits, so only the canonical spelling decodes.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed("part is not canonical unpadded base64url"))
}

/// `at+jwt`, with or without the `application/` prefix, in any case.
fn is_access_token_type(typ: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case("at+jwt")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        format!("{}.{}.{sig}", b64(header), b64("{}"))
    }

    const GOOD: &str = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#;

    #[test]
    fn a_good_header_yields_kid_and_signing_input() -> Result<(), VerifyError> {
        let t = token(GOOD);
        let parsed = parse(&t)?;
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.payload, b"{}");
        assert_eq!(format!("{}.{}", parsed.signing_input, parsed.signature), t);
        Ok(())
    }

    #[test]
    fn typ_is_compared_without_case_and_with_the_media_type_prefix() {
        for ok in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(is_access_token_type(ok), "{ok}");
        }
        for bad in [
            "JWT",
            "at+jwt ",
            "application/jwt",
            "application/",
            "",
            "application/at+jwtx",
        ] {
            assert!(!is_access_token_type(bad), "{bad}");
        }
    }

    #[test]
    fn structure_faults_are_malformed() {
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        let h = b64(GOOD);
        let p = b64("{}");
        let cases = [
            format!("{h}.{p}"),
            format!("{h}.{p}.{sig}.{sig}"),
            format!("{h}..{sig}"),
            format!("{h}.{p}."),
            format!("{h}=.{p}.{sig}"),
            format!("{h}.{p}.{sig}="),
            format!("{h}.{p} .{sig}"),
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode([7u8; 63])),
            // "e30" is "{}"; "e31" differs only in bits the decoder drops.
            format!("{h}.e31.{sig}"),
            format!("{h}.{p}.+{}", &sig[1..]),
            format!("{}.{p}.{sig}", b64("[]")),
            format!("{}.{p}.{sig}", b64(r#"{"alg":"EdDSA","alg":"none","typ":"at+jwt"}"#)),
            format!("{}.{p}.{sig}", b64(r#"{"alg":"EdDSA","typ":"at+jwt","crit":["b64"]}"#)),
            format!("{}.{p}.{sig}", b64(r#"{"alg":"EdDSA","typ":"at+jwt","kid":7}"#)),
        ];
        for case in cases {
            assert!(
                matches!(parse(&case), Err(VerifyError::Malformed(_))),
                "{case}: {:?}",
                parse(&case)
            );
        }
    }

    #[test]
    fn alg_none_is_refused_for_its_alg_despite_the_empty_signature() {
        let t = format!("{}.{}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#), b64("{}"));
        assert!(matches!(parse(&t), Err(VerifyError::UnsupportedAlgorithm)));
    }

    #[test]
    fn only_eddsa_passes() {
        for alg in ["none", "HS256", "RS256", "eddsa", "Ed25519", "ES256"] {
            let t = token(&format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"k1"}}"#));
            assert!(matches!(parse(&t), Err(VerifyError::UnsupportedAlgorithm)), "{alg}");
        }
        let t = token(r#"{"typ":"at+jwt","kid":"k1"}"#);
        assert!(matches!(parse(&t), Err(VerifyError::UnsupportedAlgorithm)));
    }

    #[test]
    fn the_size_check_comes_first() {
        let t = "!".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(parse(&t), Err(VerifyError::TooLarge)));
        let t = "!".repeat(MAX_TOKEN_LEN);
        assert!(matches!(parse(&t), Err(VerifyError::Malformed(_))));
    }
}
