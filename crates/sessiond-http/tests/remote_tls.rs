//! Remote mode over HTTPS: a real `sessiond serve` behind an nginx that
//! terminates TLS with a certificate made by openssl for the test. The
//! backend trusts the test's CA through a caller-built client; with the
//! system's roots only, the same server is refused and every call fails
//! closed.
//!
//! Needs `TEST_SESSIOND_BIN` and `TEST_NGINX_BIN` (set by `scripts/test`);
//! without them the test is skipped (a failure in CI).

use std::time::Duration;

use sessiond_core::{ClientInfo, CreateOptions, Subject};
use sessiond_http::{BackendError, RemoteBackend, SessionBackend};
use sessiond_testkit::certs::make_certificates;
use sessiond_testkit::env::required;
use sessiond_testkit::nginx::Nginx;
use sessiond_testkit::server::Launch;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_over_https_trusts_the_configured_ca_only() {
    let Some(bin) = required("TEST_SESSIOND_BIN", "the remote-mode HTTPS test") else {
        return;
    };
    let Some(nginx_bin) = required("TEST_NGINX_BIN", "the remote-mode HTTPS test") else {
        return;
    };
    let server = Launch::new(bin).start();
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = make_certificates(dir.path(), "the remote-mode HTTPS test") else {
        return;
    };
    let port = free_port();
    let http = format!(
        "server {{\n\
           listen 127.0.0.1:{port} ssl;\n\
           ssl_certificate {cert};\n\
           ssl_certificate_key {key};\n\
           ssl_protocols TLSv1.2 TLSv1.3;\n\
           location / {{ proxy_pass {upstream}; }}\n\
         }}",
        cert = certs.cert.display(),
        key = certs.key.display(),
        upstream = server.base,
    );
    let nginx = Nginx::start(&nginx_bin, tempfile::tempdir().unwrap(), &http, &[port]);
    let base = format!("https://127.0.0.1:{port}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let remote = RemoteBackend::with_client(client, &base, &server.key).unwrap();
    let alice = Subject::new("alice").unwrap();
    let (token, created) = remote.create(&alice, CreateOptions::default()).await.unwrap();
    let verified = remote
        .verify(&token, &ClientInfo::default())
        .await
        .unwrap()
        .expect("the new session verifies over HTTPS");
    assert_eq!(verified.id(), created.id());
    assert!(
        std::fs::read_to_string(nginx.dir().join("access.log"))
            .unwrap()
            .contains("POST /v1/sessions/verify"),
        "the call did not go through the TLS proxy"
    );

    // The system's roots do not hold the test CA: refused, fail closed.
    let untrusting = RemoteBackend::new(&base, &server.key).unwrap();
    let refused = untrusting.verify(&token, &ClientInfo::default()).await;
    assert!(matches!(refused, Err(BackendError::Unavailable(_))), "{refused:?}");
}
