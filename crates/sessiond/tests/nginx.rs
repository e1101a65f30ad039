//! Forward auth through a real nginx: the configuration documented in
//! `docs/nginx/sessiond.conf` (with its listen address and upstreams filled
//! in) in front of a stand-in app that greets whoever nginx says is signed
//! in.
//!
//! Needs `TEST_NGINX_BIN` (set by `scripts/test` through
//! `scripts/servers/nginx.sh`); without it the test says it is skipped, and
//! with `CI=true` it fails.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use sessiond_testkit::env::required;

use crate::support::{add_user, free_port, launch};

const STORE: &str = "embedded:./sessiond-data";
const PASSWORD: &str = "alice-Correct-Horse-1";
/// The documented configuration, the one the test runs.
const DOCUMENTED: &str = include_str!("../../../docs/nginx/sessiond.conf");

/// nginx with the documented configuration, and the stand-in app.
struct Nginx {
    nginx: sessiond_testkit::nginx::Nginx,
    /// `http://127.0.0.1:PORT`: the protected site.
    base: String,
}

/// `docs/nginx/sessiond.conf` with the values it marks CHANGE replaced, as
/// for a plain-HTTP loopback test (sessiond in `--dev` mode).
fn documented_config(listen_port: u16, sessiond: &str, app_port: u16) -> String {
    let replace_once = |text: &str, from: &str, to: &str| {
        assert_eq!(
            text.matches(from).count(),
            1,
            "docs/nginx/sessiond.conf should contain {from:?} exactly once"
        );
        text.replacen(from, to, 1)
    };
    let config = replace_once(DOCUMENTED, "server 127.0.0.1:7380;", &format!("server {sessiond};"));
    let config = replace_once(
        &config,
        "server 127.0.0.1:3000;",
        &format!("server 127.0.0.1:{app_port};"),
    );
    let config = replace_once(&config, "listen 443 ssl;", &format!("listen 127.0.0.1:{listen_port};"));
    let without_tls: Vec<&str> = config
        .lines()
        .filter(|line| !line.trim_start().starts_with("ssl_certificate"))
        .collect();
    assert_eq!(
        config.lines().count() - without_tls.len(),
        2,
        "docs/nginx/sessiond.conf should have ssl_certificate and ssl_certificate_key lines"
    );
    without_tls.join("\n") + "\n"
}

impl Nginx {
    fn start(bin: &str, sessiond: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, app_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("sessiond.conf"),
            documented_config(port, sessiond, app_port),
        )
        .unwrap();
        let http = format!(
            r#"include {{prefix}}/sessiond.conf;

    # The protected app: says whom nginx let through.
    server {{
        listen 127.0.0.1:{app_port};
        default_type text/plain;
        location / {{
            return 200 "hello $http_x_auth_subject\n";
        }}
    }}"#
        );
        let nginx = sessiond_testkit::nginx::Nginx::start(bin, dir, &http, &[port, app_port]);
        Self {
            nginx,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        self.nginx.log()
    }
}

