//! A cell's answer that stops mid-body is cut after `timeouts.response_idle`.
//!
//! Once a cell has sent its answer's head, nothing else bounded the body: a worker that hung
//! mid-stream held its client's connection (and the router's to the cell) for as long as the
//! client waited, which for a browser or `git` can be for ever. nginx bounds the time between two
//! reads from its upstream (`proxy_read_timeout`); so does this, with the client connection's
//! lazy timer ([`crate::lazy_timer`]): the clock is read only when the body has nothing to give
//! (not per frame), and a deadline costs no timer-wheel work unless it is reached. A cut answer
//! ends as a cell's own cut does: short of its length or without its last chunk, the client's
//! connection closed, never a complete-looking answer.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::lazy_timer::LazyTimer;

/// One answer's watch over its body's gaps.
#[derive(Debug)]
pub struct IdleWatch {
    timer: Arc<LazyTimer>,
    limit: Duration,
    /// When the body was first found with nothing to give since its last frame.
    since: Option<Instant>,
}

/// The error a stalled answer ends with (hyper then closes the client's connection).
#[derive(Debug, thiserror::Error)]
#[error("the cell's answer stopped for {0:?} mid-body")]
pub struct Stalled(pub Duration);

impl IdleWatch {
    /// `timer` is the client connection's: its task polls the answer's body.
    pub fn new(timer: Arc<LazyTimer>, limit: Duration) -> IdleWatch {
        IdleWatch { timer, limit, since: None }
    }

    /// The body gave a frame (or ended): the next gap starts afresh.
    #[inline]
    pub fn moved(&mut self) {
        self.since = None;
    }

    /// The body has nothing to give: ready once that has lasted `limit`.
    pub fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<Stalled> {
        let since = *self.since.get_or_insert_with(crate::lazy_timer::now);
        self.timer.poll_until(since + self.limit, cx).map(|()| Stalled(self.limit))
    }
}
