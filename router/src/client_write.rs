//! A client that stops reading its answer is disconnected after `timeouts.client_write`.
//!
//! The router reads a cell's answer only as fast as the client takes it: a client that opens a
//! large download and then reads nothing fills the socket buffers, the router stops reading the
//! cell, and the cell's worker (a Puma thread, a Workhorse goroutine) blocks writing for as long
//! as the client likes. A few hundred such clients hold every worker of a cell. nginx bounds the
//! time between two successful writes to a client (`send_timeout`, 60 s by default); so does
//! this, on the client connection's socket: a write that stays blocked for `client_write` fails
//! with `TimedOut`, hyper closes the connection and drops the answer, and the cell's connection
//! is closed with it (its worker's write fails at once instead of hanging).
//!
//! The deadline is the connection's lazy timer ([`crate::lazy_timer`]), armed only when a write
//! is blocked: a client that reads costs one branch per write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::lazy_timer::{LazyTimer, StallLimit};

/// A client connection's socket whose blocked writes time out.
#[derive(Debug)]
pub struct WriteTimeout<S> {
    inner: S,
    blocked: StallLimit,
}

impl<S> WriteTimeout<S> {
    /// `timer` is the connection's own (its task polls this socket; after an upgrade the
    /// splicing task alone does).
    pub fn new(inner: S, timer: Arc<LazyTimer>, limit: Duration) -> WriteTimeout<S> {
        WriteTimeout { inner, blocked: StallLimit::new(timer, limit) }
    }

    /// A write's outcome, with the blocked time checked when it is `Pending`.
    fn watch<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self
                .blocked
                .poll_stalled(cx)
                .map(|()| Err(io::Error::new(io::ErrorKind::TimedOut, format!("the client took no byte of its answer for {:?}", self.blocked.limit())))),
            done => {
                self.blocked.moved();
                done
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(polled, cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A pipe nobody reads: writes block once its buffer is full, and then time out at the
    /// limit; a pipe that is read keeps writing past the limit.
    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_times_out_and_a_read_pipe_does_not() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut w = WriteTimeout::new(ours, Arc::new(LazyTimer::new()), Duration::from_secs(60));
        // Read for a while: 20 writes of 512 bytes, 10 s apart (200 s in all), all go through.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                tokio::io::AsyncReadExt::read_exact(&mut theirs, &mut buf).await.unwrap();
            }
            theirs
        });
        for i in 0..20 {
            w.write_all(&[b'x'; 512]).await.unwrap_or_else(|e| panic!("write {i}: {e}"));
        }
        let _theirs = reader.await.unwrap();
        // Nobody reads now: the buffer fills, then the next write fails 60 s after it blocked.
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(e) = w.write_all(&[b'y'; 512]).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(60) && started.elapsed() < Duration::from_secs(61), "{:?}", started.elapsed());
    }
}
