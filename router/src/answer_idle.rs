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

use std::time::Duration;

/// An answer's watch over its body's gaps: `timeouts.response_idle` on the client connection's
/// timer (its task polls the answer's body).
pub type IdleWatch = crate::lazy_timer::StallLimit;

/// The error a stalled answer ends with (hyper then closes the client's connection).
#[derive(Debug, thiserror::Error)]
#[error("the cell's answer stopped for {0:?} mid-body")]
pub struct Stalled(pub Duration);
