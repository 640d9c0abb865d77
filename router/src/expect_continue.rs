//! `Expect: 100-continue` relayed from the cell, not answered by the router on its own.
//!
//! A client that sends `Expect: 100-continue` (curl for any upload over 1 MB, so GitLab's
//! documented `curl --upload-file` package and artifact uploads) waits for `100 Continue` before
//! it sends its body, so that a server refusing the upload (401, 403, 413) spares it the bytes.
//! hyper's server sends `100 Continue` when the body is first read, and hyper's client reads the
//! request body as soon as it has written the head: the router asked every client for its body
//! at once, and a refused upload went through the router in full (or until the cell's refusal
//! arrived). RFC 9110 §10.1.1 wants a proxy to forward the expectation and let the origin
//! decide; §15.2 wants the origin's `1xx` forwarded.
//!
//! So a body with that expectation is [`GatedBody`]: it is not read until the cell's own
//! `100 Continue` arrives (hyper's [`on_informational`](hyper::ext::on_informational) callback
//! on the upstream request opens the [`Gate`]); then hyper's server sends the client its
//! `100 Continue` and the body streams as any other. A cell that answers at once with a final
//! status is answered to the client without the body ever being asked for. A cell that sends no
//! `100` (an HTTP/1.0 server, one that waits for the body) gets the body after [`WAIT`], as curl
//! itself sends it after waiting that long.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

/// How long a body waits for the cell's `100 Continue` before it is sent anyway: curl's own
/// wait (`--expect100-timeout`, 1 s) and Go's `Transport.ExpectContinueTimeout` default.
pub const WAIT: Duration = Duration::from_secs(1);

/// True when the request expects `100 Continue` (the one expectation HTTP defines).
pub fn expected(headers: &HeaderMap) -> bool {
    headers.get(http::header::EXPECT).is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"100-continue"))
}

/// Opened by the cell's `100 Continue`.
#[derive(Default)]
pub struct Gate {
    opened: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    fn open(&self) {
        self.opened.store(true, Ordering::Release);
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }

    fn is_open(&self) -> bool {
        self.opened.load(Ordering::Acquire)
    }

    /// Has the cell's `100 Continue` to `req` open this gate.
    pub fn watch<B>(self: &Arc<Self>, req: &mut Request<B>) {
        let gate = self.clone();
        hyper::ext::on_informational(req, move |res| {
            if res.status() == StatusCode::CONTINUE {
                gate.open();
            }
        });
    }
}

/// A client's body that is not read before its [`Gate`] opens or [`WAIT`] has passed.
pub struct GatedBody<B = Incoming> {
    inner: B,
    gate: Arc<Gate>,
    /// Started when hyper first asks for the body (right after the head was written).
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    open: bool,
}

impl<B> GatedBody<B> {
    pub fn new(inner: B, gate: Arc<Gate>) -> GatedBody<B> {
        GatedBody { inner, gate, wait: None, open: false }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for GatedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if !this.open {
            if !this.gate.is_open() {
                *this.gate.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            }
            let waited = this.wait.get_or_insert_with(|| Box::pin(tokio::time::sleep(WAIT)));
            // Checked after the waker is registered: an opening in between is not missed.
            if !this.gate.is_open() && waited.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.open = true;
            this.wait = None;
        }
        Pin::new(&mut this.inner).poll_frame(cx)
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
    use super::*;

    #[test]
    fn only_the_100_continue_expectation_counts() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::EXPECT, http::HeaderValue::from_static(v));
            expected(&h)
        };
        assert!(with("100-continue") && with("100-Continue") && with(" 100-continue "));
        assert!(!with("200-ok") && !expected(&HeaderMap::new()));
    }
}
