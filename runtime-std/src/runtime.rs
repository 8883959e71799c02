//! The blocking component runtime: a reader thread, the core's thread, a bounded worker pool.

use std::io::{IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use exampple_core::component::{Component, ComponentError, Dispatch, Event};

use crate::pool::WorkerPool;
use exampple_core::observe::Observer;
use exampple_core::parser::{Next, SharedLexer, StreamLexer};
use exampple_core::{Config, Router, Sender};

/// Where sync controllers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncControllers {
    /// On the worker pool: a slow or blocking controller holds up nobody (the default).
    #[default]
    Pool,
    /// On the core's thread, as soon as the stanza is routed: no hand-off to the pool and
    /// back, the cheapest way per stanza, for controllers that never block. While one runs
    /// the component does nothing else (reads no input, answers no keepalive, sends no
    /// timeout answer), and one that waits for an iq answer with
    /// [`IqCall::wait`](exampple_core::IqCall::wait) waits until the call's timeout, since
    /// only the core's thread can deliver the answer.
    Inline,
}

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The component stopped for good (rejected, invalid router or configuration).
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// A thread of the runtime could not be started.
    #[error("cannot start a runtime thread: {0}")]
    Thread(std::io::Error),
}

enum Input {
    /// The input of connection `.0` has something for the core.
    Readable(u64),
    Wake,
    Connect,
    Shutdown(Duration),
}

/// Controls a running component from elsewhere (any thread).
#[derive(Clone)]
pub struct Handle {
    inputs: mpsc::Sender<Input>,
    sender: Sender,
}

impl Handle {
    /// Sends stanzas (queued while disconnected).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Connects now (for `auto_connect` never).
    pub fn connect(&self) {
        let _ = self.inputs.send(Input::Connect);
    }

    /// Stops taking stanzas, lets running controllers finish within `grace`, closes the
    /// stream; `run` then returns.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.inputs.send(Input::Shutdown(grace));
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// A component ready to run on plain threads.
///
/// ```no_run
/// use exampple_core::{Config, Conn, Element, Router, StanzaError};
///
/// fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
///     conn.iq_resp([]).send()?;
///     Ok(())
/// }
///
/// let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
/// let config = Config::from_env().expect("configuration");
/// exampple_std::Runtime::new(config, router).expect("valid router").run().expect("the component stopped");
/// ```
pub struct Runtime {
    core: Component,
    routes_plain: String,
    routes_color: String,
    namespaces: String,
    inputs: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    workers: usize,
    sync_controllers: SyncControllers,
    write_timeout: Duration,
}

impl Runtime {
    /// A runtime for `router` connecting as `config` says.
    pub fn new(config: Config, router: Router) -> Result<Self, ComponentError> {
        let routes_plain = router.format_routes(false);
        let routes_color = router.format_routes(true);
        let namespaces = router.format_namespaces();
        let core = Component::new(config, router, Instant::now())?;
        let workers = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .max(4);
        Ok(Runtime {
            core,
            routes_plain,
            routes_color,
            namespaces,
            inputs: mpsc::channel(),
            workers,
            sync_controllers: SyncControllers::default(),
            write_timeout: Duration::from_secs(30),
        })
    }

    /// Receives a request event for every handled stanza.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// The number of worker threads running controllers (default: twice the number of
    /// CPUs, at least 4). A controller that blocks holds one worker.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where sync controllers run (default: [`SyncControllers::Pool`]).
    pub fn sync_controllers(mut self, how: SyncControllers) -> Self {
        self.sync_controllers = how;
        self
    }

    /// How long a write may block before the connection counts as dead (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// A handle to send stanzas, connect or shut down from elsewhere.
    pub fn handle(&self) -> Handle {
        Handle {
            inputs: self.inputs.0.clone(),
            sender: self.core.sender(),
        }
    }

    /// Runs on the calling thread until the component closes or fails.
    ///
    /// When the program's first argument is `routes` or `namespaces`, prints that table
    /// instead and returns.
    pub fn run(self) -> Result<(), RuntimeError> {
        match std::env::args().nth(1).as_deref() {
            Some("routes") => {
                let color = std::io::stdout().is_terminal();
                print!(
                    "{}",
                    if color {
                        &self.routes_color
                    } else {
                        &self.routes_plain
                    }
                );
                return Ok(());
            }
            Some("namespaces") => {
                print!("{}", self.namespaces);
                return Ok(());
            }
            _ => {}
        }
        let Runtime {
            mut core,
            inputs: (input_tx, input_rx),
            workers,
            sync_controllers,
            write_timeout,
            ..
        } = self;

        // Sync controllers run on the pool's threads.
        let mut pool = WorkerPool::start(workers).map_err(RuntimeError::Thread)?;
        // The dispatches of one drain, handed to the pool together.
        let mut batch: Vec<Dispatch> = Vec::new();
        // The output buffer, swapped with the core's (no allocation per drain).
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);

