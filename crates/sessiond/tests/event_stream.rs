//! `GET /v1/events/stream` over the real server (API.md, "Webhooks and the
//! event stream"): the tenant's events as they happen, resumable with
//! `Last-Event-ID`, ended with its key. The keep-alive comment is checked
//! by a unit test of the stream (`api::stream`); the revocation stream,
//! which shares the loop, is tested in `access_tokens.rs`. Events made on
//! another node: `multi_node::scenarios`.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, launch};

/// One event read from a stream.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    pub name: String,
    pub id: String,
    pub data: Value,
}

/// Reads a `text/event-stream` response event by event.
pub struct EventStream {
    response: Response,
    buffer: String,
}

impl EventStream {
    /// Opens `/v1/events/stream` (`query` after `?`) on `s` with `key`,
    /// resuming after `last_event_id` if given; it must answer 200.
    pub async fn open(s: &TestServer, key: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = s
            .client
            .get(s.url(&format!("/v1/events/stream?{query}")))
            .bearer_auth(key)
            .timeout(Duration::from_secs(60));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); fails the test after
    /// 20 s without one, or if the stream ends.
    pub async fn next(&mut self) -> StreamEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                        .map(str::to_owned)
                };
                let (Some(name), Some(id), Some(data)) = (field("event"), field("id"), field("data")) else {
                    assert!(block.starts_with(':'), "neither an event nor a comment: {block:?}");
                    continue;
                };
                return StreamEvent {
                    name,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until one satisfies `stop`, that one included.
    pub async fn until(&mut self, mut stop: impl FnMut(&StreamEvent) -> bool) -> Vec<StreamEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let done = stop(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

/// A `created` event of `subject`.
pub fn created(subject: &str) -> impl Fn(&StreamEvent) -> bool + '_ {
    move |event| event.name == "created" && event.data["subject"] == subject
}

#[tokio::test]
async fn the_stream_carries_the_tenants_events_as_get_v1_events_lists_them_and_no_others() {
    let (s, other_key) = crate::api::launch_with_other_tenant(&[]);
    let mut stream = EventStream::open(&s, &s.key, "", None).await;
    let mut theirs = EventStream::open(&s, &other_key, "", None).await;
    // Another tenant's event first: were it let through, it would come
    // before the marker (a stream is in id order).
    let made = s
        .client
        .post(s.url("/v1/sessions"))
        .bearer_auth(&other_key)
        .json(&json!({"subject": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let (token, session) = s.login("alice").await;
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": token})).await.status(),
        204
    );
    let seen = stream
        .until(|e| e.name == "revoked" && e.data["session_id"] == session["id"])
        .await;
    assert!(
        seen.iter().all(|e| e.data["subject"] != "mallory"),
        "another tenant's event: {seen:?}"
    );
    let created = seen
        .iter()
        .find(|e| created("alice")(e))
        .expect("alice's created event");
    // The same view as the log's, named by its kind, its id the event's.
    let (status, log) = s.json(Method::GET, "/v1/events?subject=alice", None).await;
    assert_eq!(status, 200, "{log}");
    let listed = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "created")
        .unwrap();
    assert_eq!(&created.data, listed);
    assert_eq!(created.id, listed["id"].as_str().unwrap());
    let ids: Vec<&str> = seen.iter().map(|e| e.id.as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first, once each: {ids:?}");

    // The other tenant's own stream has its event first.
    let event = theirs.next().await;
    assert_eq!(event.data["subject"], "mallory", "{event:?}");
}

#[tokio::test]
async fn a_kind_filter_keeps_to_that_kind_and_a_bad_one_is_refused() {
    let s = launch().start();
    let mut stream = EventStream::open(&s, &s.key, "kind=revoked", None).await;
    let (token, session) = s.login("bob").await;
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": token})).await.status(),
        204
    );
    let event = stream.next().await;
    assert_eq!(event.name, "revoked", "{event:?}");
    assert_eq!(event.data["session_id"], session["id"]);
    for query in ["kind=nonsense", "after=nonsense", "limit=3"] {
        assert_problem(
            s.api()
                .req(Method::GET, &format!("/v1/events/stream?{query}"))
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
    }
    let no_key = s.client.get(s.url("/v1/events/stream")).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
}

/// A client that reconnects with the id of the last event it got gets
/// every event after it, those made while it was away included.
#[tokio::test]
async fn resuming_with_last_event_id_leaves_no_gap() {
    let s = launch().start();
    let mut stream = EventStream::open(&s, &s.key, "kind=created", None).await;
    for name in ["u1", "u2", "u3"] {
        s.login(name).await;
    }
    let seen = stream.until(created("u3")).await;
    let u2 = seen.iter().find(|e| created("u2")(e)).unwrap().id.clone();
    drop(stream);
    for name in ["u4", "u5"] {
        s.login(name).await;
    }
    let mut resumed = EventStream::open(&s, &s.key, "kind=created", Some(&u2)).await;
    let again = resumed.until(created("u5")).await;
    let after: Vec<&str> = again
        .iter()
        .filter(|e| e.id > u2)
        .map(|e| e.data["subject"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["u3", "u4", "u5"], "{again:?}");
}

#[tokio::test]
async fn a_stream_ends_when_its_key_is_deleted() {
    let s = launch().start();
    let (status, made) = s
        .json(Method::POST, "/v1/admin/keys", Some(json!({"name": "auditor"})))
        .await;
    assert_eq!(status, 201, "{made}");
    let mut stream = EventStream::open(&s, made["key"].as_str().unwrap(), "", None).await;
    s.login("carol").await;
    assert_eq!(stream.next().await.data["subject"], "carol");
    let id = made["id"].as_str().unwrap();
    let deleted = s
        .api()
        .req(Method::DELETE, &format!("/v1/admin/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.response.chunk().await.unwrap() {
            assert!(!String::from_utf8_lossy(&chunk).contains("event:"), "{chunk:?}");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its key");
}
