//! An async XMPP client (c2s) over smol's [`Async<TcpStream>`](smol::Async), for tests,
//! scripts and bots.
//!
//! The protocol is [`exampple_core::client`]'s; this module only moves bytes and time. A
//! task on smol's global executor drives each connection: it waits for whichever comes
//! first of socket data, a command from the [`Client`] handle, or the core's next deadline.
//! Received stanzas wait in an [`Inbox`](core::Inbox) until taken by [`Client::next_stanza`],
//! [`Client::wait_for`] or [`Client::request`].
//!
//! STARTTLS needs the crate's `tls` feature (rustls with the *ring* provider; the server's
//! certificate is checked against the web PKI roots or the configuration's `tls_ca_file`).
//! Without it a STARTTLS offer is declined ([`TlsPolicy::IfOffered`](core::TlsPolicy::IfOffered)
//! acts as [`TlsPolicy::Never`](core::TlsPolicy::Never)) and
//! [`TlsPolicy::Required`](core::TlsPolicy::Required) fails at once.
//!
//! ```no_run
//! use std::time::Duration;
//! use exampple_core::client::ClientConfig;
//! use exampple_core::matching::Match;
//! use exampple_core::xml;
//! use exampple_client::smol::Client;
//!
//! smol::block_on(async {
//!     let config = ClientConfig::new("alice@localhost/test", "alice-pass")?
//!         .address("127.0.0.1:5222")
//!         .allow_plain_without_tls(true);
//!     let alice = Client::connect(config).await?;
//!     let pong = alice
//!         .request(
//!             xml::parse("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?,
//!             Duration::from_secs(5),
//!         )
//!         .await?;
//!     assert_eq!(pong.attr("type"), Some("result"));
//!     let pattern = xml::parse("<message><body>hello</body></message>")?;
//!     let _ = alice.wait_for(&pattern, Match::Subset, Duration::from_secs(1)).await;
//!     alice.close().await;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::Event;
use exampple_core::Element;
use exampple_core::client::{
    self as core, ClientConfig, ClientError, ClientEvent, RequestError, WaitError,
};
use exampple_core::jid::FullJid;
use exampple_core::matching::Match;
use smol::channel::{self, Receiver, Sender};
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::{Async, Timer};

use crate::common::{Layer, Status, adjust_tls_policy, lock, no_address};

enum Command {
    Send(Element, Sender<Result<String, ClientError>>),
    Close,
}

struct Shared {
    status: Mutex<Status>,
    changed: Event,
}

impl Shared {
    /// Waits until `done` says yes (with the status locked) or the deadline passes; on
    /// failure, `fail` builds the error from the status.
    async fn wait_until<T, E>(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&mut Status) -> Option<T>,
        fail: impl FnOnce(&Status) -> E,
    ) -> Result<T, E> {
        loop {
            // Listen before looking, so that a change in between is not missed.
            let listener = self.changed.listen();
            {
                let mut status = lock(&self.status);
                if let Some(value) = done(&mut status) {
                    return Ok(value);
                }
                if Instant::now() >= deadline || status.closed {
                    return Err(fail(&status));
                }
            }
            async {
                listener.await;
            }
            .or(async {
                Timer::at(deadline).await;
            })
            .await;
        }
    }
}

enum Wake {
    Read(std::io::Result<usize>),
    Command(Option<Command>),
    Timeout,
}

