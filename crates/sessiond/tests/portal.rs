//! The portal over plain HTTP against the real binary: login, CSRF,
//! throttling, return addresses, the account page's actions, forward auth,
//! security headers and the `users` commands. (The same flows in a real
//! browser are in `browser.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use crate::support::{TestServer, add_user, launch, sessiond, users_command};

const STORE: &str = "embedded:sessiond-data";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A server in dev mode (plain HTTP) with users alice and bob.
fn portal(env: &[(&str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), STORE, "alice", PASSWORD);
    add_user(dir.path(), STORE, "bob", PASSWORD);
    launch().dir(dir).store(STORE).env(env).args(&["--dev"]).start()
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal browser: its own cookie jar, no redirects followed, and the
/// `Origin` a browser sends with a same-origin form. (Also driven by the
/// multi-node scenarios.)
pub(crate) struct Browser {
    pub(crate) base: String,
    client: Client,
    cookies: BTreeMap<String, String>,
    user_agent: &'static str,
}

impl Browser {
    pub(crate) fn new(server: &TestServer, user_agent: &'static str) -> Self {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            base: server.base.clone(),
            client,
            cookies: BTreeMap::new(),
            user_agent,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> Response {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("user-agent", self.user_agent)
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("user-agent", self.user_agent)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(fields));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        self.remember(response.headers());
        response
    }

    pub(crate) async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let origin = self.base.clone();
        self.post(path, fields, Some(&origin)).await
    }

    /// The `csrf_token` of the form on `path`.
    pub(crate) async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await.text().await.unwrap();
        hidden(&page, "csrf_token")
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str, remember: bool) -> Response {
        let csrf = self.csrf("/login").await;
        let mut fields = vec![
            ("username", user),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ];
        if remember {
            fields.push(("remember_me", "on"));
        }
        self.submit("/login", &fields).await
    }

    async fn subject(&mut self) -> Option<String> {
        let response = self.get("/auth/verify").await;
        match response.status() {
            StatusCode::OK => Some(response.headers()["x-auth-subject"].to_str().unwrap().to_owned()),
            StatusCode::UNAUTHORIZED => None,
            other => panic!("/auth/verify answered {other}"),
        }
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn location(response: &Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

async fn assert_page(response: Response, status: StatusCode, text: &str) {
    assert_eq!(response.status(), status);
    let body = response.text().await.unwrap();
    assert!(body.contains(text), "expected {text:?} in {body}");
}

#[tokio::test]
async fn login_verify_and_logout() {
    let server = portal(&[]);
    let mut alice = Browser::new(&server, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
    assert_eq!(alice.subject().await, None);

    let login = alice.login("alice", PASSWORD, false).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/account");
    let cookies: Vec<_> = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session_cookie = cookies.iter().find(|c| c.starts_with("sessiond=")).unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(
        !session_cookie.contains("Max-Age"),
        "no remember-me: a browser-session cookie"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("sessiond-login=;")),
        "login token dropped"
    );

    let verify = alice.get("/auth/verify").await;
    assert_eq!(verify.status(), StatusCode::OK);
    assert_eq!(verify.headers()["x-auth-subject"], "alice");
    assert_eq!(verify.headers()["x-auth-session"].len(), 22);
    // An answer to the proxy, never shown as a page: no page headers (the
    // 401, which a proxy may show the browser, has them; see
    // every_page_carries_the_security_headers).
    for page_header in ["content-security-policy", "x-frame-options", "referrer-policy"] {
        assert!(verify.headers().get(page_header).is_none(), "{page_header}");
    }
    assert_eq!(verify.headers()["cache-control"], "no-store");

    let account = alice.get("/account").await.text().await.unwrap();
    assert!(account.contains("Your sessions") && account.contains("This device"));
    assert!(account.contains("Firefox on Linux"), "{account}");

    let csrf = alice.csrf("/account").await;
    let logout = alice.submit("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/login");
    assert_eq!(
        logout.headers()["clear-site-data"],
        "\"cache\", \"cookies\", \"storage\""
    );
    assert!(logout.headers()[SET_COOKIE].to_str().unwrap().starts_with("sessiond=;"));
    assert_eq!(alice.subject().await, None);
    let account = alice.get("/account").await;
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&account), "/login?rd=%2Faccount");
}

