//! One test per way a token can be wrong, each asserting the exact variant,
//! against keys served by the stand-in sessiond.

use std::error::Error as _;

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use sessiond_verifier::{MAX_TOKEN_LEN, Verifier, VerifyError};

use crate::support::{AUDIENCE, ISSUER, Signer, TestServer, b64, claims, now};

struct Fixture {
    _server: TestServer,
    signer: Signer,
    verifier: Verifier,
}

async fn fixture() -> anyhow::Result<Fixture> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    let verifier = server.builder().build()?;
    verifier.refresh_keys().await?;
    Ok(Fixture {
        _server: server,
        signer,
        verifier,
    })
}

fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

#[tokio::test]
async fn a_valid_token_passes_with_every_claim() -> anyhow::Result<()> {
    let f = fixture().await?;
    let c = claims();
    let got = f.verifier.verify(&f.signer.sign(&c))?;
    assert_eq!(got.iss, ISSUER);
    assert_eq!(got.aud, [AUDIENCE]);
    assert_eq!(got.sub, "user-42");
    assert_eq!(got.sid, "sess-1");
    assert_eq!(got.tid, "default");
    assert_eq!(got.aal, 2);
    assert_eq!(got.auth_time.unix_timestamp(), c["auth_time"].as_i64().unwrap());
    assert_eq!(got.iat.unix_timestamp(), c["iat"].as_i64().unwrap());
    assert_eq!(got.exp.unix_timestamp(), c["exp"].as_i64().unwrap());
    assert_eq!(got.jti, "jti-1");
    // The async path agrees.
    assert_eq!(f.verifier.verify_async(&f.signer.sign(&c)).await?, got);
    Ok(())
}

#[tokio::test]
async fn typ_variants_of_rfc_9068_pass() -> anyhow::Result<()> {
    let f = fixture().await?;
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": f.signer.kid});
        f.verifier.verify(&f.signer.sign_with(&header, &claims()))?;
    }
    Ok(())
}

#[tokio::test]
async fn over_4_kib_is_too_large() -> anyhow::Result<()> {
    let f = fixture().await?;
    let token = f.signer.sign(&with("pad", json!("x".repeat(MAX_TOKEN_LEN))));
    assert!(matches!(f.verifier.verify(&token), Err(VerifyError::TooLarge)));
    assert!(matches!(
        f.verifier.verify(&"a".repeat(MAX_TOKEN_LEN + 1)),
        Err(VerifyError::TooLarge)
    ));
    Ok(())
}

#[tokio::test]
async fn not_three_canonical_base64url_parts_is_malformed() -> anyhow::Result<()> {
    let f = fixture().await?;
    let good = f.signer.sign(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let cases = [
        String::new(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}=="),
        format!("{h}.{p}.+{}", &s[1..]),
        format!("{h}.{p}\n.{s}"),
        format!("{h}..{s}"),
        format!("{h}.{p}.{}", &s[..s.len() - 4]),
        noncanonical(&f.signer),
    ];
    for case in cases {
        let result = f.verifier.verify(&case);
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
    }
    Ok(())
}

/// A validly signed token whose header is then re-spelled non-canonically:
/// its last character differs only in bits the decoder would drop.
fn noncanonical(signer: &Signer) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // A header of 3n + 1 bytes: two final characters, four unused bits.
    let mut pad = String::new();
    let header = loop {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": signer.kid, "pad": pad});
        if header.to_string().len() % 3 == 1 {
            break header;
        }
        pad.push('x');
    };
    let token = signer.sign_with(&header, &claims());
    let (h, rest) = token.split_once('.').unwrap();
    let last = h.as_bytes()[h.len() - 1];
    let index = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(index & 0b1111, 0, "canonical encoders leave the unused bits zero");
    format!("{}{}.{rest}", &h[..h.len() - 1], ALPHABET[index | 1] as char)
}

