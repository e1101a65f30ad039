//! The layer over real HTTP on loopback: hyper's parsing, connection info
//! and multi-valued headers as a browser-like client sends them.

use std::net::SocketAddr;

use http::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use sessiond_core::Subject;

use crate::support::*;

/// Serves `app` on 127.0.0.1:0 and returns its base URL.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?.strip_prefix(&format!("{COOKIE_NAME}="))?;
        let value = v.split(';').next()?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

const COOKIE_NAME: &str = crate::support::COOKIE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_browser_flow_over_loopback() {
    let app = TestApp::new();
    let base = serve(&app).await;
    let origin = base.clone();
    // The Host header will be 127.0.0.1:port; allow it as the origin.
    let client = reqwest::Client::builder()
        .user_agent("loopback-test/1")
        .build()
        .unwrap();
    let call = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .header(ORIGIN, &origin)
            .header("sec-fetch-site", "same-origin")
    };

    let response = call(reqwest::Method::POST, "/login?user=alice").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token = session_cookie(&response).unwrap();
    let cookie = format!("{COOKIE_NAME}={token}");

    // The session recorded where the login came from.
    let subject = Subject::new("alice").unwrap();
    let sessions = app.manager.list_subject(&subject).await.unwrap();
    assert_eq!(sessions[0].client.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(sessions[0].client.user_agent.as_deref(), Some("loopback-test/1"));

    let csrf = call(reqwest::Method::GET, "/csrf")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf.text().await.unwrap();

    // A form post with the token, the cookie among others in two headers.
    let response = call(reqwest::Method::POST, "/echo")
        .header(COOKIE, "theme=dark")
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&item=socks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), format!("csrf_token={csrf}&item=socks"));

    // Cross-site and token-less posts are refused over the wire too.
    let response = client
        .post(format!("{base}/echo"))
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "cross_site_request").await;
    let response = call(reqwest::Method::POST, "/echo")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "csrf_failed").await;

    // Duplicate cookie over two headers: no session.
    let response = call(reqwest::Method::GET, "/me")
        .header(COOKIE, &cookie)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Logout, then replay.
    let response = call(reqwest::Method::POST, "/logout")
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let deletion = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(deletion.starts_with(&format!(
        "{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    )));
    let response = call(reqwest::Method::GET, "/me")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn assert_problem(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], code);
}
