//! Issue 14: session data, client IPs and User-Agents are sealed at rest.
//!
//! For each engine a server writes a session whose data holds a unique
//! marker, created with a known IP and User-Agent and then used with
//! another User-Agent (so the client at creation, `created_client`, and the
//! last-seen client differ), and the raw store (the redb file; every Redis
//! value by SCAN, HGETALL and DUMP; a pg_dump) is searched for all four:
//! none is there, yet the API reads them back. The same steps with
//! `encryption = "off"` find all four, so the search is shown to see what
//! it looks for. A record whose sealed data is
//! copied onto another session fails to open instead of showing it. The
//! access-token signing keys (issue 15) are searched for the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use sessiond_testkit::env::{required, unique_name};

use crate::support::{TestServer, assert_problem, launch, serve_must_fail};

const IP: &str = "198.51.100.203";
const AGENT: &str = "SealTest/1.0 (unique-agent-5e1b)";
/// The User-Agent the session is created with; a later use moves the
/// last-seen client to [`AGENT`], so this one is kept as the client at
/// creation alone (and in the `created` event).
const CREATED_AGENT: &str = "SealTest/1.0 (created-agent-93d7)";

/// Touches persist one second after the last: the verify that moves the
/// last-seen client away from the created one is written.
const TOUCH_SOON: (&str, &str) = ("SESSIOND_POLICY_TOUCH_INTERVAL", "1s");

