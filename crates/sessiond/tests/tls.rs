//! HTTPS served directly (`[server.tls]`): certificates made by openssl,
//! checked with reqwest (rustls) and openssl's own client.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Version};
use sessiond_testkit::certs::{TestCertificates, make_certificates};
use sessiond_testkit::env::on_path;

use crate::support::{launch, sessiond};

const STORE: &str = "embedded:./sessiond-data";

/// A client (HTTP/1.1 only, as the workspace's reqwest is built) that
/// trusts `ca` only.
fn trusting(ca: &Path) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
}

/// Copies a new pair over the served files the way a rotation should:
/// each file written aside, then renamed into place.
fn rotate_to(new: &TestCertificates, served: &TestCertificates) {
    for (from, to) in [(&new.key, &served.key), (&new.cert, &served.cert)] {
        let aside = to.with_extension("new");
        std::fs::copy(from, &aside).unwrap();
        std::fs::rename(&aside, to).unwrap();
    }
}

/// openssl's client with `args` (e.g. `-tls1_1`), every cipher allowed
/// on its side: its report when the handshake completes, `None` if not.
fn openssl_handshake(openssl: &Path, port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new(openssl)
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .args(["-cipher", "ALL:@SECLEVEL=0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success() && text.contains("BEGIN CERTIFICATE")).then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_modern_tls_and_a_certificate_that_follows_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the HTTPS test") else {
        return;
    };
    let Some(openssl) = on_path("openssl", "the HTTPS test") else {
        return;
    };
    let config = dir.path().join("sessiond.toml");
    std::fs::write(
        &config,
        format!(
            "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            served.cert.display().to_string(),
            served.key.display().to_string()
        ),
    )
    .unwrap();
    let server = launch()
        .store(STORE)
        .dir(dir)
        .args(&["--config", config.to_str().unwrap()])
        .env(&[("SESSIOND_SERVER_HEADER_READ_TIMEOUT", "1s")])
        .start();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let url = format!("https://{addr}/healthz");

    // HTTP/1.1 for a client that offers only that; h2 agreed by ALPN for
    // one that offers both.
    let reply = trusting(&served.ca).get(&url).send().await.unwrap();
    assert_eq!((reply.status(), reply.version()), (StatusCode::OK, Version::HTTP_11));
    let alpn = openssl_handshake(&openssl, port, &["-alpn", "h2,http/1.1"]).expect("a handshake");
    assert!(alpn.contains("ALPN protocol: h2"), "{alpn}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = Client::new().get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err(), "{plain:?}");

    // A client that connects and never starts its handshake is closed
    // after the header-read timeout (1 s here), like a slow request head.
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // (Not closed within the 5 s read timeout: an error, not Ok(0).)
    let read = std::io::Read::read(&mut silent, &mut [0u8; 16]);
    assert!(matches!(read, Ok(0)), "the silent connection was not closed: {read:?}");

    // TLS 1.2 and 1.3 only, whatever the client would accept.
    assert!(openssl_handshake(&openssl, port, &["-tls1_2"]).is_some());
    assert!(openssl_handshake(&openssl, port, &["-tls1_3"]).is_some());
    assert!(openssl_handshake(&openssl, port, &["-tls1_1"]).is_none());
    assert!(openssl_handshake(&openssl, port, &["-tls1"]).is_none());

    // The command line reaches the running server over HTTPS.
    let listed = sessiond(server.dir.path(), &["keys", "list", "--store", STORE], &[]);
    assert!(listed.status.success(), "{listed:?}");

    // A new pair in place of the files: new connections get it, no restart.
    let next_dir = tempfile::tempdir().unwrap();
    let next = make_certificates(next_dir.path(), "the HTTPS test").unwrap();
    rotate_to(&next, &served);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A fresh client each time: a new connection, a new handshake.
        if let Ok(reply) = trusting(&next.ca).get(&url).send().await {
            assert_eq!(reply.status(), StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old = trusting(&served.ca).get(&url).send().await;
    assert!(old.is_err(), "the old CA still verifies the server: {old:?}");
    let listed = sessiond(server.dir.path(), &["keys", "list", "--store", STORE], &[]);
    assert!(listed.status.success(), "after the rotation: {listed:?}");
}

/// Starts `sessiond serve` with `tls` as its `[server.tls]` table, which
/// must fail; returns its stderr.
fn serve_with_tls_must_fail(tls: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessiond.toml"), format!("[server.tls]\n{tls}")).unwrap();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory:",
        "--config",
        "sessiond.toml",
    ];
    let out = sessiond(dir.path(), &args, &[]);
    assert!(!out.status.success(), "sessiond started with [server.tls] {tls}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_certificate_that_does_not_load_stops_the_start_and_says_which_file() {
    let stderr = serve_with_tls_must_fail("cert_file = \"missing.pem\"\nkey_file = \"missing.key\"\n");
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let stderr = serve_with_tls_must_fail("cert_file = \"c.pem\"\nkey_file = \"k.pem\"\nclient_ca_file = \"ca.pem\"\n");
    assert!(stderr.contains("client_ca_file is not supported yet"), "{stderr}");
}
