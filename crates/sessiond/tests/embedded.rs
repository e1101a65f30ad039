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
