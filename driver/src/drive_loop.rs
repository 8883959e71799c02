//! The loop around the core: everything the thread driving it owns, and the steps of one
//! turn (write, take the core's events, wait for input and hand it to the core).
//!
//! One thread at a time drives: the thread that called [`Driver::run`](crate::Driver::run),
//! or, with the handover, the standby while a controller blocks the home thread (see
//! [`crate::handover`]). So all of this moves between threads as one value.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use exampple_core::RequestId;
use exampple_core::component::{Component, Dispatch, Event};
use exampple_core::parser::StreamLexer;

use crate::connection::{self, DialError};
use crate::error::RuntimeError;
use crate::runtime::{Runtime, Task};
use crate::shared_lexer::Next;
use crate::watch::RunWatch;

/// What the driving thread waits for.
pub(crate) enum Input {
    /// The input of connection `.0` has something for the core.
    Readable(u64),
    /// A controller or a sender has put something in the outbox.
    Wake,
    /// Connect now.
    Connect,
    /// Drain within the grace period, or within the configuration's drain timeout.
    Shutdown(Option<Duration>),
    /// The home thread wants to drive the core again (see [`crate::handover`]).
    Baton,
}

/// How many sync controllers may wait for a thread before the loop stops taking input.
const MAX_BACKLOG: usize = 256;

/// How long the loop polls its inputs after doing work, before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// How many spawned controllers are kept before the finished ones are forgotten.
const FIRST_PRUNE: usize = 1024;

/// The core and the state of its loop.
pub(crate) struct DriveLoop<R: Runtime> {
    core: Component,
    pub(crate) runtime: R,
    inputs: mpsc::Receiver<Input>,
    input_tx: mpsc::Sender<Input>,
    /// Wake-ups from controllers are coalesced: one pending Wake at a time.
    wake_pending: Arc<AtomicBool>,
    /// Async controllers that had to wait, by request (dropping one cancels it).
    tasks: HashMap<RequestId, Box<dyn Task>>,
    prune_at: usize,
    /// The output buffer, swapped with the core's (no allocation per drain).
    out: Vec<u8>,
    connection: Option<Connection>,
    generation: u64,
    /// The bytes of the pieces this thread tokenises itself.
    scratch: Vec<u8>,
    /// Whether the last input brought work (bytes or controllers' output).
    busy: bool,
    write_timeout: Duration,
    /// Opens the links (TCP, and TLS when configured).
    dialer: connection::Dialer,
    /// Nudged by the reader and the waker when the home thread may be held by a controller
    /// (with the handover).
    watch: Option<Arc<RunWatch>>,
}

impl<R: Runtime> DriveLoop<R> {
    /// The loop around `core`, taking its inputs from `inputs`.
    pub(crate) fn new(
        mut core: Component,
        runtime: R,
        inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
        write_timeout: Duration,
        dialer: connection::Dialer,
        watch: Option<Arc<RunWatch>>,
    ) -> Self {
        let (input_tx, inputs) = inputs;
        let wake_pending = Arc::new(AtomicBool::new(false));
        {
            let input_tx = input_tx.clone();
            let wake_pending = wake_pending.clone();
            let watch = watch.clone();
            core.set_waker(Arc::new(move || {
                if !wake_pending.swap(true, Ordering::AcqRel) {
                    let _ = input_tx.send(Input::Wake);
                }
                if let Some(watch) = &watch {
                    watch.nudge_if_stuck();
                }
            }));
        }
        DriveLoop {
            core,
            runtime,
            inputs,
            input_tx,
            wake_pending,
            tasks: HashMap::new(),
            prune_at: FIRST_PRUNE,
            out: Vec::with_capacity(64 * 1024),
            connection: None,
            generation: 0,
            scratch: Vec::new(),
            busy: false,
            write_timeout,
            dialer,
            watch,
        }
    }

    /// Runs the loop on this thread until the component stops, every sync controller
    /// going to the runtime.
    pub(crate) fn run(mut self) -> Result<(), RuntimeError> {
        let result = loop {
            if let Some(result) = self.turn(None) {
                break result;
            }
        };
        self.finish();
        result
    }

    /// One turn: writes, takes the core's events, and waits for input unless there is more
    /// to write. Sync controllers go to `here` when given (for the caller to run on this
    /// thread), else to the runtime. Returns how the component stopped, once it has.
    pub(crate) fn turn(
        &mut self,
        here: Option<&mut Vec<Dispatch>>,
    ) -> Option<Result<(), RuntimeError>> {
        let stop = self.handle_events(here);
        if stop.is_none() && !self.core.has_transmit() {
            self.wait_for_input(None);
        }
        stop
    }

