//! The component runtime on smol: one task drives the core; controllers run concurrently.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use exampple_core::component::{Component, ComponentError, Event};
use exampple_core::observe::Observer;
use exampple_core::{Config, RequestId, Router, Sender};
use smol::channel;
use smol::future::FutureExt as _;

use exampple_core::parser::Next;

use crate::reader::Connection;

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The component stopped for good (rejected, invalid router or configuration).
    #[error(transparent)]
    Component(#[from] ComponentError),
}

/// How a sync controller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncControllers {
    /// On smol's blocking thread pool: a slow or blocking controller holds up nobody (the
    /// default).
    #[default]
    BlockingPool,
    /// On the executor's threads, like async controllers: cheaper per stanza, for
    /// controllers that never block.
    Executor,
}

enum Command {
    Connect,
    Shutdown(Duration),
}

/// Controls a running component from elsewhere (any thread).
#[derive(Clone)]
pub struct Handle {
    commands: channel::Sender<Command>,
    sender: Sender,
}

impl Handle {
    /// Sends a stanza (queued while disconnected).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Connects now (for `auto_connect` never).
    pub fn connect(&self) {
        let _ = self.commands.try_send(Command::Connect);
    }

    /// Stops taking stanzas, lets running controllers finish within `grace`, closes the
    /// stream; `run` then returns.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.commands.try_send(Command::Shutdown(grace));
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// A component ready to run on smol.
///
/// Async controllers (and sync ones with [`SyncControllers::Executor`]) make their first
/// poll on the core's own task: one that answers without waiting costs no task and no
/// thread hand-off; one that waits goes on as a task on the executor's threads. As on any
/// executor, a controller should not block or compute for long inside a poll.
///
/// ```no_run
/// use exampple_core::{Config, Conn, Element, Router, StanzaError};
///
/// async fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
///     conn.iq_resp([]).send()?;
///     Ok(())
/// }
///
/// let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
/// let config = Config::from_env().expect("configuration");
/// exampple_smol::Runtime::new(config, router).expect("valid router").run().expect("the component stopped");
/// ```
pub struct Runtime {
    core: Component,
    commands: channel::Receiver<Command>,
    handle: Handle,
    workers: usize,
    sync_controllers: SyncControllers,
    write_timeout: Duration,
}

impl Runtime {
    /// A runtime for `router` connecting as `config` says. Without a
    /// [`Config::seed`](exampple_core::Config::seed) the component is seeded from the OS.
    pub fn new(config: Config, router: Router) -> Result<Self, ComponentError> {
        let core = Component::new(exampple_io::seeded(config), router, Instant::now())?;
        let (tx, rx) = channel::unbounded();
        let handle = Handle {
            commands: tx,
            sender: core.sender(),
        };
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        Ok(Runtime {
            core,
            commands: rx,
            handle,
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

    /// The number of executor threads running controllers (default: the number of CPUs,
    /// at least 2).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where sync controllers run.
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
        self.handle.clone()
    }

    /// Runs until the component closes or fails, on its own executor threads.
    ///
    /// It never reads the program's arguments: a program that offers the route and namespace
    /// tables as commands prints [`Router::format_routes`] or [`Router::format_namespaces`]
    /// itself, before building the runtime (see the showcase example).
    pub fn run(self) -> Result<(), RuntimeError> {
        let executor = Arc::new(smol::Executor::new());
        let (stop_tx, stop_rx) = channel::bounded::<()>(1);
        let threads: Vec<_> = (0..self.workers.saturating_sub(1))
            .map(|i| {
                let executor = executor.clone();
                let stop = stop_rx.clone();
                std::thread::Builder::new()
                    .name(format!("exampple-worker-{i}"))
                    .spawn(move || smol::block_on(executor.run(stop.recv())))
                    .ok()
            })
            .collect();
        let result = smol::block_on(executor.run(self.drive(executor.clone())));
        drop(stop_tx);
        for thread in threads.into_iter().flatten() {
            let _ = thread.join();
        }
        result
    }

    /// Runs inside an existing async context, spawning controllers on `executor`.
    pub async fn run_on(self, executor: Arc<smol::Executor<'static>>) -> Result<(), RuntimeError> {
        self.drive(executor).await
    }

    async fn drive(self, executor: Arc<smol::Executor<'static>>) -> Result<(), RuntimeError> {
        let Runtime {
            mut core,
            commands,
            sync_controllers,
            write_timeout,
            ..
        } = self;
        let (wake_tx, wake_rx) = channel::bounded::<()>(1);
        core.set_waker(Arc::new(move || {
            let _ = wake_tx.try_send(());
        }));
        // The open connection: its socket, and the input its reader thread puts in.
        let mut connection: Option<Connection> = None;
        // The bytes of the pieces this task tokenises itself.
        let mut scratch = Vec::new();
        // The output buffer, swapped with the core's (no allocation per drain).
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut tasks: HashMap<RequestId, smol::Task<()>> = HashMap::new();
        let mut prune_at = 1024;
        let mut commands_open = true;
        // One timer for the core's deadlines, re-armed only when the next deadline comes
        // earlier than the armed one (an early wake-up is a harmless spurious timeout), so
        // the reactor's timer table is not touched for every stanza.
        let mut timer = Timer::never();
        let mut armed: Option<Instant> = None;
        // Whether the last wake-up brought work (input or controllers' output).
        let mut busy = false;
        loop {
            // 1. Write what the core has for the socket: one write per drain. Then let a
            // thread that shares this CPU run: the write may have woken the peer, which
            // then answers sooner than after our next spin. A yield with nobody waiting is
            // cheap, and it comes once per drain, not per stanza.
            while core.poll_transmit_into(&mut out) {
                if let Some(c) = &connection
                    && let Err((written, e)) = write_out(&c.io.socket, &out, write_timeout).await
                {
                    connection = None;
                    core.handle_write_failed(Instant::now(), e, &out, written);
                }
                out.clear();
                std::thread::yield_now();
            }
            // 2. Act on the events.
            while let Some(event) = core.poll_event() {
                match event {
                    Event::Connect { address } => {
                        let timeout = core.config().handshake_timeout;
                        match connect(&address, timeout).await {
                            Ok(s) => match Connection::start(s, core.stream_lexer()) {
                                Ok(c) => {
                                    log::info!(target: "exampple", "connected to {address}");
                                    connection = Some(c);
                                    core.handle_connected(Instant::now());
                                }
                                Err(e) => {
                                    log::error!(target: "exampple", "cannot start the reader thread: {e}");
                                    core.handle_connect_failed(Instant::now(), e.to_string());
                                }
                            },
                            Err(e) => {
                                log::warn!(target: "exampple", "cannot connect to {address}: {e}");
                                core.handle_connect_failed(Instant::now(), e);
                            }
                        }
                    }
                    Event::Dispatch(dispatch) => {
                        let request = dispatch.request;
                        if dispatch.is_async() || sync_controllers == SyncControllers::Executor {
                            // The first poll runs here, on the core's task: a controller
                            // that answers without waiting (most do) then costs no task and
                            // no hand-off to another thread. One that waits goes on as a
                            // task on the executor.
                            let mut future = dispatch.into_future();
                            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                            let polled =
                                std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx);
                            if polled.is_pending() {
                                tasks.insert(request, executor.spawn(future));
                            }
                        } else {
                            smol::unblock(move || dispatch.run()).detach();
                        }
                        if tasks.len() >= prune_at {
                            tasks.retain(|_, t| !t.is_finished());
                            prune_at = (tasks.len() * 2).max(1024);
                        }
                    }
                    Event::Cancel(request) => {
                        // Dropping the task cancels it at its next await point.
                        tasks.remove(&request);
                    }
                    Event::Disconnected { .. } => connection = None,
                    Event::Failed(error) => return Err(error.into()),
                    Event::Closed => return Ok(()),
                    Event::Online { .. } | Event::Delegated { .. } => {}
                    _ => {}
                }
            }
            if core.has_outbox() {
                // Controllers run inline answered already: take their stanzas now. The
                // wake-up token goes first, so a push after the drain wakes us again.
                let _ = wake_rx.try_recv();
                notice_server_end(&mut core, connection.as_ref());
                core.handle_outbox(Instant::now());
            }
            if core.has_transmit() {
                continue;
            }
            // 3. Wait for input, a controller, a command or the next deadline.
            let deadline = core.poll_timeout();
            if let Some(at) = deadline
                && armed.is_none_or(|armed| at < armed)
            {
                timer.set_at(at);
                armed = Some(at);
            }
            // Right after work, poll the input and the outbox for a few microseconds before
            // sleeping: a busy peer's next request usually comes within that, and waking a
            // sleeping thread (on a VM, a halted vCPU) costs more. Never when idle; the poll
            // yields, so the reader and the peer still get the CPU.
            let spun = match (&connection, busy) {
                (Some(c), true) => spin_for_input(c, &core),
                _ => None,
            };
            let mut command_too = None;
            if spun.is_some() && commands_open {
                // Input that keeps coming must not starve the commands.
                match commands.try_recv() {
                    Ok(c) => command_too = Some(c),
                    Err(channel::TryRecvError::Closed) => commands_open = false,
                    Err(channel::TryRecvError::Empty) => {}
                }
            }
            let wake = match spun {
                Some(wake) => wake,
                None => {
                    let read = async {
                        match &connection {
                            Some(c) => {
                                c.readable().await;
                                Wake::Input
                            }
                            None => std::future::pending().await,
                        }
                    };
                    let woken = async {
                        let _ = wake_rx.recv().await;
                        Wake::Outbox
                    };
                    let command = async {
                        if commands_open {
                            match commands.recv().await {
                                Ok(c) => Wake::Command(c),
                                Err(_) => Wake::CommandsClosed,
                            }
                        } else {
                            std::future::pending().await
                        }
                    };
                    let timer = async {
                        match armed {
                            Some(_) => {
                                (&mut timer).await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                        Wake::Timer
                    };
                    read.or(woken).or(command).or(timer).await
                }
            };
            busy = matches!(wake, Wake::Input | Wake::Outbox);
            let now = Instant::now();
            match wake {
                Wake::Input => {
                    if let Some(c) = &connection {
                        match c.io.input.next(&mut scratch) {
                            Next::Tokens(mut tokens) => {
                                notice_server_end(&mut core, connection.as_ref());
                                core.handle_tokens(now, &mut tokens);
                                c.io.input.give_back(tokens);
                            }
                            Next::End(reason) => {
                                connection = None;
                                core.handle_closed(now, reason);
                            }
                            Next::Nothing => {}
                        }
                    }
                }
                Wake::Outbox => {
                    notice_server_end(&mut core, connection.as_ref());
                    core.handle_outbox(now);
                }
                Wake::Command(Command::Connect) => core.connect(now),
                Wake::Command(Command::Shutdown(grace)) => core.close(now, grace),
                Wake::CommandsClosed => commands_open = false,
                Wake::Timer => {
                    armed = None;
                    core.handle_timeout(now);
                }
            }
            match command_too {
                Some(Command::Connect) => core.connect(now),
                Some(Command::Shutdown(grace)) => core.close(now, grace),
                None => {}
            }
            if deadline.is_some_and(|d| now >= d) {
                core.handle_timeout(now);
            }
        }
    }
}

/// Tells the core, before stanzas are taken from the outbox, when the server has ended its
/// side (see [`exampple_io::Connection::notice_server_end`]).
fn notice_server_end(core: &mut Component, connection: Option<&Connection>) {
    if let Some(c) = connection {
        c.io.notice_server_end(core);
    }
}

/// How long the core polls for more input after doing work, before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// Polls the input and the outbox until one has something or [`SPIN`] has passed, yielding
/// the CPU between looks (as the std runtime's core does): on a small machine the reader or
/// the peer, just woken, often waits on this CPU, and a busy-wait would hold it off until
/// the scheduler preempts it.
fn spin_for_input(connection: &Connection, core: &Component) -> Option<Wake> {
    let until = Instant::now() + SPIN;
    loop {
        if connection.io.input.has_work() {
            return Some(Wake::Input);
        }
        if core.has_outbox() {
            return Some(Wake::Outbox);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::yield_now();
    }
}

/// Writes `bytes` to the socket: straight away, with non-blocking sends, while the socket
/// takes them (the usual case: no thread, no waiting); what the socket does not take then is
/// written by a blocking write on smol's blocking pool, within `timeout` in all.
///
/// The socket is in blocking mode for the reader thread's sake, so the sends here ask not
/// to block one by one (`MSG_DONTWAIT`), and `MSG_NOSIGNAL` turns a closed connection into
/// an error rather than a `SIGPIPE`.
///
/// On an error, also how many bytes the socket took (the core keeps the stanzas after them).
async fn write_out(
    socket: &Arc<TcpStream>,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), (usize, String)> {
    use rustix::net::SendFlags;
    let mut written = 0;
    while written < bytes.len() {
        match rustix::net::send(
            &**socket,
            &bytes[written..],
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        ) {
            Ok(0) => return Err((written, "the connection closed while writing".to_string())),
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => return Err((written, std::io::Error::from(e).to_string())),
        }
    }
    if written == bytes.len() {
        return Ok(());
    }
    // The server is slow to read: wait for it on another thread, the connection's one
    // writer meanwhile (this task waits for the write to end).
    let rest = bytes[written..].to_vec();
    let socket = socket.clone();
    smol::unblock(move || write_within(&socket, &rest, timeout))
        .await
        .map_err(|(more, e)| (written + more, e))
}

/// A blocking write of all of `bytes` that gives up when the server has read nothing for
/// `timeout`. Not a deadline for the whole: after a reconnect `bytes` may be a backlog of
/// megabytes, which a server that reads steadily but slowly is alive to take (std's
/// runtime times each write the same way). On an error, also how many bytes it wrote.
fn write_within(
    socket: &TcpStream,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), (usize, String)> {
    let mut deadline = Instant::now() + timeout;
    let timed_out = || "write timed out: the server stopped reading".to_string();
    let mut written = 0;
    let result = loop {
        if written == bytes.len() {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(timed_out());
        }
        if let Err(e) = socket.set_write_timeout(Some(left)) {
            break Err(e.to_string());
        }
        let mut writer = socket;
        match std::io::Write::write(&mut writer, &bytes[written..]) {
            Ok(0) => break Err("the connection closed while writing".to_string()),
            Ok(n) => {
                written += n;
                deadline = Instant::now() + timeout;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break Err(timed_out());
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = socket.set_write_timeout(None);
    result.map_err(|e| (written, e))
}

enum Wake {
    Input,
    Outbox,
    Command(Command),
    CommandsClosed,
    Timer,
}

/// Connects within `timeout`; the socket is returned in blocking mode (see [`write_out`]).
async fn connect(address: &str, timeout: Duration) -> Result<TcpStream, String> {
    let address = address.to_string();
    let addrs: Vec<_> =
        smol::unblock(move || address.to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
            .await
            .map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        let attempt = async {
            Async::<TcpStream>::connect(addr)
                .await
                .map_err(|e| e.to_string())
        };
        let limit = async {
            Timer::after(timeout).await;
            Err(format!("connect timed out after {timeout:?}"))
        };
        match attempt.or(limit).await {
            Ok(s) => {
                let s = s.into_inner().map_err(|e| e.to_string())?;
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