/// Creates a session with a fresh marker in its data, from the client
/// [`IP`] and [`CREATED_AGENT`], then verifies it from [`IP`] and [`AGENT`]
/// once the touch interval ([`TOUCH_SOON`], which the server must have)
/// has passed, so the last-seen client is the latter; returns (marker,
/// token, session id).
async fn marked_session(server: &TestServer, subject: &str) -> (String, String, String) {
    let marker = unique_name("marker-");
    let (status, body) = server
        .json(
            Method::POST,
            "/v1/sessions",
            Some(json!({
                "subject": subject,
                "data": {"note": marker},
                "client": {"ip": IP, "user_agent": CREATED_AGENT},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let id = body["session"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = server
        .json(
            Method::POST,
            "/v1/sessions/verify",
            Some(json!({"token": token, "client": {"ip": IP, "user_agent": AGENT}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["client"]["user_agent"], AGENT, "{body}");
    (marker, token, id)
}

/// The API still reads the session (and its event) back intact.
async fn reads_back(server: &TestServer, token: &str, marker: &str) {
    reads_back_with_event_ip(server, token, marker, IP).await;
}

/// [`reads_back`], with the `created` event's IP expected as `event_ip`.
async fn reads_back_with_event_ip(server: &TestServer, token: &str, marker: &str, event_ip: impl Into<Value>) {
    let (status, body) = server
        .json(Method::POST, "/v1/sessions/verify", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["data"]["note"], marker);
    assert_eq!(body["session"]["client"]["ip"], IP);
    assert_eq!(body["session"]["client"]["user_agent"], AGENT);
    let (status, events) = server.json(Method::GET, "/v1/events?limit=50", None).await;
    assert_eq!(status, 200, "{events}");
    let created = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "created")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(created["client"]["ip"], event_ip.into(), "{events}");
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Found as text, or as the hex a dump shows `bytea` in (`data`).
fn shows(raw: &[u8], secret: &str) -> bool {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    contains(raw, secret) || contains(raw, &hex)
}

/// The member of the signing-key record (issue 15) that holds each
/// private key: sealed like session data.
const PRIVATE_KEY_MEMBER: &str = "\"pkcs8\"";

/// Asserts what the raw bytes of a store show of the session and of the
/// access-token signing keys.
fn assert_raw(raw: &[u8], marker: &str, sealed: bool, engine: &str) {
    for secret in [marker, IP, AGENT, CREATED_AGENT, PRIVATE_KEY_MEMBER] {
        assert_eq!(
            shows(raw, secret),
            !sealed,
            "{engine}: {secret} {} in the raw store",
            if sealed { "found" } else { "not found" }
        );
    }
}

const OFF: (&str, &str) = ("SESSIOND_STORE_ENCRYPTION_ENCRYPTION", "off");

#[tokio::test]
async fn embedded_store_file_holds_no_data_ip_or_user_agent() {
    for sealed in [true, false] {
        let env: &[(&str, &str)] = if sealed { &[] } else { &[OFF] };
        let server = launch().env(&[TOUCH_SOON]).store("embedded:./data").env(env).start();
        let (marker, token, _) = marked_session(&server, "alice").await;
        reads_back(&server, &token, &marker).await;
        let dir = server.stop();
        let raw = std::fs::read(dir.path().join("data").join("sessions.redb")).unwrap();
        assert_raw(&raw, &marker, sealed, "embedded");
        let key = dir.path().join("data").join("data-key");
        if sealed {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the generated key's mode");
            // A restart opens what the first run sealed.
            let again = launch().env(&[TOUCH_SOON]).store("embedded:./data").dir(dir).start();
            reads_back(&again, &token, &marker).await;
        } else {
            assert!(!key.exists(), "encryption off made a key");
        }
    }
}

/// The test Redis server's URL and the `redis-cli` beside its
/// `redis-server`: `None` after a note outside CI, a failure in CI.
fn redis_and_cli() -> Option<(String, PathBuf)> {
    let what = "the sealed-at-rest test over Redis";
    let url = required("TEST_REDIS_URL", what)?;
    let server = PathBuf::from(required("TEST_REDIS_SERVER_BIN", what)?);
    Some((url, server.with_file_name("redis-cli")))
}

fn redis_cli_run(cli: &Path, url: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cli)
        .args(["-u", url, "--raw"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every key and value under `prefix`, as `HGETALL`/`SMEMBERS`/… and
/// `DUMP` show them. Read by a script on the server: token keys end with
/// raw bytes, which a list of key names on redis-cli's output would split.
fn redis_raw(cli: &Path, url: &str, prefix: &str) -> Vec<u8> {
    let dump = r#"local out, count, cursor = {}, 0, '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local kind = redis.call('TYPE', key).ok
    local values = {}
    if kind == 'hash' then values = redis.call('HGETALL', key)
    elseif kind == 'set' then values = redis.call('SMEMBERS', key)
    elseif kind == 'zset' then values = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    elseif kind == 'list' then values = redis.call('LRANGE', key, 0, -1)
    elseif kind == 'string' then values = {redis.call('GET', key)}
    end
    count = count + 1
    out[#out + 1] = key
    for _, value in ipairs(values) do out[#out + 1] = value end
    out[#out + 1] = redis.call('DUMP', key)
  end
until cursor == '0'
return {count, table.concat(out, '\n')}"#;
    let raw = redis_cli_run(cli, url, &["EVAL", dump, "0", &format!("{prefix}*")]);
    let line = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let count: usize = String::from_utf8_lossy(&raw[..line]).trim().parse().unwrap();
    assert!(count > 2, "the scan found the session's keys: {count}");
    raw[line..].to_vec()
}

#[tokio::test]
async fn redis_values_hold_no_data_ip_or_user_agent() {
    let Some((server, cli)) = redis_and_cli() else { return };
    for sealed in [true, false] {
        let prefix = format!("{}:", unique_name("sd-sealed-"));
        let store = format!("{server}/0?prefix={prefix}");
        let env: &[(&str, &str)] = if sealed { &[] } else { &[OFF] };
        let node = launch().env(&[TOUCH_SOON]).store(&store).env(env).start();
        let (marker, token, _) = marked_session(&node, "alice").await;
        reads_back(&node, &token, &marker).await;
        assert_raw(&redis_raw(&cli, &server, &prefix), &marker, sealed, "redis");
    }
}

#[tokio::test]
async fn redis_record_copied_onto_another_session_does_not_open() {
    let Some((server, cli)) = redis_and_cli() else { return };
    let prefix = format!("{}:", unique_name("sd-sealed-"));
    let node = launch()
        .env(&[TOUCH_SOON])
        .store(&format!("{server}/0?prefix={prefix}"))
        .start();
    let (_, _, alice) = marked_session(&node, "alice").await;
    let (_, mallory_token, mallory) = marked_session(&node, "mallory").await;

    // Mallory's record gets Alice's sealed data, as someone with write
    // access to Redis would copy it. The id's bucket `{prefix}ids:<first
    // two characters>` holds the record's token hash; the record (layout
    // 3), under `{prefix}t:<the hash's 32 bytes>`, ends with its data's
    // JSON, which is `{"$sealed": …}` when sealed.
    let bucket = |id: &str| format!("{prefix}ids:{}", &id[..2]);
    let splice = r#"local function record(bucket, id)
  return ARGV[1] .. 't:' .. redis.call('HGET', bucket, id)
end
local from_key, to_key = record(KEYS[1], ARGV[2]), record(KEYS[2], ARGV[3])
local from, to = redis.call('GET', from_key), redis.call('GET', to_key)
local a, m = string.find(from, '{"$sealed"', 1, true), string.find(to, '{"$sealed"', 1, true)
redis.call('SET', to_key, string.sub(to, 1, m - 1) .. string.sub(from, a), 'KEEPTTL')
return 1"#;
    let (from, to) = (bucket(&alice), bucket(&mallory));
    let spliced = redis_cli_run(
        &cli,
        &server,
        &["EVAL", splice, "2", &from, &to, &prefix, &alice, &mallory],
    );
    assert_eq!(String::from_utf8(spliced).unwrap().trim(), "1");

    let response = node
        .req(Method::POST, "/v1/sessions/verify")
        .json(&json!({"token": mallory_token}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 500, "internal").await;
    let response = node
        .req(Method::GET, &format!("/v1/sessions/{alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the original still opens");
}

#[tokio::test]
async fn postgres_dump_holds_no_data_ip_or_user_agent() {
    let (Some(server), Some(bin_dir)) = (
        required("TEST_POSTGRES_URL", "the sealed-at-rest test over PostgreSQL"),
        required("TEST_POSTGRES_BIN_DIR", "the sealed-at-rest test over PostgreSQL"),
    ) else {
        return;
    };
    for sealed in [true, false] {
        let schema = unique_name("sd_sealed_");
        let store = format!("{server}&schema={schema}");
        let env: &[(&str, &str)] = if sealed { &[] } else { &[OFF] };
        let node = launch().env(&[TOUCH_SOON]).store(&store).env(env).start();
        let (marker, token, _) = marked_session(&node, "alice").await;
        reads_back(&node, &token, &marker).await;
        let out = Command::new(Path::new(&bin_dir).join("pg_dump"))
            .args(["--dbname", &server, "--schema", &schema, "--data-only"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(contains(&out.stdout, "COPY"), "the dump has the tables' rows");
        assert_raw(&out.stdout, &marker, sealed, "postgres");
    }
}

#[test]
fn a_shared_store_without_a_key_is_refused_with_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::support::BIN);
    child
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "redis://127.0.0.1:1/0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG");
    let out = child.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[store.encryption]\nkey_files = [\"/etc/sessiond/data-key\"]"),
        "{stderr}"
    );
    assert!(stderr.contains("encryption = \"off\""), "{stderr}");
    // With a key the same start gets as far as the engine.
    let refused = serve_must_fail("redis://127.0.0.1:1/0");
    assert!(!refused.contains("[store.encryption]"), "{refused}");
}

/// Key rotation: a new key first, `sessiond store reseal`, then the old key
/// can go; before the reseal, a server without the old key cannot open the
/// session (so the reseal is what makes it readable).
#[tokio::test]
async fn reseal_moves_sessions_to_a_new_key_so_the_old_one_can_go() {
    let server = launch().env(&[TOUCH_SOON]).store("embedded:./data").start();
    let (marker, token, _) = marked_session(&server, "alice").await;
    let dir = server.stop();
    let old_key = dir.path().join("data").join("data-key");
    let new_key = dir.path().join("new-key");
    std::fs::write(&new_key, sessiond_core::sealing::Keyring::generate_key_text().unwrap()).unwrap();
    let only_new = format!("[{:?}]", new_key.display().to_string());
    let both = format!(
        "[{:?}, {:?}]",
        new_key.display().to_string(),
        old_key.display().to_string()
    );

    let without_old = launch()
        .env(&[TOUCH_SOON])
        .store("embedded:./data")
        .env(&[("SESSIOND_STORE_ENCRYPTION_KEY_FILES", &only_new)])
        .dir(dir)
        .start();
    let response = without_old
        .req(Method::POST, "/v1/sessions/verify")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 500, "internal").await;
    // The signing keys are sealed by the old key too: the node serves, but
    // mints no access token.
    let response = without_old
        .req(Method::POST, "/v1/sessions/access-token")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 500, "internal").await;
    let dir = without_old.stop();

    let reseal = |env: &str| {
        crate::support::sessiond(
            dir.path(),
            &["store", "reseal", "--store", "embedded:./data"],
            &[("SESSIOND_STORE_ENCRYPTION_KEY_FILES", env)],
        )
    };
    let out = reseal(&only_new);
    assert!(!out.status.success(), "a reseal without the old key succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not open") && stderr.contains("not configured"),
        "{stderr}"
    );

    let out = reseal(&both);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The key admin `keys create` and this test's start made: one session.
    assert!(stdout.contains("resealed 1 of 1 sessions under data key"), "{stdout}");
    assert!(stdout.contains("resealed the access-token signing keys"), "{stdout}");
    let again = reseal(&both);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("resealed 0 of 1 sessions"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    let after = launch()
        .env(&[TOUCH_SOON])
        .store("embedded:./data")
        .env(&[("SESSIOND_STORE_ENCRYPTION_KEY_FILES", &only_new)])
        .dir(dir)
        .start();
    // Events are not resealed: their clients stay sealed by the old key,
    // and read as unknown once it is gone (they age out with retention).
    reads_back_with_event_ip(&after, &token, &marker, Value::Null).await;
    let (status, minted) = after
        .json(Method::POST, "/v1/sessions/access-token", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200, "the resealed signing keys open: {minted}");
}