/// The cookies a browser would hold: set and deleted by `Set-Cookie`.
#[derive(Default, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn update(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let mut parts = set.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let deleted = value.is_empty()
                || parts.any(|a| {
                    let a = a.to_ascii_lowercase();
                    a == "max-age=0" || a.starts_with("max-age=-") || a.contains("1970")
                });
            if deleted {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The `value` of the `<input>` named `name` in `html` (the first one).
fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no input named {name} in:\n{html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    let tag = &html[start..end];
    let value = tag
        .split_once(r#"value=""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .unwrap_or_else(|| panic!("input {name} has no value: {tag}"))
        .0;
    value
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The `href` of every `<link rel="stylesheet">` in `html`.
fn stylesheets(html: &str) -> Vec<String> {
    html.split("<link")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            if !tag.contains(r#"rel="stylesheet""#) {
                return None;
            }
            let (_, href) = tag.split_once(r#"href=""#)?;
            Some(href[..href.find('"')?].to_owned())
        })
        .collect()
}

/// The part of `html` from the form posting to `action` to its end.
fn form<'a>(html: &'a str, action: &str) -> &'a str {
    let start = html
        .find(&format!(r#"action="{action}""#))
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"));
    let end = start + html[start..].find("</form>").unwrap();
    &html[start..end]
}

/// `application/x-www-form-urlencoded`.
fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("{} without Location", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The login address nginx sends an anonymous request for `url` to.
async fn assert_sent_to_login(client: &Client, base: &str, url: &str, headers: &[(&str, &str)]) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "GET {url} {headers:?}");
    let location = location(&response);
    let path = location.strip_prefix(base).unwrap_or(&location);
    assert_eq!(path, format!("/login?rd={url}"), "Location of GET {url} {headers:?}");
}

#[tokio::test]
async fn nginx_forward_auth_with_the_documented_config() {
    let Some(bin) = required("TEST_NGINX_BIN", "the nginx forward-auth test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), STORE, "alice", PASSWORD);
    let sessiond = launch().dir(dir).store(STORE).args(&["--dev"]).start();
    let nginx = Nginx::start(&bin, sessiond.base.trim_start_matches("http://"));
    let base = nginx.base.clone();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let app = format!("{base}/hello?x=1");

    // Anonymous: to the login form, which will return to the app.
    assert_sent_to_login(&client, &base, &app, &[]).await;
    // A forged identity without a session changes nothing.
    assert_sent_to_login(&client, &base, &app, &[("X-Auth-Subject", "mallory")]).await;
    // The verify endpoint is nginx-internal.
    let internal = client.get(format!("{base}/_sessiond_verify")).send().await.unwrap();
    assert_eq!(
        internal.status(),
        StatusCode::NOT_FOUND,
        "/_sessiond_verify from outside"
    );

    // The login form, through nginx.
    let mut jar = Jar::default();
    let login_page = client.get(format!("{base}/login?rd={app}")).send().await.unwrap();
    assert_eq!(login_page.status(), StatusCode::OK, "GET /login");
    jar.update(login_page.headers());
    let html = login_page.text().await.unwrap();
    let csrf = input_value(&html, "csrf_token");
    assert_eq!(input_value(&html, "rd"), app, "the form carries rd");
    // Every stylesheet of the sign-in page loads through nginx before
    // anyone is signed in (the portal's paths are all proxied to sessiond).
    for href in stylesheets(&html) {
        let css = client.get(format!("{base}{href}")).send().await.unwrap();
        assert_eq!(
            css.status(),
            StatusCode::OK,
            "GET {href} (a stylesheet of /login) through nginx"
        );
        let content_type = css.headers().get("content-type").unwrap().to_str().unwrap();
        assert!(content_type.starts_with("text/css"), "{href}: {content_type}");
    }

    let signed_in = client
        .post(format!("{base}/login"))
        .header("Origin", &base)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", jar.header())
        .body(form_body(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("rd", &app),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "POST /login");
    assert_eq!(location(&signed_in), app, "login returns to rd");
    jar.update(signed_in.headers());
    let session = jar.get("sessiond").expect("a sessiond cookie after login").to_owned();

    // Signed in: the app sees alice, whatever the client claims.
    for forged in [&[][..], &[("X-Auth-Subject", "mallory")][..]] {
        let mut request = client.get(&app).header("Cookie", jar.header());
        for (name, value) in forged {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET the app signed in {forged:?}");
        assert_eq!(response.text().await.unwrap(), "hello alice\n", "{forged:?}");
    }

    // Sign out with the session's CSRF token from the account page.
    let account = client
        .get(format!("{base}/account"))
        .header("Cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), StatusCode::OK, "GET /account through nginx");
    let html = account.text().await.unwrap();
    let csrf = input_value(form(&html, "/logout"), "csrf_token");
    let signed_out = client
        .post(format!("{base}/logout"))
        .header("Origin", &base)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", jar.header())
        .body(form_body(&[("csrf_token", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER, "POST /logout");
    let to = location(&signed_out);
    assert_eq!(to.strip_prefix(&base).unwrap_or(&to), "/login", "logout goes to /login");
    jar.update(signed_out.headers());
    assert_eq!(jar.get("sessiond"), None, "logout deletes the session cookie");

    // The app is closed again, also to the old cookie value.
    assert_sent_to_login(&client, &base, &app, &[]).await;
    let old_cookie = format!("sessiond={session}");
    assert_sent_to_login(&client, &base, &app, &[("Cookie", &old_cookie)]).await;

    let access = std::fs::read_to_string(nginx.nginx.dir().join("access.log")).unwrap_or_default();
    assert!(
        !nginx.log().contains("[emerg]") && !nginx.log().contains("[crit]"),
        "nginx errors:\n{}\naccess log:\n{access}",
        nginx.log()
    );
    drop(nginx);
}
