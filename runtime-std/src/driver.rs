//! The core's loop: everything the thread driving the core owns, and the steps of one turn
//! (write, take the core's events, wait for input and hand it to the core).
//!
//! One thread at a time drives: the thread that called [`Runtime::run`](crate::Runtime::run),
//! or, while a controller it runs blocks, the standby thread (see [`crate::handover`]). So all
//! of this moves between threads as one value.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use exampple_core::component::{Component, Dispatch, Event};
use exampple_core::parser::{Next, StreamLexer};

use crate::error::RuntimeError;
use crate::executor::Executor;
use crate::pool::WorkerPool;
use crate::watch::RunWatch;

/// What the core's thread waits for.
pub(crate) enum Input {
    /// The input of connection `.0` has something for the core.
    Readable(u64),
    /// A controller or a sender has put something in the outbox.
    Wake,
    /// Connect now.
    Connect,
    /// Close within the grace period.
    Shutdown(Duration),
    /// The thread that called `run` wants to drive the core again (see [`crate::handover`]).
    Baton,
}

/// The core and the state of its loop.
pub(crate) struct Driver {
    core: Component,
    inputs: mpsc::Receiver<Input>,
    input_tx: mpsc::Sender<Input>,
    /// Wake-ups from controllers are coalesced: one pending Wake at a time.
    wake_pending: Arc<AtomicBool>,
    /// Sync controllers sent to the pool run on its threads.
    pool: WorkerPool,
    /// The dispatches of one drain, handed to the pool together.
    batch: Vec<Dispatch>,
    /// The output buffer, swapped with the core's (no allocation per drain).
    out: Vec<u8>,
    /// Async controllers that wait go on on their own thread, holding no worker.
    executor: Executor,
    connection: Option<Connection>,
    generation: u64,
    /// The bytes of the pieces this thread tokenises itself.
    scratch: Vec<u8>,
    /// Whether the last input brought work (bytes or controllers' output).
    busy: bool,
    write_timeout: Duration,
    /// Nudged by the reader and the waker when the home thread may be held by a
    /// controller (with [`SyncControllers::Adaptive`](crate::SyncControllers::Adaptive)).
    watch: Option<Arc<RunWatch>>,
}

impl Driver {
    /// Starts the pool's workers and the async executor around `core`.
    pub(crate) fn start(
        mut core: Component,
        inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
        workers: usize,
        write_timeout: Duration,
        watch: Option<Arc<RunWatch>>,
    ) -> Result<Driver, RuntimeError> {
        let pool = WorkerPool::start(workers).map_err(RuntimeError::Thread)?;
        let executor = Executor::start().map_err(RuntimeError::Thread)?;
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
        Ok(Driver {
            core,
            inputs,
            input_tx,
            wake_pending,
            pool,
            batch: Vec::new(),
            out: Vec::with_capacity(64 * 1024),
            executor,
            connection: None,
            generation: 0,
            scratch: Vec::new(),
            busy: false,
            write_timeout,
            watch,
        })
    }

