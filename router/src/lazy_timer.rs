//! Per-connection timeouts that cost next to nothing per request.
//!
//! Every request arms two deadlines: hyper's header-read timeout (from when the connection
//! starts waiting for the next request head) and the router's request timeout (from when the
//! request is handed to a cell). Armed the ordinary way, each is a fresh tokio `Sleep`: an
//! insertion into and a removal from tokio's timer wheel, together ~2k instructions of a
//! proxied request's ~33k under callgrind — for deadlines that are almost never reached.
//!
//! So, like nginx's lazy timers, a connection keeps one tokio `Sleep` and a deadline is only a
//! number until it matters. The wheel entry is touched when the sleep fires before the
//! deadline now wanted (it is re-armed to it: on a busy connection about once per timeout
//! period) and when a deadline earlier than the armed one is wanted. A firing that finds the
//! deadline moved on is one spurious wake-up of the connection's task.
//!
//! A sleep already polled by the same task and not fired is not polled again: its wheel entry
//! holds the task's waker from the last poll, and the firing wakes it.
//!
//! One rule: a [`LazyTimer`] belongs to one task (a connection's), because a tokio `Sleep`
//! wakes only the waker that polled it last. hyper polls its header-read sleep and the
//! request's future from the connection's task, which is what makes the sharing sound; several
//! deadlines on one timer are fine (each poll re-arms the sleep no later than its own deadline).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// One connection's timer (see the module documentation).
#[derive(Debug, Default)]
pub struct LazyTimer {
    /// Created on first use: a connection that never waits needs no wheel entry.
    sleep: Mutex<Option<Armed>>,
}

/// The connection's tokio `Sleep`, and whether the task's waker is registered with it.
#[derive(Debug)]
struct Armed {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// The waker the sleep was last polled with, since it was created or reset: its entry in
    /// the wheel holds it, and while the sleep has not fired a poll with the same waker need
    /// not poll it again (each poll re-registers the waker: ~250 instructions per request, for
    /// a deadline almost never reached). A reset or a firing drops the wheel's: polled again.
    registered: Option<Waker>,
}

/// A [`LazyTimer::timeout`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed;

impl LazyTimer {
    pub fn new() -> LazyTimer {
        LazyTimer::default()
    }

    /// Ready once `at` has passed; until then the connection's task is woken no later than
    /// `at`. Must be called from within a tokio runtime with time enabled.
    pub fn poll_until(&self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let at = tokio::time::Instant::from_std(at);
        let mut slot = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        let armed = match &mut *slot {
            Some(armed) => {
                if armed.sleep.deadline() > at {
                    armed.sleep.as_mut().reset(at);
                    armed.registered = None;
                }
                armed
            }
            None => slot.insert(Armed { sleep: Box::pin(tokio::time::sleep_until(at)), registered: None }),
        };
        // Armed no later than `at`, the task's waker registered, not fired: nothing to do.
        if armed.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !armed.sleep.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if armed.sleep.as_mut().poll(cx).is_pending() {
                armed.registered = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // Fired at the deadline it was armed with; the one wanted now may be later.
            if tokio::time::Instant::now() >= at {
                return Poll::Ready(());
            }
            armed.sleep.as_mut().reset(at);
        }
    }

    /// `fut`, unless `after` passes first.
    pub async fn timeout<F: Future>(&self, after: Duration, fut: F) -> Result<F::Output, Elapsed> {
        self.timeout_at(now() + after, fut).await
    }

    /// `fut`, unless the instant `at` passes first (for callers that have read the clock
    /// already: one reading per request instead of one per deadline).
    pub async fn timeout_at<F: Future>(&self, at: Instant, fut: F) -> Result<F::Output, Elapsed> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            self.poll_until(at, cx).map(|()| Err(Elapsed))
        })
        .await
    }

    /// `fut`, unless the deadline `deadline()` says passes first; the deadline may move later
    /// while `fut` runs (a request body's progress, see [`crate::body_progress`]). It is read
    /// at each poll, so also when the timer fires at a deadline since moved on: then the timer
    /// is re-armed to the new one.
    pub async fn timeout_by<F: Future>(&self, deadline: impl Fn() -> Instant, fut: F) -> Result<F::Output, Elapsed> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            self.poll_until(deadline(), cx).map(|()| Err(Elapsed))
        })
        .await
    }
}

/// A bound on how long something may keep making no progress, on a connection's [`LazyTimer`]:
/// an answer's body with nothing to give ([`crate::answer_idle`]), a write to a client that
/// stays blocked ([`crate::client_write`]). The clock is read when a run of stalled polls
/// begins, not per poll that goes through; the deadline costs no timer-wheel work unless reached.
#[derive(Debug)]
pub struct StallLimit {
    timer: Arc<LazyTimer>,
    limit: Duration,
    /// When the current run of stalled polls began (None: the last poll made progress).
    since: Option<Instant>,
}

impl StallLimit {
    /// `timer` must be the timer of the task that polls (see the module documentation).
    pub fn new(timer: Arc<LazyTimer>, limit: Duration) -> StallLimit {
        StallLimit { timer, limit, since: None }
    }

    /// The bound, for messages.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// A poll made progress: the next stall starts afresh.
    #[inline]
    pub fn moved(&mut self) {
        self.since = None;
    }

    /// A poll made no progress: ready once the stall has lasted the limit.
    pub fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let since = *self.since.get_or_insert_with(now);
        self.timer.poll_until(since + self.limit, cx)
    }
}

