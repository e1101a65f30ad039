//! The multi-node scenarios, each a function of the [`Engine`] it runs on
//! (see `for_each_engine!` in the parent module for the tests).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_testkit::server::{Api, send_json};
use time::format_description::well_known::Rfc3339;

pub use super::access_tokens::a_revocation_on_one_node_reaches_a_verifier_following_another_within_a_second;
use super::{Engine, nodes, verify};
use crate::support::{TestServer, assert_problem};

/// Sessions made on one node are seen by the others at once, and so is
/// every way of ending them: revocation, rotation, "sign out everywhere
/// else".
pub async fn created_on_one_node_verified_on_another_revoked_on_a_third(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 3, &[]);
    let (token, session) = n[0].login("alice").await;

    let verified = verify(&n[1], &token).await;
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["session"]["id"], session["id"]);

    let (status, _) = n[2]
        .json(Method::POST, "/v1/sessions/revoke", Some(json!({ "token": token })))
        .await;
    assert_eq!(status, 204);
    // The very next verify on every node refuses it (node caches are off
    // by default; multi_node::redis_cache checks a Redis node with one).
    for node in &n {
        assert_problem(verify(node, &token).await, 401, "invalid_token").await;
    }

    // Rotation on one node kills the old token on every node, and the old
    // token used again (on another node) ends the session as theft there
    // too: the new token dies on every node.
    let (old, _) = n[1].login("bob").await;
    let (status, rotated) = n[2]
        .json(Method::POST, "/v1/sessions/rotate", Some(json!({ "token": old })))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["token"].as_str().unwrap();
    assert_eq!(verify(&n[0], new).await.status(), 200);
    for node in &n {
        assert_problem(verify(node, &old).await, 401, "invalid_token").await;
    }
    for node in &n {
        assert_problem(verify(node, new).await, 401, "invalid_token").await;
    }

    // Subject-wide revocation on one node ends the sessions made on others,
    // except the one it was told to keep (alice's revoked one is not
    // counted again).
    let (on_first, _) = n[0].login("alice").await;
    let (on_second, kept) = n[1].login("alice").await;
    let (on_third, _) = n[2].login("alice").await;
    let kept = kept["id"].as_str().unwrap();
    let (status, revoked) = n[2]
        .json(
            Method::DELETE,
            &format!("/v1/subjects/alice/sessions?except={kept}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["revoked"], 2);
    for node in &n {
        assert_problem(verify(node, &on_first).await, 401, "invalid_token").await;
        assert_problem(verify(node, &on_third).await, 401, "invalid_token").await;
        assert_eq!(verify(node, &on_second).await.status(), 200);
    }
}

/// Logins of one subject racing on three nodes (spread round-robin), all
/// spawned at once; the answers in whatever order they come.
async fn racing_logins(nodes: &[Api], subject: &str, count: usize) -> Vec<(StatusCode, Value)> {
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..count {
        let (node, body) = (nodes[i % nodes.len()].clone(), json!({ "subject": subject }));
        logins.spawn(async move { node.json(Method::POST, "/v1/sessions", Some(body)).await });
    }
    logins.join_all().await
}

/// The number of live sessions of `subject` as `node` lists them.
async fn listed(node: &Api, subject: &str) -> usize {
    let path = format!("/v1/subjects/{subject}/sessions");
    let (status, listed) = node.json(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{listed}");
    listed["sessions"].as_array().unwrap().len()
}

/// With `deny`, exactly the limit of racing logins succeed, the others are
/// refused with `session_limit`, and every node lists exactly that many.
pub async fn a_subject_limit_holds_when_logins_race_across_nodes(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let env = [
        ("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "3"),
        ("SESSIOND_POLICY_ON_SESSION_LIMIT", "deny"),
    ];
    let n = nodes(&store, 3, &env);
    let apis: Vec<Api> = n.iter().map(|node| node.api()).collect();
    let mut created = 0;
    for (status, body) in racing_logins(&apis, "bob", 30).await {
        match status.as_u16() {
            201 => created += 1,
            409 if body["code"] == "session_limit" => {}
            other => panic!("login answered {other}: {body}"),
        }
    }
    assert_eq!(created, 3);
    for node in &apis {
        assert_eq!(listed(node, "bob").await, 3);
    }
    let refused = n[2].post("/v1/sessions", json!({ "subject": "bob" })).await;
    assert_problem(refused, 409, "session_limit").await;
}

/// With `evict_oldest`, every racing login succeeds and exactly the limit
/// of them stay valid, on every node.
pub async fn evicting_the_oldest_keeps_the_limit_when_logins_race_across_nodes(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let env = [
        ("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "2"),
        ("SESSIOND_POLICY_ON_SESSION_LIMIT", "evict_oldest"),
    ];
    let n = nodes(&store, 3, &env);
    let apis: Vec<Api> = n.iter().map(|node| node.api()).collect();
    let mut tokens = Vec::new();
    for (status, body) in racing_logins(&apis, "carol", 24).await {
        assert_eq!(status, 201, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    let mut valid = 0;
    for (i, token) in tokens.iter().enumerate() {
        match verify(&n[i % 3], token).await.status().as_u16() {
            200 => valid += 1,
            401 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(valid, 2);
    for node in &apis {
        assert_eq!(listed(node, "carol").await, 2);
    }
}

/// One read-modify-write of session `id` through `node`: adds `entry` and
/// one to the counter, conditionally on the version read. `true` when it
/// landed, `false` on a reported conflict.
async fn add_entry(node: &Api, id: &str, entry: &str) -> bool {
    let path = format!("/v1/sessions/{id}");
    let (status, read) = node.json(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{read}");
    let version = read["session"]["version"].as_u64().unwrap();
    let mut data = read["session"]["data"].as_object().cloned().unwrap_or_default();
    let count = data.get("count").and_then(Value::as_u64).unwrap_or(0);
    data.insert("count".to_owned(), json!(count + 1));
    data.insert(entry.to_owned(), json!(true));
    let request = node
        .req(Method::PATCH, &path)
        .header("If-Match", format!("\"{version}\""));
    let (status, body) = send_json(request, Some(json!({ "data": data }))).await;
    match status.as_u16() {
        200 => true,
        412 => {
            assert_eq!(body["code"], "version_conflict");
            false
        }
        other => panic!("PATCH answered {other}: {body}"),
    }
}

/// Writers on every node each add entries to one session's data by
/// compare-and-set, retrying on conflict: every entry and every increment
/// is there at the end, and the version counts every write.
pub async fn concurrent_data_updates_across_nodes_lose_nothing(engine: Engine) {
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 3, &[]);
    let (_, session) = n[0].login("dave").await;
    let id = session["id"].as_str().unwrap().to_owned();
    let start_version = session["version"].as_u64().unwrap();
    assert_eq!(start_version, 1);

    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (node, id) = (n[w % 3].api(), id.clone());
        writers.spawn(async move {
            let mut conflicts = 0usize;
            for item in 0..EACH {
                // Bounded: each attempt either lands or lost to one that did.
                let mut landed = false;
                for _attempt in 0..1000 {
                    if add_entry(&node, &id, &format!("w{w}-{item}")).await {
                        landed = true;
                        break;
                    }
                    conflicts += 1;
                }
                assert!(landed, "writer {w} never got item {item} in");
            }
            conflicts
        });
    }
    let conflicts: usize = writers.join_all().await.into_iter().sum();
    eprintln!("{conflicts} conflicts reported and retried");

    let (status, read) = n[1].json(Method::GET, &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(status, 200, "{read}");
    let data = read["session"]["data"].as_object().unwrap();
    let entries: BTreeSet<&str> = data.keys().map(String::as_str).filter(|k| *k != "count").collect();
    let expected: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..EACH).map(move |i| format!("w{w}-{i}")))
        .collect();
    assert_eq!(entries, expected.iter().map(String::as_str).collect::<BTreeSet<_>>());
    let writes = u64::try_from(WRITERS * EACH).unwrap();
    assert_eq!(data["count"], writes);
    assert_eq!(read["session"]["version"].as_u64().unwrap(), start_version + writes);
}

/// Issue 13: the login throttle counts in the store, so failed sign-ins
/// spread over the nodes add up. Five free failures and then four more at
/// alice, spread over three nodes, lock her account on every node, even
/// for the right password. With counters per process no node saw more
/// than three and each let her in.
///
/// The first failure past the free ones locks for 1 s, and each later one
/// (once the lock has passed) for twice as long. A 1 s window for the last
/// three sign-ins was once missed on a loaded CI machine, so the test
/// waits out the 1, 2 and 4 s locks with failures on each node in turn and
/// signs in under the 8 s one: the window holds the three posts with room
/// to spare. Waiting longer than a lock never loosens what is checked.
pub async fn failed_logins_spread_over_nodes_lock_the_account_on_all(engine: Engine) {
    use crate::portal::{Browser, PASSWORD};
    use crate::support::add_user;

    let Some(store) = engine.store() else { return };
    // Dev mode: the test browser speaks plain HTTP.
    let n = nodes(&store, 3, &[("SESSIOND_SERVER_DEV", "true")]);
    add_user(n[0].dir.path(), &store, "alice", PASSWORD);

    let mut guesser: Vec<Browser> = n.iter().map(|node| Browser::new(node, "guesser")).collect();
    for round in 0..6 {
        let r = guesser[round % 3].login("alice", "wrong password", false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {round}");
    }
    let mut owner: Vec<Browser> = n.iter().map(|node| Browser::new(node, "alice")).collect();
    let mut forms = Vec::new();
    for browser in &mut owner {
        forms.push(browser.csrf("/login").await);
    }
    // Past each lock (1, 2, 4 s), one more failure on the next node.
    for (round, lock_secs) in [1u64, 2, 4].into_iter().enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(lock_secs * 1000 + 250)).await;
        let r = guesser[round % 3].login("alice", "wrong password", false).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "failure after the {lock_secs} s lock"
        );
    }
    for (node, (browser, csrf)) in owner.iter_mut().zip(&forms).enumerate() {
        let fields = [
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
        ];
        let r = browser.submit("/login", &fields).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "node {node} let alice in");
        assert!(r.headers().contains_key("retry-after"), "node {node}");
    }
}

/// The status of `GET /v1/events` on `node` with `key`.
async fn status_with_key(node: &TestServer, key: &str) -> StatusCode {
    let response = node.client.get(node.url("/v1/events")).bearer_auth(key).send().await;
    response.expect("the node answers").status()
}

/// Issue 13: keys live in the store. A key made through one node works on
/// the others within a poll of their key rings; one deleted through a
/// second node stops working on every node within a second.
pub async fn a_key_made_on_one_node_works_on_all_and_dies_everywhere_within_a_second(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 3, &[]);
    let (status, made) = n[0]
        .json(Method::POST, "/v1/admin/keys", Some(json!({"name": "shop"})))
        .await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(
        status_with_key(&n[0], &key).await,
        StatusCode::OK,
        "the making node knows it at once"
    );
    // Each node polls the store's key version every 250 ms: 20 × 50 ms is a second.
    for node in &n[1..] {
        super::wait_for("the new key on another node", 20, async || {
            status_with_key(node, &key).await == StatusCode::OK
        })
        .await;
    }
    let (status, listed) = n[2].json(Method::GET, "/v1/admin/keys", None).await;
    assert_eq!(status, 200);
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );

    let deleted = n[1]
        .req(Method::DELETE, &format!("/v1/admin/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    for node in &n {
        super::wait_for("the deleted key to stop working", 20, async || {
            status_with_key(node, &key).await == StatusCode::UNAUTHORIZED
        })
        .await;
    }
}

/// `GET /v1/events` (`query` after `?`) on `node`; the events.
async fn events_on(node: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = node.json(Method::GET, &format!("/v1/events?{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().expect("an events array").clone()
}

/// Audit events live in the store: sessions made and ended on each of three
/// nodes give one log, the same from every node, newest first; `before`
/// pages through it, hopping from node to node, without gaps or repeats.
pub async fn events_of_every_node_read_the_same_from_any_node(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 3, &[]);
    let mut sessions = Vec::new();
    for (i, node) in n.iter().enumerate() {
        for round in 0..2 {
            let (token, session) = node.login(&format!("user-{i}-{round}")).await;
            let (status, _) = node
                .json(Method::POST, "/v1/sessions/revoke", Some(json!({ "token": token })))
                .await;
            assert_eq!(status, 204);
            sessions.push(session["id"].as_str().unwrap().to_owned());
        }
    }
    // A query first writes what its own node has queued: one round over
    // every node puts every node's events in the store.
    for node in &n {
        events_on(node, "limit=1000").await;
    }
    let log = events_on(&n[0], "limit=1000").await;
    for node in &n[1..] {
        assert_eq!(
            events_on(node, "limit=1000").await,
            log,
            "another node reads another log"
        );
    }
    for id in &sessions {
        let kinds: Vec<&str> = log
            .iter()
            .filter(|e| e["session_id"] == id.as_str())
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["revoked", "created"], "session {id}");
    }
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "not newest first: {ids:?}");
    assert!(log.len() >= 12, "{log:?}");
    // An id begins with its event's time, in µs: ids in order are times in order.
    for event in &log {
        let at = time::OffsetDateTime::parse(event["at"].as_str().unwrap(), &Rfc3339).unwrap();
        let micros = (at.unix_timestamp_nanos() / 1_000).to_string();
        assert!(
            event["id"]
                .as_str()
                .unwrap()
                .trim_start_matches('0')
                .starts_with(&micros),
            "{event}"
        );
    }

    let mut walked = Vec::new();
    let mut before = String::new();
    for hop in 0.. {
        let page = events_on(&n[hop % 3], &format!("limit=5{before}")).await;
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 5);
        before = format!("&before={}", last["id"].as_str().unwrap());
        walked.extend(page);
    }
    assert_eq!(walked, log, "paging lost or repeated events");

    let revoked = events_on(&n[1], "kind=revoked&limit=1000").await;
    assert_eq!(revoked.len(), sessions.len());
    assert!(
        revoked
            .iter()
            .all(|e| e["kind"] == "revoked" && e["reason"] == "logout")
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Issue 13: a node over a shared store keeps nothing in files. After
/// sessions, events, a key made and a user added through it, its directory
/// (working directory and data directory) holds no file at all.
pub async fn a_node_over_a_shared_store_writes_no_file(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 1, &[]);
    let (token, _) = n[0].login("alice").await;
    assert_eq!(verify(&n[0], &token).await.status(), 200);
    let (status, _) = n[0]
        .json(Method::POST, "/v1/sessions/revoke", Some(json!({ "token": token })))
        .await;
    assert_eq!(status, 204);
    let (status, _) = n[0].json(Method::POST, "/v1/admin/keys", Some(json!({}))).await;
    assert_eq!(status, 201);
    let (status, body) = n[0]
        .json(
            Method::POST,
            "/v1/admin/users",
            Some(json!({"username": "bob", "password": "long enough"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, events) = n[0].json(Method::GET, "/v1/events", None).await;
    assert_eq!(status, 200);
    assert!(!events["events"].as_array().unwrap().is_empty());
    let files = files_under(n[0].dir.path());
    assert!(files.is_empty(), "a node over {engine:?} wrote {files:?}");
}

/// Issue 16: a burst of invalid tokens for one client address, spread over
/// two nodes, adds up in the store and records one `token_guessing`
/// anomaly; a smaller burst from another address records none.
pub async fn token_guessing_spread_over_two_nodes_is_recorded_once(engine: Engine) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 2, &[("SESSIOND_EVENTS_TOKEN_GUESSING_THRESHOLD", "10")]);
    let guess = |ip: &'static str| json!({"token": format!("sd_{}", "A".repeat(43)), "client": {"ip": ip}});
    // 6 + 6 from one address: 12, over the threshold only together.
    // 5 + 4 from another: 9, under it.
    for (node, ip, times) in [
        (&n[0], "203.0.113.9", 6),
        (&n[1], "203.0.113.9", 6),
        (&n[0], "198.51.100.4", 5),
        (&n[1], "198.51.100.4", 4),
    ] {
        for _ in 0..times {
            let response = node.post("/v1/sessions/verify", guess(ip)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let anomalies = async |node: &TestServer| events_on(node, "kind=anomaly").await;
    super::wait_for("the token_guessing anomaly", 100, async || {
        !anomalies(&n[1]).await.is_empty()
    })
    .await;
    // Give a second event, if there were to be one, time to be written.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for node in &n {
        let found = anomalies(node).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["reason"], "token_guessing");
        assert_eq!(found[0]["client"]["ip"], "203.0.113.9");
        assert_eq!(found[0]["count"], 10);
    }
}

/// Issue 16: failed portal sign-ins at one account from one address,
/// spread over two nodes, add up in the store and record one `login_burst`
/// anomaly naming both; fewer at another account record none. Each node
/// counts its failures in order, so a marker burst on each node, once
/// recorded, shows that everything before it was counted.
pub async fn login_burst_spread_over_two_nodes_is_recorded_once(engine: Engine) {
    use crate::portal::Browser;

    let Some(store) = engine.store() else { return };
    // Dev mode: the test browser speaks plain HTTP. Six failures stay
    // within an account's free ones and the address's: every one is 401.
    let env = [
        ("SESSIOND_SERVER_DEV", "true"),
        ("SESSIOND_EVENTS_LOGIN_BURST_THRESHOLD", "6"),
    ];
    let n = nodes(&store, 2, &env);
    // A burst counts within one minute: start it with time to spare.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let second = since_epoch.as_secs() % 60;
    if second > 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second)).await;
    }
    let mut browsers: Vec<Browser> = n.iter().map(|node| Browser::new(node, "guesser")).collect();
    // 3 + 3 at alice: 6, the threshold only together (the address too);
    // then 5 at bob (the address, past it already, adds no event).
    for (account, times) in [("alice", 6), ("bob", 5)] {
        for i in 0..times {
            let r = browsers[i % 2].login(account, "wrong password", false).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{account} {i}");
        }
    }
    for (i, browser) in browsers.iter_mut().enumerate() {
        let marker = format!("marker{i}");
        // The address passes its free failures here: refused attempts
        // (429) count as failed sign-ins too.
        for _ in 0..6 {
            let r = browser.login(&marker, "wrong password", false).await;
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status()),
                "{}",
                r.status()
            );
        }
    }
    let anomalies = async |node: &TestServer| events_on(node, "kind=anomaly").await;
    super::wait_for("both markers' login_burst anomalies", 200, async || {
        let found = anomalies(&n[0]).await;
        ["marker0", "marker1"]
            .iter()
            .all(|m| found.iter().any(|e| e["subject"] == *m))
    })
    .await;
    for node in &n {
        let found: Vec<Value> = anomalies(node)
            .await
            .into_iter()
            .filter(|e| !e["subject"].as_str().is_some_and(|s| s.starts_with("marker")))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["reason"], "login_burst");
        assert_eq!(found[0]["subject"], "alice");
        assert_eq!(found[0]["client"]["ip"], "127.0.0.1");
        assert_eq!(found[0]["count"], 6);
    }
}

/// `GET /v1/events/stream` reads the store: a stream on one node carries
/// the events of a session made and ended on another, in order.
pub async fn events_made_on_one_node_reach_a_stream_on_another(engine: Engine) {
    use crate::event_stream::{EventStream, created};

    let Some(store) = engine.store() else { return };
    let n = nodes(&store, 2, &[]);
    let mut stream = EventStream::open(&n[0], &n[0].key, "", None).await;
    let (token, session) = n[1].login("alice").await;
    let revoked = n[1].post("/v1/sessions/revoke", json!({ "token": token })).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let seen = stream
        .until(|e| e.name == "revoked" && e.data["session_id"] == session["id"])
        .await;
    let made = seen.iter().position(|e| created("alice")(e));
    assert!(
        made.is_some_and(|at| at + 1 < seen.len()),
        "created, then revoked: {seen:?}"
    );
}