#[tokio::test]
async fn alg_none_is_unsupported() -> anyhow::Result<()> {
    let f = fixture().await?;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": f.signer.kid});
    let token = format!("{}.{}.", b64(header.to_string()), b64(claims().to_string()));
    assert!(matches!(
        f.verifier.verify(&token),
        Err(VerifyError::UnsupportedAlgorithm)
    ));
    Ok(())
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_unsupported() -> anyhow::Result<()> {
    let f = fixture().await?;
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": f.signer.kid});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
    for secret in [f.signer.public_key(), b64(f.signer.public_key()).into_bytes()] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let token = format!("{input}.{}", b64(hmac::sign(&key, input.as_bytes())));
        assert!(matches!(
            f.verifier.verify(&token),
            Err(VerifyError::UnsupportedAlgorithm)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn other_algorithms_are_unsupported() -> anyhow::Result<()> {
    let f = fixture().await?;
    for alg in ["RS256", "ES256", "eddsa", "Ed25519"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.signer.kid});
        let result = f.verifier.verify(&f.signer.sign_with(&header, &claims()));
        assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{alg}");
    }
    Ok(())
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_the_wrong_type() -> anyhow::Result<()> {
    let f = fixture().await?;
    for typ in [json!("JWT"), json!("application/jwt"), json!(null)] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": f.signer.kid});
        let result = f.verifier.verify(&f.signer.sign_with(&header, &claims()));
        assert!(matches!(result, Err(VerifyError::WrongType)), "{typ}");
    }
    let header = json!({"alg": "EdDSA", "kid": f.signer.kid});
    let result = f.verifier.verify(&f.signer.sign_with(&header, &claims()));
    assert!(matches!(result, Err(VerifyError::WrongType)));
    Ok(())
}

#[tokio::test]
async fn an_unknown_kid_is_an_unknown_key() -> anyhow::Result<()> {
    let f = fixture().await?;
    let stranger = Signer::generate("key-unknown")?;
    match f.verifier.verify(&stranger.sign(&claims())) {
        Err(VerifyError::UnknownKey { kid }) => assert_eq!(kid.as_deref(), Some("key-unknown")),
        other => panic!("{other:?}"),
    }
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    let result = f.verifier.verify(&f.signer.sign_with(&header, &claims()));
    assert!(matches!(result, Err(VerifyError::UnknownKey { kid: None })));
    Ok(())
}

#[tokio::test]
async fn a_bad_signature_or_tampered_payload_is_a_bad_signature() -> anyhow::Result<()> {
    let f = fixture().await?;
    let good = f.signer.sign(&claims());
    let (input, signature) = good.rsplit_once('.').unwrap();

    // One signature bit flipped.
    let mut sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)?;
    sig[10] ^= 1;
    let flipped = format!("{input}.{}", b64(&sig));
    // The payload changed, the signature kept.
    let (header, _) = input.split_once('.').unwrap();
    let tampered = format!("{header}.{}.{signature}", b64(with("sub", json!("admin")).to_string()));
    // Signed by another key under our kid.
    let impostor = Signer::generate("key-1")?.sign(&claims());

    for token in [flipped, tampered, impostor] {
        assert!(matches!(f.verifier.verify(&token), Err(VerifyError::BadSignature)));
    }
    Ok(())
}

#[tokio::test]
async fn past_exp_beyond_the_leeway_is_expired() -> anyhow::Result<()> {
    let f = fixture().await?;
    let expired = with("exp", json!(now() - 60));
    assert!(matches!(
        f.verifier.verify(&f.signer.sign(&expired)),
        Err(VerifyError::Expired)
    ));
    // Within the default 30 s leeway it still passes.
    f.verifier.verify(&f.signer.sign(&with("exp", json!(now() - 5))))?;
    Ok(())
}

#[tokio::test]
async fn nbf_or_iat_in_the_future_is_not_yet_valid() -> anyhow::Result<()> {
    let f = fixture().await?;
    for (claim, at) in [("nbf", now() + 120), ("iat", now() + 120)] {
        let result = f.verifier.verify(&f.signer.sign(&with(claim, json!(at))));
        assert!(matches!(result, Err(VerifyError::NotYetValid)), "{claim}");
    }
    f.verifier.verify(&f.signer.sign(&with("nbf", json!(now() + 5))))?;
    Ok(())
}

#[tokio::test]
async fn another_issuer_or_audience_is_refused() -> anyhow::Result<()> {
    let f = fixture().await?;
    let token = f.signer.sign(&with("iss", json!("https://evil.test")));
    assert!(matches!(f.verifier.verify(&token), Err(VerifyError::WrongIssuer)));
    for aud in [json!("billing-api"), json!(["billing-api"]), json!([])] {
        let result = f.verifier.verify(&f.signer.sign(&with("aud", aud.clone())));
        assert!(matches!(result, Err(VerifyError::WrongAudience)), "{aud}");
    }
    let listed = f
        .verifier
        .verify(&f.signer.sign(&with("aud", json!(["billing-api", AUDIENCE]))))?;
    assert_eq!(listed.aud, ["billing-api", AUDIENCE]);
    Ok(())
}

#[tokio::test]
async fn missing_or_ill_typed_claims_are_refused() -> anyhow::Result<()> {
    let f = fixture().await?;
    for name in ["sub", "sid", "tid", "aal", "exp", "jti"] {
        let mut c = claims();
        if let Some(map) = c.as_object_mut() {
            map.remove(name);
        }
        match f.verifier.verify(&f.signer.sign(&c)) {
            Err(VerifyError::MissingClaim(missing)) => assert_eq!(missing, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    for (name, value) in [
        ("aal", json!("2")),
        ("aal", json!(7)),
        ("exp", json!("soon")),
        ("sid", json!(5)),
    ] {
        let result = f.verifier.verify(&f.signer.sign(&with(name, value)));
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "{name}: {result:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_jwks_is_unavailable_with_its_cause() -> anyhow::Result<()> {
    // A port that was just free: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let verifier = Verifier::builder(base).issuer(ISSUER).audience(AUDIENCE).build()?;
    let signer = Signer::generate("key-1")?;
    let error = match verifier.verify_async(&signer.sign(&claims())).await {
        Err(error @ VerifyError::JwksUnavailable(_)) => error,
        other => panic!("{other:?}"),
    };
    assert!(error.is_transient());
    assert!(error.source().is_some(), "the cause is kept");
    // The next attempt within a second reports the same without asking again.
    let again = verifier.verify_async(&signer.sign(&claims())).await;
    assert!(matches!(again, Err(VerifyError::JwksUnavailable(_))));
    Ok(())
}

#[tokio::test]
async fn no_error_contains_the_token() -> anyhow::Result<()> {
    let f = fixture().await?;
    let stranger = Signer::generate("k2")?;
    let tokens = [
        f.signer.sign(&with("exp", json!(now() - 600))),
        f.signer.sign(&with("iss", json!("https://evil.test"))),
        f.signer.sign(&with("aal", json!("secret-looking-value"))),
        stranger.sign(&claims()),
        format!("{}x", f.signer.sign(&claims())),
    ];
    for token in tokens {
        let error = match f.verifier.verify(&token) {
            Err(error) => error,
            Ok(_) => panic!("accepted"),
        };
        let shown = format!("{error} {error:?}");
        for part in token.split('.') {
            assert!(!shown.contains(part), "{shown}");
        }
        assert!(!shown.contains("secret-looking-value"), "{shown}");
    }
    Ok(())
}
