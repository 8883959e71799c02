//! [`Driver::run_with_handover`](crate::Driver::run_with_handover): sync controllers run on
//! the core's thread while they answer quickly, and the core moves to a standby thread when
//! one of them blocks.
//!
//! Handing every stanza to a pool thread and its answer back costs a large share of the
//! throughput of a component whose controllers answer in microseconds (most do). Running
//! them on the core's thread costs nothing, but one that blocks would stop the component:
//! no input read, no keepalive, no `remote-server-timeout` for the requests it holds up.
//! So the home thread (the one that called `run`) runs them one at a time, with the core's
//! state ([`DriveLoop`]) left in a shared slot meanwhile, and a standby thread takes the core
//! over when a run of them has held the home thread for over [`STALL`] (one that blocks,
//! or many that take long enough to be better spread over the pool's threads):
//!
//! - The standby is woken by what needs the core while the home thread is held: the reader,
//!   after each read of the socket, and the core's waker, when a controller elsewhere has
//!   output. Each looks at when the home thread's current run started
//!   ([`RunWatch::nudge_if_stuck`]: a clock read and an atomic load) and wakes the standby
//!   only if that was over [`STALL`] ago.
//! - A controller that is about to wait for something only the core delivers (an iq answer,
//!   through [`block_on`](crate::block_on)) says so ([`RunWatch::blocking`]), and the
//!   standby takes over at once.
//! - The core's own deadlines (keepalive, stanza timeouts) have no event: while
//!   controllers are being started, the standby also looks every
//!   [`LOOK_EVERY`](crate::watch::LOOK_EVERY). No shorter: on a VM a periodic wake-up
//!   costs every stanza latency, the more the denser the looks, and a kernel timer armed
//!   per run costs more still.
//! - The standby takes the driver, puts the controllers still waiting in that run on the
//!   runtime (the std runtime's worker pool), and drives the core itself, with every sync
//!   controller going there.
//! - When its controller returns, the home thread asks for the driver back. The standby
//!   gives it back once it has driven for at least [`HOLD`], so that controllers that keep
//!   blocking hold the others up at most once per [`HOLD`].
//! - The standby never runs a controller itself, so the core keeps going however many
//!   controllers block: the runtime holds them, and timeouts are still answered.
//! - After [`QUIET`] without a controller started, the standby sleeps until the next run
//!   wakes it: an idle component has no thread waking up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use exampple_core::component::{Component, Dispatch};

use crate::connection::Dialer;
use crate::drive_loop::{DriveLoop, Input};
use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::watch::{RunWatch, STALL};

/// How long the standby drives, at least, before giving the core back.
const HOLD: Duration = Duration::from_millis(100);

/// How long the standby keeps looking after the last controller started before it sleeps.
const QUIET: Duration = Duration::from_millis(100);

/// What the home thread and the standby share.
struct Baton<R: Runtime> {
    slot: Mutex<Slot<R>>,
    watch: Arc<RunWatch>,
    /// The home thread waits on this for the driver to come back.
    home: Condvar,
    /// The home thread waits for the driver (read by the driving standby without the lock).
    home_waits: AtomicBool,
    /// To wake the driving standby when the home thread wants the driver back.
    inputs: mpsc::Sender<Input>,
}

struct Slot<R: Runtime> {
    /// The core and its loop while no thread drives it: during the home thread's runs (the
    /// standby may take it then; [`RunWatch::in_run`] says when one is on), and on its way
    /// back to the home thread.
    driver: Option<Box<DriveLoop<R>>>,
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

impl<R: Runtime> Default for Slot<R> {
    fn default() -> Self {
        Slot {
            driver: None,
            waiting: VecDeque::new(),
            taken: false,
            started: 0,
            stopped: None,
            done: false,
        }
    }
}

/// Runs the component on this thread, with a standby thread taking the core over while a
/// controller blocks this one: starts the loop with a [`RunWatch`] for its reader and
/// waker to nudge, and has [`block_on`](crate::block_on) on this thread tell it.
pub(crate) fn run<R: Runtime>(
    core: Component,
    runtime: R,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    write_timeout: Duration,
    dialer: Dialer,
) -> Result<(), RuntimeError> {
    let watch = Arc::new(RunWatch::new());
    {
        let watch = watch.clone();
        crate::block::set_before_blocking(Some(Arc::new(move || watch.blocking())));
    }
    let input_tx = inputs.0.clone();
    let driver = DriveLoop::new(
        core,
        runtime,
        inputs,
        write_timeout,
        dialer,
        Some(watch.clone()),
    );
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
    crate::block::set_before_blocking(None);
    driver.finish();
    result
}

impl<R: Runtime> Baton<R> {
    fn lock(&self) -> MutexGuard<'_, Slot<R>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The home thread's loop, until the component stops; returns the driver with how.
    fn drive_at_home(
        &self,
        mut driver: Box<DriveLoop<R>>,
    ) -> (Box<DriveLoop<R>>, Result<(), RuntimeError>) {
        let mut here = Vec::new();
        loop {
            let stop = driver.handle_events(Some(&mut here));
            if !here.is_empty() {
                if stop.is_some() {
                    // The component has stopped: nothing is left to hold up.
                    here.drain(..).for_each(run_to_end);
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
    fn run_here(
        &self,
        driver: Box<DriveLoop<R>>,
        dispatches: &mut Vec<Dispatch>,
    ) -> Option<Box<DriveLoop<R>>> {
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
            run_to_end(next);
        }
    }

    /// Waits for the standby to give the driver back; with how the component stopped, if it
    /// did meanwhile.
    fn wait_for_driver(&self) -> (Box<DriveLoop<R>>, Option<Result<(), RuntimeError>>) {
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

    /// The standby thread: looks when called and every
    /// [`LOOK_EVERY`](crate::watch::LOOK_EVERY) while controllers are being started, and
    /// drives while one holds the home thread.
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
        mut driver: Box<DriveLoop<R>>,
        rest: &mut Vec<Dispatch>,
    ) -> (Box<DriveLoop<R>>, Option<Result<(), RuntimeError>>) {
        log::debug!(
            target: "exampple",
            "controllers have held the core's thread for over {STALL:?}: the standby thread drives the core"
        );
        driver.run_elsewhere(rest);
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

/// Runs a sync controller on this thread (an async one given here is waited for).
fn run_to_end(dispatch: Dispatch) {
    if let Some(rest) = dispatch.run() {
        crate::block::block_on(rest);
    }
}
