//! The whole API of API.md, driven over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, create_key, launch};

#[tokio::test]
async fn login_verify_rotate_list_revoke() {
    let s = launch().start();
    let body = json!({"subject": "alice", "remember_me": true, "aal": 2, "data": {"cart": [1]},
                      "client": {"ip": "203.0.113.7", "user_agent": "Firefox/140"}});
    let created = s.post("/v1/sessions", body).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let created: Value = created.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let session = &created["session"];
    for field in [
        "id",
        "subject",
        "created_at",
        "last_seen_at",
        "authenticated_at",
        "idle_expires_at",
        "absolute_expires_at",
        "expires_at",
        "remember_me",
        "aal",
        "data",
        "client",
        "version",
    ] {
        assert!(!session[field].is_null(), "session lacks {field}: {session}");
    }
    assert_eq!(session["remember_me"], true);
    assert_eq!(session["aal"], 2);
    assert_eq!(session["data"], json!({"cart": [1]}));
    assert_eq!(
        session["client"],
        json!({"ip": "203.0.113.7", "user_agent": "Firefox/140"})
    );
    assert_eq!(session["version"], 1);
    let id = session["id"].as_str().unwrap().to_owned();

    let verified = s.post("/v1/sessions/verify", json!({"token": token})).await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.headers()["cache-control"], "no-store");
    assert_eq!(verified.json::<Value>().await.unwrap()["session"]["id"], id.as_str());

    let rotated = s.post("/v1/sessions/rotate", json!({"token": token, "aal": 3})).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new_token = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(rotated["session"]["id"], id.as_str());
    assert_eq!(rotated["session"]["aal"], 3);
    // (The old token now would end the session as theft: see below.)
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": new_token}))
            .await
            .status(),
        200
    );

    let (_, second) = s.login("alice").await;
    let list: Value = s
        .req(Method::GET, "/v1/subjects/alice/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second["id"].as_str().unwrap(), id.as_str()], "newest first");

    let revoked = s.post("/v1/sessions/revoke", json!({"token": new_token})).await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": new_token}))
            .await
            .status(),
        204,
        "idempotent"
    );
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": new_token})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        s.req(Method::GET, &format!("/v1/sessions/{id}")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}

