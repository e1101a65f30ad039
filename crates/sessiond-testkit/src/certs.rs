//! Certificates for TLS tests, made by openssl (an independent tool, not
//! the TLS library under test): a CA, and a server certificate for
//! 127.0.0.1 and localhost signed by it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::env::on_path;

/// The files [`make_certificates`] wrote.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

fn openssl(bin: &Path, dir: &Path, args: &[&str]) {
    let status = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl {args:?} failed");
}

/// Writes `ca.pem`, `server.pem` and `server.key` (P-256, valid two days,
/// for IP 127.0.0.1 and DNS localhost) into `dir`. `None` without openssl
/// on `PATH` (a skip with a note, or a failure in CI; see `what`).
pub fn make_certificates(dir: &Path, what: &str) -> Option<TestCertificates> {
    let bin = on_path("openssl", what)?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "2",
        "-subj",
        "/CN=sessiond test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&bin, dir, &ca);
    let mut request = vec!["req"];
    request.extend(ec);
    request.extend(["-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]);
    openssl(&bin, dir, &request);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("write san.ext");
    openssl(
        &bin,
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    Some(TestCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    })
}