    /// Writes what the core has, then takes its events: connects, first-polls async
    /// controllers, and puts sync ones in `here` when given (for the caller to run on this
    /// thread), else on the pool. Returns how the component stopped, once it has.
    pub(crate) fn handle_events(
        &mut self,
        mut here: Option<&mut Vec<Dispatch>>,
    ) -> Option<Result<(), RuntimeError>> {
        // Write what the core has: one write per drain. Then let a thread that shares this
        // CPU run: the write may have woken the peer, which then answers sooner than after
        // our next spin; a yield with nobody waiting costs next to nothing.
        while self.core.poll_transmit_into(&mut self.out) {
            if let Some(c) = self.connection.as_mut()
                && let Err((written, e)) = write_all(&c.io.socket, &self.out)
            {
                self.connection = None;
                self.core.handle_write_failed(
                    Instant::now(),
                    format!("write failed: {e}"),
                    &self.out,
                    written,
                );
            }
            self.out.clear();
            std::thread::yield_now();
        }
        let mut stop = None;
        // Whether an async controller's first poll ran on this thread.
        let mut ran_here = false;
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Connect { address } => self.connect(&address),
                Event::Dispatch(dispatch) => {
                    if dispatch.is_async() {
                        // The first poll runs here, as on exampple-smol: an async controller
                        // that answers without waiting (most do) costs no hand-off; one that
                        // waits goes on on the executor's thread.
                        ran_here = true;
                        let request = dispatch.request;
                        let mut future = dispatch.into_future();
                        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                        let polled =
                            std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx);
                        if polled.is_pending() {
                            self.executor.spawn(request, Box::pin(future));
                        }
                    } else if let Some(here) = here.as_mut() {
                        here.push(dispatch);
                    } else {
                        self.batch.push(dispatch);
                    }
                }
                Event::Cancel(request) => self.executor.cancel(request),
                Event::Disconnected { .. } => self.connection = None,
                Event::Failed(error) => stop = Some(Err(RuntimeError::from(error))),
                Event::Closed => stop = Some(Ok(())),
                _ => {}
            }
        }
        self.pool.give(&mut self.batch);
        if ran_here {
            self.take_answers();
        }
        stop
    }

    /// Puts dispatches on the pool.
    pub(crate) fn give_to_pool(&mut self, dispatches: &mut Vec<Dispatch>) {
        self.pool.give(dispatches);
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
    pub(crate) fn wait_for_input(&mut self, until: Option<Instant>) {
        // Right after work, poll the inputs for a few microseconds before sleeping: a busy
        // peer's next request usually comes within that, and waking a sleeping thread (on a
        // VM, a halted vCPU) costs more. Never when idle; the spin yields, so the reader and
        // the workers still get the CPU.
        // While many dispatches wait for the pool, no more input is taken: requests wait in
        // the input (bounded) and the kernel's buffer instead of in this process, and the
        // outbox's wake-ups (controllers finishing) bring us back.
        let backlog = self.pool.backlog();
        let reading = self.connection.as_ref().filter(|_| backlog < MAX_BACKLOG);
        let ready = reading
            .filter(|c| c.io.input.has_work())
            .map(|c| Input::Readable(c.generation));
        let spun = match ready {
            Some(ready) => Some(ready),
            None if self.busy => spin_recv(&self.inputs, reading),
            None => None,
        };
        let pool_check = self.pool.watch(Instant::now());
        let deadline = [self.core.poll_timeout(), pool_check, until]
            .into_iter()
            .flatten()
            .min();
        let input = match spun {
            Some(input) => Some(input),
            None => match deadline {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match self.inputs.recv_timeout(wait) {
                        Ok(input) => Some(input),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
                None => self.inputs.recv().ok(),
            },
        };
        self.busy = matches!(input, Some(Input::Readable(..) | Input::Wake));
        let now = Instant::now();
        match input {
            Some(Input::Readable(g)) => {
                let next = match &self.connection {
                    Some(c) if c.generation == g && self.pool.backlog() < MAX_BACKLOG => {
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
            Some(Input::Shutdown(grace)) => self.core.close(now, grace),
            Some(Input::Baton) | None => {}
        }
        self.core.handle_timeout(now);
    }

    /// Closes the connection, lets the pool finish what it has, and stops its threads.
    pub(crate) fn finish(self) {
        drop(self.connection);
        self.pool.close();
    }

    fn connect(&mut self, address: &str) {
        self.generation += 1;
        let core = &mut self.core;
        match connect(address, core.config().handshake_timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(self.write_timeout));
                match Connection::start(
                    stream,
                    core.stream_lexer(),
                    self.generation,
                    self.input_tx.clone(),
                    self.watch.clone(),
                ) {
                    Ok(c) => {
                        log::info!(target: "exampple", "connected to {address}");
                        self.connection = Some(c);
                        core.handle_connected(Instant::now());
                    }
                    Err(e) => core.handle_connect_failed(Instant::now(), e.to_string()),
                }
            }
            Err(e) => {
                log::warn!(target: "exampple", "cannot connect to {address}: {e}");
                core.handle_connect_failed(Instant::now(), e);
            }
        }
    }

    /// Tells the core, before stanzas are taken from the outbox, when the server has ended
    /// its side (see [`exampple_io::Connection::notice_server_end`]).
    fn notice_server_end(&mut self) {
        if let Some(c) = &self.connection {
            c.io.notice_server_end(&mut self.core);
        }
    }
}

/// How many dispatches may wait for the pool before the core stops taking input.
const MAX_BACKLOG: usize = 256;

/// How long the core thread polls its inputs after doing work, before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

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
        // Let the reader and the workers run if they share this core.
        std::thread::yield_now();
    }
}

/// Writes all of `bytes`, each write blocking for at most the socket's write timeout; on an
/// error, also how many bytes the socket took (the core keeps the stanzas after them).
fn write_all(mut socket: &TcpStream, bytes: &[u8]) -> Result<(), (usize, std::io::Error)> {
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return Err((written, std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((written, e)),
        }
    }
    Ok(())
}

fn connect(address: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// An open connection (socket and input: see [`exampple_io::Connection`]) and which one it
/// is. Dropping it ends the reader.
struct Connection {
    io: exampple_io::Connection,
    generation: u64,
}

impl Connection {
    /// Starts the reader thread for `socket`; it tells the core's thread through `inputs`
    /// when the input has something, and nudges `watch` after each read (the input needs
    /// the core).
    fn start(
        socket: TcpStream,
        lexer: StreamLexer,
        generation: u64,
        inputs: mpsc::Sender<Input>,
        watch: Option<Arc<RunWatch>>,
    ) -> std::io::Result<Connection> {
        let io = exampple_io::Connection::start(
            socket,
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
