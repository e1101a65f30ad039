//! A tiny shop: log in, keep a cart in the session, log out.
//!
//! Run: `cargo run -p sessiond-http --example shop`, then open
//! <http://127.0.0.1:3000> and sign in as anyone with the password `shop`.
//!
//! In-process sessions on a MemoryStore, in development mode (plain HTTP on
//! localhost, so the cookie is `sessiond` without `Secure`). For production
//! drop `.dev_mode(true)` and serve over HTTPS: the cookie becomes
//! `__Host-sessiond; Secure`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

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

async fn home(session: Session) -> Result<Html<String>, HttpError> {
    let Some(current) = session.current().await? else {
        return Ok(page(
            "<form method=post action=/login>\
             <p><label>Name <input name=username required></label></p>\
             <p><label>Password <input name=password type=password required></label> (it is <code>shop</code>)</p>\
             <p><label><input type=checkbox name=remember_me value=1> Remember me</label></p>\
             <button>Sign in</button></form>",
        ));
    };
    let csrf = session.csrf_token().await?.unwrap_or_default();
    let items: String = current
        .data()
        .get("cart")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str())
        .map(|i| format!("<li>{}</li>", escape(i)))
        .collect();
    Ok(page(&format!(
        "<p>Signed in as <b>{user}</b>.</p><h2>Cart</h2><ul>{items}</ul>\
         <form method=post action=/cart><input type=hidden name=csrf_token value=\"{csrf}\">\
         <input name=item placeholder=\"socks\" required> <button>Add to cart</button></form>\
         <form method=post action=/logout><input type=hidden name=csrf_token value=\"{csrf}\">\
         <p><button>Sign out</button></p></form>",
        user = escape(current.subject().as_str()),
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
    // A new session and cookie after this handler; a planted cookie is never adopted.
    session.login(subject, form.remember_me.is_some());
    Redirect::to("/").into_response()
}

async fn add_to_cart(session: Session, Form(form): Form<AddForm>) -> Result<Redirect, HttpError> {
    let current = session.require().await?;
    let mut data = current.data().clone();
    let cart = data.entry("cart").or_insert_with(|| serde_json::json!([]));
    if let Some(items) = cart.as_array_mut() {
        items.push(serde_json::Value::String(form.item));
    }
    session.update_data(data).await?;
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Redirect {
    session.logout();
    Redirect::to("/")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let manager = SessionManager::builder(Arc::new(MemoryStore::new())).build()?;
    let layer = SessionLayer::in_process(manager).dev_mode(true).build()?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/cart", post(add_to_cart))
        .route("/logout", post(logout))
        .layer(layer);
    let addr = std::env::var("SHOP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("shop listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
