//! `sessiond tls self-signed`: a certificate and key for a first start over
//! HTTPS, before a real CA is involved.
//!
//! * ECDSA P-256 (the smallest key every TLS client accepts), made by rcgen
//!   over ring, the provider the server's rustls already uses.
//! * One subject alternative name per `--host`: an IP address becomes an IP
//!   SAN (a client connecting to `https://127.0.0.1` checks that, never a DNS
//!   name that looks like an address), anything else must be a valid DNS
//!   name. The first host is also the common name, for tools that show it.
//! * Valid [`VALIDITY`] from now: long enough to try things, short enough
//!   that one left in production expires before long.
//! * No CA flag and no key-usage extension: the certificate is its own
//!   trust anchor (`curl --cacert cert.pem`), and OpenSSL accepts a
//!   self-signed anchor only when no key usage forbids it to sign.
//! * The key file is created with mode 0600 (never readable by others, not
//!   even for an instant), and neither file replaces an existing one unless
//!   `--force` is given: overwriting a key in use by mistake would break the
//!   running server's next reload.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::ServerName;
use sessiond_core::{Clock as _, SystemClock};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a certificate made here is valid.
pub const VALIDITY: Duration = Duration::from_secs(90 * 86_400);

/// The certificate's file name in the output directory.
pub const CERT_FILE: &str = "cert.pem";

/// The private key's file name in the output directory.
pub const KEY_FILE: &str = "key.pem";

/// Why no certificate was written.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    /// No `--host` was given.
    #[error("name at least one --host (a DNS name or an IP address)")]
    NoHost,
    /// A `--host` is neither an IP address nor a valid DNS name.
    #[error("--host {0:?} is neither an IP address nor a valid DNS name")]
    InvalidHost(String),
    /// A file to write exists and `--force` was not given.
    #[error("{} exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// rcgen could not make the key or the certificate.
    #[error("cannot make the certificate")]
    Generate(#[from] rcgen::Error),
    /// A file or the directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What [`write()`] wrote.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate (PEM), absolute.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8 PEM, mode 0600), absolute.
    pub key_file: PathBuf,
    /// The hosts it names.
    pub hosts: Vec<String>,
    /// The end of its validity.
    pub not_after: OffsetDateTime,
}

impl SelfSigned {
    /// The `[server.tls]` table that serves this certificate, with a comment
    /// line saying what it is: what `sessiond tls self-signed` prints on
    /// stdout, so `>> sessiond.toml` adds it to a configuration file.
    pub fn config_lines(&self) -> String {
        let quoted = |path: &Path| toml::Value::String(path.display().to_string()).to_string();
        let until = self
            .not_after
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.not_after.to_string());
        format!(
            "# sessiond tls self-signed: ECDSA P-256 for {}, valid until {until}\n\
             [server.tls]\n\
             cert_file = {}\n\
             key_file = {}\n",
            self.hosts.join(", "),
            quoted(&self.cert_file),
            quoted(&self.key_file),
        )
    }
}

/// The subject alternative name `host` stands for.
fn san(host: &str) -> Result<SanType, SelfSignedError> {
    let invalid = || SelfSignedError::InvalidHost(host.to_owned());
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    // rcgen takes any IA5 string; rustls' parser is the one that says
    // whether a client could ever match it.
    match ServerName::try_from(host) {
        Ok(ServerName::DnsName(_)) => Ok(SanType::DnsName(host.try_into().map_err(|_| invalid())?)),
        _ => Err(invalid()),
    }
}

