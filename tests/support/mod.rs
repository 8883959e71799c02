//! A loopback XEP-0114 server for runtime tests: accepts a component, checks its handshake,
//! and lets the test exchange stanzas with it.
#![allow(dead_code)]

pub mod instances;
pub mod servers;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exampple::component::handshake_digest;
use exampple::observe::Observer;
use exampple::parser::{Limits, StreamItem, StreamParser};
use exampple::{Config, Element, Router, Sender, xml};

pub const DOMAIN: &str = "component.localhost";
pub const SECRET: &str = "secret";

/// Which runtime a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Smol,
    Std,
    Tokio,
}

impl Which {
    /// Every runtime: the runtime suite runs each of its tests on all of them.
    pub const ALL: [Which; 3] = [Which::Smol, Which::Std, Which::Tokio];

    /// `"smol"`, `"tokio"` or anything else (`"std"`), as the real-server tests name them.
    pub fn named(name: &str) -> Which {
        match name {
            "smol" => Which::Smol,
            "tokio" => Which::Tokio,
            _ => Which::Std,
        }
    }
}

/// One `#[test]` per runtime for each `fn(Which)` named: `runtime_tests!(serves);` makes
/// `serves::smol`, `serves::std` and `serves::tokio`, so that every test of the runtime
/// suite runs against every runtime.
#[macro_export]
macro_rules! runtime_tests {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[test]
            fn smol() {
                super::$test($crate::support::Which::Smol);
            }
            #[test]
            fn std() {
                super::$test($crate::support::Which::Std);
            }
            #[test]
            fn tokio() {
                super::$test($crate::support::Which::Tokio);
            }
        }
    )*};
}

/// How a runtime is set up besides its config and router; `Default` leaves it as it is.
#[derive(Default)]
pub struct Setup {
    pub observer: Option<Arc<dyn Observer>>,
    pub workers: Option<usize>,
    pub write_timeout: Option<Duration>,
    /// The name of the thread that runs the runtime (and so its core).
    pub thread_name: Option<&'static str>,
}

/// A runtime running on a thread of its own.
pub struct Running {
    /// `run`'s result, its error as text.
    pub join: std::thread::JoinHandle<Result<(), String>>,
    /// Shuts the runtime down with this grace.
    pub shutdown: Box<dyn Fn(Duration) + Send>,
    pub sender: Sender,
}

/// Sets up any runtime alike (their builders have the same methods) and starts it.
macro_rules! start_runtime {
    ($runtime:ty, $config:expr, $router:expr, $setup:expr) => {{
        let setup = $setup;
        let mut rt = <$runtime>::new($config, $router).unwrap();
        if let Some(observer) = setup.observer {
            rt = rt.observer(observer);
        }
        if let Some(workers) = setup.workers {
            rt = rt.workers(workers);
        }
        if let Some(timeout) = setup.write_timeout {
            rt = rt.write_timeout(timeout);
        }
        let handle = rt.handle();
        let sender = handle.sender().clone();
        let mut thread = std::thread::Builder::new();
        if let Some(name) = setup.thread_name {
            thread = thread.name(name.into());
        }
        let join = thread
            .spawn(move || rt.run().map_err(|e| e.to_string()))
            .unwrap();
        Running {
            join,
            shutdown: Box::new(move |grace| handle.shutdown(grace)),
            sender,
        }
    }};
}

/// Starts `which` runtime with `config` and `router`, set up as `setup` says.
pub fn start(which: Which, config: Config, router: Router, setup: Setup) -> Running {
    match which {
        Which::Smol => start_runtime!(exampple::smol::Runtime, config, router, setup),
        Which::Std => start_runtime!(exampple::std::Runtime, config, router, setup),
        Which::Tokio => start_runtime!(exampple::tokio::Runtime, config, router, setup),
    }
}

pub struct FakeServer {
    listener: TcpListener,
}

pub struct Session {
    stream: TcpStream,
    parser: StreamParser,
    pending: Vec<Element>,
    /// The component's `</stream:stream>` came while reading stanzas.
    closed: bool,
}

