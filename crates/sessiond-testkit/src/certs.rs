//! Certificates for TLS tests, made by openssl (an independent tool, not
//! the TLS library under test): a CA, a server certificate for 127.0.0.1
//! and localhost signed by it, and client certificates signed by it.

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
    /// The openssl that made them (and makes client certificates with the
    /// CA's key, `ca.key` beside `ca.pem`).
    openssl: PathBuf,
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

/// The key options of every certificate made here: a fresh P-256 key,
/// unencrypted.
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/// Makes `NAME.key` and `NAME.pem` in `dir`: a certificate for `subject`
/// with the extensions `extensions` (one openssl config line), valid two
/// days, signed by `ca.pem` and `ca.key` there.
fn issue(bin: &Path, dir: &Path, name: &str, subject: &str, extensions: &str) {
    let (key, csr, ext, cert) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    let mut request = vec!["req"];
    request.extend(EC_KEY);
    request.extend(["-subj", subject, "-keyout", &key, "-out", &csr]);
    openssl(bin, dir, &request);
    std::fs::write(dir.join(&ext), format!("{extensions}\n")).expect("write the extensions file");
    #[rustfmt::skip]
    let sign = [
        "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", &ext, "-out", &cert,
    ];
    openssl(bin, dir, &sign);
}

/// Writes `ca.pem`, `server.pem` and `server.key` (P-256, valid two days,
/// for IP 127.0.0.1 and DNS localhost) into `dir`. `None` without openssl
/// on `PATH` (a skip with a note, or a failure in CI; see `what`).
pub fn make_certificates(dir: &Path, what: &str) -> Option<TestCertificates> {
    let bin = on_path("openssl", what)?;
    let mut ca = vec!["req", "-x509"];
    ca.extend(EC_KEY);
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
    issue(
        &bin,
        dir,
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    );
    Some(TestCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        openssl: bin,
    })
}

impl TestCertificates {
    /// Writes a client certificate for `name` (P-256, extended key usage
    /// clientAuth, valid two days), signed by this CA, beside it; returns
    /// the PEM of the certificate followed by its key, as an HTTP client's
    /// identity takes them.
    pub fn client(&self, name: &str) -> Vec<u8> {
        let dir = self.ca.parent().expect("the CA file is in a directory");
        issue(
            &self.openssl,
            dir,
            name,
            &format!("/CN={name}"),
            "extendedKeyUsage=clientAuth",
        );
        let mut identity = std::fs::read(dir.join(format!("{name}.pem"))).expect("read the client certificate");
        identity.extend(std::fs::read(dir.join(format!("{name}.key"))).expect("read the client key"));
        identity
    }
}
