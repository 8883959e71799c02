//! A blocking XMPP client (c2s) over [`std::net::TcpStream`], for tests, scripts and bots.
//!
//! The protocol is [`exampple_core::client`]'s; this module only moves bytes and time. One
//! reader thread per client reads the socket and feeds the core; the calling threads send
//! through the same core under a mutex. Received stanzas wait in an [`Inbox`](core::Inbox) until taken
//! by [`Client::next_stanza`], [`Client::wait_for`] or [`Client::request`].
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
//! use exampple_client::blocking::Client;
//!
//! let config = ClientConfig::new("alice@localhost/test", "alice-pass")?
//!     .address("127.0.0.1:5222")
//!     .allow_plain_without_tls(true);
//! let alice = Client::connect(config)?;
//! let pong = alice.request(
//!     xml::parse("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?,
//!     Duration::from_secs(5),
//! )?;
//! assert_eq!(pong.attr("type"), Some("result"));
//! let pattern = xml::parse("<message><body>hello</body></message>")?;
//! let _ = alice.wait_for(&pattern, Match::Subset, Duration::from_secs(1));
//! alice.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use exampple_core::Element;
use exampple_core::client::{
    self as core, ClientConfig, ClientError, ClientEvent, RequestError, WaitError,
};
use exampple_core::jid::FullJid;
use exampple_core::matching::Match;

use crate::common::{Layer, Status, adjust_tls_policy, lock, no_address};

/// The longest the reader sleeps in a read, so that deadlines set from other threads (a
/// close) are noticed.
const MAX_READ_WAIT: Duration = Duration::from_millis(200);

struct Driver {
    core: core::Client,
    stream: TcpStream,
    layer: Layer,
}

impl Driver {
    /// Writes plaintext: through TLS once it is up.
    fn write(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        let out = self.layer.outgoing(bytes)?;
        self.stream.write_all(&out)
    }

    /// Handles bytes read from the socket.
    fn input(&mut self, now: Instant, raw: &[u8]) {
        let out = self.layer.incoming(&mut self.core, now, raw);
        if !out.is_empty()
            && let Err(e) = self.stream.write_all(&out)
        {
            log::debug!("client write failed: {e}");
        }
    }

    /// The core asked for STARTTLS (after `<proceed/>`): start the handshake.
    fn start_tls(&mut self, now: Instant) {
        let hello = self.layer.start_tls(&mut self.core, now);
        if let Err(e) = self.stream.write_all(&hello) {
            self.core.handle_tls_failed(now, e.to_string());
        }
    }

    /// Ends TLS politely before the socket is shut down.
    fn close_tls(&mut self) {
        let out = self.layer.close();
        let _ = self.stream.write_all(&out);
    }
}

struct Shared {
    driver: Mutex<Driver>,
    status: Mutex<Status>,
    changed: Condvar,
}

