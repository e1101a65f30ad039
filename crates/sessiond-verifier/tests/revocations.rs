//! Following the revocation feed: the stream, the initial load, reconnects
//! with Last-Event-ID, and polling when the stream is refused.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sessiond_verifier::{Verifier, VerifyError};

use crate::support::{API_KEY, Signer, TestServer, claims_for, eventually, lock};

/// sessiond's promise: a verifier learns of a revocation within 1 s.
const PROMISE: Duration = Duration::from_secs(1);
/// How long to wait for things that have no promise (a connection to open).
const PATIENCE: Duration = Duration::from_secs(10);

struct Fixture {
    server: TestServer,
    signer: Signer,
    verifier: Verifier,
}

async fn fixture(refuse_streams: bool) -> anyhow::Result<Fixture> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    server.state.refuse_streams.store(refuse_streams, Ordering::SeqCst);
    let verifier = server.builder().api_key(API_KEY).build()?;
    verifier.refresh_keys().await?;
    Ok(Fixture {
        server,
        signer,
        verifier,
    })
}

fn revoked(verifier: &Verifier, token: &str) -> bool {
    matches!(verifier.verify(token), Err(VerifyError::Revoked))
}

#[tokio::test]
async fn a_revocation_pushed_on_the_stream_is_refused_within_a_second() -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let token = f.signer.sign(&claims_for("default", "sess-1"));
    let other_tenant = f.signer.sign(&claims_for("other", "sess-1"));
    let opened = eventually(PATIENCE, || f.server.state.streams_opened.load(Ordering::SeqCst) == 1).await;
    assert!(opened, "the verifier opened the stream");
    f.verifier.verify(&token)?;
    let polls_before = f.server.state.polls.load(Ordering::SeqCst);

    let pushed = Instant::now();
    f.server.revoke("default", "sess-1", 300);
    let refused = eventually(PROMISE, || revoked(&f.verifier, &token)).await;
    assert!(refused, "not refused {:?} after the push", pushed.elapsed());
    assert_eq!(
        f.server.state.polls.load(Ordering::SeqCst),
        polls_before,
        "learnt from the stream"
    );
    // The same session id in another tenant is another session.
    f.verifier.verify(&other_tenant)?;
    Ok(())
}

#[tokio::test]
async fn revocations_made_before_the_verifier_started_are_known() -> anyhow::Result<()> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    server.revoke("default", "sess-old", 300);
    let verifier = server.builder().api_key(API_KEY).build()?;
    verifier.refresh_keys().await?;
    let token = signer.sign(&claims_for("default", "sess-old"));
    assert!(eventually(PATIENCE, || verifier.revocations_synced()).await);
    assert!(revoked(&verifier, &token), "known once synced");
    verifier.verify(&signer.sign(&claims_for("default", "sess-live")))?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_stream_resumes_from_the_last_event_id() -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let first = f.signer.sign(&claims_for("default", "sess-1"));
    assert!(eventually(PATIENCE, || f.server.state.streams_opened.load(Ordering::SeqCst) == 1).await);
    f.server.revoke("default", "sess-1", 300);
    assert!(eventually(PROMISE, || revoked(&f.verifier, &first)).await);

    f.server.drop_streams();
    let second = f.signer.sign(&claims_for("default", "sess-2"));
    f.server.revoke("default", "sess-2", 300);
    assert!(eventually(PATIENCE, || revoked(&f.verifier, &second)).await);
    assert!(eventually(PATIENCE, || f.server.state.streams_opened.load(Ordering::SeqCst) >= 2).await);
    let ids = lock(&f.server.state.last_event_ids).clone();
    assert!(
        ids.first().is_some_and(|id| id == "c1" || id == "c2"),
        "the reconnect resumed after what it had: {ids:?}"
    );
    assert!(revoked(&f.verifier, &first), "earlier revocations are kept");
    Ok(())
}

#[tokio::test]
async fn when_the_stream_is_refused_polling_finds_the_revocation() -> anyhow::Result<()> {
    let f = fixture(true).await?;
    let token = f.signer.sign(&claims_for("default", "sess-1"));
    f.verifier.verify(&token)?;
    f.server.revoke("default", "sess-1", 300);
    // Polls are 0.5 s apart; allow for a slow machine.
    assert!(eventually(PATIENCE, || revoked(&f.verifier, &token)).await);
    assert_eq!(f.server.state.streams_opened.load(Ordering::SeqCst), 0);
    assert!(f.server.state.polls.load(Ordering::SeqCst) >= 2);
    Ok(())
}

#[tokio::test]
async fn an_entry_past_its_deadline_does_not_revoke() -> anyhow::Result<()> {
    let f = fixture(false).await?;
    // Tokens of this session were all dead long ago (valid_until 10 min
    // ago, beyond the leeway), so the entry is dropped on arrival. A token
    // that still claims the session is judged on its own.
    f.server.revoke("default", "sess-ancient", -600);
    f.server.revoke("default", "sess-marker", 300);
    let marker = f.signer.sign(&claims_for("default", "sess-marker"));
    assert!(eventually(PATIENCE, || revoked(&f.verifier, &marker)).await);
    f.verifier
        .verify(&f.signer.sign(&claims_for("default", "sess-ancient")))?;
    Ok(())
}
