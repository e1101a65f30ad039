//! The default embedded store: restarts keep sessions, admin commands and a
//! running server never share the files.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{assert_problem, launch, sessiond};

const STORE: &str = "embedded:./sessiond-data";

#[tokio::test]
async fn a_restart_keeps_sessions_data_and_events() {
    let s = launch().store(STORE).start();
    let (old, session) = s.login("alice").await;
    let id = session["id"].as_str().unwrap().to_owned();
    let rotated: Value = s
        .post("/v1/sessions/rotate", json!({"token": old}))
        .await
        .json()
        .await
        .unwrap();
    let token = rotated["token"].as_str().unwrap().to_owned();
    let patch = s
        .req(Method::PATCH, &format!("/v1/sessions/{id}"))
        .json(&json!({"data": {"cart": [3]}}));
    assert_eq!(patch.send().await.unwrap().status(), 200);
    let (gone, _) = s.login("alice").await;
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": gone})).await.status(),
        204
    );

    let dir = s.stop();
    let s = launch().dir(dir).store(STORE).start();
    let verified: Value = s
        .post("/v1/sessions/verify", json!({"token": token}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["session"]["id"], id.as_str());
    assert_eq!(verified["session"]["data"], json!({"cart": [3]}));
    assert_eq!(verified["session"]["version"], 3);
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": old})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": gone})).await,
        401,
        "invalid_token",
    )
    .await;
    let events: Value = s
        .req(Method::GET, "/v1/events?subject=alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["created", "rotated", "data_updated", "revoked"] {
        assert!(kinds.contains(&kind), "{kind} lost across the restart: {kinds:?}");
    }
}

#[tokio::test]
async fn admin_commands_refuse_a_store_held_by_a_server_and_work_after_it_stops() {
    let s = launch().store(STORE).start();
    let (token, _) = s.login("bob").await;
    let started = Instant::now();
    let out = sessiond(
        s.dir.path(),
        &["sessions", "list", "--subject", "bob", "--store", STORE],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another sessiond process"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "the admin command hung");
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": token})).await.status(),
        200,
        "server unaffected"
    );

    let dir = s.stop();
    let listed = sessiond(
        dir.path(),
        &["sessions", "list", "--subject", "bob", "--store", STORE],
        &[],
    );
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let line: Value = serde_json::from_slice(listed.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["subject"], "bob");
    let revoked = sessiond(
        dir.path(),
        &["sessions", "revoke", "--subject", "bob", "--store", STORE],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&revoked.stdout).trim(), "revoked 1");

    // An earlier version's log, left in the data directory (a recent event:
    // older ones than `events.retention` are pruned once imported).
    let legacy = dir.path().join("sessiond-data").join("events.jsonl");
    // The server reads the system clock; so does this.
    let at = sessiond_core::Clock::now(&sessiond_core::SystemClock) - time::Duration::minutes(5);
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let line = format!(
        r#"{{"at":"{at}","kind":{{"kind":"touched"}},"tenant":"default","session_id":null,"subject":"legacy","client":null}}"#
    );
    std::fs::write(&legacy, format!("{line}\n")).unwrap();

    let s = launch().dir(dir).store(STORE).start();
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": token})).await,
        401,
        "invalid_token",
    )
    .await;
    // The command's revocation was written to the store before it closed it.
    let (status, events) = s.json(Method::GET, "/v1/events?subject=bob&kind=revoked", None).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["events"][0]["reason"], "admin", "{events}");
    // The old log was imported once and put aside.
    let (_, imported) = s.json(Method::GET, "/v1/events?subject=legacy", None).await;
    assert_eq!(imported["events"].as_array().unwrap().len(), 1, "{imported}");
    assert_eq!(imported["events"][0]["kind"], "touched");
    assert!(!legacy.exists() && legacy.with_extension("jsonl.imported").exists());
}

/// Issue 13: on an embedded store a running server holds, `sessiond keys …`
/// and `sessiond users …` work through the server's admin routes (the
/// endpoint it publishes in the store's directory), take effect at once,
/// and leave nothing behind when the server stops.
#[tokio::test]
async fn keys_and_users_commands_work_through_a_running_server() {
    let s = launch().store(STORE).start();
    let endpoint = s.data_dir().join("admin-endpoint");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&endpoint).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the endpoint file is readable by others");

    let made = sessiond(
        s.dir.path(),
        &["keys", "create", "--name", "shop", "--store", STORE],
        &[],
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let stdout = String::from_utf8(made.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    let works = s
        .client
        .get(s.url("/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200, "a key made through the server works at once");
    let listed = String::from_utf8(sessiond(s.dir.path(), &["keys", "list", "--store", STORE], &[]).stdout).unwrap();
    let line = listed
        .lines()
        .find(|l| l.ends_with("\tshop"))
        .expect("the new key is listed");
    let id = line.split('\t').next().unwrap().to_owned();
    let revoked = sessiond(s.dir.path(), &["keys", "revoke", &id, "--store", STORE], &[]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let refused = s
        .client
        .get(s.url("/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a key revoked through the server stops at once");

    let added = crate::support::users_command(s.dir.path(), STORE, &["add", "dora", "--password-stdin"], "long enough");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let again = crate::support::users_command(s.dir.path(), STORE, &["add", "dora", "--password-stdin"], "long enough");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );
    s.login("dora").await;
    let disabled = sessiond(s.dir.path(), &["users", "disable", "dora", "--store", STORE], &[]);
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    let (_, sessions) = s.json(reqwest::Method::GET, "/v1/subjects/dora/sessions", None).await;
    assert_eq!(
        sessions["sessions"],
        json!([]),
        "disabling through the server ended the session"
    );

    let dir = s.stop();
    assert!(
        !dir.path().join("sessiond-data/admin-endpoint").exists(),
        "the endpoint outlived the server"
    );
    let listed = String::from_utf8(sessiond(dir.path(), &["keys", "list", "--store", STORE], &[]).stdout).unwrap();
    assert!(
        !listed.contains("local-cli"),
        "the command line's keys outlived the server: {listed}"
    );
    let users = String::from_utf8(sessiond(dir.path(), &["users", "list", "--store", STORE], &[]).stdout).unwrap();
    assert!(users.contains("dora\tdisabled"), "{users}");
}
