//! Fetching and refetching the JWKS, counted on the stand-in server.

use sessiond_verifier::VerifyError;

use crate::support::{Signer, TestServer, claims};

#[tokio::test]
async fn the_first_verify_async_loads_the_keys_and_then_verify_needs_no_io() -> anyhow::Result<()> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    let verifier = server.builder().build()?;
    assert_eq!(server.jwks_hits(), 0, "building does no I/O");
    assert!(!verifier.revocations_synced(), "no API key, no feed");

    let token = signer.sign(&claims());
    verifier.verify_async(&token).await?;
    assert_eq!(server.jwks_hits(), 1);
    for _ in 0..100 {
        verifier.verify(&token)?;
        verifier.verify_async(&token).await?;
    }
    assert_eq!(server.jwks_hits(), 1, "a known kid is verified without I/O");
    Ok(())
}

#[tokio::test]
async fn an_unknown_kid_triggers_exactly_one_refetch_and_the_floor_holds() -> anyhow::Result<()> {
    let old = Signer::generate("key-old")?;
    let server = TestServer::start(&[&old]).await?;
    let verifier = server.builder().build()?;
    verifier.verify_async(&old.sign(&claims())).await?;
    assert_eq!(server.jwks_hits(), 1);

    // sessiond publishes a new key; tokens signed with it arrive, many at once.
    let new = Signer::generate("key-new")?;
    server.publish(&new);
    let token = new.sign(&claims());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (verifier, token) = (verifier.clone(), token.clone());
        tasks.push(tokio::spawn(async move { verifier.verify_async(&token).await }));
    }
    for task in tasks {
        task.await??;
    }
    assert_eq!(server.jwks_hits(), 2, "one refetch for all of them");

    // Within the floor, unknown kids cost nothing, even once published.
    let newer = Signer::generate("key-newer")?;
    server.publish(&newer);
    for kid in ["key-newer", "junk-1", "junk-2"] {
        let junk;
        let signer = if kid == "key-newer" {
            &newer
        } else {
            junk = Signer::generate(kid)?;
            &junk
        };
        let result = verifier.verify_async(&signer.sign(&claims())).await;
        assert!(
            matches!(result, Err(VerifyError::UnknownKey { .. })),
            "{kid}: {result:?}"
        );
        let result = verifier.verify(&signer.sign(&claims()));
        assert!(
            matches!(result, Err(VerifyError::UnknownKey { .. })),
            "{kid}: {result:?}"
        );
    }
    // Let any background refresh the sync path may have started run.
    tokio::task::yield_now().await;
    assert_eq!(server.jwks_hits(), 2, "the floor holds");
    // Known keys keep working meanwhile.
    verifier.verify(&new.sign(&claims()))?;
    verifier.verify(&old.sign(&claims()))?;
    Ok(())
}

#[tokio::test]
async fn verify_alone_loads_the_keys_in_the_background() -> anyhow::Result<()> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    let verifier = server.builder().build()?;
    let token = signer.sign(&claims());
    // Nothing cached yet: refused without waiting, and a load starts.
    assert!(matches!(verifier.verify(&token), Err(VerifyError::UnknownKey { .. })));
    let loaded =
        crate::support::eventually(std::time::Duration::from_secs(10), || verifier.verify(&token).is_ok()).await;
    assert!(loaded, "the background load made the key known");
    assert_eq!(server.jwks_hits(), 1);
    Ok(())
}

#[tokio::test]
async fn clones_share_one_cache() -> anyhow::Result<()> {
    let signer = Signer::generate("key-1")?;
    let server = TestServer::start(&[&signer]).await?;
    let verifier = server.builder().build()?;
    let clone = verifier.clone();
    verifier.refresh_keys().await?;
    clone.verify(&signer.sign(&claims()))?;
    assert_eq!(server.jwks_hits(), 1);
    Ok(())
}