async fn drive(
    mut core: core::Client,
    stream: Async<TcpStream>,
    commands: Receiver<Command>,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut commands_open = true;
    let mut layer = Layer::default();
    loop {
        // Drain the core: bytes out, events to the handle.
        loop {
            let mut progressed = false;
            if let Some(bytes) = core.poll_transmit() {
                progressed = true;
                let written = match layer.outgoing(bytes) {
                    Ok(wire) => (&stream).write_all(&wire).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    log::debug!("client write failed: {e}");
                    core.handle_eof(Instant::now());
                }
            }
            while let Some(event) = core.poll_event() {
                progressed = true;
                let mut status = lock(&shared.status);
                match event {
                    ClientEvent::Stanza(stanza) => status.inbox.push(stanza),
                    ClientEvent::Online { jid } => status.online = Some(jid),
                    ClientEvent::StartTls => {
                        drop(status);
                        let hello = layer.start_tls(&mut core, Instant::now());
                        if let Err(e) = (&stream).write_all(&hello).await {
                            core.handle_tls_failed(Instant::now(), e.to_string());
                        }
                        continue;
                    }
                    ClientEvent::Failed(error) => {
                        status.inbox.end(error.to_string());
                        status.failed = Some(error);
                        status.closed = true;
                    }
                    ClientEvent::Closed => {
                        status.inbox.end("closed");
                        status.closed = true;
                    }
                    _ => {}
                }
                drop(status);
                shared.changed.notify(usize::MAX);
            }
            if !progressed {
                break;
            }
        }
        if core.is_closed() {
            let _ = (&stream).write_all(&layer.close()).await;
            let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
            return;
        }
        let deadline = core.poll_timeout();
        let read = async { Wake::Read((&stream).read(&mut buf).await) };
        let command = async {
            if commands_open {
                Wake::Command(commands.recv().await.ok())
            } else {
                std::future::pending().await
            }
        };
        let timer = async {
            match deadline {
                Some(at) => {
                    Timer::at(at).await;
                    Wake::Timeout
                }
                None => std::future::pending().await,
            }
        };
        let wake = read.or(command).or(timer).await;
        let now = Instant::now();
        match wake {
            Wake::Read(Ok(0)) => core.handle_eof(now),
            Wake::Read(Ok(n)) => {
                let reply = layer.incoming(&mut core, now, buf.get(..n).unwrap_or_default());
                if !reply.is_empty()
                    && let Err(e) = (&stream).write_all(&reply).await
                {
                    log::debug!("client write failed: {e}");
                }
            }
            Wake::Read(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Wake::Read(Err(e)) => {
                log::debug!("client read failed: {e}");
                core.handle_eof(now);
            }
            Wake::Command(Some(Command::Send(stanza, reply))) => {
                let _ = reply.try_send(core.send(now, stanza));
            }
            Wake::Command(Some(Command::Close)) => core.close(now),
            Wake::Command(None) => {
                // Every handle is gone: close the stream.
                commands_open = false;
                core.close(now);
            }
            Wake::Timeout => core.handle_timeout(now),
        }
    }
}

/// A connected, logged-in client. Its methods take `&self`, so one client can be used from
/// several tasks; dropping it closes the stream.
pub struct Client {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    jid: FullJid,
    close_timeout: Duration,
    task: Mutex<Option<smol::Task<()>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects, logs in and binds; returns once online, or with the reason it could not
    /// (a SASL failure names its condition, e.g. `not-authorized`). The whole login is
    /// bounded by the configuration's `login_timeout`.
    pub async fn connect(mut config: ClientConfig) -> Result<Client, ClientError> {
        adjust_tls_policy(&mut config)?;
        let started = Instant::now();
        let login_timeout = config.login_timeout;
        let close_timeout = config.close_timeout;
        let stream = async { connect_tcp(&config.socket_address()).await }
            .or(async {
                Timer::after(login_timeout).await;
                Err(ClientError::Timeout("connecting to the server"))
            })
            .await?;
        stream.get_ref().set_nodelay(true)?;
        let mut core = core::Client::new(config);
        core.handle_connected(Instant::now());
        let shared = Arc::new(Shared {
            status: Mutex::new(Status::default()),
            changed: Event::new(),
        });
        let (commands, commands_rx) = channel::unbounded();
        let task = smol::spawn(drive(core, stream, commands_rx, Arc::clone(&shared)));
        // The core enforces the login timeout; the margin only guards against a stuck task.
        let deadline = started + login_timeout + Duration::from_secs(1);
        let outcome = shared
            .wait_until(
                deadline,
                |status| {
                    if let Some(jid) = status.online.clone() {
                        return Some(Ok(jid));
                    }
                    status.failed.take().map(Err)
                },
                |_| ClientError::Timeout("waiting for the login"),
            )
            .await;
        match outcome {
            Ok(Ok(jid)) => Ok(Client {
                shared,
                commands,
                jid,
                close_timeout,
                task: Mutex::new(Some(task)),
            }),
            Ok(Err(error)) | Err(error) => {
                task.cancel().await;
                Err(error)
            }
        }
    }

    /// The full JID the server bound.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.status).closed
    }

    /// Sends a stanza (see [`core::Client::send`]: component-namespace elements are moved
    /// to `jabber:client`, a missing id is added); returns its id.
    pub async fn send(&self, stanza: Element) -> Result<String, ClientError> {
        let (reply, reply_rx) = channel::bounded(1);
        if self
            .commands
            .send(Command::Send(stanza, reply))
            .await
            .is_err()
        {
            return Err(ClientError::NotOnline);
        }
        reply_rx.recv().await.unwrap_or(Err(ClientError::NotOnline))
    }

    /// The oldest received stanza not taken yet, waiting up to `timeout` for one.
    pub async fn next_stanza(&self, timeout: Duration) -> Option<Element> {
        self.shared
            .wait_until(Instant::now() + timeout, |s| s.inbox.pop(), |_| ())
            .await
            .ok()
    }

    /// The oldest received stanza that matches `pattern` (see
    /// [`exampple_core::matching`]), waiting up to `timeout`. Stanzas that do not match
    /// stay for later calls. The error shows the pattern and everything received.
    pub async fn wait_for(
        &self,
        pattern: &Element,
        how: Match,
        timeout: Duration,
    ) -> Result<Element, WaitError> {
        let started = Instant::now();
        self.shared
            .wait_until(
                started + timeout,
                |s| s.inbox.take_match(pattern, how),
                |s| s.inbox.wait_error(Some(pattern), how, started.elapsed()),
            )
            .await
    }

    /// Sends an iq `get` or `set` and waits for the `result` or `error` with its id (an
    /// `error` response is returned as `Ok`: check its `type`).
    pub async fn request(&self, iq: Element, timeout: Duration) -> Result<Element, RequestError> {
        if iq.name() != "iq" || !matches!(iq.attr("type"), Some("get" | "set")) {
            return Err(RequestError::NotARequest);
        }
        let started = Instant::now();
        let id = self.send(iq).await?;
        self.shared
            .wait_until(
                started + timeout,
                |s| s.inbox.take_response(&id),
                |s| RequestError::Wait(s.inbox.wait_error(None, Match::Subset, started.elapsed())),
            )
            .await
    }

    /// Closes the stream and waits (up to the close timeout) for the server to close its
    /// side. Calling it again does nothing.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
        let deadline = Instant::now() + self.close_timeout + Duration::from_secs(1);
        let _ = self
            .shared
            .wait_until(deadline, |s| s.closed.then_some(()), |_| ())
            .await;
        let task = lock(&self.task).take();
        if let Some(task) = task {
            // Closed (or past the deadline): the task has finished or has nothing left to do.
            task.cancel().await;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Close);
        // Let the task finish the close on its own.
        if let Some(task) = lock(&self.task).take() {
            task.detach();
        }
    }
}

async fn connect_tcp(address: &str) -> Result<Async<TcpStream>, ClientError> {
    let addrs: Vec<SocketAddr> = smol::net::resolve(address).await?;
    let mut last = None;
    for addr in addrs {
        match Async::<TcpStream>::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Io(last.unwrap_or_else(|| no_address(address))))
}
