//! The access-token cookie (issue 15): set on login, renewed past half its
//! life or after a rotation, deleted when the session ends. In process, on
//! the fake clock; the remote mode's test is in `remote.rs`.
//!
//! Signatures are checked with ring against the keys' JWKS, not with the
//! jsonwebtoken crate that made them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use sessiond_core::{AccessTokenIssuer, Clock as _, Jwks, KeySchedule, MemoryStore, Policy, Sealer, SigningKeys};
use sessiond_http::{AccessTokenCookie, ConfigError, SameSite, SessionLayer, SessionLayerBuilder};
use sessiond_testkit::FakeClock;

use crate::support::*;

pub const AT_COOKIE: &str = "__Host-sessiond_at";
const ATTRIBUTES: &str = "; Path=/; Secure; HttpOnly; SameSite=Lax";
const TTL: u64 = 300;

/// The access-token cookie's deletion, with the attributes it was set with.
pub fn at_deletion(name: &str, attributes: &str) -> String {
    format!("{name}={attributes}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
}

/// A test app with the access-token cookie, minting in process with keys
/// on the app's fake clock (tokens live [`TTL`] seconds).
struct AtApp {
    app: TestApp,
    keys: Arc<SigningKeys>,
}

pub async fn signing_keys(clock: &FakeClock) -> Arc<SigningKeys> {
    let schedule = KeySchedule::new(Duration::from_secs(TTL), Duration::from_secs(30 * 86_400)).unwrap();
    let keys = SigningKeys::new(
        Arc::new(MemoryStore::new()),
        Sealer::off(),
        Arc::new(clock.clone()),
        schedule,
    );
    keys.maintain().await.unwrap();
    keys
}

pub fn issuer(keys: &Arc<SigningKeys>) -> AccessTokenIssuer {
    AccessTokenIssuer::new(Arc::clone(keys), "https://sessiond.test", "shop")
}

impl AtApp {
    async fn new(policy: Policy) -> Self {
        Self::with(policy, |b, issuer| b.access_tokens(issuer)).await
    }

    /// `configure` gets the builder and the issuer, to turn the cookie on.
    async fn with(
        policy: Policy,
        configure: impl FnOnce(SessionLayerBuilder, AccessTokenIssuer) -> SessionLayerBuilder,
    ) -> Self {
        let clock = FakeClock::default();
        let manager = manager(&clock, policy);
        let keys = signing_keys(&clock).await;
        let builder = SessionLayer::in_process(manager.clone());
        let layer = configure(builder, issuer(&keys)).build().unwrap();
        let app = TestApp {
            router: routes().layer(layer),
            manager,
            clock,
        };
        Self { app, keys }
    }

    /// Logs in; returns the session cookie and the access-token cookie.
    async fn login(&self, user: &str) -> (String, String) {
        let reply = self.app.send(post_req(&format!("/login?user={user}")).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let at = cookie_value(&reply, AT_COOKIE).expect("login sets the access-token cookie");
        (reply.session_cookie().unwrap(), at)
    }

    async fn me(&self, session: &str, at: Option<&str>) -> Reply {
        self.app.send(both(get_req("/me"), session, at).build()).await
    }

    fn jwks(&self) -> Jwks {
        self.keys.jwks()
    }
}

/// A request carrying the session cookie and, if given, the access-token cookie.
pub fn both(req: Req, session: &str, at: Option<&str>) -> Req {
    match at {
        Some(at) => req.header("cookie", &format!("{COOKIE}={session}; {AT_COOKIE}={at}")),
        None => req.cookie(session),
    }
}

/// The value `reply` sets for cookie `name` (not a deletion).
pub fn cookie_value(reply: &Reply, name: &str) -> Option<String> {
    reply.set_cookies().iter().find_map(|c| {
        let value = c.strip_prefix(&format!("{name}="))?.split(';').next()?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The whole `Set-Cookie` for cookie `name`, if `reply` has one.
pub fn set_cookie_of(reply: &Reply, name: &str) -> Option<String> {
    reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The header and claims of a compact JWS, unverified.
pub fn decode(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let part = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (part(parts[0]), part(parts[1]))
}

/// Checks the EdDSA signature of `jwt` with ring against the key of `jwks`
/// (`kty`/`crv`/`x`/`kid` JSON objects) its `kid` names; returns the claims.
pub fn verify_with_ring(jwt: &str, jwks: &serde_json::Value) -> serde_json::Value {
    let (header, claims) = decode(jwt);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS");
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
        .expect("a valid Ed25519 signature");
    // The same check fails on a single changed byte of the payload.
    let tampered = format!("{signed}x");
    assert!(
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
            .verify(tampered.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .is_err()
    );
    claims
}

fn jwks_json(keys: &Jwks) -> serde_json::Value {
    serde_json::to_value(keys).unwrap()
}

#[tokio::test]
async fn login_sets_a_signed_access_token_cookie_for_the_new_session() {
    let at_app = AtApp::new(Policy::default()).await;
    let reply = at_app.app.send(post_req("/login?user=alice").build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let session = reply.session_cookie().unwrap();
    let at = cookie_value(&reply, AT_COOKIE).unwrap();
    // Two cookies: the session's (a browser-session cookie) and the token's,
    // with the same attributes and a Max-Age of the token's life.
    assert_eq!(
        reply.set_cookies(),
        vec![
            format!("{COOKIE}={session}{ATTRIBUTES}"),
            format!("{AT_COOKIE}={at}{ATTRIBUTES}; Max-Age={TTL}"),
        ]
    );
    assert_eq!(reply.headers[http::header::CACHE_CONTROL], "no-store");

    let claims = verify_with_ring(&at, &jwks_json(&at_app.jwks()));
    let me = at_app.me(&session, Some(&at)).await.json();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], me["id"]);
    assert_eq!(claims["aal"], 1);
    assert_eq!(claims["iss"], "https://sessiond.test");
    assert_eq!(claims["aud"], "shop");
    assert_eq!(claims["iat"].as_i64().unwrap(), at_app.app.clock.now().unix_timestamp());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        TTL as i64
    );
}

#[tokio::test]
async fn a_fresh_access_token_is_not_minted_again() {
    let at_app = AtApp::new(Policy::default()).await;
    let (session, at) = at_app.login("alice").await;
    let reply = at_app.me(&session, Some(&at)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    // Exactly half the lifetime left is still fresh.
    at_app.app.clock.advance(Duration::from_secs(TTL / 2));
    let reply = at_app.me(&session, Some(&at)).await;
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    // A route that never looks at the session mints nothing either.
    at_app.app.clock.advance(Duration::from_secs(TTL));
    let reply = at_app
        .app
        .send(both(get_req("/public"), &session, Some(&at)).build())
        .await;
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn an_access_token_past_half_its_life_is_renewed() {
    let at_app = AtApp::new(Policy::default()).await;
    let (session, at) = at_app.login("alice").await;
    let (_, first) = decode(&at);
    at_app.app.clock.advance(Duration::from_secs(TTL / 2 + 1));
    let reply = at_app.me(&session, Some(&at)).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Only the token's cookie: the session cookie is not re-issued.
    let renewed = cookie_value(&reply, AT_COOKIE).unwrap();
    assert_eq!(
        reply.set_cookies(),
        vec![format!("{AT_COOKIE}={renewed}{ATTRIBUTES}; Max-Age={TTL}")]
    );
    let claims = verify_with_ring(&renewed, &jwks_json(&at_app.jwks()));
    assert_eq!(claims["sid"], first["sid"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - first["exp"].as_i64().unwrap(),
        (TTL / 2 + 1) as i64
    );
    assert_ne!(claims["jti"], first["jti"]);
    // The renewed one is fresh in turn.
    let reply = at_app.me(&session, Some(&renewed)).await;
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn a_missing_unreadable_or_foreign_access_token_is_replaced() {
    let at_app = AtApp::new(Policy::default()).await;
    let (session, at) = at_app.login("alice").await;
    let (_, bobs) = at_app.login("bob").await;
    let sid = decode(&at).1["sid"].clone();
    let garbage = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode("{}"),
        URL_SAFE_NO_PAD.encode("not json")
    );
    for presented in [None, Some("garbage"), Some(garbage.as_str()), Some(bobs.as_str())] {
        let reply = at_app.me(&session, presented).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let minted = cookie_value(&reply, AT_COOKIE).unwrap_or_else(|| panic!("replaces {presented:?}"));
        let claims = verify_with_ring(&minted, &jwks_json(&at_app.jwks()));
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["sub"], "alice");
    }
}

#[tokio::test]
async fn a_step_up_mints_a_token_with_the_new_level() {
    let at_app = AtApp::new(Policy::default()).await;
    let (session, at) = at_app.login("alice").await;
    let (_, before) = decode(&at);
    at_app.app.clock.advance(Duration::from_secs(10));
    let csrf = at_app.app.csrf(&session).await;
    let reply = at_app
        .app
        .send(both(post_req("/elevate"), &session, Some(&at)).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rotated = reply.session_cookie().unwrap();
    assert_ne!(rotated, session);
    // Re-minted although the old token was fresh: the level changed.
    let elevated = cookie_value(&reply, AT_COOKIE).unwrap();
    let claims = verify_with_ring(&elevated, &jwks_json(&at_app.jwks()));
    assert_eq!(claims["aal"], 2);
    assert_eq!(claims["sid"], before["sid"]);
    assert_eq!(
        claims["auth_time"].as_i64().unwrap() - before["auth_time"].as_i64().unwrap(),
        10
    );
    // A plain rotation re-mints too (same level, new session token).
    let csrf = at_app.app.csrf(&rotated).await;
    let reply = at_app
        .app
        .send(both(post_req("/rotate"), &rotated, Some(&elevated)).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(cookie_value(&reply, AT_COOKIE).is_some_and(|t| t != elevated));
}

#[tokio::test]
async fn logout_deletes_the_access_token_cookie() {
    let at_app = AtApp::new(Policy::default()).await;
    let (session, at) = at_app.login("alice").await;
    let csrf = at_app.app.csrf(&session).await;
    let reply = at_app
        .app
        .send(both(post_req("/logout"), &session, Some(&at)).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.set_cookies(),
        vec![at_deletion(COOKIE, ATTRIBUTES), at_deletion(AT_COOKIE, ATTRIBUTES)]
    );
    // The stale pair later: no session, and the token's cookie goes again.
    let reply = at_app.me(&session, Some(&at)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.set_cookies(), vec![at_deletion(AT_COOKIE, ATTRIBUTES)]);
    // Without an access-token cookie there is nothing to delete.
    let reply = at_app.me(&session, None).await;
    assert!(reply.set_cookies().is_empty());
}

/// Theft detection through the layer: the thief replays the rotated-out
/// session cookie after the grace; the session ends, and with it both
/// browsers' access-token cookies.
#[tokio::test]
async fn a_replayed_rotated_out_session_cookie_ends_both_cookies() {
    let at_app = AtApp::new(long_policy()).await;
    let (stolen, stolen_at) = at_app.login("alice").await;
    let csrf = at_app.app.csrf(&stolen).await;
    let reply = at_app
        .app
        .send(both(post_req("/rotate"), &stolen, Some(&stolen_at)).csrf(&csrf).build())
        .await;
    let session = reply.session_cookie().unwrap();
    let at = cookie_value(&reply, AT_COOKIE).unwrap();

    at_app
        .app
        .clock
        .advance(long_policy().rotation_grace + Duration::from_secs(1));
    let thief = at_app.me(&stolen, Some(&stolen_at)).await;
    assert_eq!(thief.status, StatusCode::UNAUTHORIZED, "{}", thief.body);
    assert_eq!(thief.set_cookies(), vec![at_deletion(AT_COOKIE, ATTRIBUTES)]);
    let victim = at_app.me(&session, Some(&at)).await;
    assert_eq!(victim.status, StatusCode::UNAUTHORIZED, "{}", victim.body);
    assert_eq!(victim.set_cookies(), vec![at_deletion(AT_COOKIE, ATTRIBUTES)]);
}

#[tokio::test]
async fn a_failing_mint_or_handler_leaves_the_session_cookie_alone() {
    // Keys never maintained: nothing signs, every mint fails.
    let clock = FakeClock::default();
    let manager = manager(&clock, Policy::default());
    let schedule = KeySchedule::new(Duration::from_secs(TTL), Duration::from_secs(30 * 86_400)).unwrap();
    let keys = SigningKeys::new(
        Arc::new(MemoryStore::new()),
        Sealer::off(),
        Arc::new(clock.clone()),
        schedule,
    );
    let layer = SessionLayer::in_process(manager.clone())
        .access_tokens(issuer(&keys))
        .build()
        .unwrap();
    let app = TestApp {
        router: routes().layer(layer),
        manager,
        clock,
    };
    let reply = app.send(post_req("/login?user=alice").build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let session = reply.session_cookie().unwrap();
    assert_eq!(reply.set_cookies(), vec![format!("{COOKIE}={session}{ATTRIBUTES}")]);
    let me = app.send(get_req("/me").cookie(&session).build()).await;
    assert_eq!(me.json()["subject"], "alice");
    assert!(me.set_cookies().is_empty());

    // A handler that fails (5xx) gets no token either.
    let at_app = AtApp::new(Policy::default()).await;
    let (session, _) = at_app.login("alice").await;
    let csrf = at_app.app.csrf(&session).await;
    let reply = at_app
        .app
        .send(post_req("/fail").cookie(&session).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn the_cookie_follows_the_session_cookies_mode_and_name_rules() {
    // Dev mode: no prefix, no Secure; SameSite as the session cookie's.
    let at_app = AtApp::with(Policy::default(), |b, issuer| {
        b.dev_mode(true).same_site(SameSite::Strict).access_tokens(issuer)
    })
    .await;
    let reply = at_app
        .app
        .send(
            http::Request::post("/login?user=alice")
                .header("host", "localhost:3000")
                .header("origin", "http://localhost:3000")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let at = cookie_value(&reply, "sessiond_at").unwrap();
    assert_eq!(
        set_cookie_of(&reply, "sessiond_at").unwrap(),
        format!("sessiond_at={at}; Path=/; HttpOnly; SameSite=Strict; Max-Age={TTL}")
    );

    // A custom name; host-only with Path=/ even when the session cookie is not.
    let at_app = AtApp::with(Policy::default(), |b, issuer| {
        b.cookie_name("__Secure-sid")
            .cookie_domain("shop.example")
            .access_tokens(AccessTokenCookie::from(issuer).name("__Host-at"))
    })
    .await;
    let reply = at_app.app.send(post_req("/login?user=alice").build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let session = cookie_value(&reply, "__Secure-sid").unwrap();
    let at = cookie_value(&reply, "__Host-at").unwrap();
    assert_eq!(
        reply.set_cookies(),
        vec![
            format!("__Secure-sid={session}; Path=/; Domain=shop.example; Secure; HttpOnly; SameSite=Lax"),
            format!("__Host-at={at}{ATTRIBUTES}; Max-Age={TTL}"),
        ]
    );

    // Refused at build time: no issuer in process, an issuer elsewhere, a
    // name clash, and a prefix rule broken.
    let clock = FakeClock::default();
    let keys = signing_keys(&clock).await;
    let in_process = || SessionLayer::in_process(manager(&clock, Policy::default()));
    let refused = in_process().access_tokens(AccessTokenCookie::from_backend()).build();
    assert!(matches!(refused, Err(ConfigError::AccessTokenSource)), "{refused:?}");
    let backend: Arc<dyn sessiond_http::SessionBackend> = Arc::new(manager(&clock, Policy::default()));
    let refused = SessionLayer::builder(backend).access_tokens(issuer(&keys)).build();
    assert!(matches!(refused, Err(ConfigError::AccessTokenSource)), "{refused:?}");
    let refused = in_process()
        .access_tokens(AccessTokenCookie::from(issuer(&keys)).name(COOKIE))
        .build();
    assert!(
        matches!(refused, Err(ConfigError::AccessTokenCookieName(ref n)) if n == COOKIE),
        "{refused:?}"
    );
    let built = in_process().dev_mode(true).access_tokens(issuer(&keys)).build();
    assert!(built.is_ok(), "dev mode picks the unprefixed default name");
    let refused = in_process()
        .dev_mode(true)
        .access_tokens(AccessTokenCookie::from(issuer(&keys)).name("__Host-at"))
        .build();
    assert!(matches!(refused, Err(ConfigError::Cookie(_))), "{refused:?}");
}