#[tokio::test]
async fn remember_me_makes_the_cookie_persistent() {
    let server = portal(&[]);
    let mut alice = Browser::new(&server, "test");
    let login = alice.login("alice", PASSWORD, true).await;
    let cookie = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("sessiond="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Max-Age="), "{cookie}");
}

#[tokio::test]
async fn failures_look_the_same_and_are_throttled() {
    let server = portal(&[]);
    let mut browser = Browser::new(&server, "test");
    let wrong = browser.login("alice", "wrong password", false).await;
    assert_page(wrong, StatusCode::UNAUTHORIZED, "Wrong username or password.").await;
    let unknown = browser.login("nobody", PASSWORD, false).await;
    assert_page(unknown, StatusCode::UNAUTHORIZED, "Wrong username or password.").await;
    let invalid_name = browser.login("", PASSWORD, false).await;
    assert_page(invalid_name, StatusCode::UNAUTHORIZED, "Wrong username or password.").await;

    // Five free failures for alice; the sixth starts a delay, and even the
    // right password is refused while it lasts, before any password check.
    for _ in 0..5 {
        let r = browser.login("alice", "wrong password", false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = browser.login("alice", PASSWORD, false).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "1");
    assert_page(throttled, StatusCode::TOO_MANY_REQUESTS, "Too many failed sign-ins").await;
    // Other accounts are not held up by alice's.
    let bob = browser.login("bob", PASSWORD, false).await;
    assert_eq!(bob.status(), StatusCode::SEE_OTHER);
}

/// Finding 9 (targeted lockout): another client's failures lock alice's
/// account for strangers, but a browser alice signed in with before keeps
/// its own allowance (its device cookie) and gets in with her password.
/// Everyone here shares the loopback IP: 6 counted failures stay well
/// under its limit of 20.
#[tokio::test]
async fn a_known_browser_signs_in_while_others_are_locked_out() {
    let server = portal(&[]);
    let mut alice = Browser::new(&server, "alice's browser");
    let login = alice.login("alice", PASSWORD, false).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let device_cookie = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("sessiond-device="))
        .expect("a device cookie at sign-in")
        .to_owned();
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(
            device_cookie.contains(attribute),
            "{attribute} missing: {device_cookie}"
        );
    }
    assert!(!device_cookie.contains("Secure"), "dev mode: {device_cookie}");
    // Her session ends (a browser-session cookie, the browser closed); the
    // device cookie stays.
    alice.cookies.remove("sessiond");
    assert_eq!(alice.subject().await, None);

    let mut attacker = Browser::new(&server, "attacker");
    for _ in 0..6 {
        let r = attacker.login("alice", "guess", false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let stranger = Browser::new(&server, "a new browser")
        .login("alice", PASSWORD, false)
        .await;
    assert_eq!(stranger.status(), StatusCode::TOO_MANY_REQUESTS);

    let known = alice.login("alice", PASSWORD, false).await;
    assert_eq!(known.status(), StatusCode::SEE_OTHER, "alice is locked out");
    assert_eq!(alice.subject().await.as_deref(), Some("alice"));
    // Her cookie is no pass for another account.
    let mut bob = Browser::new(&server, "bob's browser");
    bob.cookies
        .insert("sessiond-device".into(), alice.cookies["sessiond-device"].clone());
    for _ in 0..6 {
        let r = bob.login("bob", "guess", false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = bob.login("bob", PASSWORD, false).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Parallel guesses get only the remaining allowance of password checks:
/// the attempt is reserved before its password is hashed (checked before
/// and counted after, 200 parallel guesses at an account with 3 of 5
/// failures used got 192 checks).
#[tokio::test]
async fn parallel_guesses_get_only_the_remaining_allowance() {
    let server = portal(&[]);
    let mut browser = Browser::new(&server, "test");
    for _ in 0..3 {
        let r = browser.login("alice", "wrong password", false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let csrf = browser.csrf("/login").await;
    let body = form_encode(&[
        ("username", "alice"),
        ("password", "wrong again"),
        ("csrf_token", &csrf),
    ]);
    let started = std::time::Instant::now();
    let guesses: Vec<_> = (0..200)
        .map(|_| {
            let request = browser
                .client
                .post(format!("{}/login", browser.base))
                .header("cookie", browser.cookie_header())
                .header("origin", browser.base.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap().unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Two free failures are left, plus the attempt that starts the 1 s
    // delay; each delay that ran out during a slow burst lets one more in.
    let elapsed = started.elapsed().as_secs_f64();
    let (mut expired, mut until, mut step) = (0, 1.0, 1.0);
    while elapsed >= until {
        expired += 1;
        step *= 2.0;
        until += step;
    }
    assert!(checked <= 3 + expired, "{checked} password checks in {elapsed:.1} s");
    assert!(checked >= 1, "no guess was checked at all");
}

/// A sign-in form with a 1 MB user name is refused before anything reads it
/// (1,200 such logins once grew the process by 1.2 GB of throttle keys).
///
/// Over a raw connection that sends the head and just over 16 KiB of the
/// body: a client that sends the whole megabyte meets a closed connection
/// while it is still writing, and may lose the answer to the reset (which
/// made an earlier form of this test flaky).
#[tokio::test]
async fn an_oversized_form_is_refused_unread() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = portal(&[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000030\r\n\r\nusername="
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all("a".repeat(16 * 1024).as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("an answer before the body arrives")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{answer}");
    assert!(answer.contains("data-code=\"payload_too_large\""), "{answer}");
    // A form of ordinary size is still read.
    let mut browser = Browser::new(&server, "test");
    let r = browser.login("alice", PASSWORD, false).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_csrf_is_refused() {
    let server = portal(&[]);
    let mut browser = Browser::new(&server, "test");
    let csrf = browser.csrf("/login").await;
    let fields = [("username", "alice"), ("password", PASSWORD)];

    // No form token, a wrong one, or no cookie: the form is refused.
    let r = browser.submit("/login", &fields).await;
    assert_page(r, StatusCode::FORBIDDEN, "This sign-in form has expired").await;
    let other = "A".repeat(43);
    let r = browser
        .submit("/login", &[fields[0], fields[1], ("csrf_token", &other)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut stranger = Browser::new(&server, "test");
    let r = stranger
        .submit("/login", &[fields[0], fields[1], ("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // From another origin, even with both values right.
    let with_token = [fields[0], fields[1], ("csrf_token", csrf.as_str())];
    let r = browser.post("/login", &with_token, Some("http://evil.example")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "cross_site_request");
    let r = browser.post("/login", &with_token, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.subject().await, None);

    let r = browser.submit("/login", &with_token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.subject().await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn return_addresses_are_same_origin_or_allow_listed() {
    let server = portal(&[("SESSIOND_PORTAL_REDIRECT_ALLOWLIST", "[\"https://app.example\"]")]);
    let own = server.base.clone();
    let cases = [
        ("/app/page?x=1", "/app/page?x=1"),
        ("https://app.example/x", "https://app.example/x"),
        (&format!("{own}/deep"), &format!("{own}/deep")),
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("/\\evil.example", "/account"),
        ("javascript:alert(1)", "/account"),
    ];
    for (rd, expected) in cases {
        let mut browser = Browser::new(&server, "test");
        let page = browser
            .get(&format!("/login?rd={}", encode(rd)))
            .await
            .text()
            .await
            .unwrap();
        let csrf = hidden(&page, "csrf_token");
        let fields = [
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("rd", rd),
        ];
        let r = browser.submit("/login", &fields).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{rd}");
        assert_eq!(location(&r), expected, "{rd}");
    }
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let server = portal(&[]);
    let mut browser = Browser::new(&server, "test");
    for path in ["/login", "/account", "/auth/verify"] {
        let r = browser.get(path).await;
        if path == "/auth/verify" {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "signed out: forward auth's 401");
        }
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP in --dev"
        );
    }
    let page = browser.get("/login").await.text().await.unwrap();
    assert!(!page.contains("<script"), "the login page needs no JavaScript");
}

#[tokio::test]
async fn outside_dev_mode_cookies_are_host_prefixed_and_hsts_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    // Plain HTTP here stands for the proxy's side of a TLS proxy.
    let server = launch()
        .dir(dir)
        .store("memory:")
        .env(&[("SESSIOND_SERVER_BEHIND_PROXY", "true")])
        .start();
    let mut browser = Browser::new(&server, "test");
    let r = browser.get("/login").await;
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-sessiond-login=") && cookie.contains("Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn devices_can_be_signed_out_and_a_stale_login_needs_the_password() {
    let server = portal(&[("SESSIOND_PORTAL_REAUTH_WINDOW", "2s")]);
    let mut laptop = Browser::new(&server, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
    let mut phone = Browser::new(
        &server,
        "Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile Safari/537.36",
    );
    let mut tablet = Browser::new(&server, "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) Safari/604.1");
    for b in [&mut laptop, &mut phone, &mut tablet] {
        assert_eq!(b.login("alice", PASSWORD, false).await.status(), StatusCode::SEE_OTHER);
    }
    let mut bob = Browser::new(&server, "test");
    bob.login("bob", PASSWORD, false).await;
    let page = laptop.get("/account").await.text().await.unwrap();
    assert_eq!(page.matches("class=\"session card\"").count(), 3, "{page}");
    assert!(page.contains("Chrome on Android") && page.contains("Safari on iPadOS"));

    let phone_id = phone.get("/auth/verify").await.headers()["x-auth-session"]
        .to_str()
        .unwrap()
        .to_owned();
    let bob_id = bob.get("/auth/verify").await.headers()["x-auth-session"]
        .to_str()
        .unwrap()
        .to_owned();
    let csrf = hidden(&page, "csrf_token");

    // Another user's session is "not found", and stays alive.
    let r = laptop
        .submit(&format!("/account/sessions/{bob_id}/revoke"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(bob.subject().await.as_deref(), Some("bob"));
    let r = laptop
        .submit("/account/sessions/not-an-id/revoke", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without the session's CSRF token nothing happens.
    let r = laptop
        .submit(&format!("/account/sessions/{phone_id}/revoke"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(phone.subject().await.as_deref(), Some("alice"));

    let r = laptop
        .submit(
            &format!("/account/sessions/{phone_id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account?done=revoked");
    assert_eq!(phone.subject().await, None);
    assert_eq!(location(&phone.get("/account").await), "/login?rd=%2Faccount");

    // Once the login is older than the window, the password is required.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let page = laptop.get("/account").await.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "{page}");
    let csrf = hidden(&page, "csrf_token");
    let r = laptop
        .submit("/account/sessions/revoke-others", &[("csrf_token", &csrf)])
        .await;
    assert_page(r, StatusCode::FORBIDDEN, "Enter your password").await;
    let r = laptop
        .submit(
            "/account/sessions/revoke-others",
            &[("csrf_token", &csrf), ("password", "nope")],
        )
        .await;
    assert_page(r, StatusCode::FORBIDDEN, "Wrong password.").await;
    assert_eq!(tablet.subject().await.as_deref(), Some("alice"));
    let r = laptop
        .submit(
            "/account/sessions/revoke-others",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(tablet.subject().await, None);
    // The password made this session fresh again, with a new token.
    assert_eq!(laptop.subject().await.as_deref(), Some("alice"));
    let page = laptop.get("/account").await.text().await.unwrap();
    assert!(!page.contains("name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>"));
    assert_eq!(bob.subject().await.as_deref(), Some("bob"));
}

#[tokio::test]
async fn changing_the_password_rotates_this_session_and_ends_the_others() {
    let server = portal(&[]);
    let mut laptop = Browser::new(&server, "test");
    let mut phone = Browser::new(&server, "test");
    laptop.login("alice", PASSWORD, false).await;
    phone.login("alice", PASSWORD, false).await;
    let old_cookie = laptop.cookies["sessiond"].clone();
    let csrf = laptop.csrf("/account").await;

    let change = |current: &'static str, new: &'static str| {
        [
            ("csrf_token", csrf.clone()),
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
        ]
    };
    let fields = change("wrong", "a new long password");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = laptop.submit("/account/password", &fields).await;
    assert_page(r, StatusCode::FORBIDDEN, "Your current password is not correct.").await;
    let fields = change(PASSWORD, "short");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = laptop.submit("/account/password", &fields).await;
    assert_page(r, StatusCode::BAD_REQUEST, "at least 8 characters").await;
    assert_eq!(phone.subject().await.as_deref(), Some("alice"));

    let fields = change(PASSWORD, "a new long password");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = laptop.submit("/account/password", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account?done=password");
    assert_ne!(laptop.cookies["sessiond"], old_cookie, "the session was rotated");
    assert_eq!(laptop.subject().await.as_deref(), Some("alice"));
    assert_eq!(phone.subject().await, None);

    // The old password no longer works, the new one does.
    let mut other = Browser::new(&server, "test");
    assert_eq!(
        other.login("alice", PASSWORD, false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        other.login("alice", "a new long password", false).await.status(),
        StatusCode::SEE_OTHER
    );

    // Each ended session has its event.
    let events: Value = server
        .req(reqwest::Method::GET, "/v1/events?subject=alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reasons: Vec<_> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .filter(|e| e["kind"] == "revoked")
        .map(|e| e["reason"].as_str().unwrap_or_else(|| panic!("{e}")).to_owned())
        .collect();
    assert_eq!(reasons, ["password_change"], "{events}");
}

/// Issue 15: theft detection at forward auth. A cookie copied before the
/// session rotated (here by a password change) and presented after the
/// grace means two browsers hold the session: the proxy's check refuses
/// it and the session ends for its owner too, recorded as theft.
#[tokio::test]
async fn forward_auth_with_a_rotated_out_cookie_ends_the_session_as_theft() {
    let server = portal(&[]);
    let mut laptop = Browser::new(&server, "test");
    laptop.login("alice", PASSWORD, false).await;
    let mut thief = Browser::new(&server, "test");
    thief
        .cookies
        .insert("sessiond".to_owned(), laptop.cookies["sessiond"].clone());
    assert_eq!(
        thief.subject().await.as_deref(),
        Some("alice"),
        "the copy works until the rotation"
    );

    let csrf = laptop.csrf("/account").await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("current_password", PASSWORD),
        ("new_password", "a new long password"),
    ];
    assert_eq!(
        laptop.submit("/account/password", &fields).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        laptop.subject().await.as_deref(),
        Some("alice"),
        "rotated, still signed in"
    );

    assert_eq!(thief.subject().await, None);
    assert_eq!(laptop.subject().await, None, "the owner's newer cookie ends too");
    let events: Value = server
        .req(reqwest::Method::GET, "/v1/events?subject=alice&kind=revoked")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reasons: Vec<&str> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["theft"], "{events}");
}

/// Forward auth applies the client binding: under `bind_user_agent =
/// "revoke"`, the cookie replayed from another browser family ends the
/// session as `hijack_suspected`, while the owner's browser update does
/// not; the account page shows where the session signed in.
#[tokio::test]
async fn forward_auth_with_a_cookie_moved_to_another_browser_ends_the_session() {
    const CHROME_120: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/120.0.0.0 Safari/537.36";
    const CHROME_131: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/131.0.6778.86 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let server = portal(&[("SESSIOND_POLICY_BIND_USER_AGENT", "revoke")]);
    let mut laptop = Browser::new(&server, CHROME_120);
    laptop.login("alice", PASSWORD, false).await;
    let page = laptop.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("<dt>Signed in from</dt><dd class=\"created-ip\">127.0.0.1</dd>"),
        "{page}"
    );
    let mut updated = Browser::new(&server, CHROME_131);
    updated.cookies = laptop.cookies.clone();
    assert_eq!(
        updated.subject().await.as_deref(),
        Some("alice"),
        "a version bump is no change"
    );

    let mut thief = Browser::new(&server, FIREFOX);
    thief.cookies = laptop.cookies.clone();
    assert_eq!(thief.subject().await, None);
    assert_eq!(laptop.subject().await, None, "the session is over for its owner too");
    let events: Value = server
        .req(reqwest::Method::GET, "/v1/events?subject=alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reasons: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .filter(|e| e["kind"] == "anomaly" || e["kind"] == "revoked")
        .map(|e| (e["kind"].as_str().unwrap(), e["reason"].as_str().unwrap_or_default()))
        .collect();
    // Newest first: the revocation, then the anomaly stored with it.
    assert_eq!(
        reasons,
        [("revoked", "hijack_suspected"), ("anomaly", "user_agent_changed")],
        "{events}"
    );
}

#[tokio::test]
async fn users_commands_manage_accounts_and_disabling_ends_sessions() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), STORE, "alice", PASSWORD);
    let out = sessiond(dir.path(), &["users", "list", "--store", STORE], &[]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.starts_with("alice\tactive\t"), "{listed}");
    // A second add of the same name fails and changes nothing.
    let out = users_command(
        dir.path(),
        STORE,
        &["add", "alice", "--password-stdin"],
        "another password",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = users_command(dir.path(), STORE, &["add", "carol", "--password-stdin"], "short");
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 to 1024 bytes"));
    // A password is never taken from the command line.
    let out = sessiond(dir.path(), &["users", "add", "carol", "--store", STORE], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));

    let server = launch().dir(dir).store(STORE).args(&["--dev"]).start();
    let mut alice = Browser::new(&server, "test");
    alice.login("alice", PASSWORD, false).await;
    assert_eq!(alice.subject().await.as_deref(), Some("alice"));
    // While the server holds the embedded store, the command goes through
    // its admin routes (issue 13) and takes effect at once.
    let out = sessiond(server.dir.path(), &["users", "disable", "alice", "--store", STORE], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("disabled alice"));
    assert_eq!(alice.subject().await, None, "disabling ended the session");
    let dir = server.stop();
    let out = sessiond(dir.path(), &["users", "list", "--store", STORE], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("alice\tdisabled"),
        "{out:?}"
    );

    let server = launch().dir(dir).store(STORE).args(&["--dev"]).start();
    alice.base = server.base.clone();
    assert_eq!(alice.subject().await, None, "disabling ended the session");
    let r = alice.login("alice", PASSWORD, false).await;
    assert_page(r, StatusCode::UNAUTHORIZED, "Wrong username or password.").await;
}

/// Plain HTTP with no TLS in front (no `[server.tls]`, `--dev` or
/// `server.behind_proxy`): every page answers `403 https_required` before
/// reading a form or setting a cookie; forward auth, the API and the
/// operations routes are served.
#[tokio::test]
async fn plain_http_without_a_tls_proxy_refuses_the_pages_but_not_forward_auth() {
    let server = launch().start();
    let mut browser = Browser::new(&server, "test");
    let pages = [
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/account"),
        ("POST", "/account/password"),
        ("POST", "/account/sessions/revoke-others"),
        ("GET", "/static/portal.css"),
    ];
    for (method, path) in pages {
        let r = if method == "GET" {
            browser.get(path).await
        } else {
            browser
                .submit(path, &[("username", "alice"), ("password", PASSWORD)])
                .await
        };
        assert!(r.headers().get(SET_COOKIE).is_none(), "{method} {path} set a cookie");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        // The refusal is a portal answer like any other: security headers.
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{method} {path}");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{method} {path}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "https_required", "{method} {path}: {body}");
        assert_eq!(body["status"], 403, "{method} {path}");
        assert_eq!(body["title"], sessiond_portal::HTTPS_REQUIRED_TITLE);
    }
    assert_eq!(browser.get("/auth/verify").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get("/healthz").await.status(), StatusCode::OK);
    let (status, _) = server
        .json(reqwest::Method::GET, "/v1/subjects/alice/sessions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_portal_is_neither_served_nor_documented() {
    let server = launch().env(&[("SESSIOND_PORTAL_ENABLED", "false")]).start();
    let mut browser = Browser::new(&server, "test");
    let r = browser.get("/login").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "no_such_route");
    assert_eq!(browser.get("/auth/verify").await.status(), StatusCode::NOT_FOUND);
    let doc: Value = browser.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["paths"].get("/v1/sessions").is_some());
    assert!(doc["paths"].get("/login").is_none(), "{}", doc["paths"]);
}

/// Issue 13: the portal secrets are in the store, so nodes over one store,
/// each with its own empty data directory and no secret file shared,
/// accept each other's forms (and still refuse a forged token).
async fn nodes_over_one_store_accept_each_others_forms(engine: crate::multi_node::Engine) {
    let Some(store) = engine.store() else {
        return;
    };
    let node = || launch().store(&store).args(&["--dev"]).start();
    let a = node();
    add_user(a.dir.path(), &store, "alice", PASSWORD);
    let b = node();
    for server in [&a, &b] {
        assert!(!server.data_dir().join("portal-secret").exists());
    }

    let mut alice = Browser::new(&a, "test");
    assert_eq!(
        alice.login("alice", PASSWORD, false).await.status(),
        StatusCode::SEE_OTHER
    );
    let csrf = alice.csrf("/account").await;
    alice.base = b.base.clone();
    // B checks the token: a forged one is refused...
    let forged: String = csrf.chars().rev().collect();
    let r = alice.submit("/logout", &[("csrf_token", &forged)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf_failed");
    assert_eq!(alice.subject().await.as_deref(), Some("alice"));
    // ...and the one A signed is accepted: both hold the store's secrets.
    let r = alice.submit("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    alice.base = a.base.clone();
    assert_eq!(alice.subject().await, None);
}

#[tokio::test]
async fn nodes_over_one_redis_accept_each_others_forms() {
    nodes_over_one_store_accept_each_others_forms(crate::multi_node::Engine::Redis).await;
}

#[tokio::test]
async fn nodes_over_one_postgres_accept_each_others_forms() {
    nodes_over_one_store_accept_each_others_forms(crate::multi_node::Engine::Postgres).await;
}

/// Issue 13: users live in the store. A user added through node A signs in
/// on node B; disabled through B's admin routes, their session on A is gone
/// and they cannot sign in on A.
async fn a_user_disabled_through_one_node_cannot_sign_in_on_another(engine: crate::multi_node::Engine) {
    let Some(store) = engine.store() else {
        return;
    };
    let node = || launch().store(&store).args(&["--dev"]).start();
    let (a, b) = (node(), node());
    let (status, added) = a
        .json(
            reqwest::Method::POST,
            "/v1/admin/users",
            Some(serde_json::json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let mut alice = Browser::new(&b, "test");
    assert_eq!(
        alice.login("alice", PASSWORD, false).await.status(),
        StatusCode::SEE_OTHER
    );
    let disabled = b
        .req(reqwest::Method::POST, "/v1/admin/users/alice/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::NO_CONTENT);
    alice.base = a.base.clone();
    assert_eq!(
        alice.subject().await,
        None,
        "disabling through B ended the session on A"
    );
    let r = alice.login("alice", PASSWORD, false).await;
    assert_page(r, StatusCode::UNAUTHORIZED, "Wrong username or password.").await;
}

#[tokio::test]
async fn a_user_disabled_through_one_redis_node_cannot_sign_in_on_another() {
    a_user_disabled_through_one_node_cannot_sign_in_on_another(crate::multi_node::Engine::Redis).await;
}

#[tokio::test]
async fn a_user_disabled_through_one_postgres_node_cannot_sign_in_on_another() {
    a_user_disabled_through_one_node_cannot_sign_in_on_another(crate::multi_node::Engine::Postgres).await;
}

/// Issue 13: the secret file of an earlier version is imported into the
/// store at start and renamed, and forms signed with it stay valid: a node
/// over the same store without the file accepts them.
#[tokio::test]
async fn a_portal_secret_file_is_imported_into_the_store_and_renamed() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(store) = crate::multi_node::Engine::Redis.store() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Where the test server keeps its data (see `TestServer::data_dir`).
    let data = dir.path().join("sessiond-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(73).wrapping_add(11);
    }
    let file = data.join("portal-secret");
    std::fs::write(&file, secret).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let a = launch().dir(dir).store(&store).args(&["--dev"]).start();
    add_user(a.dir.path(), &store, "alice", PASSWORD);
    let data = a.data_dir();
    assert!(!data.join("portal-secret").exists(), "the file was renamed");
    assert_eq!(std::fs::read(data.join("portal-secret.imported")).unwrap(), secret);
    let stored = sessiond_stores::open(&sessiond_stores::StoreUrl::parse(&store).unwrap())
        .await
        .unwrap();
    let secrets = stored.secrets();
    assert_eq!(
        secrets
            .secrets(&sessiond_core::SecretName::portal_csrf())
            .await
            .unwrap(),
        Some(vec![secret])
    );

    // A node without the file signs and checks with the imported secret.
    let b = launch().store(&store).args(&["--dev"]).start();
    let mut alice = Browser::new(&a, "test");
    alice.login("alice", PASSWORD, false).await;
    let csrf = alice.csrf("/account").await;
    alice.base = b.base.clone();
    let r = alice.submit("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// Issue 12, finding 3: a session an API key created is not a portal login,
/// whatever its subject — not for `admin` (no such portal user), not even
/// for the existing user `alice`. Forward auth answers it as it answers no
/// session (401), the account page sends it to sign in, and the login page
/// shows its form instead of bouncing back to the account page.
#[tokio::test]
async fn forward_auth_and_the_account_pages_refuse_api_made_sessions() {
    let server = portal(&[]);
    let mut tokens = Vec::new();
    for subject in ["admin", "alice"] {
        tokens.push((subject, server.login(subject).await.0));
    }
    // A visitor's anonymous session (issue 18) proves nobody either.
    let (status, visitor) = server
        .json(reqwest::Method::POST, "/v1/sessions", Some(serde_json::json!({})))
        .await;
    assert_eq!(status, 201, "{visitor}");
    tokens.push(("(anonymous)", visitor["token"].as_str().unwrap().to_owned()));
    for (subject, token) in tokens {
        let mut browser = Browser::new(&server, "test");
        browser.cookies.insert("sessiond".to_owned(), token);
        let verify = browser.get("/auth/verify").await;
        assert_eq!(verify.status(), StatusCode::UNAUTHORIZED, "{subject}");
        assert!(verify.headers().get("x-auth-subject").is_none(), "{subject}");
        let account = browser.get("/account").await;
        assert_eq!(account.status(), StatusCode::SEE_OTHER, "{subject}");
        assert_eq!(location(&account), "/login?rd=%2Faccount");
        assert_page(browser.get("/login").await, StatusCode::OK, "name=\"password\"").await;
    }

    // The portal's own login of the same user is accepted.
    let mut alice = Browser::new(&server, "test");
    alice.login("alice", PASSWORD, false).await;
    assert_eq!(alice.subject().await.as_deref(), Some("alice"));
    assert_eq!(alice.get("/account").await.status(), StatusCode::OK);
}

/// Issue 12, finding 3: a disabled user's portal session stops passing
/// forward auth (here through `sessiond users disable` on the stopped
/// server; the lookup cache behind the check is tested in the portal crate
/// on a fake clock).
#[tokio::test]
async fn a_disabled_users_portal_session_is_refused() {
    let server = portal(&[("SESSIOND_PORTAL_USER_CACHE_TTL", "1s")]);
    let mut alice = Browser::new(&server, "test");
    alice.login("alice", PASSWORD, false).await;
    assert_eq!(alice.subject().await.as_deref(), Some("alice"));
    let dir = server.stop();
    let out = sessiond(dir.path(), &["users", "disable", "alice", "--store", STORE], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = launch()
        .dir(dir)
        .store(STORE)
        .env(&[("SESSIOND_PORTAL_USER_CACHE_TTL", "1s")])
        .args(&["--dev"])
        .start();
    alice.base = server.base.clone();
    assert_eq!(alice.get("/auth/verify").await.status(), StatusCode::UNAUTHORIZED);
}

/// Issue 12, finding 3: subjects that would split, fold or reorder a header
/// or open markup are refused when a session is created, with the API's
/// `invalid_request` and a detail naming the character.
#[tokio::test]
async fn subjects_that_would_confuse_headers_are_refused_at_creation() {
    let server = portal(&[]);
    for subject in ["alice, admin", "<script>", " ", "a\u{202e}b", "alice\u{a0}", "a;b"] {
        let response = server
            .post("/v1/sessions", serde_json::json!({ "subject": subject }))
            .await;
        assert_eq!(response.status(), 400, "{subject:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_request", "{subject:?}: {body}");
        let said = format!("{} {}", body["title"], body["detail"]);
        assert!(said.contains("subject must not contain"), "{subject:?}: {body}");
    }
    for subject in [
        "a.b+c@example.com",
        "0b6f8e4c-2d1a-4c7e-9a51-3f0e2b7d9c11",
        "user:123",
        "tenant/alice",
        "zoë",
    ] {
        server.login(subject).await;
    }
}