/// Makes a key and a self-signed certificate for `hosts`, valid from `now`
/// for [`VALIDITY`], and writes them to `out/cert.pem` and `out/key.pem`
/// (creating `out`, owner-only, if missing). Without `force` nothing is
/// written when either file exists.
pub fn write(hosts: &[String], out: &Path, force: bool, now: OffsetDateTime) -> Result<SelfSigned, SelfSignedError> {
    let Some(first) = hosts.first() else {
        return Err(SelfSignedError::NoHost);
    };
    let mut params = CertificateParams::default();
    params.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
    params.distinguished_name.push(DnType::CommonName, first.as_str());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Whole seconds: what the certificate holds, and what is printed.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = now;
    params.not_after = now + VALIDITY;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;

    let out = std::path::absolute(out).map_err(|source| SelfSignedError::Write {
        path: out.to_owned(),
        source,
    })?;
    let (cert_file, key_file) = (out.join(CERT_FILE), out.join(KEY_FILE));
    // Both checked before either is written: a refusal leaves nothing half
    // replaced.
    for file in [&cert_file, &key_file] {
        if std::fs::symlink_metadata(file).is_ok() {
            if !force {
                return Err(SelfSignedError::Exists(file.clone()));
            }
            std::fs::remove_file(file).map_err(|source| SelfSignedError::Write {
                path: file.clone(),
                source,
            })?;
        }
    }
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&out)
        .map_err(|source| SelfSignedError::Write {
            path: out.clone(),
            source,
        })?;
    let create = |path: &PathBuf, pem: String, mode| {
        crate::private_file::create_new(path, pem.as_bytes(), mode).map_err(|source| {
            // Someone else created it since the check above.
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SelfSignedError::Exists(path.clone())
            } else {
                SelfSignedError::Write {
                    path: path.clone(),
                    source,
                }
            }
        })
    };
    create(&key_file, key.serialize_pem(), 0o600)?;
    create(&cert_file, cert.pem(), 0o644)?;
    Ok(SelfSigned {
        cert_file,
        key_file,
        hosts: hosts.to_vec(),
        not_after: params.not_after,
    })
}

/// `sessiond tls self-signed`: [`write()`] from now, then the configuration
/// lines on stdout and what was done on stderr.
pub fn run(hosts: &[String], out: &Path, force: bool) -> Result<(), SelfSignedError> {
    let made = write(hosts, out, force, SystemClock.now())?;
    print!("{}", made.config_lines());
    eprintln!(
        "wrote {} and {} (mode 0600). Add the lines above to the configuration file \
         (or append them: `>> sessiond.toml`). The certificate is self-signed: clients trust it \
         by that file (curl --cacert {}), browsers warn.",
        made.cert_file.display(),
        made.key_file.display(),
        made.cert_file.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_become_ip_sans_and_names_must_be_dns_names() {
        assert!(matches!(san("127.0.0.1"), Ok(SanType::IpAddress(ip)) if ip == IpAddr::from([127, 0, 0, 1])));
        assert!(matches!(san("::1"), Ok(SanType::IpAddress(ip)) if ip.is_loopback()));
        assert!(matches!(san("sessiond.example.com"), Ok(SanType::DnsName(_))));
        for bad in ["", "two words", "under_score..", "é.example"] {
            assert!(
                matches!(san(bad), Err(SelfSignedError::InvalidHost(h)) if h == bad),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn no_host_is_refused_before_anything_is_made() {
        let dir = std::path::Path::new("/nonexistent/never-created");
        assert!(matches!(
            write(&[], dir, false, OffsetDateTime::UNIX_EPOCH),
            Err(SelfSignedError::NoHost)
        ));
        assert!(!dir.exists());
    }

    #[test]
    fn the_config_lines_are_toml_naming_both_files() {
        let made = SelfSigned {
            cert_file: PathBuf::from("/etc/sessiond/cert.pem"),
            key_file: PathBuf::from("/etc/sessiond/a \"quoted\" key.pem"),
            hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            not_after: OffsetDateTime::UNIX_EPOCH,
        };
        let lines = made.config_lines();
        assert!(
            lines.starts_with(
                "# sessiond tls self-signed: ECDSA P-256 for localhost, 127.0.0.1, valid until 1970-01-01T00:00:00Z\n"
            ),
            "{lines}"
        );
        let table: toml::Table = lines.parse().unwrap();
        let tls = &table["server"]["tls"];
        assert_eq!(tls["cert_file"].as_str(), Some("/etc/sessiond/cert.pem"));
        assert_eq!(tls["key_file"].as_str(), Some("/etc/sessiond/a \"quoted\" key.pem"));
    }
}
