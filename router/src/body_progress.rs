//! How far a request body has come, so that the request timeout bounds the cell's silence and not
//! the client's upload.
//!
//! A cell answers an upload once it has read the body (Workhorse and Rails do: `git push`, LFS
//! objects, CI artifacts, package uploads), and a large upload over a slow link takes minutes.
//! Counted from the request's start, the request timeout cut every upload longer than it with a
//! `504` while the client was still sending. Like nginx's `proxy_read_timeout` (which starts once
//! the request is sent) the timeout now runs from the last body byte handed to the cell: a body
//! that keeps moving is never cut, and a cell that goes quiet once it has the body still is.
//!
//! A body that stops moving is told apart by who stopped it. When hyper asked for more and the
//! client had nothing, the client stalled: `408` (nginx's `client_body_timeout` answer), and the
//! cell is not blamed. When hyper stopped asking (the cell stopped reading, its connection's
//! buffers full), the cell is the silent one: `504`, as for any cell that does not answer.
//!
//! The body is read on the pooled connection's task and the timeout polled on the client
//! connection's: the two share [`Progress`] through atomics, and the timeout's deadline is read
//! anew each time its (lazy) timer fires ([`crate::lazy_timer::LazyTimer::timeout_by`]), so a
//! moving body costs a clock reading per frame and no timer work.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// Hyper has not asked for the body since its last frame (or at all yet).
const MOVING: u8 = 0;
/// Hyper asked for the body and the client had nothing to give.
const WAITING_FOR_CLIENT: u8 = 1;
/// The body ended (or failed): only the cell can be late now.
const ENDED: u8 = 2;

/// One request body's progress.
#[derive(Debug)]
pub struct Progress {
    /// When the request was handed to its cell: the timeout's start while no byte has moved.
    start: Instant,
    /// Nanoseconds after `start` of the body's last frame (or of its end).
    last: AtomicU64,
    state: AtomicU8,
}

/// Who a request that ran out of time was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The client, for more of its body.
    Client,
    /// The cell: for it to read on, or to answer.
    Cell,
}

impl Progress {
    pub fn new(start: Instant) -> Arc<Progress> {
        Arc::new(Progress { start, last: AtomicU64::new(0), state: AtomicU8::new(MOVING) })
    }

    /// When the body last moved (`start` before its first frame).
    pub fn last_moved(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Who the request is waiting for (asked when it ran out of time).
    pub fn waiting(&self) -> Waiting {
        match self.state.load(Ordering::Relaxed) {
            WAITING_FOR_CLIENT => Waiting::Client,
            _ => Waiting::Cell,
        }
    }

    fn moved(&self, state: u8) {
        let since = crate::lazy_timer::now().saturating_duration_since(self.start);
        self.last.store(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.state.store(state, Ordering::Relaxed);
    }
}

/// A client's request body that records its [`Progress`] as hyper's client reads it.
pub struct ProgressBody<B> {
    inner: B,
    progress: Arc<Progress>,
}

impl<B> ProgressBody<B> {
    pub fn new(inner: B, progress: Arc<Progress>) -> ProgressBody<B> {
        ProgressBody { inner, progress }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for ProgressBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Pending => this.progress.state.store(WAITING_FOR_CLIENT, Ordering::Relaxed),
            Poll::Ready(Some(Ok(_))) => this.progress.moved(if this.inner.is_end_stream() { ENDED } else { MOVING }),
            Poll::Ready(None | Some(Err(_))) => this.progress.moved(ENDED),
        }
        polled
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
    use http_body_util::BodyExt;

    /// A hand-fed body: each frame sent on the channel arrives alone, `Pending` in between.
    struct Fed(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

    impl HttpBody for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_follows_the_body_and_says_who_is_waiting() {
        let start = crate::lazy_timer::now();
        let progress = Progress::new(start);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = ProgressBody::new(Fed(rx), progress.clone());
        assert_eq!(progress.last_moved(), start);
        assert_eq!(progress.waiting(), Waiting::Cell, "nothing asked of the client yet");

        tokio::time::advance(Duration::from_millis(100)).await;
        tx.send(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "abc");
        assert_eq!(progress.last_moved(), start + Duration::from_millis(100));
        assert_eq!(progress.waiting(), Waiting::Cell, "a frame was handed over: the cell has to read on");

        // Asked for more, the client has none: the client is the one waited for.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
        assert_eq!(progress.waiting(), Waiting::Client);
        assert_eq!(progress.last_moved(), start + Duration::from_millis(100), "a wait is no progress");

        tokio::time::advance(Duration::from_millis(50)).await;
        drop(tx);
        assert!(body.frame().await.is_none());
        assert_eq!(progress.last_moved(), start + Duration::from_millis(150), "the end is the last move");
        assert_eq!(progress.waiting(), Waiting::Cell, "an ended body waits for nobody but the cell");
    }
}