impl Shared {
    /// Writes what the core wants written and hands its events over; call after every
    /// change to the core.
    fn pump(&self, driver: &mut Driver) {
        loop {
            let mut progressed = false;
            while let Some(bytes) = driver.core.poll_transmit() {
                progressed = true;
                if let Err(e) = driver.write(bytes) {
                    log::debug!("client write failed: {e}");
                    driver.core.handle_eof(Instant::now());
                }
            }
            while let Some(event) = driver.core.poll_event() {
                progressed = true;
                self.on_event(driver, event);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_event(&self, driver: &mut Driver, event: ClientEvent) {
        let mut status = lock(&self.status);
        match event {
            ClientEvent::Stanza(stanza) => status.inbox.push(stanza),
            ClientEvent::Online { jid } => status.online = Some(jid),
            ClientEvent::StartTls => {
                drop(status);
                driver.start_tls(Instant::now());
                return;
            }
            ClientEvent::Failed(error) => {
                status.inbox.end(error.to_string());
                status.failed = Some(error);
                status.closed = true;
                driver.close_tls();
                let _ = driver.stream.shutdown(Shutdown::Both);
            }
            ClientEvent::Closed => {
                status.inbox.end("closed");
                status.closed = true;
                driver.close_tls();
                let _ = driver.stream.shutdown(Shutdown::Both);
            }
            _ => {}
        }
        self.changed.notify_all();
    }

    fn read_loop(&self, mut reader: TcpStream) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let wait = {
                let driver = lock(&self.driver);
                if driver.core.is_closed() {
                    return;
                }
                driver
                    .core
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(MAX_READ_WAIT)
                    .clamp(Duration::from_millis(1), MAX_READ_WAIT)
            };
            let _ = reader.set_read_timeout(Some(wait));
            let result = reader.read(&mut buf);
            let now = Instant::now();
            let mut driver = lock(&self.driver);
            match result {
                Ok(0) => driver.core.handle_eof(now),
                Ok(n) => driver.input(now, buf.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    driver.core.handle_timeout(now)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("client read failed: {e}");
                    driver.core.handle_eof(now);
                }
            }
            self.pump(&mut driver);
            if driver.core.is_closed() {
                return;
            }
        }
    }

    /// Waits until `done` says yes (with the status locked) or the deadline passes.
    fn wait_until<T>(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&mut Status) -> Option<T>,
    ) -> Result<T, MutexGuard<'_, Status>> {
        let mut status = lock(&self.status);
        loop {
            if let Some(value) = done(&mut status) {
                return Ok(value);
            }
            let now = Instant::now();
            if now >= deadline || status.closed {
                return Err(status);
            }
            status = self
                .changed
                .wait_timeout(status, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// A connected, logged-in client. Usable from several threads (`&self` everywhere); drop
/// closes the stream.
pub struct Client {
    shared: Arc<Shared>,
    jid: FullJid,
    reader: Mutex<Option<JoinHandle<()>>>,
    close_timeout: Duration,
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
    pub fn connect(mut config: ClientConfig) -> Result<Client, ClientError> {
        adjust_tls_policy(&mut config)?;
        let started = Instant::now();
        let login_timeout = config.login_timeout;
        let close_timeout = config.close_timeout;
        let stream = connect_tcp(&config.socket_address(), login_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(login_timeout.max(Duration::from_secs(5))))?;
        let reader = stream.try_clone()?;
        let shared = Arc::new(Shared {
            driver: Mutex::new(Driver {
                core: core::Client::new(config),
                stream,
                layer: Layer::default(),
            }),
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
        });
        {
            let mut driver = lock(&shared.driver);
            driver.core.handle_connected(Instant::now());
            shared.pump(&mut driver);
        }
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("exampple-client".to_string())
            .spawn(move || thread_shared.read_loop(reader))?;
        // The core enforces the login timeout; the margin only guards against a stuck reader.
        let deadline = started + login_timeout + Duration::from_secs(1);
        let jid = match shared.wait_until(deadline, |status| {
            if let Some(jid) = status.online.clone() {
                return Some(Ok(jid));
            }
            status.failed.take().map(Err)
        }) {
            Ok(Ok(jid)) => jid,
            Ok(Err(error)) => {
                let _ = handle.join();
                return Err(error);
            }
            Err(mut status) => {
                let error = status.failed.take().unwrap_or(ClientError::Timeout(
                    "waiting for the login (the client's reader stopped)",
                ));
                drop(status);
                let _ = lock(&shared.driver).stream.shutdown(Shutdown::Both);
                let _ = handle.join();
                return Err(error);
            }
        };
        Ok(Client {
            shared,
            jid,
            reader: Mutex::new(Some(handle)),
            close_timeout,
        })
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
    pub fn send(&self, stanza: Element) -> Result<String, ClientError> {
        let mut driver = lock(&self.shared.driver);
        let id = driver.core.send(Instant::now(), stanza)?;
        self.shared.pump(&mut driver);
        Ok(id)
    }

    /// The oldest received stanza not taken yet, waiting up to `timeout` for one.
    pub fn next_stanza(&self, timeout: Duration) -> Option<Element> {
        self.shared
            .wait_until(Instant::now() + timeout, |status| status.inbox.pop())
            .ok()
    }

    /// The oldest received stanza that matches `pattern` (see
    /// [`exampple_core::matching`]), waiting up to `timeout`. Stanzas that do not match
    /// stay for later calls. The error shows the pattern and everything received.
    pub fn wait_for(
        &self,
        pattern: &Element,
        how: Match,
        timeout: Duration,
    ) -> Result<Element, WaitError> {
        let started = Instant::now();
        self.shared
            .wait_until(started + timeout, |status| {
                status.inbox.take_match(pattern, how)
            })
            .map_err(|status| {
                status
                    .inbox
                    .wait_error(Some(pattern), how, started.elapsed())
            })
    }

    /// Sends an iq `get` or `set` and waits for the `result` or `error` with its id (an
    /// `error` response is returned as `Ok`: check its `type`).
    pub fn request(&self, iq: Element, timeout: Duration) -> Result<Element, RequestError> {
        if iq.name() != "iq" || !matches!(iq.attr("type"), Some("get" | "set")) {
            return Err(RequestError::NotARequest);
        }
        let started = Instant::now();
        let id = self.send(iq)?;
        self.shared
            .wait_until(started + timeout, |status| status.inbox.take_response(&id))
            .map_err(|status| {
                RequestError::Wait(
                    status
                        .inbox
                        .wait_error(None, Match::Subset, started.elapsed()),
                )
            })
    }

    /// Closes the stream and waits (up to the close timeout) for the server to close its
    /// side. Calling it again does nothing.
    pub fn close(&self) {
        {
            let mut driver = lock(&self.shared.driver);
            driver.core.close(Instant::now());
            self.shared.pump(&mut driver);
        }
        let deadline = Instant::now() + self.close_timeout + Duration::from_secs(1);
        let _ = self
            .shared
            .wait_until(deadline, |status| status.closed.then_some(()));
        if let Some(handle) = lock(&self.reader).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut driver = lock(&self.shared.driver);
        if !driver.core.is_closed() {
            driver.core.close(Instant::now());
            self.shared.pump(&mut driver);
        }
        // The reader thread finishes on its own: the server's close, EOF or the timeout.
    }
}

fn connect_tcp(address: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Io(last.unwrap_or_else(|| no_address(address))))
}
