//! Access tokens verified by independent JWT libraries from the JWKS alone,
//! as another service would: PyJWT (with cryptography) and jose (npm), run
//! through the scripts in `tests/jwt/`. Both libraries are found through
//! `TEST_JWT_PYTHON` and `TEST_JWT_NODE_DIR`, which scripts/test sets
//! (scripts/servers/jwt_libs.sh).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use sessiond_testkit::env;

use crate::support::launch;

const ISSUER: &str = "https://sessiond.test";
const AUDIENCE: &str = "orders-api";
/// Every claim of API.md's access token, and no other.
const CLAIMS: [&str; 10] = [
    "iss",
    "aud",
    "sub",
    "sid",
    "tid",
    "aal",
    "auth_time",
    "iat",
    "exp",
    "jti",
];

/// One library: the program that runs its script, and the script.
struct Library {
    name: &'static str,
    program: PathBuf,
    script: PathBuf,
    /// The class of error (Python) or error code (jose) the library gives
    /// for a bad signature and for a claim that does not match.
    bad_signature: &'static str,
    wrong_audience: &'static str,
    wrong_issuer: &'static str,
}

/// What a script did.
struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Library {
    fn pyjwt(what: &str) -> Option<Self> {
        let python = env::required("TEST_JWT_PYTHON", what)?;
        Some(Self {
            name: "PyJWT",
            program: python.into(),
            script: script("verify.py"),
            bad_signature: "InvalidSignatureError: ",
            wrong_audience: "InvalidAudienceError: ",
            wrong_issuer: "InvalidIssuerError: ",
        })
    }

    /// jose; its script finds it through `TEST_JWT_NODE_DIR`, which the
    /// child inherits.
    fn jose(what: &str) -> Option<Self> {
        env::required("TEST_JWT_NODE_DIR", what)?;
        let node = env::on_path("node", what)?;
        Some(Self {
            name: "jose",
            program: node,
            script: script("verify.mjs"),
            bad_signature: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED: ",
            wrong_audience: "ERR_JWT_CLAIM_VALIDATION_FAILED (claim aud): ",
            wrong_issuer: "ERR_JWT_CLAIM_VALIDATION_FAILED (claim iss): ",
        })
    }

    /// Runs the script with `token` on stdin (never in argv: it is a
    /// credential), on loopback only (no proxies), killed after 60 s.
    fn verify(&self, jwks_url: &str, issuer: &str, audience: &str, token: &str) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut command = Command::new(&self.program);
        command
            .arg(&self.script)
            .args([jwks_url, issuer, audience])
            .current_dir(dir.path())
            .stdout(Stdio::from(File::create(&out).unwrap()))
            .stderr(Stdio::from(File::create(&err).unwrap()));
        let limit = Duration::from_secs(60);
        let status = crate::support::run_bounded(command, token.as_bytes(), limit);
        let mut stderr = std::fs::read_to_string(&err).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n(killed after {limit:?})"));
        }
        Outcome {
            ok: status.is_some_and(|s| s.success()),
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr,
        }
    }

    /// Verifies `token`, which must be refused with `error` at the start of
    /// a line of the script's stderr.
    fn assert_refused(&self, jwks_url: &str, issuer: &str, audience: &str, token: &str, error: &str, case: &str) {
        let outcome = self.verify(jwks_url, issuer, audience, token);
        assert!(!outcome.ok, "{} accepted {case}: {}", self.name, outcome.stdout);
        assert!(
            outcome.stderr.lines().any(|line| line.starts_with(error)),
            "{} refused {case}, but not with {error:?}:\n{}",
            self.name,
            outcome.stderr
        );
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jwt").join(name)
}

fn unix(rfc3339: &Value) -> i64 {
    time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

/// `token` with its payload decoded, `change`d and encoded again, the
/// header and signature kept: a well-formed token that says something else.
fn with_payload(token: &str, change: impl Fn(&str) -> String) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let changed = change(&payload);
    assert_ne!(changed, payload);
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(changed), parts[2])
}

/// `token` with one character of its encoded payload replaced by another.
fn with_payload_character_flipped(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = parts[1].as_bytes().to_vec();
    let middle = payload.len() / 2;
    payload[middle] = if payload[middle] == b'A' { b'B' } else { b'A' };
    format!("{}.{}.{}", parts[0], String::from_utf8(payload).unwrap(), parts[2])
}

