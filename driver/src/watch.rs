//! When the home thread's current run of controllers started, and how to wake the standby
//! (the handover module tells the whole story). The reader and the core's waker, which the
//! driver owns, nudge it; it lives apart from the handover so that the driver, which the
//! handover drives, needs nothing from it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long one run of controllers may hold the home thread before the core moves to the
/// standby, once something needs the core.
pub(crate) const STALL: Duration = Duration::from_millis(1);

/// How often the standby looks while controllers are being started, for the core's
/// deadlines (which no event announces).
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(20);

/// What the reader and the core's waker share with the standby: when the home thread's
/// current run started, and how to wake the standby.
pub(crate) struct RunWatch {
    base: Instant,
    /// The home thread.
    home: std::thread::ThreadId,
    /// A controller of the current run on the home thread waits for the core.
    blocked: AtomicBool,
    /// When the home thread's current run of controllers started, in nanoseconds after
    /// `base`, plus one; zero while none runs there.
    running_since: AtomicU64,
    /// The standby is called to look now.
    called: Mutex<bool>,
    standby: Condvar,
    /// The standby sleeps without looking every [`LOOK_EVERY`].
    asleep: AtomicBool,
}

impl RunWatch {
    /// A watch whose home thread is this one.
    pub(crate) fn new() -> RunWatch {
        RunWatch {
            base: Instant::now(),
            home: std::thread::current().id(),
            blocked: AtomicBool::new(false),
            running_since: AtomicU64::new(0),
            called: Mutex::new(false),
            standby: Condvar::new(),
            asleep: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Whether the home thread's current run has gone on for over [`STALL`].
    fn stuck(&self) -> bool {
        let since = self.running_since.load(Ordering::SeqCst);
        since != 0 && self.now().saturating_sub(since) > STALL.as_nanos() as u64
    }

    /// Something needs the core: wakes the standby if a run holds the home thread.
    pub(crate) fn nudge_if_stuck(&self) {
        if self.stuck() {
            self.call();
        }
    }

    /// The core's block hook: a controller on this thread is about to wait for the core.
    /// On the home thread during a run, the standby is called to take over at once.
    pub(crate) fn blocking(&self) {
        if std::thread::current().id() == self.home && self.in_run() {
            self.blocked.store(true, Ordering::SeqCst);
            self.call();
        }
    }

    /// Whether the standby should take the core from the current run (if one is on).
    pub(crate) fn must_take_over(&self) -> bool {
        self.in_run() && (self.blocked.load(Ordering::SeqCst) || self.stuck())
    }

    /// Whether the home thread is in a run (between [`RunWatch::starting`] and
    /// [`RunWatch::ended`]).
    fn in_run(&self) -> bool {
        self.running_since.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn call(&self) {
        *self.called.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.standby.notify_one();
    }

    /// The run is over: it ended, or the standby took the core from it. Nobody needs to
    /// call the standby until the next one.
    pub(crate) fn ended(&self) {
        self.running_since.store(0, Ordering::SeqCst);
        self.blocked.store(false, Ordering::SeqCst);
    }

    /// The home thread starts a run.
    pub(crate) fn starting(&self) {
        self.blocked.store(false, Ordering::SeqCst);
        self.running_since.store(self.now(), Ordering::SeqCst);
        // With the store above, the standby either sees a run before it goes to sleep, or
        // is seen asleep here.
        if self.asleep.load(Ordering::SeqCst) {
            self.call();
        }
    }

    /// Waits until called, or [`LOOK_EVERY`] (indefinitely when `quiet` and no controller
    /// runs on the home thread).
    pub(crate) fn wait(&self, quiet: bool) {
        let mut called = self.called.lock().unwrap_or_else(|p| p.into_inner());
        if !*called {
            self.asleep.store(quiet, Ordering::SeqCst);
            if quiet && !self.in_run() {
                called = self.standby.wait(called).unwrap_or_else(|p| p.into_inner());
            } else {
                called = self
                    .standby
                    .wait_timeout(called, LOOK_EVERY)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            self.asleep.store(false, Ordering::SeqCst);
        }
        *called = false;
    }
}

#[cfg(test)]
mod tests {
    use super::RunWatch;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// The block hook calls the standby to take over only for a controller on the home
    /// thread during a run, and a new run starts unblocked. (The `blocked` flag is read,
    /// not `must_take_over`, where a run is meant to be held up by no one: that also says
    /// yes once a run is older than `STALL`, which a loaded machine can make any run.)
    #[test]
    fn only_a_blocking_controller_on_the_home_thread_calls_the_standby() {
        let watch = Arc::new(RunWatch::new());
        let called = |w: &RunWatch| std::mem::take(&mut *w.called.lock().unwrap());
        let blocked = |w: &RunWatch| w.blocked.load(Ordering::SeqCst);

        watch.blocking();
        assert!(!called(&watch), "no run: nothing to take over");

        watch.starting();
        assert!(!blocked(&watch), "a fresh run holds nothing up");
        let other = watch.clone();
        std::thread::spawn(move || other.blocking()).join().unwrap();
        assert!(!called(&watch), "a pool thread's wait holds up no run");
        assert!(!blocked(&watch));

        watch.blocking();
        assert!(called(&watch), "the standby is called at once");
        assert!(
            watch.must_take_over(),
            "and takes over without waiting for the stall"
        );

        watch.starting();
        assert!(!blocked(&watch), "the next run starts unblocked");
    }
}
