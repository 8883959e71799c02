//! [`SyncControllers::Adaptive`](crate::SyncControllers::Adaptive): sync controllers run on
//! the core's thread while they answer quickly, and the core moves to a standby thread when
//! one of them blocks.
//!
//! Handing every stanza to a pool thread and its answer back costs about a third of the
//! throughput of a component whose controllers answer in microseconds (most do). Running
//! them on the core's thread costs nothing, but one that blocks would stop the component:
//! no input read, no keepalive, no `remote-server-timeout` for the requests it holds up.
//! So the home thread (the one that called `run`) runs them one at a time, with the core's
//! state ([`Driver`]) left in a shared slot meanwhile, and a standby thread takes the core
//! over when a run of them has held the home thread for over [`STALL`] (one that blocks,
//! or many that take long enough to be better spread over the pool's threads):
//!
//! - The standby is woken by what needs the core while the home thread is held: the reader,
//!   after each read of the socket, and the core's waker, when a controller elsewhere has
//!   output. Each looks at when the home thread's current run started
//!   ([`RunWatch::nudge_if_stuck`]: a clock read and an atomic load) and wakes the standby
//!   only if that was over [`STALL`] ago.
//! - A controller that is about to wait for something only the core delivers
//!   ([`IqCall::wait`](exampple_core::IqCall::wait)) says so through the core's block hook
//!   ([`RunWatch::blocking`]), and the standby takes over at once.
//! - The core's own deadlines (keepalive, stanza timeouts) have no event: while
//!   controllers are being started, the standby also looks every [`LOOK_EVERY`]. No shorter:
//!   on a VM each periodic wake-up costs the latency of every stanza (measured at window
//!   1: +14 us at p50 with a look every 1 ms, +6 us every 5 ms, +1 us every 20 ms), and a
//!   kernel timer armed per run cost more still (+40 us).
//! - The standby takes the driver, puts the controllers still waiting in that run on the
//!   worker pool, and drives the core itself, with every sync controller going to the pool.
//! - When its controller returns, the home thread asks for the driver back. The standby
//!   gives it back once it has driven for at least [`HOLD`], so that controllers that keep
//!   blocking hold the others up at most once per [`HOLD`].
//! - The standby never runs a controller itself, so the core keeps going however many
//!   controllers block: the pool holds them up to its size, and timeouts are still answered.
//! - After [`QUIET`] without a controller started, the standby sleeps until the next run
//!   wakes it: an idle component has no thread waking up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use exampple_core::component::{Component, Dispatch};

use crate::driver::{Driver, Input};
use crate::error::RuntimeError;

/// How long one run of controllers may hold the home thread before the core moves to the
/// standby, once something needs the core.
const STALL: Duration = Duration::from_millis(1);

/// How often the standby looks while controllers are being started, for the core's
/// deadlines (which no event announces).
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// How long the standby drives, at least, before giving the core back.
const HOLD: Duration = Duration::from_millis(100);

