//! The accept loop: every connection served by hyper's HTTP/1.1 server with
//! a header-read timeout, which `axum::serve` does not let one set.
//!
//! Without it a client that sends half a request head holds its socket (and
//! a file descriptor) for as long as it likes; a few hundred such clients
//! exhaust a low descriptor limit and nobody else can connect. With it the
//! head must arrive whole within `server.header_read_timeout`, or the
//! connection is closed. hyper runs the same timer while a kept-alive
//! connection waits for its next request, so the timeout is also the
//! longest a connection may sit idle.
//!
//! With `[server.tls]` each connection first completes a TLS handshake,
//! bounded by the same timeout (a client that stalls mid-handshake is
//! closed like one that stalls mid-head), then is served as HTTP/2 or
//! HTTP/1.1, whichever ALPN agreed. HTTP/2 has no request-head timer of its
//! own in hyper; its keep-alive pings close a connection whose peer stops
//! answering, and its header-list limit bounds what one request can hold.
//!
//! What else `axum::serve` did is kept: each request carries the peer
//! address as `ConnectInfo` (the portal throttles by it), transient accept
//! errors do not stop the loop, and shutdown stops accepting, lets requests
//! in flight finish, and closes idle connections. Each request of a TLS
//! connection also carries [`TlsClient`]: whether the handshake verified a
//! client certificate (`/v1` requires one under `client_ca_file`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How connections are treated.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time to receive a whole request head.
    pub header_read_timeout: Duration,
    /// Longest wait at shutdown for requests in flight.
    pub drain_timeout: Duration,
    /// Largest total size of request headers (HTTP/2's header-list limit;
    /// HTTP/1.1's is enforced by the app's own layer).
    pub header_bytes: u32,
}

/// What the TLS handshake established about the client: an extension of
/// every request of a TLS connection (none on plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsClient {
    /// The client presented a certificate chain that rustls verified
    /// against `server.tls.client_ca_file`.
    pub certificate_verified: bool,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains:
/// plain HTTP/1.1, or HTTPS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout)
        .max_header_list_size(limits.header_bytes);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(acceptor) = &acceptor else {
            let service = service(app.clone(), peer, None);
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(ended(connection, peer));
            continue;
        };
        // Subscribed now, before the handshake: shutdown waits for this
        // connection too, and one that finishes its handshake after the
        // signal is told to close at once.
        let (acceptor, http, h2, watcher) = (acceptor.clone(), http.clone(), h2.clone(), graceful.watcher());
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, %peer, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            // rustls keeps peer certificates only when its verifier accepted
            // them (a chain it refuses fails the handshake), and asks for
            // none without `client_ca_file`: present means verified.
            let client = TlsClient {
                certificate_verified: stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()),
            };
            let service = service(app, peer, Some(client));
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                ended(watcher.watch(h2.serve_connection(TokioIo::new(stream), service)), peer).await;
            } else {
                ended(
                    watcher.watch(http.serve_connection(TokioIo::new(stream), service)),
                    peer,
                )
                .await;
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after = ?limits.drain_timeout,
            "connections still open at shutdown were dropped"
        );
    }
    Ok(())
}

/// The app as a hyper service for one connection from `peer`, with what
/// its TLS handshake (if any) established.
fn service(
    app: Router,
    peer: SocketAddr,
    tls: Option<TlsClient>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(tls) = tls {
            request.extensions_mut().insert(tls);
        }
        app.clone().oneshot(request.map(Body::new))
    })
}

/// Waits for a connection to end. Resets, header timeouts and clients
/// that go away mid-request are the network's business, not errors of ours.
async fn ended<E: std::fmt::Display>(connection: impl Future<Output = Result<(), E>>, peer: SocketAddr) {
    if let Err(error) = connection.await {
        tracing::debug!(%error, %peer, "connection ended");
    }
}

/// An accept error. A connection reset before it was accepted is nothing;
/// anything else (out of file descriptors, above all) is logged, and the
/// loop pauses briefly so it does not spin while descriptors are short.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Raises the soft limit on open files to the hard limit, so the descriptor
/// limit is the operator's choice (the hard limit) and not the distribution's
/// default soft limit, often 1,024. Returns the limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
