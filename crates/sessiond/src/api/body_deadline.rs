//! A request body that must arrive whole before a deadline.
//!
//! A client that sends its body a byte at a time holds a request, and its
//! share of a budget, for as long as it likes; the request timeout bounds
//! that, but it must be long enough for the store. The body-read timeout
//! is much shorter and only covers receiving the body. It is a deadline for
//! the whole body, not an idle timeout between chunks (tower-http's
//! `RequestBodyTimeout`), which a client defeats by sending a byte just
//! before each one runs out.
//!
//! When the deadline passes, reading the body fails and [`Expired`] says so,
//! so the guard can answer 408 `body_timeout` whatever the handler made of
//! the failed read.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Whether a [`DeadlineBody`] ran out of time.
#[derive(Debug, Clone, Default)]
pub struct Expired(Arc<AtomicBool>);

impl Expired {
    /// True once the body's deadline passed before its end arrived.
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a reader of an expired body sees.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive before the body-read timeout")]
pub struct BodyTimedOut;

/// `inner`, failing once `deadline` passes before its end.
#[derive(Debug)]
pub struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    // Made on the first read that has to wait: a body already received
    // with its headers (every small JSON call) never sets a timer.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Expired,
}

impl DeadlineBody {
    /// Wraps `inner`; the returned [`Expired`] reports a timeout.
    pub fn new(inner: Body, deadline: Instant) -> (Self, Expired) {
        let expired = Expired::default();
        let body = Self {
            inner,
            deadline,
            timer: None,
            expired: expired.clone(),
        };
        (body, expired)
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.expired.happened() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.expired.0.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A body fed through a channel: chunks arrive when the test sends them.
    struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

    impl http_body::Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
        }
    }

    fn stalled() -> (Body, tokio::sync::mpsc::Sender<Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (Body::new(Fed(rx)), tx)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_at_the_deadline() {
        let (inner, tx) = stalled();
        tx.send(Bytes::from_static(b"{\"a\"")).await.unwrap();
        let (body, expired) = DeadlineBody::new(inner, Instant::now() + Duration::from_secs(3));
        let started = Instant::now();
        let error = axum::body::to_bytes(Body::new(body), 1024).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the request body did not arrive before the body-read timeout"
        );
        assert!(expired.happened());
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_does_not_extend_the_deadline() {
        let (inner, tx) = stalled();
        let (body, expired) = DeadlineBody::new(inner, Instant::now() + Duration::from_secs(3));
        // One byte a second: an idle timeout of 3 s would never fire.
        let sender = tokio::spawn(async move {
            for _ in 0..10 {
                if tx.send(Bytes::from_static(b" ")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        assert!(axum::body::to_bytes(Body::new(body), 1024).await.is_err());
        assert!(expired.happened());
        sender.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_read_whole() {
        let (body, expired) = DeadlineBody::new(Body::from("{}"), Instant::now() + Duration::from_secs(3));
        let bytes = axum::body::to_bytes(Body::new(body), 1024).await.unwrap();
        assert_eq!(&bytes[..], b"{}");
        assert!(!expired.happened());
    }
}