    /// Writes what the core has, then takes its events: connects, first-polls async
    /// controllers, and puts sync ones in `here` when given, else on the runtime. Returns
    /// how the component stopped, once it has.
    pub(crate) fn handle_events(
        &mut self,
        mut here: Option<&mut Vec<Dispatch>>,
    ) -> Option<Result<(), RuntimeError>> {
        // Write what the core has: one write per drain. Then let a thread that shares this
        // CPU run: the write may have woken the peer, which then answers sooner than after
        // our next spin; a yield with nobody waiting costs next to nothing.
        while self.core.poll_transmit_into(&mut self.out) {
            if let Some(c) = self.connection.as_ref()
                && let Err((written, e)) = c.io.write(&self.out)
            {
                self.connection = None;
                self.core
                    .handle_write_failed(Instant::now(), e, &self.out, written);
            }
            self.out.clear();
            std::thread::yield_now();
        }
        let mut stop = None;
        // Whether a controller ran on this thread (its answers are taken at once).
        let mut ran_here = false;
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Connect { address } => self.connect(&address),
                Event::Dispatch(dispatch) => {
                    if dispatch.is_async() {
                        // The first poll runs here: an async controller that answers
                        // without waiting (most do) costs no task and no hand-off; one that
                        // waits goes on on the runtime.
                        ran_here = true;
                        let request = dispatch.request;
                        if let Some(rest) = dispatch.run() {
                            self.tasks.insert(request, self.runtime.spawn(rest));
                            self.prune();
                        }
                    } else if let Some(here) = here.as_mut() {
                        here.push(dispatch);
                    } else {
                        self.runtime.run_sync(dispatch);
                    }
                }
                // Dropping the task cancels the controller.
                Event::Cancel(request) => drop(self.tasks.remove(&request)),
                Event::Disconnected { .. } => self.connection = None,
                Event::Failed(error) => stop = Some(Err(RuntimeError::from(error))),
                Event::Closed => stop = Some(Ok(())),
                _ => {}
            }
        }
        if ran_here {
            self.take_answers();
        }
        stop
    }

    /// Forgets the tasks that have ended, once there are many.
    fn prune(&mut self) {
        if self.tasks.len() >= self.prune_at {
            self.tasks.retain(|_, task| !task.is_finished());
            self.prune_at = (self.tasks.len() * 2).max(FIRST_PRUNE);
        }
    }

    /// Puts sync controllers on the runtime.
    pub(crate) fn run_elsewhere(&mut self, dispatches: &mut Vec<Dispatch>) {
        for dispatch in dispatches.drain(..) {
            self.runtime.run_sync(dispatch);
        }
    }

    /// Takes the answers of controllers that ran on this thread at once, not after a round
    /// through the input channel, which would hold each drain's answers back for a turn of
    /// the loop. The wake-up they sent then finds the outbox empty, which is harmless.
    pub(crate) fn take_answers(&mut self) {
        if self.core.has_outbox() {
            self.notice_server_end();
            self.core.handle_outbox(Instant::now());
        }
    }

    /// Whether the core has bytes to write (the turn then starts over without waiting).
    pub(crate) fn has_transmit(&self) -> bool {
        self.core.has_transmit()
    }

    /// Waits for the next input, until the core's next deadline (or `until`, if sooner), and
    /// hands it to the core.
    ///
    /// Every `handle_*` call here may leave the core with bytes to write and events: the
    /// next turn drains them before the loop waits again.
    pub(crate) fn wait_for_input(&mut self, until: Option<Instant>) {
        // Right after work, poll the inputs for a few microseconds before sleeping: a busy
        // peer's next request usually comes within that, and waking a sleeping thread (on a
        // VM, a halted vCPU) costs more. Never when idle; the spin yields, so the reader and
        // the controllers still get the CPU.
        // While many sync controllers wait for a thread, no more input is taken: requests
        // wait in the input (bounded) and the kernel's buffer instead of in this process,
        // and the outbox's wake-ups (controllers finishing) bring us back.
        let backlog = self.runtime.backlog();
        let reading = self.connection.as_ref().filter(|_| backlog < MAX_BACKLOG);
        let ready = reading
            .filter(|c| c.io.input.has_work())
            .map(|c| Input::Readable(c.generation));
        let spun = match ready {
            Some(ready) => Some(ready),
            None if self.busy => spin_recv(&self.inputs, reading),
            None => None,
        };
        let runtime_check = self.runtime.watch(Instant::now());
        let deadline = [self.core.poll_timeout(), runtime_check, until]
            .into_iter()
            .flatten()
            .min();
        let input = match spun {
            Some(input) => Some(input),
            None => match deadline {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    // Timed out, or every sender is gone: the deadline is due either way.
                    self.inputs.recv_timeout(wait).ok()
                }
                None => self.inputs.recv().ok(),
            },
        };
        self.busy = matches!(input, Some(Input::Readable(..) | Input::Wake));
        let now = Instant::now();
        match input {
            Some(Input::Readable(g)) => {
                let next = match &self.connection {
                    Some(c) if c.generation == g && self.runtime.backlog() < MAX_BACKLOG => {
                        c.io.input.next(&mut self.scratch)
                    }
                    _ => Next::Nothing,
                };
                match next {
                    Next::Tokens(mut tokens) => {
                        self.notice_server_end();
                        self.core.handle_tokens(now, &mut tokens);
                        if let Some(c) = &self.connection {
                            c.io.input.give_back(tokens);
                        }
                    }
                    Next::End(reason) => {
                        self.connection = None;
                        self.core.handle_closed(now, reason);
                    }
                    Next::Nothing => {}
                }
            }
            Some(Input::Wake) => {
                self.wake_pending.store(false, Ordering::Release);
                self.notice_server_end();
                self.core.handle_outbox(now);
            }
            Some(Input::Connect) => self.core.connect(now),
            Some(Input::Shutdown(Some(grace))) => self.core.close(now, grace),
            Some(Input::Shutdown(None)) => self.core.drain(now),
            Some(Input::Baton) | None => {}
        }
        self.core.handle_timeout(now);
    }

    /// Closes the connection, cancels the controllers still waiting, and drops the
    /// runtime (which stops what it started).
    pub(crate) fn finish(self) {
        drop(self.connection);
        drop(self.tasks);
        drop(self.runtime);
    }

    fn connect(&mut self, address: &str) {
        self.generation += 1;
        let core = &mut self.core;
        let timeout = core.config().handshake_timeout;
        match self.dialer.dial(address, timeout, self.write_timeout) {
            Ok(link) => {
                let over = if link.is_tls() { " over TLS" } else { "" };
                match Connection::start(
                    link,
                    core.stream_lexer(),
                    self.generation,
                    self.input_tx.clone(),
                    self.watch.clone(),
                ) {
                    Ok(c) => {
                        log::info!(target: "exampple", "connected to {address}{over}");
                        self.connection = Some(c);
                        core.handle_connected(Instant::now());
                    }
                    Err(e) => {
                        log::error!(target: "exampple", "cannot start the reader thread: {e}");
                        core.handle_connect_failed(Instant::now(), e.to_string());
                    }
                }
            }
            Err(e) => {
                // A failed TLS handshake (a certificate that cannot be verified, a port
                // that is not TLS) is a setup to fix, not a server that is away: said louder.
                // The core retries after its backoff either way.
                match &e {
                    DialError::Tls(_) => {
                        log::error!(target: "exampple", "cannot connect to {address}: {e}")
                    }
                    _ => log::warn!(target: "exampple", "cannot connect to {address}: {e}"),
                }
                core.handle_connect_failed(Instant::now(), e.to_string());
            }
        }
    }

    /// Tells the core, before stanzas are taken from the outbox, when the server has ended
    /// its side (see [`connection::Connection::notice_server_end`]).
    fn notice_server_end(&mut self) {
        if let Some(c) = &self.connection {
            c.io.notice_server_end(&mut self.core);
        }
    }
}