/// How long the standby keeps looking after the last controller started before it sleeps.
const QUIET: Duration = Duration::from_millis(100);

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
    fn must_take_over(&self) -> bool {
        self.in_run() && (self.blocked.load(Ordering::SeqCst) || self.stuck())
    }

    /// Whether the home thread is in a run (between [`RunWatch::starting`] and
    /// [`RunWatch::ended`]).
    fn in_run(&self) -> bool {
        self.running_since.load(Ordering::SeqCst) != 0
    }

    fn call(&self) {
        *self.called.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.standby.notify_one();
    }

    /// The run is over: it ended, or the standby took the core from it. Nobody needs to
    /// call the standby until the next one.
    fn ended(&self) {
        self.running_since.store(0, Ordering::SeqCst);
        self.blocked.store(false, Ordering::SeqCst);
    }

    /// The home thread starts a run.
    fn starting(&self) {
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
    fn wait(&self, quiet: bool) {
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

/// What the home thread and the standby share.
struct Baton {
    slot: Mutex<Slot>,
    watch: Arc<RunWatch>,
    /// The home thread waits on this for the driver to come back.
    home: Condvar,
    /// The home thread waits for the driver (read by the driving standby without the lock).
    home_waits: AtomicBool,
    /// To wake the driving standby when the home thread wants the driver back.
    inputs: mpsc::Sender<Input>,
}

#[derive(Default)]
struct Slot {
    /// The core and its loop while no thread drives it: during the home thread's runs (the
    /// standby may take it then; [`RunWatch::in_run`] says when one is on), and on its way
    /// back to the home thread.
    driver: Option<Box<Driver>>,
    /// The controllers of the current run not started yet.
    waiting: VecDeque<Dispatch>,
    /// The standby has taken the driver from a run; cleared when the home thread has it
    /// again (the driver may be back in the slot before the home thread's controller ends,
    /// when the component stopped meanwhile).
    taken: bool,
    /// Controllers started in runs so far.
    started: u64,
    /// How the component stopped, when it did while the standby drove.
    stopped: Option<Result<(), RuntimeError>>,
    /// The home thread has stopped: the standby ends.
    done: bool,
}

/// Runs the component on this thread, with a standby thread taking the core over while a
/// controller blocks this one: starts the driver with a [`RunWatch`] for its reader and
/// waker to nudge, and sets the core's block hook to it.
pub(crate) fn run(
    mut core: Component,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    workers: usize,
    write_timeout: Duration,
) -> Result<(), RuntimeError> {
    let watch = Arc::new(RunWatch::new());
    {
        let watch = watch.clone();
        core.set_block_hook(Arc::new(move || watch.blocking()));
    }
    let input_tx = inputs.0.clone();
    let driver = Driver::start(core, inputs, workers, write_timeout, Some(watch.clone()))?;
    let baton = Arc::new(Baton {
        slot: Mutex::new(Slot::default()),
        watch,
        home: Condvar::new(),
        home_waits: AtomicBool::new(false),
        inputs: input_tx,
    });
    let standby = {
        let baton = baton.clone();
        std::thread::Builder::new()
            .name("exampple-standby".into())
            .spawn(move || baton.stand_by())
            .map_err(RuntimeError::Thread)?
    };
    let (driver, result) = baton.drive_at_home(Box::new(driver));
    baton.lock().done = true;
    baton.watch.call();
    let _ = standby.join();
    driver.finish();
    result
}

impl Baton {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The home thread's loop, until the component stops; returns the driver with how.
    fn drive_at_home(&self, mut driver: Box<Driver>) -> (Box<Driver>, Result<(), RuntimeError>) {
        let mut here = Vec::new();
        loop {
            let stop = driver.handle_events(Some(&mut here));
            if !here.is_empty() {
                if stop.is_some() {
                    // The component has stopped: nothing is left to hold up.
                    here.drain(..).for_each(Dispatch::run);
                } else {
                    match self.run_here(driver, &mut here) {
                        Some(back) => driver = back,
                        None => {
                            let (back, stopped) = self.wait_for_driver();
                            driver = back;
                            if let Some(result) = stopped {
                                return (driver, result);
                            }
                        }
                    }
                }
                driver.take_answers();
            }
            if let Some(result) = stop {
                return (driver, result);
            }
            if driver.has_transmit() {
                continue;
            }
            driver.wait_for_input(None);
        }
    }

    /// Runs `dispatches` on the home thread, one at a time, with the driver in the slot;
    /// returns it, or `None` if the standby has taken it meanwhile.
    fn run_here(&self, driver: Box<Driver>, dispatches: &mut Vec<Dispatch>) -> Option<Box<Driver>> {
        {
            let mut slot = self.lock();
            slot.driver = Some(driver);
            slot.waiting.extend(dispatches.drain(..));
            // Under the lock: the standby never judges this run by the last one's start.
            self.watch.starting();
        }
        loop {
            let next = {
                let mut slot = self.lock();
                if slot.taken {
                    // The standby has it, and the rest of the run (and ended it).
                    return None;
                }
                match slot.waiting.pop_front() {
                    Some(next) => {
                        slot.started += 1;
                        next
                    }
                    None => {
                        self.watch.ended();
                        return slot.driver.take();
                    }
                }
            };
            next.run();
        }
    }

    /// Waits for the standby to give the driver back; with how the component stopped, if it
    /// did meanwhile.
    fn wait_for_driver(&self) -> (Box<Driver>, Option<Result<(), RuntimeError>>) {
        self.home_waits.store(true, Ordering::Release);
        // The standby may be asleep in the core's wait for input.
        let _ = self.inputs.send(Input::Baton);
        let mut slot = self.lock();
        loop {
            if let Some(driver) = slot.driver.take() {
                slot.taken = false;
                self.home_waits.store(false, Ordering::Release);
                return (driver, slot.stopped.take());
            }
            slot = self.home.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The standby thread: looks when called and every [`LOOK_EVERY`] while controllers
    /// are being started, and drives while one holds the home thread.
    fn stand_by(&self) {
        let mut last_started = 0;
        let mut quiet_since = Instant::now();
        loop {
            self.watch.wait(quiet_since.elapsed() >= QUIET);
            let mut slot = self.lock();
            if slot.done {
                return;
            }
            if slot.started != last_started {
                last_started = slot.started;
                quiet_since = Instant::now();
            }
            if !self.watch.must_take_over() {
                continue;
            }
            let Some(driver) = slot.driver.take() else {
                continue;
            };
            slot.taken = true;
            // Nobody needs to call the standby while it drives.
            self.watch.ended();
            let mut rest: Vec<Dispatch> = slot.waiting.drain(..).collect();
            drop(slot);
            let (driver, stopped) = self.drive_while_home_blocked(driver, &mut rest);
            let mut slot = self.lock();
            slot.driver = Some(driver);
            slot.stopped = stopped;
            self.home.notify_one();
        }
    }

    /// The standby drives, every sync controller going to the pool (`rest` first: those the
    /// stuck run had not started), until the home thread waits for the driver and [`HOLD`]
    /// has passed, or the component stops.
    fn drive_while_home_blocked(
        &self,
        mut driver: Box<Driver>,
        rest: &mut Vec<Dispatch>,
    ) -> (Box<Driver>, Option<Result<(), RuntimeError>>) {
        log::debug!(
            target: "exampple",
            "controllers have held the core's thread for over {STALL:?}: the standby thread drives the core"
        );
        driver.give_to_pool(rest);
        let hand_back_at = Instant::now() + HOLD;
        loop {
            if let Some(result) = driver.handle_events(None) {
                return (driver, Some(result));
            }
            if driver.has_transmit() {
                continue;
            }
            let home_waits = self.home_waits.load(Ordering::Acquire);
            if home_waits && Instant::now() >= hand_back_at {
                log::debug!(target: "exampple", "the core goes back to its own thread");
                return (driver, None);
            }
            driver.wait_for_input(home_waits.then_some(hand_back_at));
        }
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
