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
    /// The CA's private key (PEM), which signs client certificates.
    pub ca_key: PathBuf,
    /// The openssl that made them.
    openssl: PathBuf,
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
        ca_key: dir.join("ca.key"),
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
        let (key, csr, cert, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subject = format!("/CN={name}");
        let mut request = vec!["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        request.extend(["-subj", &subject, "-keyout", &key, "-out", &csr]);
        openssl(&self.openssl, dir, &request);
        std::fs::write(dir.join(&ext), "extendedKeyUsage=clientAuth\n").expect("write the client extensions");
        let (ca, ca_key) = (self.ca.to_string_lossy(), self.ca_key.to_string_lossy());
        openssl(
            &self.openssl,
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        let mut identity = std::fs::read(dir.join(&cert)).expect("read the client certificate");
        identity.extend(std::fs::read(dir.join(&key)).expect("read the client key"));
        identity
    }
}