impl FakeServer {
    pub fn new() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        FakeServer { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Accepts the next connection and completes the handshake (or rejects it).
    pub fn accept(&self, accept_secret: bool) -> Session {
        self.accept_then(accept_secret, || {})
    }

    /// Like [`FakeServer::accept`], calling `connected` once the connection is accepted and
    /// before the handshake: the component is connecting, not online.
    pub fn accept_then(&self, accept_secret: bool, connected: impl FnOnce()) -> Session {
        self.listener.set_nonblocking(false).unwrap();
        let (stream, _) = self.listener.accept().unwrap();
        connected();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut session = Session {
            stream,
            parser: StreamParser::new(Limits::default()),
            pending: Vec::new(),
            closed: false,
        };
        session.handshake(accept_secret);
        session
    }

    /// Accepts within `timeout`, or None.
    pub fn try_accept(&self, timeout: Duration) -> Option<TcpStream> {
        self.listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok((s, _)) = self.listener.accept() {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Session {
    fn read_items(&mut self, until: Instant) -> Vec<StreamItem> {
        let mut buf = [0u8; 16 * 1024];
        let mut items = Vec::new();
        while items.is_empty() && Instant::now() < until {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.parser.feed(&buf[..n], &mut items).unwrap(),
                Err(_) => {}
            }
        }
        items
    }

    fn handshake(&mut self, accept: bool) {
        let until = Instant::now() + Duration::from_secs(5);
        let items = self.read_items(until);
        assert!(
            matches!(items.first(), Some(StreamItem::Header(h)) if h.to.as_deref() == Some(DOMAIN)),
            "{items:?}"
        );
        self.write(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc123' from='{DOMAIN}'>"
        ));
        let mut items: Vec<StreamItem> = items.into_iter().skip(1).collect();
        if items.is_empty() {
            items = self.read_items(until);
        }
        let Some(StreamItem::Element(handshake)) = items.first() else {
            panic!("no handshake: {items:?}")
        };
        assert_eq!(handshake.text(), handshake_digest("abc123", SECRET));
        if accept {
            self.write("<handshake/>");
        } else {
            self.write("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Invalid handshake</text></stream:error></stream:stream>");
        }
    }

    pub fn write(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    /// Like [`Session::receive`], reading at most `chunk` bytes at a time with a `pause`
    /// after each read: a server that reads steadily but slowly.
    pub fn receive_paced(
        &mut self,
        timeout: Duration,
        chunk: usize,
        pause: Duration,
    ) -> Option<Element> {
        let until = Instant::now() + timeout;
        let mut buf = vec![0u8; chunk];
        let mut items = Vec::new();
        while self.pending.is_empty() && Instant::now() < until {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.parser.feed(&buf[..n], &mut items).unwrap(),
                Err(_) => {}
            }
            for item in items.drain(..) {
                if let StreamItem::Element(e) = item {
                    self.pending.push(e);
                }
            }
            std::thread::sleep(pause);
        }
        (!self.pending.is_empty()).then(|| self.pending.remove(0))
    }

    pub fn send(&mut self, stanza: &Element) {
        let mut out = Vec::new();
        xml::write_stanza(stanza, "jabber:component:accept", &mut out);
        self.stream.write_all(&out).unwrap();
    }

    /// The next stanza the component sends, within `timeout`.
    pub fn receive(&mut self, timeout: Duration) -> Option<Element> {
        let until = Instant::now() + timeout;
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            if Instant::now() >= until {
                return None;
            }
            for item in self.read_items(until) {
                match item {
                    StreamItem::Element(e) => self.pending.push(e),
                    StreamItem::Close => self.closed = true,
                    StreamItem::Header(_) => {}
                }
            }
        }
    }

    /// Waits for the component to close its stream (`</stream:stream>`) within `timeout`;
    /// stanzas that come before stay for [`Session::receive`].
    pub fn receive_close(&mut self, timeout: Duration) -> bool {
        if self.closed {
            return true;
        }
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            for item in self.read_items(until) {
                match item {
                    StreamItem::Element(e) => self.pending.push(e),
                    StreamItem::Close => return true,
                    StreamItem::Header(_) => {}
                }
            }
        }
        false
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// How a hostile connection ended, as the fake server saw it.
#[derive(Debug, Default)]
pub struct End {
    /// The stream error condition the component sent, if any.
    pub condition: Option<String>,
    /// Whether the component closed its stream (`</stream:stream>`).
    pub stream_closed: bool,
    /// Whether the component closed the TCP connection (end of file or reset).
    pub socket_closed: bool,
}

/// A connection accepted without a handshake, for hostile-server tests: the test writes
/// raw bytes (from another thread too, through [`RawSession::writer`]) and reads what the
/// component answers.
pub struct RawSession {
    pub stream: TcpStream,
    parser: StreamParser,
    pending: Vec<Element>,
    end: End,
}

impl FakeServer {
    /// Accepts the next connection within `timeout` and reads the component's stream
    /// header (within 5 s); no handshake. Connections the component already gave up on
    /// (closed before their header was read) are skipped.
    pub fn accept_raw(&self, timeout: Duration) -> Option<RawSession> {
        let until = Instant::now() + timeout;
        loop {
            let remaining = until.saturating_duration_since(Instant::now());
            let stream = self.try_accept(remaining.max(Duration::from_millis(1)))?;
            if let Some(session) = RawSession::open(stream) {
                return Some(session);
            }
        }
    }
}

impl RawSession {
    fn open(stream: TcpStream) -> Option<RawSession> {
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut session = RawSession {
            stream,
            parser: StreamParser::new(Limits {
                max_stanza_size: 16 << 20,
                max_depth: 64,
            }),
            pending: Vec::new(),
            end: End::default(),
        };
        let until = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        let mut items = Vec::new();
        while items.is_empty() && Instant::now() < until {
            match session.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => session.parser.feed(&buf[..n], &mut items).unwrap(),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(_) => {}
            }
        }
        match items.first() {
            Some(StreamItem::Header(h)) if h.to.as_deref() == Some(DOMAIN) => {}
            other => panic!("no stream header from the component: {other:?}"),
        }
        for item in items.into_iter().skip(1) {
            session.take(item);
        }
        Some(session)
    }
}

impl RawSession {
    /// The server's stream header, with stream id `abc123`.
    pub const HEADER: &'static str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc123' from='component.localhost'>";

