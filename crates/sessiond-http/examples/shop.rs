//! A tiny shop: fill a cart before signing in, sign in (the cart stays),
//! sign out (the cart goes).
//!
//! Run: `cargo run -p sessiond-http --example shop`, then open
//! <http://127.0.0.1:3000> and sign in as anyone with the password `shop`
//! (`SHOP_ADDR=127.0.0.1:0` picks a free port; the first line of output
//! says which). The visitor's first "Add to cart" starts an anonymous
//! session; reading pages never does. `tests/browser/shop.test.mjs` drives
//! this example's [`app`] in Chromium (started by `tests/browser.rs`).
//!
//! In-process sessions on a MemoryStore, in development mode (plain HTTP on
//! localhost, so the cookie is `sessiond` without `Secure`). For production
//! drop `.dev_mode(true)` and serve over HTTPS: the cookie becomes
//! `__Host-sessiond; Secure`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sessiond_core::{MemoryStore, SessionManager, Subject};
use sessiond_http::{HttpError, Session, SessionLayer};

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    remember_me: Option<String>,
}

#[derive(Deserialize)]
struct AddForm {
    item: String,
}

/// Escapes text for HTML: item names are user input.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>sessiond shop</title></head>\
         <body style=\"font-family:sans-serif;max-width:30em;margin:2em auto\"><h1>sessiond shop</h1>{body}</body></html>"
    ))
}

/// The page: the cart for everyone (a visitor's lives in an anonymous
/// session, started by their first "Add to cart"), then sign in or out.
async fn home(session: Session) -> Result<Html<String>, HttpError> {
    // Reads: they never start a session, so crawlers cost nothing.
    let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    let signed_in = session.current().await?;
    // A visitor with a cart has a session, and its CSRF token guards it.
    let csrf = session.csrf_token().await?.unwrap_or_default();
    let csrf_field = format!("<input type=hidden name=csrf_token value=\"{csrf}\">");
    let items: String = cart.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
    let account = match &signed_in {
        Some(current) => format!(
            "<p id=who>Signed in as <b>{user}</b>.</p>\
             <form method=post action=/logout>{csrf_field}<p><button>Sign out</button></p></form>",
            user = escape(current.subject().as_str()),
        ),
        None => format!(
            "<p id=who>Not signed in: your cart is kept for this visit.</p>\
             <form method=post action=/login>{csrf_field}\
             <p><label>Name <input name=username required></label></p>\
             <p><label>Password <input name=password type=password required></label> (it is <code>shop</code>)</p>\
             <p><label><input type=checkbox name=remember_me value=1> Remember me</label></p>\
             <button>Sign in</button></form>"
        ),
    };
    Ok(page(&format!(
        "<h2>Cart</h2><ul id=cart>{items}</ul>\
         <form method=post action=/cart>{csrf_field}\
         <input name=item placeholder=\"socks\" required> <button>Add to cart</button></form>\
         {account}"
    )))
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Response {
    // A real app checks a password hash; the demo accepts one password.
    let Ok(subject) = Subject::new(form.username) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad name").into_response();
    };
    if form.password != "shop" {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            page("<p>Wrong password. <a href=/>Try again</a></p>"),
        )
            .into_response();
    }
    // A new session (new id) and cookie after this handler, holding the
    // visitor's cart; their anonymous session ends and a planted cookie is
    // never adopted. (`login_carrying` chooses what to carry.)
    session.login(subject, form.remember_me.is_some());
    Redirect::to("/").into_response()
}

async fn add_to_cart(session: Session, Form(form): Form<AddForm>) -> Result<Redirect, HttpError> {
    let mut cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    cart.push(form.item);
    // Without a session this starts an anonymous one holding the cart.
    session.insert("cart", cart).await?;
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Redirect {
    // The session ends with its cart; the next "Add to cart" starts afresh.
    session.logout();
    Redirect::to("/")
}

/// For the browser test: how many session records the store holds (live
/// or ended), to show that reading pages writes none. Not for production.
async fn store_records(State(store): State<Arc<MemoryStore>>) -> String {
    format!("{{\"records\":{}}}", store.len())
}

/// The shop's routes over a fresh in-memory store, in development mode
/// (the browser test serves this same router).
pub fn app() -> Result<Router, Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::builder(store.clone()).build()?;
    let layer = SessionLayer::in_process(manager).dev_mode(true).build()?;
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/cart", post(add_to_cart))
        .route("/logout", post(logout))
        .layer(layer)
        .merge(
            Router::new()
                .route("/debug/store-records", get(store_records))
                .with_state(store),
        ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let addr = std::env::var("SHOP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("shop listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app()?.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
