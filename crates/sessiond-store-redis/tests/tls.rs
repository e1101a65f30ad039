//! `rediss://`: a private redis-server with TLS on a free loopback port,
//! its certificate signed by a CA made for the test with openssl
//! (`sessiond_testkit::certs`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sessiond_core::{
    Audit, Clock as _, Revocation, RevokeReason, SessionStore, StoreError, SubjectLimit, SystemClock,
    truncate_to_micros,
};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;

use sessiond_testkit::certs::make_certificates;
use sessiond_testkit::env::required;

use crate::support::unique_prefix;

struct TlsRedis {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    fn start() -> Option<Self> {
        let bin = required("TEST_REDIS_SERVER_BIN", "the Redis TLS test")?;
        let dir = tempfile::tempdir().unwrap();
        make_certificates(dir.path(), "the Redis TLS test")?;
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key"])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Some(Self { dir, port, child })
    }

    fn url(&self, ca: bool) -> String {
        let mut url = format!("rediss://127.0.0.1:{}/?prefix={}", self.port, unique_prefix());
        if ca {
            url.push_str(&format!("&ca_file={}", self.dir.path().join("ca.pem").display()));
        }
        url
    }
}

#[tokio::test]
async fn rediss_verifies_the_server_against_the_ca_file() {
    let Some(server) = TlsRedis::start() else { return };
    let store = RedisStore::new(RedisConfig::from_url(&server.url(true)).unwrap()).unwrap();
    // Bounded wait for the server to listen.
    let mut up = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "redis-server with TLS did not answer");
    // Times are stored in whole microseconds, as the manager writes them.
    let now = truncate_to_micros(SystemClock.now());
    let session = sample("t", "alice", now);
    let how = Revocation {
        at: now,
        reason: RevokeReason::Limit,
    };
    store
        .insert(&session, SubjectLimit::Deny(1), now, how, &Audit::NONE)
        .await
        .unwrap();
    let found = store.get_by_token(&session.token_hash).await.unwrap();
    assert_eq!(found.as_deref(), Some(&session));

    // The same server without its CA: the system's roots do not know it,
    // and the store refuses to talk rather than skip verification.
    let stranger = RedisStore::new(RedisConfig::from_url(&server.url(false)).unwrap()).unwrap();
    let refused = stranger.ping().await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "got {refused:?}");
    let cause = format!(
        "{:?}",
        refused
            .err()
            .map(|e| std::error::Error::source(&e).map(ToString::to_string))
    );
    assert!(cause.to_lowercase().contains("certificate"), "cause: {cause}");
}