        // Async controllers that wait go on on their own thread, holding no worker.
        let executor = crate::executor::Executor::start().map_err(RuntimeError::Thread)?;

        // Wake-ups from controllers are coalesced: one pending Wake at a time.
        let wake_pending = Arc::new(AtomicBool::new(false));
        {
            let input_tx = input_tx.clone();
            let wake_pending = wake_pending.clone();
            core.set_waker(Arc::new(move || {
                if !wake_pending.swap(true, Ordering::AcqRel) {
                    let _ = input_tx.send(Input::Wake);
                }
            }));
        }

        let mut connection: Option<Connection> = None;
        let mut generation = 0u64;
        // The bytes of the pieces this thread tokenises itself.
        let mut scratch = Vec::new();
        // Whether the last input brought work (bytes or controllers' output).
        let mut busy = false;
        let result = loop {
            // Write what the core has: one write per drain. Then let a thread that shares
            // this CPU run: the write may have woken the peer, which then answers sooner
            // than after our next spin (about +3% at window 100 on two CPUs with async
            // controllers; a yield with nobody waiting costs a fraction of a microsecond).
            while core.poll_transmit_into(&mut out) {
                if let Some(c) = connection.as_mut()
                    && let Err(e) = c.socket.write_all(&out)
                {
                    connection = None;
                    core.handle_closed(Instant::now(), format!("write failed: {e}"));
                }
                out.clear();
                std::thread::yield_now();
            }
            let mut stop = None;
            // Whether a controller ran on this thread (an async one's first poll, or a sync
            // one with `SyncControllers::Inline`).
            let mut ran_here = false;
            while let Some(event) = core.poll_event() {
                match event {
                    Event::Connect { address } => {
                        generation += 1;
                        match connect(&address, core.config().handshake_timeout) {
                            Ok(stream) => {
                                let _ = stream.set_nodelay(true);
                                let _ = stream.set_write_timeout(Some(write_timeout));
                                match Connection::start(
                                    stream,
                                    core.stream_lexer(),
                                    generation,
                                    input_tx.clone(),
                                ) {
                                    Ok(c) => {
                                        log::info!(target: "exampple", "connected to {address}");
                                        connection = Some(c);
                                        core.handle_connected(Instant::now());
                                    }
                                    Err(e) => {
                                        core.handle_connect_failed(Instant::now(), e.to_string())
                                    }
                                }
                            }
                            Err(e) => {
                                log::warn!(target: "exampple", "cannot connect to {address}: {e}");
                                core.handle_connect_failed(Instant::now(), e);
                            }
                        }
                    }
                    Event::Dispatch(dispatch) => {
                        if dispatch.is_async() {
                            // The first poll runs here, as on exampple-smol: an async
                            // controller that answers without waiting (most do) costs no
                            // hand-off; one that waits goes on on the executor's thread.
                            ran_here = true;
                            let request = dispatch.request;
                            let mut future = dispatch.into_future();
                            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                            let polled =
                                std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx);
                            if polled.is_pending() {
                                executor.spawn(request, Box::pin(future));
                            }
                        } else if sync_controllers == SyncControllers::Inline {
                            ran_here = true;
                            dispatch.run();
                        } else {
                            batch.push(dispatch);
                        }
                    }
                    Event::Cancel(request) => executor.cancel(request),
                    Event::Disconnected { .. } => connection = None,
                    Event::Failed(error) => stop = Some(Err(RuntimeError::from(error))),
                    Event::Closed => stop = Some(Ok(())),
                    _ => {}
                }
            }
            pool.give(&mut batch);
            if ran_here && core.has_outbox() {
                // Controllers run on this thread answered already: take their stanzas now,
                // not after a round through the input channel (measured: +16% at window
                // 100). The wake-up they sent then finds the outbox empty, which is harmless.
                notice_server_end(&mut core, connection.as_ref());
                core.handle_outbox(Instant::now());
            }
            if let Some(result) = stop {
                break result;
            }
            if core.has_transmit() {
                continue;
            }
            // Right after work, poll the inputs for a few microseconds before sleeping: a
            // busy peer's next request usually comes within that, and waking a sleeping
            // thread (on a VM, a halted vCPU) costs more. Never when idle; the spin yields,
            // so the reader and the workers still get the CPU.
            // While many dispatches wait for the pool, no more input is taken: requests wait
            // in the input (bounded) and the kernel's buffer instead of in this process, and
            // the outbox's wake-ups (controllers finishing) bring us back.
            let reading = connection.as_ref().filter(|_| pool.backlog() < MAX_BACKLOG);
            let ready = reading
                .filter(|c| c.input.has_work())
                .map(|c| Input::Readable(c.generation));
            let spun = match ready {
                Some(ready) => Some(ready),
                None if busy => spin_recv(&input_rx, reading),
                None => None,
            };
            let pool_check = pool.watch(Instant::now());
            let deadline = match (core.poll_timeout(), pool_check) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let input = match spun {
                Some(input) => Some(input),
                None => match deadline {
                    Some(deadline) => {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        match input_rx.recv_timeout(wait) {
                            Ok(input) => Some(input),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => None,
                        }
                    }
                    None => input_rx.recv().ok(),
                },
            };
            busy = matches!(input, Some(Input::Readable(..) | Input::Wake));
            let now = Instant::now();
            match input {
                Some(Input::Readable(g)) => {
                    let next = match &connection {
                        Some(c) if c.generation == g && pool.backlog() < MAX_BACKLOG => {
                            c.input.next(&mut scratch)
                        }
                        _ => Next::Nothing,
                    };
                    match next {
                        Next::Tokens(mut tokens) => {
                            notice_server_end(&mut core, connection.as_ref());
                            core.handle_tokens(now, &mut tokens);
                            if let Some(c) = &connection {
                                c.input.give_back(tokens);
                            }
                        }
                        Next::End(reason) => {
                            connection = None;
                            core.handle_closed(now, reason);
                        }
                        Next::Nothing => {}
                    }
                }
                Some(Input::Wake) => {
                    wake_pending.store(false, Ordering::Release);
                    notice_server_end(&mut core, connection.as_ref());
                    core.handle_outbox(now);
                }
                Some(Input::Connect) => core.connect(now),
                Some(Input::Shutdown(grace)) => core.close(now, grace),
                None => {}
            }
            core.handle_timeout(now);
        };
        drop(connection);
        pool.close();
        result
    }
}

