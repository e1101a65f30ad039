//! TLS to PostgreSQL. `scripts/test` starts the server with a certificate
//! signed by a CA made with openssl, and `TEST_POSTGRES_URL` asks for
//! `sslmode=verify-full` against that CA, so every test of this crate runs
//! over TLS; these check that it really does, and that a certificate that
//! should not be trusted is not.

use sessiond_store_postgres::{OpenError, PostgresStore};
use sessiond_testkit::certs::make_certificates;
use sessiond_testkit::env::required;

use crate::support::{fresh_schema, raw, server_url, with_schema};

/// `url` with its `sslmode`/`sslrootcert` replaced by `tls` (no TLS
/// parameter at all when `tls` is empty).
fn with_tls(url: &str, tls: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    if tls.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{tls}")
    }
}

/// How many of the connections named `application` use TLS, and how many
/// do not (each test names its store's connections, as tests run at once).
async fn connections_by_tls(url: &str, application: &str) -> (i64, i64) {
    let row = raw(url)
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn the_store_connects_over_tls_when_the_url_asks() {
    let Some(base) = server_url() else { return };
    for tls in [
        "sslmode=verify-full&sslrootcert=CA",
        "sslmode=verify-ca&sslrootcert=CA",
        "sslmode=require",
    ] {
        let Some(ca) = required("TEST_POSTGRES_CA", "the PostgreSQL TLS tests") else {
            return;
        };
        let application = fresh_schema();
        let tls = format!("{}&application_name={application}", tls.replace("CA", &ca));
        let url = with_schema(&with_tls(&base, &tls), &fresh_schema());
        let store = PostgresStore::open(&url).await.unwrap();
        sessiond_core::SessionStore::ping(&store).await.unwrap();
        let (tls_count, plain) = connections_by_tls(&base, &application).await;
        assert!(tls_count >= 1, "{tls}: no TLS connection of the store");
        assert_eq!(plain, 0, "{tls}: the store has a plain connection");
        store.close();
    }
}

#[tokio::test]
async fn without_sslmode_the_store_connects_in_plain_text_as_before() {
    let Some(base) = server_url() else { return };
    let application = fresh_schema();
    let url = with_schema(
        &with_tls(&base, &format!("application_name={application}")),
        &fresh_schema(),
    );
    let store = PostgresStore::open(&url).await.unwrap();
    sessiond_core::SessionStore::ping(&store).await.unwrap();
    let (tls_count, plain) = connections_by_tls(&base, &application).await;
    assert!(plain >= 1, "no plain connection although the URL asked for none");
    assert_eq!(tls_count, 0);
    store.close();
}

#[tokio::test]
async fn a_server_certificate_another_ca_signed_is_refused() {
    let Some(base) = server_url() else { return };
    // A CA of its own, made afresh: it signed nothing the server holds.
    let dir = tempfile::tempdir().unwrap();
    let Some(other) = make_certificates(dir.path(), "the PostgreSQL TLS tests") else {
        return;
    };
    let other = other.ca.display().to_string();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = with_tls(&base, &format!("sslmode={mode}&sslrootcert={other}"));
        let error = PostgresStore::open(&url).await.unwrap_err();
        assert!(matches!(error, OpenError::Connect(_)), "{mode}: {error:?}");
        let chain = format!("{:?}", std::error::Error::source(&error));
        // The CA has the same name as the real one, so the signature is what fails.
        assert!(chain.contains("InvalidCertificate(BadSignature)"), "{mode}: {chain}");
    }
}

#[tokio::test]
async fn tls_settings_that_cannot_be_honoured_are_refused_before_connecting() {
    // No server is needed: these fail while the URL is read.
    let cases = [
        ("postgres://h/db?sslmode=verify-full", "need sslrootcert"),
        ("postgres://h/db?sslmode=verify-ca", "need sslrootcert"),
        ("postgres://h/db?sslmode=strict", "sslmode must be"),
    ];
    for (url, says) in cases {
        let error = PostgresStore::open(url).await.unwrap_err();
        assert!(matches!(error, OpenError::InvalidUrl(_)), "{url}: {error:?}");
        assert!(error.to_string().contains(says), "{url}: {error}");
    }
    let missing = "postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let error = PostgresStore::open(missing).await.unwrap_err();
    assert!(matches!(error, OpenError::RootCert { .. }), "{error:?}");
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}
