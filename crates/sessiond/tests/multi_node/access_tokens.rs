//! Access tokens across nodes: the signing keys rotate under three running
//! nodes without one failed verification, each rotation written by exactly
//! one node; and a revocation on one node reaches a verifier that follows
//! another node's feed within a second. The verifier is the
//! `sessiond-verifier` crate, as a service would use it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use sessiond_verifier::{Verifier, VerifyError};

use super::{Engine, counter, nodes};
use crate::support::TestServer;

const ISSUER: &str = "https://sessiond.test";
const AUDIENCE: &str = "orders";

async fn mint(node: &TestServer, token: &str) -> String {
    let (status, body) = node
        .json(
            Method::POST,
            "/v1/sessions/access-token",
            Some(json!({ "token": token })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn kid(access_token: &str) -> String {
    use base64::Engine as _;
    let head = access_token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Tokens live 4 s and a new key takes over every 12 s (the shortest the
/// schedule allows for that lifetime: 6 s of lead, 6 s of retention). For
/// 30 s three nodes mint tokens in turn, and a verifier that knows only
/// one node's JWKS checks each at once, with its cache and no fetch of its
/// own (`verify`, not `verify_async`): a key that reached a token before
/// the JWKS would fail it.
pub async fn signing_keys_rotate_under_three_nodes_without_a_failed_verification(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let env = [
        ("SESSIOND_TOKENS_ISSUER", ISSUER),
        ("SESSIOND_TOKENS_AUDIENCE", AUDIENCE),
        ("SESSIOND_TOKENS_ACCESS_TOKEN_TTL", "4s"),
        ("SESSIOND_TOKENS_KEY_ROTATION", "12s"),
    ];
    let n = nodes(&store, 3, &env);
    let verifier = Verifier::builder(&n[2].base)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    let (token, _) = n[0].login("alice").await;

    let started = Instant::now();
    let mut kids = BTreeSet::new();
    let (mut verified, mut failures) = (0, Vec::new());
    let mut turn = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let access = mint(&n[turn % 3], &token).await;
        turn += 1;
        kids.insert(kid(&access));
        match verifier.verify(&access) {
            Ok(claims) => {
                assert_eq!(claims.sub, "alice");
                verified += 1;
            }
            Err(error) => failures.push(format!("{:?}: {error}", started.elapsed())),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {verified} failed: {failures:?}",
        failures.len()
    );
    // 30 s at a key per 12 s: the first key and at least two successors.
    assert!(kids.len() >= 3, "only {} keys signed: {kids:?}", kids.len());
    // Every key was added by exactly one node: the nodes' counts add up to
    // the keys made (the ones seen signing, and at most one published
    // next), never to more.
    let mut added = 0;
    for node in &n {
        added += counter(node, "sessiond_signing_keys_added_total").await;
    }
    let (_, jwks) = n[0].json(Method::GET, "/.well-known/jwks.json", None).await;
    let published: BTreeSet<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    let made = kids.union(&published).count() as u64;
    assert_eq!(
        added, made,
        "keys added by the nodes vs keys seen ({kids:?}, published {published:?})"
    );
    assert!(published.len() <= 3, "{jwks}");
}

/// A verifier follows node 0's feed; the session is revoked through node
/// 2. The verifier refuses the session's still-unexpired access token
/// within a second.
pub async fn a_revocation_on_one_node_reaches_a_verifier_following_another_within_a_second(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let env = [
        ("SESSIOND_TOKENS_ISSUER", ISSUER),
        ("SESSIOND_TOKENS_AUDIENCE", AUDIENCE),
    ];
    let n = nodes(&store, 3, &env);
    let verifier = Verifier::builder(&n[0].base)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .api_key(&n[0].key)
        .build()
        .unwrap();
    verifier.follow_revocations().unwrap();
    let (token, _) = n[1].login("alice").await;
    let access = mint(&n[1], &token).await;
    assert!(verifier.verify_async(&access).await.is_ok());
    // The follower is connected once an earlier revocation has reached it.
    let (warm_up, _) = n[1].login("bob").await;
    let warm_access = mint(&n[1], &warm_up).await;
    assert_eq!(
        n[2].post("/v1/sessions/revoke", json!({ "token": warm_up }))
            .await
            .status(),
        204
    );
    super::wait_for("the follower to connect", 200, async || {
        matches!(verifier.verify(&warm_access), Err(VerifyError::Revoked))
    })
    .await;

    assert_eq!(
        n[2].post("/v1/sessions/revoke", json!({ "token": token }))
            .await
            .status(),
        204
    );
    let revoked = Instant::now();
    while verifier.verify(&access).is_ok() {
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "never learnt of the revocation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = revoked.elapsed();
    assert!(matches!(verifier.verify(&access), Err(VerifyError::Revoked)));
    assert!(elapsed < Duration::from_secs(1), "learnt of it after {elapsed:?}");
}