/// The next input if one comes within [`SPIN`] (the connection's input is looked at too:
/// it sends a message only when it gets something after having had nothing).
fn spin_recv(inputs: &mpsc::Receiver<Input>, connection: Option<&Connection>) -> Option<Input> {
    let until = Instant::now() + SPIN;
    loop {
        if let Some(c) = connection
            && c.io.input.has_work()
        {
            return Some(Input::Readable(c.generation));
        }
        match inputs.try_recv() {
            Ok(input) => return Some(input),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if Instant::now() >= until {
            return None;
        }
        // Let the reader and the controllers run if they share this CPU.
        std::thread::yield_now();
    }
}

/// An open connection (socket and input: see [`connection::Connection`]) and which one it
/// is. Dropping it ends the reader.
struct Connection {
    io: connection::Connection,
    generation: u64,
}

impl Connection {
    /// Starts the reader thread for `link`; it tells the driving thread through `inputs`
    /// when the input has something, and nudges `watch` after each read (the input needs
    /// the core).
    fn start(
        link: connection::Link,
        lexer: StreamLexer,
        generation: u64,
        inputs: mpsc::Sender<Input>,
        watch: Option<Arc<RunWatch>>,
    ) -> std::io::Result<Connection> {
        let io = connection::Connection::start(
            link,
            lexer,
            move || {
                let _ = inputs.send(Input::Readable(generation));
            },
            move || {
                if let Some(watch) = &watch {
                    watch.nudge_if_stuck();
                }
            },
        )?;
        Ok(Connection { io, generation })
    }
}
