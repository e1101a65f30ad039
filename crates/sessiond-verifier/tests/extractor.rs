//! The axum extractor, driven over HTTP on loopback.

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sessiond_verifier::{AccessToken, Verifier};
use tokio::net::TcpListener;

use crate::support::{Signer, TestServer, claims, now};

#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
}

async fn me(AccessToken(claims): AccessToken) -> String {
    format!("{}/{}/{}", claims.tid, claims.sid, claims.sub)
}

async fn maybe(token: Option<AccessToken>) -> String {
    token.map_or_else(|| "anonymous".to_owned(), |AccessToken(c)| c.sub)
}

struct App {
    _sessiond: TestServer,
    signer: Signer,
    base: String,
    client: reqwest::Client,
}

async fn app() -> anyhow::Result<App> {
    let signer = Signer::generate("key-1")?;
    let sessiond = TestServer::start(&[&signer]).await?;
    let verifier = sessiond.builder().build()?;
    let router = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .with_state(AppState { verifier });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::builder().no_proxy().build()?;
    Ok(App {
        _sessiond: sessiond,
        signer,
        base,
        client,
    })
}

impl App {
    async fn get(&self, path: &str, authorization: Option<&str>) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        Ok(request.send().await?)
    }
}

#[tokio::test]
async fn a_valid_bearer_token_reaches_the_handler() -> anyhow::Result<()> {
    let app = app().await?;
    let token = app.signer.sign(&claims());
    let response = app.get("/me", Some(&format!("Bearer {token}"))).await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await?, "default/sess-1/user-42");
    Ok(())
}

#[tokio::test]
async fn a_bad_token_is_401_invalid_token_with_a_problem_body() -> anyhow::Result<()> {
    let app = app().await?;
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let cases = [
        (app.signer.sign(&expired), "token_expired"),
        ("not-a-token".to_owned(), "malformed_token"),
        (Signer::generate("key-1")?.sign(&claims()), "bad_signature"),
    ];
    for (token, code) in cases {
        let response = app.get("/me", Some(&format!("Bearer {token}"))).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], r#"Bearer error="invalid_token""#);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let body: Value = response.json().await?;
        assert_eq!(body["status"], 401);
        assert_eq!(body["code"], code);
        assert_eq!(body["type"], format!("urn:sessiond:problem:{code}"));
        assert!(body["title"].is_string());
        assert!(!body.to_string().contains(&token), "the body does not echo the token");
    }
    Ok(())
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge() -> anyhow::Result<()> {
    let app = app().await?;
    for authorization in [None, Some("Basic dXNlcjpwdw==")] {
        let response = app.get("/me", authorization).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        let body: Value = response.json().await?;
        assert_eq!(body["code"], "missing_token");
    }
    Ok(())
}

#[tokio::test]
async fn an_optional_token_may_be_absent_but_not_bad() -> anyhow::Result<()> {
    let app = app().await?;
    let response = app.get("/maybe", None).await?;
    assert_eq!(response.text().await?, "anonymous");
    let token = app.signer.sign(&claims());
    let response = app.get("/maybe", Some(&format!("Bearer {token}"))).await?;
    assert_eq!(response.text().await?, "user-42");
    let response = app.get("/maybe", Some("Bearer nonsense")).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}
