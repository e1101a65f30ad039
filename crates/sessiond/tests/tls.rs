//! HTTPS served directly (`[server.tls]`): certificates made by openssl,
//! checked with reqwest (rustls) and openssl's own client.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Version};
use sessiond_testkit::certs::{TestCertificates, make_certificates};
use sessiond_testkit::env::{on_path, required};

use crate::support::{TestServer, assert_problem, launch, sessiond};

const STORE: &str = "embedded:./sessiond-data";

/// A client (HTTP/1.1 only, as the workspace's reqwest is built) that
/// trusts `ca` only.
fn trusting(ca: &Path) -> Client {
    presenting(ca, None)
}

/// [`trusting`], presenting the client certificate `identity` (its PEM and
/// its key's) if any.
fn presenting(ca: &Path, identity: Option<&[u8]>) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut builder = Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .no_proxy();
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity).unwrap());
    }
    builder.build().unwrap()
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

/// Starts `sessiond serve` on the embedded store with `served` as its
/// `[server.tls]` certificate, `extra` (more lines of that table) and the
/// environment `env`; returns the server and its `127.0.0.1:PORT`.
fn serve_https(served: &TestCertificates, extra: &str, env: &[(&str, &str)]) -> (TestServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessiond.toml");
    std::fs::write(
        &config,
        format!(
            "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n{extra}",
            served.cert.display().to_string(),
            served.key.display().to_string()
        ),
    )
    .unwrap();
    let server = launch()
        .store(STORE)
        .dir(dir)
        .args(&["--config", config.to_str().unwrap()])
        .env(env)
        .start();
    let addr = server.base.trim_start_matches("http://").to_owned();
    (server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_modern_tls_and_a_certificate_that_follows_its_files() {
    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the HTTPS test") else {
        return;
    };
    let Some(openssl) = on_path("openssl", "the HTTPS test") else {
        return;
    };
    let (server, addr) = serve_https(&served, "", &[("SESSIOND_SERVER_HEADER_READ_TIMEOUT", "1s")]);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let url = format!("https://{addr}/healthz");

    // HTTP/1.1 for a client that offers only that; h2 agreed by ALPN for
    // one that offers both.
    let reply = trusting(&served.ca).get(&url).send().await.unwrap();
    assert_eq!((reply.status(), reply.version()), (StatusCode::OK, Version::HTTP_11));
    // Over HTTPS the portal's pages are served (plain HTTP refuses them).
    let login = trusting(&served.ca)
        .get(format!("https://{addr}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
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
    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the client CA start test") else {
        return;
    };
    let stderr = serve_with_tls_must_fail(&format!(
        "cert_file = {:?}\nkey_file = {:?}\nclient_ca_file = \"missing-ca.pem\"\n",
        served.cert.display().to_string(),
        served.key.display().to_string()
    ));
    assert!(
        stderr.contains("cannot read the client CA certificates from missing-ca.pem"),
        "{stderr}"
    );
}

/// `client_ca_file`: `/v1` answers only over a connection with a client
/// certificate from that CA (checked before the API key); the portal and
/// the operations routes serve clients without one; a certificate from
/// another CA fails the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_file_requires_a_client_certificate_for_the_api_only() {
    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the client certificate test") else {
        return;
    };
    let other_dir = tempfile::tempdir().unwrap();
    let other = make_certificates(other_dir.path(), "the client certificate test").unwrap();
    let extra = format!("client_ca_file = {:?}\n", served.ca.display().to_string());
    let (server, addr) = serve_https(&served, &extra, &[]);
    let url = |path: &str| format!("https://{addr}{path}");
    let api = "/v1/subjects/alice/sessions";

    let alice = served.client("alice");
    let with_cert = presenting(&served.ca, Some(&alice));
    let reply = with_cert.get(url(api)).bearer_auth(&server.key).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    // The certificate does not stand in for the key.
    assert_problem(with_cert.get(url(api)).send().await.unwrap(), 401, "unauthorized").await;

    // Without one: refused before the key is looked at; the rest served.
    let without = trusting(&served.ca);
    let reply = without.get(url(api)).bearer_auth(&server.key).send().await.unwrap();
    assert_problem(reply, 401, "client_certificate_required").await;
    let reply = without.get(url("/v1/no-such-route")).send().await.unwrap();
    assert_problem(reply, 401, "client_certificate_required").await;
    for path in ["/healthz", "/login", "/openapi.json"] {
        assert_eq!(
            without.get(url(path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }

    // A certificate from another CA: the server refuses the handshake
    // with an alert the client meets on its first read (TLS 1.3), not an
    // HTTP answer. Both test CAs are named "sessiond test CA", so the
    // server finds an anchor by name and the signature check fails:
    // rustls' alert for that is decrypt_error.
    // Under load the client can instead meet the connection the server
    // closed after its alert before it reads the alert (hyper: "connection
    // was not ready"): refused all the same, with no HTTP answer (seen once
    // in CI with the Sentinel set's servers busy on both cores).
    let mallory = presenting(&served.ca, Some(&other.client("mallory")));
    let refused = mallory.get(url("/healthz")).send().await;
    let error = format!("{:?}", refused.expect_err("a certificate of another CA was accepted"));
    assert!(
        error.contains("AlertReceived(DecryptError)") || error.contains("connection was not ready"),
        "{error}"
    );

    // The command line has no client certificate: through the running
    // server it fails at once, saying why.
    let listed = sessiond(server.dir.path(), &["keys", "list", "--store", STORE], &[]);
    assert!(!listed.status.success(), "{listed:?}");
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        stderr.contains("the API needs a client certificate issued by the CA of server.tls.client_ca_file (401 Unauthorized, client_certificate_required)"),
        "{stderr}"
    );
}

/// How long the testssl.sh scan may take (it takes about 30 s here).
const SCAN_LIMIT: Duration = Duration::from_secs(150);

/// The vulnerability checks of testssl.sh's `-U`, by their JSON ids: each
/// must be reported, and none above `OK`/`INFO`.
const VULNERABILITIES: [&str; 17] = [
    "heartbleed",
    "CCS",
    "ticketbleed",
    "ROBOT",
    "secure_renego",
    "secure_client_renego",
    "CRIME_TLS",
    "BREACH",
    "POODLE_SSL",
    "fallback_SCSV",
    "SWEET32",
    "FREAK",
    "DROWN",
    "LOGJAM",
    "BEAST",
    "LUCKY13",
    "RC4",
];

/// Runs testssl.sh (`bin`) against `https://ADDR/login` (a page with a
/// CSRF token, which is what BREACH is about) trusting `ca`; returns its
/// findings as id → (severity, finding).
///
/// Protocols (`-p`), cipher categories (`-s`), server defaults with the
/// certificate (`-S`) and vulnerabilities (`-U`); not the per-cipher and
/// client-simulation runs, which add minutes and nothing `-s` misses here.
/// Loopback only, no DNS lookups, and no CRL or OCSP fetches
/// (`PHONE_OUT=false`, testssl's own default, set so nothing can change
/// it): the scan sends nothing beyond this machine.
fn testssl_scan(bin: &str, addr: &str, ca: &Path, out: &Path) -> HashMap<String, (String, String)> {
    let json = out.join("testssl.json");
    let mut child = Command::new(bin)
        .args(["--quiet", "--warnings", "batch", "--color", "0", "--nodns", "none"])
        .args(["--connect-timeout", "5", "--openssl-timeout", "5"])
        .arg("--add-ca")
        .arg(ca)
        .args(["--ip", "127.0.0.1", "-p", "-s", "-S", "-U", "--jsonfile"])
        .arg(&json)
        .arg(format!("https://{addr}/login"))
        .current_dir(out)
        .env("PHONE_OUT", "false")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out.join("testssl.txt")).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SCAN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("testssl.sh did not finish within {SCAN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = std::fs::read_to_string(out.join("testssl.txt")).unwrap_or_default();
    // testssl.sh's exit status also counts probes it could not complete (a
    // session-resumption check that found no connection on a loaded
    // machine made it 1 once, every finding OK): the findings decide, and
    // the caller asserts each one it needs, so an incomplete scan fails.
    if !status.success() {
        eprintln!("testssl.sh exited with {status}; judging its findings:\n{report}");
    }
    let written =
        std::fs::read(&json).unwrap_or_else(|e| panic!("testssl.sh wrote no findings ({status}): {e}\n{report}"));
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&written).unwrap();
    findings
        .into_iter()
        .map(|f| {
            let field = |name: &str| f[name].as_str().unwrap_or_default().to_owned();
            (field("id"), (field("severity"), field("finding")))
        })
        .collect()
}

/// testssl.sh, an independent scanner, finds no legacy protocol, no weak
/// cipher category, no known vulnerability and a trusted chain. What it
/// does rate badly is left out on purpose: the test certificate lives two
/// days (`cert_expirationStatus`) and names no CRL or OCSP responder
/// (`cert_revocation`), as a test CA's should.
#[test]
fn testssl_finds_modern_protocols_strong_ciphers_and_no_known_vulnerability() {
    let Some(testssl) = required("TEST_TESTSSL_BIN", "the testssl.sh scan") else {
        return;
    };
    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the testssl.sh scan") else {
        return;
    };
    let (_server, addr) = serve_https(&served, "", &[]);
    let out = tempfile::tempdir().unwrap();
    let findings = testssl_scan(&testssl, &addr, &served.ca, out.path());
    let finding = |id: &str| -> (&str, &str) {
        let (severity, finding) = findings
            .get(id)
            .unwrap_or_else(|| panic!("testssl.sh reported no {id}"));
        (severity.as_str(), finding.as_str())
    };

    for legacy in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert_eq!(finding(legacy).1, "not offered", "{legacy}");
    }
    assert_eq!(finding("TLS1_2"), ("OK", "offered"));
    assert_eq!(finding("TLS1_3"), ("OK", "offered with final"));
    // Every category but AEAD is absent: no NULL, anonymous, export, DES or
    // RC4 (LOW), 3DES or IDEA, and no CBC suite either.
    for weak in [
        "cipherlist_NULL",
        "cipherlist_aNULL",
        "cipherlist_EXPORT",
        "cipherlist_LOW",
        "cipherlist_3DES_IDEA",
        "cipherlist_AVERAGE",
    ] {
        assert_eq!(finding(weak).1, "not offered", "{weak}");
    }
    assert_eq!(finding("cipherlist_STRONG"), ("OK", "offered"));
    for check in VULNERABILITIES {
        let (severity, text) = finding(check);
        assert!(matches!(severity, "OK" | "INFO"), "{check}: {severity} {text}");
    }
    // BREACH needs HTTP compression of a page holding a secret: none.
    assert!(
        finding("BREACH").1.contains("no HTTP compression"),
        "{:?}",
        finding("BREACH")
    );
    // The chain verifies up to the test CA (given by --add-ca), and the
    // certificate names the address scanned.
    assert_eq!(finding("cert_chain_of_trust"), ("OK", "passed."));
    assert_eq!(finding("cert_trust").0, "OK", "{:?}", finding("cert_trust"));
    // A scan that could not finish a check says so as WARN: none, but for
    // the session-resumption probes, which report whether resumption
    // works (no security finding) and lost their reconnect to a loaded
    // CI machine in 2 of 4 runs ("check failed because of connect
    // problem").
    let problems: Vec<_> = findings
        .iter()
        .filter(|(id, (severity, finding))| {
            severity == "WARN" && !(id.starts_with("sessionresumption") && finding.contains("connect problem"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "testssl.sh could not run every check: {problems:?}"
    );
}

/// `sessiond tls self-signed` writes a pair that `sessiond serve` serves
/// with the lines it prints: for the hosts asked (the address as an IP
/// SAN), for 90 days, with an owner-only key. A second run refuses to
/// replace it and changes nothing; `--force` replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_pair_from_the_command_line_is_served_and_never_silently_replaced() {
    use std::os::unix::fs::PermissionsExt as _;

    let Some(openssl) = on_path("openssl", "the self-signed certificate test") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let args = [
        "tls",
        "self-signed",
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
        "--out",
        "certs",
    ];
    let made = sessiond(work.path(), &args, &[]);
    assert!(made.status.success(), "{made:?}");
    let lines = String::from_utf8(made.stdout).unwrap();
    let (cert, key) = (work.path().join("certs/cert.pem"), work.path().join("certs/key.pem"));
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);

    // What openssl reads in it: both names, the address as an IP SAN, a
    // P-256 key, and an end between 89 and 91 days from now.
    let x509 = |extra: &[&str]| {
        Command::new(&openssl)
            .args(["x509", "-noout", "-in"])
            .arg(&cert)
            .args(extra)
            .output()
            .unwrap()
    };
    let text = String::from_utf8_lossy(&x509(&["-text"]).stdout).into_owned();
    assert!(text.contains("DNS:localhost, IP Address:127.0.0.1"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    let days = |n: u64| (n * 86_400).to_string();
    assert!(
        x509(&["-checkend", &days(89)]).status.success(),
        "expires within 89 days"
    );
    assert!(
        !x509(&["-checkend", &days(91)]).status.success(),
        "valid beyond 91 days"
    );

    // The printed lines are the whole [server.tls] configuration; clients
    // trust the certificate itself.
    let config = work.path().join("sessiond.toml");
    std::fs::write(&config, &lines).unwrap();
    let server = launch()
        .store(STORE)
        .args(&["--config", config.to_str().unwrap()])
        .start();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let reply = trusting(&cert)
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    for name in [&["-verify_hostname", "localhost"][..], &["-verify_ip", "127.0.0.1"]] {
        let output = Command::new(&openssl)
            .args(["s_client", "-connect", &addr, "-verify_return_error", "-CAfile"])
            .arg(&cert)
            .args(name)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(report.contains("Verify return code: 0 (ok)"), "{name:?}: {report}");
    }

    // A second run refuses, naming the file, and leaves both as they were.
    let before = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let again = sessiond(work.path(), &args, &[]);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        format!("sessiond: {} exists; pass --force to replace it\n", cert.display())
    );
    assert_eq!((std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()), before);
    let forced = sessiond(work.path(), &[&args[..], &["--force"]].concat(), &[]);
    assert!(forced.status.success(), "{forced:?}");
    assert_ne!(std::fs::read(&key).unwrap(), before.1, "--force made no new key");
    assert_eq!(mode(&key), 0o600);
}

/// rustls logs at WARN every refused handshake and every address sent as
/// a server name: a line per connection that any client or scanner can
/// cause. At the default level (`info`) sessiond lets it speak at ERROR
/// only; refused handshakes are its own business, logged at debug.
#[test]
fn clients_cannot_make_the_default_log_speak_for_every_handshake() {
    use std::io::{BufRead as _, Read as _};

    let certs_dir = tempfile::tempdir().unwrap();
    let Some(served) = make_certificates(certs_dir.path(), "the TLS log test") else {
        return;
    };
    let Some(openssl) = on_path("openssl", "the TLS log test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
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
    let mut child = Command::new(crate::support::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory:", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("sessiond exited before listening").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    // A protocol the server refuses (a fatal alert), and an IP address as
    // the server name.
    assert!(openssl_handshake(&openssl, addr_port(&addr), &["-tls1_1"]).is_none());
    assert!(openssl_handshake(&openssl, addr_port(&addr), &["-servername", "127.0.0.1"]).is_some());
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(status.success(), "{log}");
    // The log was read: the start is in it, the handshakes are not.
    assert!(log.contains("sessiond listening"), "{log}");
    assert!(!log.contains("rustls"), "rustls spoke at the default level:\n{log}");
}

/// The port of `127.0.0.1:PORT`.
fn addr_port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}