/// Issue 12, finding 10: a lower `aal` is refused unless asked for as a
/// downgrade, and neither a downgrade nor a same-level rotation counts as an
/// authentication.
#[tokio::test]
async fn rotate_refuses_a_lower_aal_unless_a_downgrade_is_asked_for() {
    let s = launch().start();
    let created: Value = s
        .post("/v1/sessions", json!({"subject": "carol", "aal": 3}))
        .await
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let authenticated_at = created["session"]["authenticated_at"].clone();

    let refused = s.post("/v1/sessions/rotate", json!({"token": token, "aal": 1})).await;
    assert_problem(refused, 400, "aal_downgrade").await;
    let refused = s
        .post(
            "/v1/sessions/rotate",
            json!({"token": token, "aal": 1, "reauthenticated": true}),
        )
        .await;
    assert_problem(refused, 400, "aal_downgrade").await;
    let not_lower = s
        .post(
            "/v1/sessions/rotate",
            json!({"token": token, "aal": 3, "downgrade": true}),
        )
        .await;
    assert_problem(not_lower, 400, "aal_mismatch").await;
    let no_level = s
        .post("/v1/sessions/rotate", json!({"token": token, "downgrade": true}))
        .await;
    assert_problem(no_level, 400, "invalid_request").await;
    let verified: Value = s
        .post("/v1/sessions/verify", json!({"token": token}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["session"]["aal"], 3, "a refused rotation changes nothing");

    let same: Value = s
        .post("/v1/sessions/rotate", json!({"token": token, "aal": 3}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        same["session"]["authenticated_at"], authenticated_at,
        "same level: no reset"
    );
    let token = same["token"].as_str().unwrap().to_owned();

    let lowered = s
        .post(
            "/v1/sessions/rotate",
            json!({"token": token, "aal": 1, "downgrade": true}),
        )
        .await;
    assert_eq!(lowered.status(), 200);
    let lowered: Value = lowered.json().await.unwrap();
    assert_eq!(lowered["session"]["aal"], 1);
    assert_eq!(
        lowered["session"]["authenticated_at"], authenticated_at,
        "a downgrade is no login"
    );
    assert_eq!(
        lowered["session"]["absolute_expires_at"], created["session"]["absolute_expires_at"],
        "a downgrade never buys time"
    );
}

#[tokio::test]
async fn get_patch_and_delete_by_id_with_versions() {
    let s = launch().start();
    let (token, session) = s.login("bob").await;
    let id = session["id"].as_str().unwrap();
    let path = format!("/v1/sessions/{id}");

    let got = s.req(Method::GET, &path).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], "\"1\"");
    assert_eq!(got.headers()["cache-control"], "no-store");

    let patched = s
        .req(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({"data": {"cart": [7]}}));
    let patched = patched.send().await.unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["session"]["version"], 2);
    assert_eq!(patched["session"]["data"], json!({"cart": [7]}));

    let stale = s
        .req(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({"data": {}}));
    let stale = stale.send().await.unwrap();
    assert_problem(stale, 412, "version_conflict").await;

    let blind = s
        .req(Method::PATCH, &path)
        .json(&json!({"data": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        blind.json::<Value>().await.unwrap()["session"]["version"],
        3,
        "PATCH without If-Match replaces"
    );

    let verified: Value = s
        .post("/v1/sessions/verify", json!({"token": token}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["session"]["data"], json!({"x": 1}));

    assert_eq!(s.req(Method::DELETE, &path).send().await.unwrap().status(), 204);
    assert_problem(s.req(Method::DELETE, &path).send().await.unwrap(), 404, "not_found").await;
    assert_problem(
        s.req(Method::PATCH, &path)
            .json(&json!({"data": {}}))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": token})).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn sign_out_everywhere_else_and_the_event_log() {
    let s = launch().start();
    let (mine, me) = s.login("carol").await;
    let (theirs, _) = s.login("carol").await;
    let (_, _) = s.login("carol").await;
    let me_id = me["id"].as_str().unwrap();
    let response = s
        .req(Method::DELETE, &format!("/v1/subjects/carol/sessions?except={me_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"revoked": 2}));
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": mine})).await.status(),
        200
    );
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": theirs})).await,
        401,
        "invalid_token",
    )
    .await;

    let events: Value = s
        .req(Method::GET, "/v1/events?subject=carol&limit=10")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    let kinds: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["reason"].as_str()))
        .collect();
    assert_eq!(kinds[0], ("verify_failed", Some("revoked")), "newest first: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == ("revoked", Some("admin"))).count(), 2);
    assert_eq!(kinds.iter().filter(|k| k.0 == "created").count(), 3);
    let dump = serde_json::to_string(events).unwrap();
    assert!(
        !dump.contains(&mine[3..]) && !dump.contains(&theirs[3..]),
        "an event holds a token"
    );

    let by_session: Value = s
        .req(Method::GET, &format!("/v1/events?session_id={me_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        by_session["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["session_id"] == me_id)
    );
    // `kind` and `before` are checked like every other parameter.
    for bad in [
        "kind=Revoked",
        "kind=",
        "before=12",
        "before=01780000000000000-DEADBEEF-00000001",
    ] {
        let refused = s.req(Method::GET, &format!("/v1/events?{bad}")).send().await.unwrap();
        assert_problem(refused, 400, "invalid_request").await;
    }
    let (status, revoked) = s.json(Method::GET, "/v1/events?subject=carol&kind=revoked", None).await;
    assert_eq!(status, 200, "{revoked}");
    let revoked = revoked["events"].as_array().unwrap();
    assert!(
        !revoked.is_empty() && revoked.iter().all(|e| e["kind"] == "revoked"),
        "{revoked:?}"
    );
    let all: Value = s
        .req(Method::GET, "/v1/subjects/carol/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_session_limit_answers_409() {
    let s = launch()
        .env(&[("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "1")])
        .start();
    s.login("dave").await;
    assert_problem(
        s.post("/v1/sessions", json!({"subject": "dave"})).await,
        409,
        "session_limit",
    )
    .await;
}

/// A server over an embedded store in its own directory, and a key of
/// tenant `other` made on that store before the start.
pub fn launch_with_other_tenant(env: &[(&str, &str)]) -> (TestServer, String) {
    const STORE: &str = "embedded:./sessiond-data";
    let dir = tempfile::tempdir().unwrap();
    let other_key = create_key(dir.path(), "other", STORE);
    (launch().dir(dir).store(STORE).env(env).start(), other_key)
}

/// The review's reproduction of finding 4 (issue 12): anonymous failures
/// in one tenant once erased another tenant's events from the one shared
/// ring. Events are now bounded per tenant, and failures naming no session
/// are counted per client address and minute.
#[tokio::test]
async fn anonymous_failures_neither_flood_the_log_nor_erase_another_tenants_events() {
    let (s, other_key) = launch_with_other_tenant(&[("SESSIOND_EVENTS_MAX_EVENTS", "50")]);
    let (token, _) = s.login("frank").await;
    let revoked = s.post("/v1/sessions/revoke", json!({"token": token})).await;
    assert_eq!(revoked.status(), 204);
    for i in 0..300 {
        let r = s
            .client
            .post(s.url("/v1/sessions/verify"))
            .bearer_auth(&other_key)
            .json(&json!({"token": format!("sd_random{i}"), "client": {"ip": "203.0.113.7"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let events = |key: String| {
        let request = s.client.get(s.url("/v1/events?limit=100")).bearer_auth(key);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap().to_owned(),
                        e["reason"].as_str().map(str::to_owned),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let mine = events(s.key.clone()).await;
    assert_eq!(
        mine,
        [
            ("revoked".to_owned(), Some("logout".to_owned())),
            ("created".to_owned(), None)
        ]
    );
    // The first failure is recorded; the other 299 are being counted; and
    // the burst from one address is one token_guessing anomaly (issue 16),
    // recorded by the counting task a moment later.
    let mut theirs = Vec::new();
    for _ in 0..100 {
        theirs = events(other_key.clone()).await;
        if theirs.len() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        theirs,
        [
            ("anomaly".to_owned(), Some("token_guessing".to_owned())),
            ("verify_failed".to_owned(), Some("malformed".to_owned()))
        ]
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_keys_are_checked() {
    let (s, other_key) = launch_with_other_tenant(&[]);
    let (token, session) = s.login("erin").await;
    let id = session["id"].as_str().unwrap();
    let as_other = |method: Method, path: &str| s.client.request(method, s.url(path)).bearer_auth(&other_key);
    let verify = as_other(Method::POST, "/v1/sessions/verify").json(&json!({"token": token}));
    assert_problem(verify.send().await.unwrap(), 401, "invalid_token").await;
    assert_problem(
        as_other(Method::GET, &format!("/v1/sessions/{id}"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        as_other(Method::DELETE, &format!("/v1/sessions/{id}"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let listed: Value = as_other(Method::GET, "/v1/subjects/erin/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!({"sessions": []}));
    let wiped: Value = as_other(Method::DELETE, "/v1/subjects/erin/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wiped, json!({"revoked": 0}));
    let events: Value = as_other(Method::GET, "/v1/events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["subject"] != "erin")
    );
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": token})).await.status(),
        200,
        "untouched"
    );

    for auth in [
        None,
        Some("Bearer sdk_wrong"),
        Some("Basic abc"),
        Some(format!("Bearer {}x", s.key).as_str()),
    ] {
        let mut req = s.client.post(s.url("/v1/sessions")).json(&json!({"subject": "x"}));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        assert_problem(req.send().await.unwrap(), 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn operations_endpoints_need_no_key() {
    let s = launch().start();
    assert_eq!(s.client.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(s.client.get(s.url("/readyz")).send().await.unwrap().status(), 200);
    s.login("frank").await;
    let metrics = s.text("/metrics").await;
    for name in [
        "sessiond_http_requests_total",
        "sessiond_http_request_duration_seconds_bucket",
        "sessiond_store_operation_duration_seconds_bucket",
        "sessiond_events_total",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    assert!(metrics.contains(r#"route="/v1/sessions",method="POST",status="201""#));
}

#[tokio::test]
async fn invented_methods_share_one_metric_label() {
    let s = launch().start();
    for method in ["FOOA", "FOOB", "X-RANDOM"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let status = s.req(method, "/v1/sessions").send().await.unwrap().status();
        assert_eq!(status, 405);
    }
    let metrics = s.text("/metrics").await;
    assert!(metrics.contains(r#"method="other",status="405""#), "{metrics}");
    for invented in ["FOOA", "FOOB", "X-RANDOM"] {
        assert!(
            !metrics.contains(invented),
            "a client-chosen method became a label: {invented}"
        );
    }
}

/// `If-Match` per RFC 9110: `*`, lists, weak tags (never a strong match)
/// and malformed values (a failed condition).
#[tokio::test]
async fn if_match_takes_star_and_lists_and_fails_weak_or_malformed_tags() {
    let s = launch().start();
    let (_, session) = s.login("iris").await;
    let path = format!("/v1/sessions/{}", session["id"].as_str().unwrap());
    let patch = |tag: &'static str| {
        s.req(Method::PATCH, &path)
            .header("if-match", tag)
            .json(&json!({"data": {"tag": tag}}))
    };
    // (If-Match, version after: the expected new version or unchanged.)
    let table: [(&str, Option<u64>); 9] = [
        ("*", Some(2)),
        ("\"1\", \"2\"", Some(3)),
        ("\"9\", \"3\"", Some(4)),
        ("W/\"4\"", None),
        ("\"04\"", None),
        ("\"5\", \"6\"", None),
        ("4", None),
        ("*, \"4\"", None),
        ("", None),
    ];
    for (tag, expected) in table {
        let response = patch(tag).send().await.unwrap();
        match expected {
            Some(version) => {
                assert_eq!(response.status(), 200, "{tag}");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["session"]["version"], version, "{tag}");
            }
            None => {
                assert_eq!(response.status(), 412, "{tag}");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["code"], "version_conflict", "{tag}");
                assert_eq!(body["current_version"], 4, "{tag}");
            }
        }
    }
}

/// Theft detection through the API: the rotated-out token presented after
/// the (default, zero) grace answers 401 like any dead token, ends the
/// session for the new token too, and the audit log says why.
#[tokio::test]
async fn a_rotated_out_token_presented_again_ends_the_session_as_theft() {
    let s = launch().start();
    let (old, session) = s.login("alice").await;
    let rotated = s.post("/v1/sessions/rotate", json!({"token": old})).await;
    assert_eq!(rotated.status(), 200);
    let new: Value = rotated.json().await.unwrap();
    let new = new["token"].as_str().unwrap().to_owned();
    assert_eq!(s.post("/v1/sessions/verify", json!({"token": new})).await.status(), 200);

    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": old})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": new})).await,
        401,
        "invalid_token",
    )
    .await;
    let (status, events) = s
        .json(
            Method::GET,
            &format!("/v1/events?session_id={}", session["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let revoked: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{events}");
    assert_eq!(revoked[0]["reason"], "theft");
}

const CHROME_120: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const CHROME_131: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36";

/// Logs in from `203.0.113.7` with Chrome 120; the token and session id.
async fn login_from_home(s: &TestServer) -> (String, String) {
    let body = json!({"subject": "erin", "client": {"ip": "203.0.113.7", "user_agent": CHROME_120}});
    let (status, created) = s.json(Method::POST, "/v1/sessions", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["session"]["signals"], json!([]));
    assert_eq!(created["session"]["created_client"]["ip"], "203.0.113.7");
    let token = created["token"].as_str().unwrap().to_owned();
    (token, created["session"]["id"].as_str().unwrap().to_owned())
}

async fn verify_from(s: &TestServer, token: &str, ip: &str, user_agent: &str) -> (u16, Value) {
    let body = json!({"token": token, "client": {"ip": ip, "user_agent": user_agent}});
    let (status, verified) = s.json(Method::POST, "/v1/sessions/verify", Some(body)).await;
    (status.as_u16(), verified)
}

async fn anomalies(s: &TestServer, session_id: &str) -> Vec<String> {
    let path = format!("/v1/events?session_id={session_id}&kind=anomaly");
    let (status, events) = s.json(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{events}");
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect()
}

/// `bind_ip = "signal"` (the default): a new network is signalled in the
/// response and recorded once; the same /24 or a browser update is not.
#[tokio::test]
async fn a_new_network_is_signalled_under_the_default_binding() {
    let s = launch().start();
    let (token, id) = login_from_home(&s).await;
    let (status, same) = verify_from(&s, &token, "203.0.113.99", CHROME_131).await;
    assert_eq!((status, &same["session"]["signals"]), (200, &json!([])), "{same}");
    assert_eq!(anomalies(&s, &id).await, Vec::<String>::new());

    let (status, away) = verify_from(&s, &token, "198.51.100.4", CHROME_131).await;
    assert_eq!(status, 200, "{away}");
    assert_eq!(away["session"]["signals"], json!(["ip_changed"]));
    assert_eq!(away["session"]["created_client"]["ip"], "203.0.113.7");
    let (status, again) = verify_from(&s, &token, "198.51.100.4", CHROME_131).await;
    assert_eq!((status, &again["session"]["signals"]), (200, &json!(["ip_changed"])));
    assert_eq!(anomalies(&s, &id).await, ["ip_changed"], "recorded once");
    let metrics = s.text("/metrics").await;
    assert!(
        metrics.contains(r#"sessiond_events_total{kind="anomaly",reason="ip_changed"} 1"#),
        "{metrics}"
    );
    // The device list shows both clients: where it was created, where used.
    let (_, list) = s.json(Method::GET, "/v1/subjects/erin/sessions", None).await;
    assert_eq!(list["sessions"][0]["client"]["ip"], "198.51.100.4");
    assert_eq!(list["sessions"][0]["created_client"]["ip"], "203.0.113.7");
    assert_eq!(list["sessions"][0]["signals"], json!(["ip_changed"]));
}

/// `bind_ip = "revoke"`: a new network ends the session as
/// `hijack_suspected`; a change within the prefix does not.
#[tokio::test]
async fn a_new_network_ends_the_session_under_revoke() {
    let s = launch().env(&[("SESSIOND_POLICY_BIND_IP", "revoke")]).start();
    let (token, id) = login_from_home(&s).await;
    let (status, same) = verify_from(&s, &token, "203.0.113.250", CHROME_131).await;
    assert_eq!(status, 200, "{same}");

    let body = json!({"token": token, "client": {"ip": "198.51.100.4", "user_agent": CHROME_120}});
    let refused = s.post("/v1/sessions/verify", body).await;
    assert_problem(refused, 401, "invalid_token").await;
    let (status, _) = verify_from(&s, &token, "203.0.113.7", CHROME_120).await;
    assert_eq!(status, 401, "the owner's token is over too");
    assert_eq!(anomalies(&s, &id).await, ["ip_changed"]);
    let (_, revoked) = s
        .json(Method::GET, &format!("/v1/events?session_id={id}&kind=revoked"), None)
        .await;
    assert_eq!(revoked["events"][0]["reason"], "hijack_suspected", "{revoked}");
}