/// Tells the core when the server has ended its side of the connection before the reader
/// has read that far, so that the stanzas about to be taken from the outbox wait for the
/// next connection instead of going to one whose other end is gone (see
/// [`Component::handle_server_ended`]). A system call, so only when the outbox has
/// something.
fn notice_server_end(core: &mut Component, connection: Option<&Connection>) {
    if let Some(c) = connection
        && core.has_outbox()
        && peer_ended(&c.socket)
    {
        core.handle_server_ended();
    }
}

/// Whether the peer has ended its side of `socket` (or the connection failed), as the
/// kernel knows it, bytes still unread or not.
fn peer_ended(socket: &TcpStream) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(socket, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(ready) if ready > 0 => fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
        _ => false,
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
            && c.input.has_work()
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

/// An open connection: the socket the core's thread writes to, and the input its reader
/// thread puts in. Dropping it closes the input and shuts the socket down, which ends the
/// reader.
struct Connection {
    socket: TcpStream,
    input: Arc<SharedLexer>,
    generation: u64,
}

impl Connection {
    /// Starts the reader thread for `socket`, tokenising with `lexer`; it tells the core's
    /// thread through `inputs` when the input has something.
    fn start(
        socket: TcpStream,
        lexer: StreamLexer,
        generation: u64,
        inputs: mpsc::Sender<Input>,
    ) -> std::io::Result<Connection> {
        let reader = socket.try_clone()?;
        let input = Arc::new(SharedLexer::new(lexer, move || {
            let _ = inputs.send(Input::Readable(generation));
        }));
        let reader_input = input.clone();
        std::thread::Builder::new()
            .name("exampple-reader".into())
            .spawn(move || read(reader, &reader_input))?;
        Ok(Connection {
            socket,
            input,
            generation,
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.input.close();
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The reader thread: reads the socket into the input and tokenises while the core's thread
/// is busy (it tokenises too when it is not: see [`SharedLexer`]).
fn read(mut stream: TcpStream, input: &SharedLexer) {
    let mut end = input.end_guard();
    // 16 KiB reads keep a batch's stanzas in cache (64 KiB: ~7% slower at window 1000).
    let mut buffer = vec![0u8; 16 * 1024];
    let mut scratch = Vec::new();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return end.reason("the server closed the connection"),
            Ok(n) => {
                if !input.feed(&buffer[..n]) {
                    // The core gave the connection up.
                    return;
                }
                input.lex_pending(&mut scratch);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return end.reason(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::peer_ended;
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};

    /// The kernel says the peer has ended its side as soon as its FIN is in, even with its
    /// last bytes still unread; a reset counts too.
    #[test]
    fn peer_ended_sees_the_end_behind_unread_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        assert!(!peer_ended(&ours));
        theirs.write_all(b"<last words/>").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!peer_ended(&ours), "bytes to read are not an end");
        theirs.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(peer_ended(&ours), "the end behind unread bytes");
        drop(theirs);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(peer_ended(&ours));
    }
}