/// The library verifies a freshly minted token from the JWKS alone and
/// returns exactly the session's claims; it refuses the token altered, and
/// the token checked for another audience or issuer.
async fn the_library_verifies_the_token_and_refuses_its_forgeries(library: Library) {
    let s = launch()
        .env(&[
            ("SESSIOND_TOKENS_ISSUER", ISSUER),
            ("SESSIOND_TOKENS_AUDIENCE", AUDIENCE),
        ])
        .start();
    let (token, session) = s.login("alice").await;
    let (status, minted) = s
        .json(Method::POST, "/v1/sessions/access-token", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200, "{minted}");
    let access_token = minted["access_token"].as_str().unwrap();
    let jwks_url = s.url("/.well-known/jwks.json");
    let jwks: Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();

    let outcome = library.verify(&jwks_url, ISSUER, AUDIENCE, access_token);
    assert!(
        outcome.ok,
        "{} refused the access token:\n{}",
        library.name, outcome.stderr
    );
    let verified: Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|e| panic!("{} printed no JSON ({e}):\n{}", library.name, outcome.stdout));
    let (header, claims) = (&verified["header"], &verified["claims"]);
    let context = format!("{}: {verified}", library.name);

    // The header: EdDSA, an access token, signed by a key of the JWKS.
    assert_eq!(header["alg"], "EdDSA", "{context}");
    assert_eq!(header["typ"], "at+jwt", "{context}");
    let kid = header["kid"].as_str().unwrap_or_else(|| panic!("no kid: {context}"));
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kid"] == kid), "kid {kid} is not in {jwks}");

    // Every claim, and nothing else.
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = CLAIMS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{context}");
    assert_eq!(claims["iss"], ISSUER, "{context}");
    assert_eq!(claims["aud"], AUDIENCE, "{context}");
    assert_eq!(claims["sub"], "alice", "{context}");
    assert_eq!(claims["sid"], session["id"], "{context}");
    assert_eq!(claims["tid"], "default", "{context}");
    assert_eq!(claims["aal"], session["aal"], "{context}");
    let auth_time = unix(&session["authenticated_at"]);
    assert_eq!(claims["auth_time"].as_i64(), Some(auth_time), "{context}");
    let exp = claims["exp"].as_i64().unwrap_or_else(|| panic!("exp: {context}"));
    let iat = claims["iat"].as_i64().unwrap_or_else(|| panic!("iat: {context}"));
    assert_eq!(exp, unix(&minted["access_token_expires_at"]), "{context}");
    assert!(iat <= exp, "{context}");
    // Minted just after the login (the tests read no wall clock).
    assert!((auth_time..=auth_time + 60).contains(&iat), "{context}");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()), "{context}");

    // The same libraries refuse forgeries, each for the right reason.
    let as_alicf = with_payload(access_token, |p| p.replace("\"sub\":\"alice\"", "\"sub\":\"alicf\""));
    let flipped = with_payload_character_flipped(access_token);
    for (forged, case) in [
        (
            &as_alicf,
            "the token with one payload character changed (sub alice to alicf)",
        ),
        (&flipped, "the token with one character of its encoded payload changed"),
    ] {
        library.assert_refused(&jwks_url, ISSUER, AUDIENCE, forged, library.bad_signature, case);
    }
    library.assert_refused(
        &jwks_url,
        ISSUER,
        "another-api",
        access_token,
        library.wrong_audience,
        "the token for another audience",
    );
    library.assert_refused(
        &jwks_url,
        "https://elsewhere.test",
        AUDIENCE,
        access_token,
        library.wrong_issuer,
        "the token for another issuer",
    );
}

#[tokio::test]
async fn pyjwt_verifies_an_access_token_from_the_jwks_and_refuses_forgeries() {
    let what = "interop::pyjwt_verifies_an_access_token_from_the_jwks_and_refuses_forgeries";
    let Some(library) = Library::pyjwt(what) else { return };
    the_library_verifies_the_token_and_refuses_its_forgeries(library).await;
}

#[tokio::test]
async fn jose_verifies_an_access_token_from_the_jwks_and_refuses_forgeries() {
    let what = "interop::jose_verifies_an_access_token_from_the_jwks_and_refuses_forgeries";
    let Some(library) = Library::jose(what) else { return };
    the_library_verifies_the_token_and_refuses_its_forgeries(library).await;
}