    /// Writes bytes; errors are returned, not unwrapped (the component may have hung up).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// A second handle on the socket, to write from another thread while this one reads.
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    /// Sends the server's header, checks the handshake digest and accepts it.
    pub fn handshake(&mut self, timeout: Duration) {
        self.write(Self::HEADER.as_bytes()).unwrap();
        let handshake = self.receive(timeout).expect("a handshake");
        assert_eq!(handshake.name(), "handshake");
        assert_eq!(handshake.text(), handshake_digest("abc123", SECRET));
        self.write(b"<handshake/>").unwrap();
    }

    fn take(&mut self, item: StreamItem) {
        match item {
            StreamItem::Element(e)
                if e.name() == "error" && e.ns() == "http://etherx.jabber.org/streams" =>
            {
                self.end.condition = e
                    .children()
                    .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-streams" && c.name() != "text")
                    .map(|c| c.name().to_string());
            }
            StreamItem::Element(e) => self.pending.push(e),
            StreamItem::Close => self.end.stream_closed = true,
            StreamItem::Header(_) => panic!("a second stream header from the component"),
        }
    }

    /// Reads once (at most the read timeout); false when the connection is gone.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.end.socket_closed = true;
                false
            }
            Ok(n) => {
                let mut items = Vec::new();
                let result = self.parser.feed(&buf[..n], &mut items);
                for item in items {
                    self.take(item);
                }
                if let Err(e) = result {
                    panic!("the component wrote something that is not XML: {e}");
                }
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => {
                self.end.socket_closed = true;
                false
            }
        }
    }

    /// The next stanza the component sends, within `timeout`.
    pub fn receive(&mut self, timeout: Duration) -> Option<Element> {
        let until = Instant::now() + timeout;
        while self.pending.is_empty() && Instant::now() < until && !self.end.socket_closed {
            self.read_some();
        }
        (!self.pending.is_empty()).then(|| self.pending.remove(0))
    }

    /// Reads (discarding stanzas) until the component closes the connection or `timeout`
    /// passes, calling `tick` between reads (to sample memory).
    pub fn wait_end(&mut self, timeout: Duration, mut tick: impl FnMut()) -> &End {
        let until = Instant::now() + timeout;
        while Instant::now() < until && self.read_some() {
            self.pending.clear();
            tick();
        }
        &self.end
    }
}