/// The time on tokio's clock (the same as `Instant::now()` except in tests with paused time).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A connection's [`LazyTimer`] as hyper's timer (hyper uses it for the header-read timeout),
/// so the deadline hyper sets for every request head is only a number.
#[derive(Clone)]
pub struct HyperTimer(pub Arc<LazyTimer>);

/// One of hyper's sleeps: a deadline on the connection's timer.
struct LazySleep {
    timer: Arc<LazyTimer>,
    at: Instant,
}

impl Future for LazySleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.poll_until(self.at, cx)
    }
}

impl hyper::rt::Sleep for LazySleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(now() + duration)
    }

    fn now(&self) -> Instant {
        now()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(LazySleep { timer: self.0.clone(), at: deadline })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<LazySleep>() {
            Some(mut s) => s.at = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paused time: the runtime jumps to the next timer when every task waits.
    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
    }

    /// A `secs` timeout on a future that never ends: it must end at its deadline, not before
    /// and not later (the time driver's millisecond ticks aside).
    async fn assert_times_out_after(t: &LazyTimer, secs: u64) {
        let start = tokio::time::Instant::now();
        assert_eq!(t.timeout(Duration::from_secs(secs), std::future::pending::<()>()).await, Err(Elapsed));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(secs) && waited < Duration::from_secs(secs) + Duration::from_millis(10), "{waited:?}");
    }

    #[test]
    fn a_timeout_fires_at_its_deadline_and_not_before() {
        paused().block_on(assert_times_out_after(&LazyTimer::new(), 5));
    }

    #[test]
    fn a_finished_future_wins_and_a_later_deadline_reuses_the_armed_sleep() {
        paused().block_on(async {
            let t = LazyTimer::new();
            // Each request ends well within its 5 s; the sleep armed for the first one (at 5 s)
            // then fires while the fourth runs, which must not time out: its deadline is 8 s.
            for i in 0..3 {
                let r = t.timeout(Duration::from_secs(5), tokio::time::sleep(Duration::from_secs(1))).await;
                assert_eq!(r, Ok(()), "request {i}");
            }
            let start = tokio::time::Instant::now();
            let r = t.timeout(Duration::from_secs(5), tokio::time::sleep(Duration::from_secs(4))).await;
            assert_eq!(r, Ok(()));
            assert!(start.elapsed() >= Duration::from_secs(4));
            // And a deadline that does pass still fires, 5 s after it was set (the sleep was
            // last armed for the request before, 1 s earlier).
            assert_times_out_after(&t, 5).await;
        });
    }

    /// A future that wakes its task on its first polls (as a busy connection does), then waits
    /// for ever.
    async fn busy_then_stuck() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        std::future::pending::<()>().await
    }

    #[test]
    fn a_sleep_polled_once_still_fires_when_later_polls_skip_it() {
        paused().block_on(async {
            let t = LazyTimer::new();
            let start = tokio::time::Instant::now();
            // Polled over and over (each poll after the first skips the armed sleep), then the
            // paused clock jumps to the deadline: the firing must wake the task and end it.
            assert_eq!(t.timeout(Duration::from_secs(5), busy_then_stuck()).await, Err(Elapsed));
            assert!(start.elapsed() >= Duration::from_secs(5), "{:?}", start.elapsed());
        });
    }

    #[test]
    fn an_earlier_deadline_rearms_the_sleep() {
        paused().block_on(async {
            let t = Arc::new(LazyTimer::new());
            // Armed at 60 s by a deadline that was given up on...
            let long = t.timeout(Duration::from_secs(60), std::future::pending::<()>());
            assert!(tokio::time::timeout(Duration::from_millis(10), long).await.is_err());
            // ...a 1 s deadline must still fire at 1 s, not at 60.
            assert_times_out_after(&t, 1).await;
        });
    }

    #[test]
    fn hyper_sleeps_reset_in_place_and_fire_at_the_new_deadline() {
        use hyper::rt::Timer;
        paused().block_on(async {
            let timer = HyperTimer(Arc::new(LazyTimer::new()));
            let start = tokio::time::Instant::now();
            let mut s = timer.sleep(Duration::from_secs(1));
            // Polled once: armed at 1 s. Then moved to 3 s, as hyper does for each request.
            assert!(futures_poll_once(s.as_mut()).is_pending());
            timer.reset(&mut s, timer.now() + Duration::from_secs(3));
            assert!(s.as_mut().downcast_mut_pin::<LazySleep>().is_some(), "reset kept the same sleep");
            s.await;
            let waited = start.elapsed();
            assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3010), "{waited:?}");
        });
    }

    #[test]
    fn a_moving_deadline_fires_at_where_it_last_moved_to() {
        paused().block_on(async {
            let t = LazyTimer::new();
            let start = tokio::time::Instant::now();
            let deadline = std::sync::Mutex::new(now() + Duration::from_secs(1));
            // Moved 1 s later every 800 ms for 4 s (an upload's frames), then left alone.
            let mover = async {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    *deadline.lock().unwrap() = now() + Duration::from_secs(1);
                }
                std::future::pending::<()>().await
            };
            assert_eq!(t.timeout_by(|| *deadline.lock().unwrap(), mover).await, Err(Elapsed));
            let waited = start.elapsed();
            assert!(waited >= Duration::from_secs(5) && waited < Duration::from_millis(5010), "{waited:?}");
        });
    }

    fn futures_poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx)
    }
}
