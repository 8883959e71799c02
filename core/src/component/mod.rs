//! The XEP-0114 component connection: a sans-IO state machine.
//!
//! Bytes and time go in (`handle_*`), bytes, events and the next deadline come out
//! (`poll_*`). The core starts no thread, waits for nothing and reads no clock or OS
//! randomness (time comes in as `now`, randomness from [`Config::seed`]), so a run with a
//! fixed seed repeats byte for byte. The program around it (the runtimes' shared drive loop,
//! `exampple-driver`, or a loop of your own) owns the socket and the clock and runs the
//! controllers; every
//! decision (handshake, routing, errors, timeouts, keepalives, reconnect backoff, the
//! queue kept while disconnected) is made here, so it is all testable with simulated time.
//!
//! # Driving it
//!
//! After every `handle_*` call (and whenever the waker set with [`Component::set_waker`]
//! fires), drain the outputs in this order, before waiting for anything (a `handle_*` call
//! made while acting on the events, `handle_connected` say, means draining again): [`Component::poll_transmit`] (write the bytes),
//! then [`Component::poll_event`] until `None`, then sleep until
//! [`Component::poll_timeout`] or new input. When a write fails part-way, tell
//! [`Component::handle_write_failed`] how many bytes the socket took (not
//! [`Component::handle_closed`]): the stanzas after them go out on the next connection.
//!
//! | event | what the runtime does |
//! |---|---|
//! | [`Event::Connect`] | open a TCP connection, then call `handle_connected` (or `handle_connect_failed`) |
//! | [`Event::Dispatch`] | run the controller: `dispatch.run()` runs a sync one to its end, and polls an async one once, returning its future if it has to wait (for an executor to poll); a sync one that may block belongs on a worker |
//! | [`Event::Cancel`] | abandon that controller if it can (the sender already got `remote-server-timeout`) |
//! | [`Event::Disconnected`] | close the socket; a `Connect` follows at `reconnect_at` |
//! | [`Event::Failed`] | close the socket and stop: the failure will not heal by itself |
//! | [`Event::Closed`] | close the socket and stop: `close()` completed |
//!
//! ```
//! use std::time::Instant;
//! use exampple_core::{Component, Config, Router, component::Event};
//!
//! let now = Instant::now();
//! let config = Config::new("component.localhost", "secret");
//! let mut component = Component::new(config, Router::new(), now).unwrap();
//! component.connect(now);
//! assert!(matches!(component.poll_event(), Some(Event::Connect { .. })));
//! component.handle_connected(now);
//! let header = component.poll_transmit().unwrap();
//! assert!(header.starts_with(b"<?xml version='1.0'?><stream:stream"));
//! component
//!     .handle_input(now, b"<stream:stream xmlns='jabber:component:accept' \
//!         xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>");
//! let handshake = component.poll_transmit().unwrap();
//! let digest = exampple_core::component::handshake_digest("sid", "secret");
//! assert_eq!(handshake, format!("<handshake>{digest}</handshake>").into_bytes());
//! component.handle_input(now, b"<handshake/>");
//! assert!(matches!(component.poll_event(), Some(Event::Online { .. })));
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use minidom::Element;
use sha1::{Digest, Sha1};

use crate::config::{AutoConnect, Config, ConfigError};
use crate::conn::call::{CallError, CallSlot};
use crate::conn::outbox::{Outbox, OutboxItem, Sender};
use crate::conn::reply::AnswerKind;
use crate::conn::{Conn, ConnParts, RequestId};
use crate::controller::{Controller, Outcome};
use crate::delegation::{self, Envelope};
use crate::in_flight::InFlightTable;
use crate::ns;
use crate::observe::{self, Observer, RequestEvent, RequestOutcome};
use crate::parser::{Limits, ParseError, StreamBuilder, StreamItem, StreamLexer, Tokens};
use crate::router::{RouteTable, Router, RouterError};
use crate::stanza::{self, Condition, Head, IqType, StanzaError, StanzaKind, StanzaType};
use crate::xml::{self, WriteError};

/// The id prefix of the keepalive pings (their answers are consumed by the core).
const KEEPALIVE_ID_PREFIX: &str = "exampple-keepalive-";

/// Stream error conditions after which reconnecting cannot help.
const PERMANENT_CONDITIONS: &[&str] = &[
    "not-authorized",
    "host-unknown",
    "host-gone",
    "invalid-namespace",
];

/// The lowercase hex SHA-1 of `stream_id + secret`, always 40 characters (XEP-0114).
///
/// ```
/// use exampple_core::component::handshake_digest;
/// assert_eq!(handshake_digest("sid", "123456"), "9accec263ab84a43c6037ccf7cd48cb1d3f6df8e");
/// ```
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(stream_id.as_bytes());
    hasher.update(secret.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(40);
    for byte in digest.iter() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(DIGITS[usize::from(byte >> 4)] as char);
        hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    hex
}

/// A stream error: its condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The RFC 6120 §4.9.3 condition (e.g. `not-authorized`).
    pub condition: String,
    /// The text the peer gave, if any.
    pub text: Option<String>,
}

impl StreamError {
    fn from_element(el: &Element) -> StreamError {
        let mut condition = String::from("undefined-condition");
        let mut text = None;
        for child in el.children() {
            if child.ns() == ns::STREAM_ERRORS {
                if child.name() == "text" {
                    text = Some(child.text());
                } else {
                    condition = child.name().to_string();
                }
            }
        }
        StreamError { condition, text }
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(text) = &self.text {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

/// Why a connection ended (a reconnect follows).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The TCP connection could not be opened.
    #[error("cannot connect: {0}")]
    ConnectFailed(String),
    /// The connection broke or the peer closed the socket.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The server sent a stream error.
    #[error("stream error from the server: {0}")]
    StreamError(StreamError),
    /// The server closed its stream.
    #[error("the server closed the stream")]
    ServerClosed,
    /// The server sent something we could not accept; we answered with this stream error.
    #[error("bad input from the server ({condition}): {reason}")]
    BadInput {
        /// The stream error condition we sent.
        condition: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The stream header or handshake answer did not come in time.
    #[error("the server did not complete the opening in time")]
    HandshakeTimeout,
    /// The server did not answer a keepalive ping in time.
    #[error("the server did not answer the keepalive ping in time")]
    KeepaliveTimeout,
}

/// Why the component stopped for good.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The server rejected the component (wrong secret, unknown domain, ...): reconnecting
    /// would not help.
    #[error("the server rejected the component: {0}")]
    Rejected(StreamError),
    /// The router is invalid.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A stanza to hand to a controller.
pub struct Dispatch {
    /// The request.
    pub request: RequestId,
    /// The controller to run.
    pub controller: Controller,
    /// The conn it gets.
    pub conn: Conn,
    /// The payload it gets.
    pub payload: Vec<Element>,
    outbox: Arc<Outbox>,
}

impl Dispatch {
    /// Whether the controller is async.
    pub fn is_async(&self) -> bool {
        self.controller.is_async()
    }

    /// Runs the controller on this thread until it ends or has to wait, and reports its
    /// outcome to the core when it ends.
    ///
    /// A sync controller always runs to its end here (`None`). An async one is polled once:
    /// most answer without waiting (`None`); one that waits is returned, to be polled to its
    /// end where the program runs futures (a task of its executor). The core never waits.
    #[must_use = "an async controller that waits goes on only if its future is polled"]
    pub fn run(self) -> Option<DispatchFuture> {
        let mut future = self.into_future();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx) {
            std::task::Poll::Ready(()) => None,
            std::task::Poll::Pending => Some(future),
        }
    }

    /// The controller as a future that reports its outcome to the core when it ends.
    ///
    /// It is `Unpin`: a runtime can poll it where it is (most controllers finish in their
    /// first poll) and move it into a task only if it has to wait.
    pub fn into_future(self) -> DispatchFuture {
        let Dispatch {
            request,
            controller,
            conn,
            payload,
            outbox,
        } = self;
        DispatchFuture {
            future: controller.call(conn, payload),
            request,
            outbox,
        }
    }
}

/// A running controller ([`Dispatch::into_future`]): reports its outcome to the core when it
/// ends.
#[must_use = "a future does nothing unless polled"]
pub struct DispatchFuture {
    future: crate::controller::ControllerFuture,
    request: RequestId,
    outbox: Arc<Outbox>,
}

impl std::future::Future for DispatchFuture {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match std::pin::Pin::new(&mut self.future).poll(cx) {
            std::task::Poll::Ready(outcome) => {
                self.outbox.push(OutboxItem::Finished {
                    request: self.request,
                    outcome,
                });
                std::task::Poll::Ready(())
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl std::fmt::Debug for DispatchFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchFuture")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("request", &self.request)
            .field("controller", &self.controller.name())
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// What the component tells its runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Open a TCP connection to `address` now.
    Connect {
        /// `host:port`.
        address: String,
    },
    /// The handshake succeeded: the component is online.
    Online {
        /// The server's stream id.
        stream_id: String,
    },
    /// Run a controller.
    Dispatch(Dispatch),
    /// A request timed out: abandon its controller if possible.
    Cancel(RequestId),
    /// The connection ended; close the socket. A [`Event::Connect`] follows at `reconnect_at`.
    Disconnected {
        /// Why.
        reason: Disconnect,
        /// When the next attempt starts.
        reconnect_at: Instant,
    },
    /// The component stopped for good; close the socket and stop.
    Failed(ComponentError),
    /// `close()` completed; close the socket and stop.
    Closed,
    /// The server announced namespaces delegated to the component (XEP-0355).
    Delegated {
        /// The namespaces.
        namespaces: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `connect()`.
    Idle,
    /// Waiting until the instant to connect (auto-connect delay or backoff).
    Waiting(Instant),
    /// `Connect` emitted, waiting for `handle_connected`.
    Connecting,
    /// Header sent, waiting for the server's header.
    Opening(Instant),
    /// Handshake sent, waiting for `<handshake/>`.
    Handshaking(Instant),
    Online,
    /// Not routing new stanzas, waiting for running controllers (until the instant).
    Draining(Instant),
    /// `</stream:stream>` sent, waiting for the server's.
    Closing(Instant),
    Failed,
    Closed,
}

struct InFlight {
    conn: Conn,
    controller: Arc<str>,
    started: Instant,
}

/// Where a piece of the output starts, and whether it is a stanza (re-sent on the next
/// connection if a failed write leaves it unwritten) or not (the stream's own writes, a
/// keepalive: never re-sent). A piece ends where the next one starts.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: usize,
    stanza: bool,
}

struct PendingCall {
    to: Option<String>,
    slot: Arc<CallSlot>,
    deadline: Instant,
}

/// The component: see the [module documentation](self).
pub struct Component {
    config: Config,
    table: Arc<RouteTable>,
    outbox: Arc<Outbox>,
    domain: Arc<str>,
    state: State,
    /// The tokeniser of `handle_input` (runtimes may run their own, see `stream_lexer`).
    lexer: StreamLexer,
    /// Tokens into elements, for the current connection.
    builder: StreamBuilder,
    transmit: Vec<u8>,
    /// The pieces of `transmit`, in order.
    marks: Vec<Mark>,
    /// The pieces of the bytes last handed out (the runtime's buffer), for
    /// [`Component::handle_write_failed`].
    handed: Vec<Mark>,
    /// How many bytes `handed` covers.
    handed_len: usize,
    events: VecDeque<Event>,
    queue: VecDeque<Element>,
    requests: InFlightTable<InFlight>,
    calls: HashMap<String, PendingCall>,
    call_deadlines: BTreeSet<(Instant, String)>,
    next_request: u64,
    last_output: Instant,
    last_input: Instant,
    ping_deadline: Option<Instant>,
    attempts: u32,
    /// Every random choice of the component (reconnect jitter, generated ids), so that a
    /// run with the same seed and inputs is repeated byte for byte.
    rng: fastrand::Rng,
    observer: Option<Arc<dyn Observer>>,
    tokens: Tokens,
    items: Vec<StreamItem>,
    valid_jids: crate::jid::ValidJids,
    drained: Vec<OutboxItem>,
    delegated: Vec<String>,
    handshake_stream_id: Option<String>,
    header_without_id: bool,
    /// The server has ended its side of this connection, as the runtime's socket said
    /// before the input's end reached us ([`Component::handle_server_ended`]).
    server_ended: bool,
    /// Items of an input are being handled: the stanzas the core sends meanwhile are held
    /// until the input's end (see [`Component::handle_tokens`]).
    handling_input: bool,
    /// The stanzas held, in order.
    held: Vec<Element>,
}

impl Component {
    /// A component for `config` routing with `router`. It connects according to
    /// `config.auto_connect`.
    ///
    /// Every random choice of the component (reconnect jitter, the ids of keepalive pings,
    /// of IQ calls and of `auto_generate_id`) comes from one generator seeded with
    /// [`Config::seed`]; the core never reads randomness from the OS. Without a seed it
    /// derives one from `config.domain` and `now`: two components differ when either
    /// differs (separate processes, in practice, never pass the same `now`), but two
    /// components built with the same domain and the same `now` value generate the same
    /// ids, and a run is only repeatable with an explicit seed. The runtimes seed from the
    /// OS when the configuration has no seed, the test kit with a fixed one; an embedding
    /// seeds it too (`examples/embed.rs` does with std's OS-seeded `RandomState`).
    pub fn new(config: Config, router: Router, now: Instant) -> Result<Self, ComponentError> {
        config.validate()?;
        let table = router.build()?;
        let limits = Limits {
            max_stanza_size: config.max_stanza_size,
            max_depth: config.max_depth,
        };
        let outbox = Arc::new(Outbox::new(config.max_queue));
        let seed = config
            .seed
            .unwrap_or_else(|| derived_seed(&config.domain, now));
        // Logged so that a run can be replayed with `Config::seed`.
        log::debug!(target: "exampple", "random seed {seed}");
        let mut component = Component {
            domain: Arc::from(config.domain.as_str()),
            table: Arc::new(table),
            outbox,
            state: State::Idle,
            lexer: StreamLexer::new(limits),
            builder: StreamBuilder::new(),
            transmit: Vec::with_capacity(8192),
            marks: Vec::with_capacity(256),
            handed: Vec::with_capacity(256),
            handed_len: 0,
            events: VecDeque::new(),
            queue: VecDeque::new(),
            requests: InFlightTable::new(),
            calls: HashMap::new(),
            call_deadlines: BTreeSet::new(),
            next_request: 1,
            last_output: now,
            last_input: now,
            ping_deadline: None,
            attempts: 0,
            rng: fastrand::Rng::with_seed(seed),
            observer: None,
            tokens: Tokens::default(),
            items: Vec::new(),
            valid_jids: crate::jid::ValidJids::new(),
            drained: Vec::new(),
            delegated: Vec::new(),
            handshake_stream_id: None,
            header_without_id: false,
            server_ended: false,
            handling_input: false,
            held: Vec::new(),
            config,
        };
        match component.config.auto_connect {
            AutoConnect::Never => {}
            AutoConnect::Immediately => component.connect(now),
            AutoConnect::After(delay) => component.state = State::Waiting(now + delay),
        }
        Ok(component)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.table
    }

    /// Whether the handshake is done and the connection is up.
    pub fn is_online(&self) -> bool {
        self.state == State::Online
    }

    /// Whether the component stopped for good (failed or closed).
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, State::Failed | State::Closed)
    }

    /// How many requests are being handled.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// How many stanzas wait for the connection.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The namespaces the server announced as delegated to the component.
    pub fn delegated_namespaces(&self) -> &[String] {
        &self.delegated
    }

    /// Receives a [`RequestEvent`] for every handled stanza.
    pub fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// Called (from any thread) when a controller or [`Sender`] has something for the core:
    /// the runtime should then call [`Component::handle_outbox`] on its thread.
    pub fn set_waker(&mut self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.outbox.set_waker(wake);
    }

    /// A handle to send stanzas from any thread.
    pub fn sender(&self) -> Sender {
        Sender::new(self.outbox.clone())
    }

    /// Whether controllers left something for [`Component::handle_outbox`].
    pub fn has_outbox(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Asks for a connection now (for `auto_connect` never, or to skip a backoff delay).
    pub fn connect(&mut self, _now: Instant) {
        if matches!(self.state, State::Idle | State::Waiting(_)) {
            self.state = State::Connecting;
            self.events.push_back(Event::Connect {
                address: self.config.address(),
            });
        }
    }

    /// The TCP connection is open: the stream header is queued for writing.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state != State::Connecting {
            return;
        }
        self.transmit.clear();
        self.marks.clear();
        self.lexer = StreamLexer::new(self.lexer.limits());
        self.builder = StreamBuilder::new();
        self.mark_other();
        self.transmit.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='");
        self.transmit
            .extend_from_slice(xml::escape(&self.config.domain).as_bytes());
        self.transmit.extend_from_slice(b"'>");
        self.last_output = now;
        self.last_input = now;
        self.header_without_id = false;
        self.server_ended = false;
        self.state = State::Opening(now + self.config.handshake_timeout);
    }

    /// The server has ended its side of the connection: the socket says so (on Linux,
    /// `POLLRDHUP`), though the runtime's reader may not have read that far yet. Stanzas
    /// sent from now on are kept for the next connection, as while disconnected, instead of
    /// being written to a connection whose other end is gone (a TCP send after the peer's
    /// end still succeeds, and its bytes are lost). The input up to the end still comes
    /// ([`Component::handle_tokens`], [`Component::handle_input`]), then
    /// [`Component::handle_closed`].
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use exampple_core::{Component, Config, Router, xml};
    /// # use exampple_core::component::Event;
    /// let now = Instant::now();
    /// let mut core = Component::new(Config::new("c.localhost", "secret"), Router::new(), now)?;
    /// core.connect(now);
    /// while core.poll_event().is_some() {}
    /// core.handle_connected(now);
    /// core.handle_input(now, b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'><handshake/>");
    /// assert!(core.is_online());
    /// let _ = core.poll_transmit();
    ///
    /// core.handle_server_ended();
    /// core.sender().send(xml!("<message to='a@localhost'><body>hi</body></message>"))?;
    /// core.handle_outbox(now);
    /// assert!(core.poll_transmit().is_none(), "kept for the next connection");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_server_ended(&mut self) {
        if self.is_reading() && !self.server_ended {
            log::debug!(target: "exampple", "the server ended its side of the connection");
            self.server_ended = true;
        }
    }

    /// The TCP connection could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: impl Into<String>) {
        if self.state == State::Connecting {
            self.disconnect(now, Disconnect::ConnectFailed(reason.into()));
        }
    }

    /// The socket closed (end of file or error).
    pub fn handle_closed(&mut self, now: Instant, reason: impl Into<String>) {
        match self.state {
            State::Closing(_) => self.finish_close(),
            State::Opening(_) | State::Handshaking(_) | State::Online | State::Draining(_) => {
                self.disconnect(now, Disconnect::ConnectionLost(reason.into()))
            }
            _ => {}
        }
    }

    /// Writing to the socket failed part-way: of `buffer` (the bytes last handed out by
    /// [`Component::poll_transmit_into`] or [`Component::poll_transmit`]), the socket took
    /// the first `written`. Call this instead of [`Component::handle_closed`].
    ///
    /// The stanzas that start at or after the first unwritten byte are kept for the next
    /// connection, in order, before those sent later (up to `max_queue`: beyond it the
    /// latest are dropped, and logged). The stanza the failure cut in the middle is lost
    /// (the server may have part of it), and logged; the stream's own writes and keepalives
    /// are never re-sent. Then it is [`Component::handle_closed`].
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use exampple_core::{Component, Config, Router, xml};
    /// # use exampple_core::component::Event;
    /// let now = Instant::now();
    /// let mut core = Component::new(Config::new("c.localhost", "secret"), Router::new(), now)?;
    /// core.connect(now);
    /// core.handle_connected(now);
    /// core.handle_input(now, b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'><handshake/>");
    /// let mut out = Vec::new();
    /// core.poll_transmit_into(&mut out);
    /// out.clear(); // written
    ///
    /// core.send(now, xml!("<message to='a@localhost' id='1'/>"))?;
    /// core.send(now, xml!("<message to='a@localhost' id='2'/>"))?;
    /// core.poll_transmit_into(&mut out);
    /// // The socket took the first stanza and 3 bytes of the second, then failed.
    /// let first = "<message id='1' to='a@localhost'/>".len();
    /// core.handle_write_failed(now, "write timed out", &out, first + 3);
    /// assert_eq!(core.queued(), 0, "the second was cut: lost");
    /// # assert!(matches!(std::iter::from_fn(|| core.poll_event()).last(), Some(Event::Disconnected { .. })));
    ///
    /// // Had the socket taken only the first, the second would be kept.
    /// # let mut core = Component::new(Config::new("c.localhost", "secret"), Router::new(), now)?;
    /// # core.connect(now);
    /// # core.handle_connected(now);
    /// # core.handle_input(now, b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'><handshake/>");
    /// # out.clear();
    /// # core.poll_transmit_into(&mut out);
    /// # out.clear();
    /// # core.send(now, xml!("<message to='a@localhost' id='1'/>"))?;
    /// # core.send(now, xml!("<message to='a@localhost' id='2'/>"))?;
    /// # core.poll_transmit_into(&mut out);
    /// core.handle_write_failed(now, "write timed out", &out, first);
    /// assert_eq!(core.queued(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cold]
    pub fn handle_write_failed(
        &mut self,
        now: Instant,
        reason: impl Into<String>,
        buffer: &[u8],
        written: usize,
    ) {
        let unsent = self.unsent_stanzas(buffer, written);
        self.handle_closed(now, reason);
        if unsent.is_empty() {
            return;
        }
        if matches!(self.state, State::Failed | State::Closed) {
            log::warn!(target: "exampple", "dropped {} stanzas a failed write left unwritten: the component stopped", unsent.len());
            return;
        }
        log::info!(target: "exampple", "{} stanzas a failed write left unwritten wait for the next connection", unsent.len());
        for stanza in unsent.into_iter().rev() {
            self.queue.push_front(stanza);
        }
        if self.queue.len() > self.config.max_queue {
            let dropped = self.queue.len() - self.config.max_queue;
            self.queue.truncate(self.config.max_queue);
            log::error!(target: "exampple", "dropped the {dropped} latest stanzas: the queue of {} stanzas kept while disconnected is full", self.config.max_queue);
        }
        self.outbox
            .backlog
            .store(self.queue.len(), Ordering::Relaxed);
    }

    /// The stanzas of `buffer` (the bytes last handed out) that start at or after byte
    /// `written`, as elements; the one cut at `written` is logged as lost.
    fn unsent_stanzas(&mut self, buffer: &[u8], written: usize) -> Vec<Element> {
        let marks = std::mem::take(&mut self.handed);
        let handed_len = std::mem::take(&mut self.handed_len);
        let mut unsent = Vec::new();
        if buffer.len() != handed_len {
            log::error!(target: "exampple", "a failed write of {} bytes, not the {handed_len} handed out: the stanzas in it are lost", buffer.len());
            return unsent;
        }
        for (i, mark) in marks.iter().enumerate() {
            let end = marks.get(i + 1).map_or(buffer.len(), |next| next.at);
            if !mark.stanza || end <= written {
                continue;
            }
            let Some(text) = buffer
                .get(mark.at..end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
            else {
                log::error!(target: "exampple", "lost a stanza a failed write left unwritten: its bytes are not where they were written");
                continue;
            };
            match xml::parse_in(text, ns::COMPONENT) {
                Ok(stanza) if mark.at < written => {
                    log::warn!(target: "exampple", "lost a <{}/> (id {:?}) cut short by the failed write: the server may have part of it", stanza.name(), stanza.attr("id").unwrap_or(""));
                }
                Ok(stanza) => unsent.push(stanza),
                Err(error) => {
                    log::error!(target: "exampple", "lost a stanza a failed write left unwritten: it does not read back ({error})");
                }
            }
        }
        unsent
    }

    /// Bytes from the server, in any chunking. (Answers to stanzas in input that also ends
    /// the connection: see [`Component::handle_tokens`].)
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if !self.is_reading() {
            self.drain_outbox(now);
            return;
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        self.lexer.lex(bytes, &mut tokens);
        self.handle_tokens(now, &mut tokens);
        self.tokens = tokens;
    }

    /// A tokeniser for the connection just opened, for a runtime that reads on another
    /// thread than the core's: it feeds this lexer the bytes it reads, and passes the
    /// [`Tokens`] to [`Component::handle_tokens`] instead of calling
    /// [`Component::handle_input`]. Tokenising is the larger part of parsing, and it needs
    /// nothing of the core; the elements are built (and later freed) on the core's thread.
    /// Take a new lexer for each connection: one holds one stream.
    pub fn stream_lexer(&self) -> StreamLexer {
        StreamLexer::new(self.lexer.limits())
    }

    /// What a [`Component::stream_lexer`] made of the server's bytes: the same as handing
    /// those bytes to [`Component::handle_input`]. `tokens` is left spent: give it back to
    /// the lexer's thread, which drops and refills it (see [`Tokens`]).
    ///
    /// When the input ends the connection (the server's stream error or close, or input
    /// the component refuses with a stream error of its own), the answers to the stanzas
    /// before that end in the same input, whether the core makes them at once (errors) or
    /// controllers do later, go out on the next connection, after its handshake, each
    /// exactly once; so do the stanzas queued while disconnected, if this input completed
    /// the handshake. The server has ended the stream, or is about to be told it has
    /// ended: it may not read what follows. (The core holds what it sends while it handles
    /// an input, and writes it at the input's end if the connection goes on.)
    pub fn handle_tokens(&mut self, now: Instant, tokens: &mut Tokens) {
        self.drain_outbox(now);
        if !self.is_reading() {
            tokens.spent = true;
            return;
        }
        self.last_input = now;
        self.ping_deadline = None;
        let mut items = std::mem::take(&mut self.items);
        let result = self.builder.build(tokens, &mut items);
        self.handling_input = true;
        let mut alive = true;
        for item in items.drain(..) {
            if alive {
                alive = self.on_item(now, item);
            }
        }
        self.items = items;
        if alive && let Err(error) = result {
            self.fail_stream(now, error.condition(), error.to_string(), &error);
        }
        self.handling_input = false;
        if !(self.held.is_empty() && self.queue.is_empty()) {
            self.release_held(now);
        }
    }

    /// The end of an input: what the core sent while handling it goes to this connection if
    /// it goes on, after the stanzas kept while disconnected if the input completed the
    /// handshake; else all of it waits for the next connection.
    #[cold]
    fn release_held(&mut self, now: Instant) {
        if self.writes_stanzas() {
            self.flush_queue(now);
        } else if !self.held.is_empty() {
            log::debug!(target: "exampple", "the input ended the connection: {} stanzas the core sent meanwhile wait for the next one", self.held.len());
        }
        let mut held = std::mem::take(&mut self.held);
        for stanza in held.drain(..) {
            // An unwritable one has been logged; the core's own stanzas answer no request.
            let _ = self.deliver(now, stanza);
        }
        self.held = held;
    }

    /// Whether the connection is in a state where the server's input counts.
    fn is_reading(&self) -> bool {
        matches!(
            self.state,
            State::Opening(_)
                | State::Handshaking(_)
                | State::Online
                | State::Draining(_)
                | State::Closing(_)
        )
    }

    /// Controllers or senders left stanzas, outcomes or calls: take them.
    pub fn handle_outbox(&mut self, now: Instant) {
        self.drain_outbox(now);
    }

    /// Time passed: fire what is due. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain_outbox(now);
        self.expire_requests(now);
        self.expire_calls(now);
        match self.state {
            State::Waiting(at) if now >= at => self.connect(now),
            State::Opening(at) | State::Handshaking(at) if now >= at => {
                self.disconnect(now, Disconnect::HandshakeTimeout)
            }
            State::Draining(at) if now >= at || self.requests.is_empty() => self.begin_closing(now),
            State::Closing(at) if now >= at => self.finish_close(),
            State::Online => self.keepalive(now),
            _ => {}
        }
    }

    /// Sends a stanza (queued while disconnected, up to `max_queue`).
    pub fn send(&mut self, now: Instant, stanza: Element) -> Result<(), crate::conn::SendError> {
        if matches!(self.state, State::Failed | State::Closed) {
            return Err(crate::conn::SendError::Closed);
        }
        if self.state != State::Online && self.queue.len() >= self.config.max_queue {
            return Err(crate::conn::SendError::QueueFull(self.config.max_queue));
        }
        self.send_stanza(now, stanza);
        Ok(())
    }

    /// Stops routing new stanzas, waits up to `grace` for running controllers, then closes
    /// the stream and waits for the server's close.
    pub fn close(&mut self, now: Instant, grace: Duration) {
        self.drain_outbox(now);
        match self.state {
            State::Online => {
                self.state = State::Draining(now + grace);
                if self.requests.is_empty() {
                    self.begin_closing(now);
                }
            }
            State::Draining(_) | State::Closing(_) | State::Closed | State::Failed => {}
            _ => self.finish_close(),
        }
    }

    /// Bytes to write to the socket, all pending output in one buffer.
    ///
    /// Each buffer returned takes the place of the one before: if writing it fails part-way,
    /// tell [`Component::handle_write_failed`] about this buffer (and call this again only
    /// once the one before is written, or given up on).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            return None;
        }
        self.hand_out(0);
        let capacity = self.transmit.capacity().clamp(4096, 1 << 20);
        Some(std::mem::replace(
            &mut self.transmit,
            Vec::with_capacity(capacity),
        ))
    }

    /// Appends the pending output to `buffer` (to reuse the caller's buffer); returns
    /// whether there was any.
    ///
    /// `buffer` is empty, or holds exactly the bytes this handed out before, none of them
    /// written yet. Asking again with an empty buffer says that everything handed out
    /// before has been written: if writing `buffer` then fails part-way, the stanzas it
    /// holds that the socket did not take are kept for the next connection by
    /// [`Component::handle_write_failed`], which knows where each starts.
    pub fn poll_transmit_into(&mut self, buffer: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        if buffer.is_empty() {
            self.hand_out(0);
            std::mem::swap(buffer, &mut self.transmit);
        } else {
            self.hand_out(buffer.len());
            buffer.append(&mut self.transmit);
        }
        true
    }

    /// The pieces of `transmit` are handed out after `before` bytes handed out earlier (the
    /// runtime's buffer is that long), or alone (`before` is 0).
    #[inline]
    fn hand_out(&mut self, before: usize) {
        if before == 0 {
            self.handed.clear();
            std::mem::swap(&mut self.handed, &mut self.marks);
        } else {
            if before != self.handed_len {
                // Not the bytes handed out: what they hold is unknown, so none of it is
                // re-sent.
                self.handed.clear();
                self.handed.push(Mark {
                    at: 0,
                    stanza: false,
                });
            }
            self.handed.extend(self.marks.drain(..).map(|mark| Mark {
                at: mark.at + before,
                stanza: mark.stanza,
            }));
        }
        self.handed_len = before + self.transmit.len();
    }

    /// Whether output is waiting for [`Component::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Component::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.requests.next_deadline());
        consider(self.call_deadlines.first().map(|(t, _)| *t));
        match self.state {
            State::Waiting(at)
            | State::Opening(at)
            | State::Handshaking(at)
            | State::Draining(at)
            | State::Closing(at) => consider(Some(at)),
            State::Online => {
                if let Some(ping) = self.config.ping {
                    consider(Some(self.last_output + ping));
                    consider(Some(self.ping_deadline.unwrap_or(self.last_input + ping)));
                }
            }
            _ => {}
        }
        next
    }

    // ----- internals -----

    fn backoff(&mut self) -> Duration {
        let min = self.config.reconnect_min.max(Duration::from_millis(1));
        let exp = min.saturating_mul(1u32 << self.attempts.min(20));
        let capped = exp.min(self.config.reconnect_max);
        // Full jitter over the upper half: between 50% and 100% of the capped delay.
        let fraction = 0.5 + self.rng.u32(0..1000) as f64 / 2000.0;
        self.attempts = self.attempts.saturating_add(1);
        capped.mul_f64(fraction).max(min.min(capped))
    }

    fn disconnect(&mut self, now: Instant, reason: Disconnect) {
        self.outbox.connected.store(false, Ordering::Relaxed);
        self.ping_deadline = None;
        let delay = self.backoff();
        let reconnect_at = now + delay;
        log::warn!(target: "exampple", "disconnected ({reason}); reconnecting in {delay:?} (attempt {})", self.attempts);
        self.state = State::Waiting(reconnect_at);
        self.events.push_back(Event::Disconnected {
            reason,
            reconnect_at,
        });
    }

    fn fail(&mut self, error: ComponentError) {
        log::error!(target: "exampple", "stopped: {error}");
        self.outbox.connected.store(false, Ordering::Relaxed);
        self.outbox.closed.store(true, Ordering::Relaxed);
        self.state = State::Failed;
        self.fail_pending_calls();
        self.events.push_back(Event::Failed(error));
    }

    fn finish_close(&mut self) {
        self.outbox.connected.store(false, Ordering::Relaxed);
        self.outbox.closed.store(true, Ordering::Relaxed);
        self.state = State::Closed;
        self.fail_pending_calls();
        self.events.push_back(Event::Closed);
    }

    fn fail_pending_calls(&mut self) {
        for (_, call) in self.calls.drain() {
            call.slot.fulfil(Err(CallError::Closed));
        }
        self.call_deadlines.clear();
    }

    /// The stream's own bytes, or a keepalive, start here: never re-sent.
    fn mark_other(&mut self) {
        self.marks.push(Mark {
            at: self.transmit.len(),
            stanza: false,
        });
    }

    fn begin_closing(&mut self, now: Instant) {
        self.mark_other();
        self.transmit.extend_from_slice(b"</stream:stream>");
        self.last_output = now;
        self.state = State::Closing(now + Duration::from_secs(2));
    }

    /// Sends a stream error and ends the connection.
    fn fail_stream(
        &mut self,
        now: Instant,
        condition: &'static str,
        reason: String,
        _cause: &ParseError,
    ) {
        self.write_stream_error(condition);
        self.disconnect(now, Disconnect::BadInput { condition, reason });
    }

    fn write_stream_error(&mut self, condition: &str) {
        self.mark_other();
        self.transmit.extend_from_slice(b"<stream:error><");
        self.transmit.extend_from_slice(condition.as_bytes());
        self.transmit.extend_from_slice(
            b" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
        );
    }

    /// Handles one parsed item; false when the connection ended.
    fn on_item(&mut self, now: Instant, item: StreamItem) -> bool {
        match (self.state, item) {
            (State::Opening(deadline), StreamItem::Header(header)) => {
                if !header.is_stream() || header.default_ns.as_deref() != Some(ns::COMPONENT) {
                    self.write_stream_error("invalid-namespace");
                    self.disconnect(
                        now,
                        Disconnect::BadInput {
                            condition: "invalid-namespace",
                            reason: format!(
                                "stream header `{}` with namespace {:?}",
                                header.name,
                                header.default_ns.as_deref().unwrap_or("")
                            ),
                        },
                    );
                    return false;
                }
                let Some(id) = header.id.filter(|id| !id.is_empty()) else {
                    // A server refusing the component (Prosody for an unknown domain) opens its
                    // stream without an id and sends a stream error next: wait for it, so the
                    // failure carries the server's reason. Anything else gets invalid-id.
                    self.header_without_id = true;
                    return true;
                };
                let digest = handshake_digest(&id, &self.config.password);
                self.mark_other();
                self.transmit.extend_from_slice(b"<handshake>");
                self.transmit.extend_from_slice(digest.as_bytes());
                self.transmit.extend_from_slice(b"</handshake>");
                self.last_output = now;
                self.handshake_stream_id = Some(id);
                self.state = State::Handshaking(deadline);
                true
            }
            (State::Handshaking(_), StreamItem::Element(el))
                if el.name() == "handshake" && el.has_ns(ns::COMPONENT) =>
            {
                self.go_online(now);
                true
            }
            (State::Opening(_) | State::Handshaking(_), StreamItem::Element(el))
                if el.name() == "error" && el.ns() == ns::STREAM =>
            {
                let error = StreamError::from_element(&el);
                if PERMANENT_CONDITIONS.contains(&error.condition.as_str()) {
                    self.fail(ComponentError::Rejected(error));
                } else {
                    self.disconnect(now, Disconnect::StreamError(error));
                }
                false
            }
            (State::Opening(_), StreamItem::Element(el)) if self.header_without_id => {
                self.write_stream_error("invalid-id");
                self.disconnect(
                    now,
                    Disconnect::BadInput {
                        condition: "invalid-id",
                        reason: format!("stream header without an id, then <{}/>", el.name()),
                    },
                );
                false
            }
            (State::Opening(_) | State::Handshaking(_), StreamItem::Element(el)) => {
                self.write_stream_error("not-authorized");
                self.disconnect(
                    now,
                    Disconnect::BadInput {
                        condition: "not-authorized",
                        reason: format!("<{}/> received before the handshake completed", el.name()),
                    },
                );
                false
            }
            (State::Opening(_) | State::Handshaking(_), StreamItem::Close) => {
                self.disconnect(now, Disconnect::ServerClosed);
                false
            }
            (State::Online | State::Draining(_), StreamItem::Element(el)) => match top_level(&el) {
                TopLevel::Stanza(kind) => {
                    self.on_stanza(now, kind, el);
                    true
                }
                TopLevel::Ignored(what) => {
                    log::debug!(target: "exampple", "ignored {what} from the server");
                    true
                }
                TopLevel::StreamError => {
                    let error = StreamError::from_element(&el);
                    if PERMANENT_CONDITIONS.contains(&error.condition.as_str()) {
                        self.fail(ComponentError::Rejected(error));
                    } else {
                        self.disconnect(now, Disconnect::StreamError(error));
                    }
                    false
                }
                TopLevel::Unsupported => {
                    self.refuse_top_level(now, &el);
                    false
                }
            },
            (State::Online | State::Draining(_), StreamItem::Close) => {
                self.mark_other();
                self.transmit.extend_from_slice(b"</stream:stream>");
                self.disconnect(now, Disconnect::ServerClosed);
                false
            }
            (State::Closing(_), StreamItem::Close) => {
                self.finish_close();
                false
            }
            (State::Closing(_), _) => true,
            (_, StreamItem::Header(_)) => {
                self.write_stream_error("not-well-formed");
                self.disconnect(
                    now,
                    Disconnect::BadInput {
                        condition: "not-well-formed",
                        reason: "a second stream header".into(),
                    },
                );
                false
            }
            _ => true,
        }
    }

    /// An element directly under the stream that is neither a stanza nor the stream's own
    /// ([`TopLevel::Unsupported`]): RFC 6120 §4.9.3.25 ends the stream with
    /// unsupported-stanza-type.
    fn refuse_top_level(&mut self, now: Instant, el: &Element) {
        let condition = "unsupported-stanza-type";
        self.write_stream_error(condition);
        self.disconnect(
            now,
            Disconnect::BadInput {
                condition,
                reason: format!(
                    "<{}/> in namespace {:?} directly under the stream",
                    el.name(),
                    el.ns()
                ),
            },
        );
    }

    fn go_online(&mut self, now: Instant) {
        let stream_id = self.handshake_stream_id.take().unwrap_or_default();
        log::info!(target: "exampple", "online as {} (stream {stream_id})", self.config.domain);
        self.state = State::Online;
        self.attempts = 0;
        self.outbox.connected.store(true, Ordering::Relaxed);
        // During an input, at its end (`release_held`): the input may end the connection.
        if !self.handling_input {
            self.flush_queue(now);
        }
        self.events.push_back(Event::Online { stream_id });
    }

    /// Writes the stanzas kept while disconnected.
    fn flush_queue(&mut self, now: Instant) {
        if self.queue.is_empty() {
            return;
        }
        while let Some(stanza) = self.queue.pop_front() {
            // Checked when queued.
            let _ = self.write_out(now, &stanza);
        }
        self.outbox.backlog.store(0, Ordering::Relaxed);
    }

    fn keepalive(&mut self, now: Instant) {
        let Some(ping) = self.config.ping else { return };
        if let Some(deadline) = self.ping_deadline {
            if now >= deadline {
                self.disconnect(now, Disconnect::KeepaliveTimeout);
                return;
            }
        } else if now >= self.last_input + ping {
            let to = self
                .config
                .domain
                .split_once('.')
                .map_or(self.config.domain.as_str(), |(_, parent)| parent);
            let mut iq = stanza::iq(IqType::Get)
                .id(format!(
                    "{KEEPALIVE_ID_PREFIX}{}",
                    random_uuid(&mut self.rng)
                ))
                .from(self.config.domain.as_str())
                .to(to)
                .payload(Element::bare("ping", ns::PING))
                .build();
            xml::trim(&mut iq);
            // Not re-sent: it asks about this connection only.
            let _ = self.write_element(now, &iq, false);
            self.ping_deadline = Some(now + self.config.ping_timeout);
        }
        if now >= self.last_output + ping {
            self.mark_other();
            self.transmit.push(b'\n');
            self.last_output = now;
        }
    }

    fn drain_outbox(&mut self, now: Instant) {
        let mut items = std::mem::take(&mut self.drained);
        self.outbox.drain_into(&mut items);
        for item in items.drain(..) {
            match item {
                OutboxItem::Send { request, stanza } => {
                    if let Some(request) = request
                        && let Some(flight) = self.requests.get(&request)
                        && flight.conn.state().expired.load(Ordering::Relaxed)
                    {
                        log::warn!(target: "exampple", "dropped a stanza sent by {} after its request timed out", flight.controller);
                        continue;
                    }
                    // Which request this stanza answers, should it prove unwritable (looked
                    // up only for an iq result or error, so messages pay nothing).
                    let answer = request
                        .filter(|_| is_iq_answer(&stanza))
                        .and_then(|request| {
                            let conn = &self.requests.get(&request)?.conn;
                            answers(conn.stanza(), &stanza).then(|| conn.clone())
                        });
                    if let Err(error) = self.try_send_stanza(now, stanza)
                        && let Some(conn) = answer
                    {
                        self.answer_unwritable(now, &conn, error);
                    }
                }
                OutboxItem::Answer {
                    conn,
                    kind,
                    payload,
                } => {
                    if conn.is_expired() {
                        log::warn!(target: "exampple", "dropped an answer sent after its request timed out");
                        continue;
                    }
                    self.send_answer(now, &conn, kind, payload);
                }
                OutboxItem::Finished { request, outcome } => {
                    self.finish_request(now, request, outcome)
                }
                OutboxItem::Call { iq, timeout, slot } => self.start_call(now, iq, timeout, slot),
            }
        }
        self.drained = items;
        if matches!(self.state, State::Draining(_)) && self.requests.is_empty() {
            self.begin_closing(now);
        }
    }

    fn start_call(
        &mut self,
        now: Instant,
        mut iq: Element,
        timeout: Duration,
        slot: Arc<CallSlot>,
    ) {
        if matches!(self.state, State::Failed | State::Closed) {
            slot.fulfil(Err(CallError::Closed));
            return;
        }
        let id = match iq.attr("id") {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let id = random_uuid(&mut self.rng);
                xml::set_attr(&mut iq, "id", id.as_str());
                id
            }
        };
        let deadline = now + timeout;
        let to = iq.attr("to").map(str::to_string);
        if let Some(old) = self
            .calls
            .insert(id.clone(), PendingCall { to, slot, deadline })
        {
            self.call_deadlines.remove(&(old.deadline, id.clone()));
            old.slot
                .fulfil(Err(CallError::Send(crate::conn::SendError::Closed)));
        }
        self.call_deadlines.insert((deadline, id));
        self.send_stanza(now, iq);
    }

    fn expire_calls(&mut self, now: Instant) {
        while let Some((deadline, id)) = self.call_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.call_deadlines.pop_first();
            if let Some(call) = self.calls.remove(&id) {
                call.slot.fulfil(Err(CallError::Timeout));
            }
        }
    }

    /// Whether `stanza` answers a pending call; if so, it is consumed.
    fn answer_call(&mut self, stanza: &Element) -> bool {
        let Some(id) = stanza.attr("id") else {
            return false;
        };
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        // The answer must come from whom the iq went to (a bare domain may answer for
        // itself; no `to` means the server).
        let from_ok = match (&call.to, stanza.attr("from")) {
            (None, _) => true,
            (Some(to), Some(from)) => to.eq_ignore_ascii_case(from),
            (Some(_), None) => false,
        };
        if !from_ok {
            return false;
        }
        let Some(call) = self.calls.remove(id) else {
            return false;
        };
        self.call_deadlines.remove(&(call.deadline, id.to_string()));
        let result = if stanza.attr("type") == Some("error") {
            let error = stanza
                .get_child("error", stanza.ns().as_str())
                .and_then(StanzaError::from_element)
                .unwrap_or_else(|| StanzaError::new(Condition::UndefinedCondition));
            Err(CallError::Error(Box::new(error), Box::new(stanza.clone())))
        } else {
            Ok(stanza.clone())
        };
        call.slot.fulfil(result);
        true
    }

    /// Whether a stanza sent now goes to this connection (otherwise to the queue kept for
    /// the next one): online or draining, and the server has not ended its side.
    fn writes_stanzas(&self) -> bool {
        matches!(self.state, State::Online | State::Draining(_)) && !self.server_ended
    }

    /// Prepares a stanza and writes it, or queues it while offline.
    fn send_stanza(&mut self, now: Instant, stanza: Element) {
        // An unwritable stanza has been logged and dropped; only answers do more about it.
        let _ = self.try_send_stanza(now, stanza);
    }

    /// [`Self::send_stanza`], telling whether XML can carry the stanza (an error is logged,
    /// and nothing written or queued).
    fn try_send_stanza(&mut self, now: Instant, mut stanza: Element) -> Result<(), WriteError> {
        if self.config.set_from && stanza.name() != "handshake" {
            xml::set_attr(&mut stanza, "from", &*self.domain);
        }
        if self.config.auto_generate_id && stanza.attr("id").is_none_or(str::is_empty) {
            xml::set_attr(&mut stanza, "id", random_uuid(&mut self.rng));
        }
        // `has_ns` compares in place (`ns()` would allocate a String per stanza).
        if stanza.has_ns(ns::CLIENT) {
            stanza = renamespace(stanza, ns::CLIENT, ns::COMPONENT);
        }
        if self.handling_input {
            // Only the core's own stanzas come here during an input (controllers' answers
            // are drained before it); `release_held` writes or queues them.
            self.held.push(stanza);
            return Ok(());
        }
        self.deliver(now, stanza)
    }

    /// Writes a prepared stanza, or queues it while offline, telling whether XML can carry
    /// it (an error is logged, and nothing written or queued).
    fn deliver(&mut self, now: Instant, stanza: Element) -> Result<(), WriteError> {
        if self.writes_stanzas() {
            return self.write_out(now, &stanza);
        }
        if matches!(self.state, State::Failed | State::Closed) {
            log::warn!(target: "exampple", "dropped a stanza sent after the component stopped");
        } else if self.queue.len() >= self.config.max_queue {
            log::error!(target: "exampple", "dropped a stanza: the queue of {} stanzas kept while disconnected is full", self.config.max_queue);
        } else {
            // Checked now, while whoever sent it can still be told.
            let mut scratch = Vec::new();
            if let Err(error) = xml::write_in(&stanza, ns::COMPONENT, &mut scratch) {
                log::error!(target: "exampple", "dropped a <{}/> that cannot be written as XML: {error}", stanza.name());
                return Err(error);
            }
            self.queue.push_back(stanza);
            self.outbox
                .backlog
                .store(self.queue.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sends the answer to `conn`'s request. Online, it is written straight from the request
    /// (the reply element is never built); otherwise (queued while disconnected, wrapped in
    /// a delegation envelope, or answering a request outside the component namespace, whose
    /// reply `send_stanza` moves into it) it takes the way of any other stanza.
    fn send_answer(&mut self, now: Instant, conn: &Conn, kind: AnswerKind, payload: Vec<Element>) {
        let request = conn.stanza();
        let direct =
            self.writes_stanzas() && conn.envelope().is_none() && request.has_ns(ns::COMPONENT);
        if !direct {
            let reply = kind.build(request, payload);
            let reply = match conn.envelope() {
                Some(envelope) => envelope.wrap(reply),
                None => reply,
            };
            if let Err(error) = self.try_send_stanza(now, reply) {
                self.answer_unwritable(now, conn, error);
            }
            return;
        }
        let head = Head::of(request);
        let mut attributes = head.reply(kind.reply_type(&head));
        if self.config.set_from {
            attributes[0].1 = Some(&self.domain);
        }
        let generated;
        if attributes[1].1.is_none() && self.config.auto_generate_id {
            generated = random_uuid(&mut self.rng);
            attributes[1].1 = Some(&generated);
        }
        let start = self.transmit.len();
        self.marks.push(Mark {
            at: start,
            stanza: true,
        });
        match xml::write_parts(
            request.name(),
            &attributes,
            &payload,
            ns::COMPONENT,
            &mut self.transmit,
        ) {
            Ok(()) => {
                self.last_output = now;
                if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
                    let sent = String::from_utf8_lossy(&self.transmit[start..]);
                    log::trace!(target: "exampple::wire", "send packet: {sent}");
                }
            }
            Err(error) => {
                // Nothing was written.
                self.marks.pop();
                self.answer_unwritable(now, conn, error)
            }
        }
    }

    /// The answer to `conn`'s request could not be written (a controller put a character
    /// XML cannot carry in it, say): the requester gets `internal-server-error` rather than
    /// silence, without the internal detail, which is logged.
    fn answer_unwritable(&mut self, now: Instant, conn: &Conn, error: WriteError) {
        log::error!(target: "exampple", "answered {} {:?} with internal-server-error: its answer cannot be written as XML ({error})", conn.stanza().name(), conn.id().unwrap_or(""));
        if conn.state().unwritable.swap(true, Ordering::Relaxed) {
            return;
        }
        let reply = StanzaError::new(Condition::InternalServerError);
        self.answer_error(now, conn.stanza(), conn.envelope(), &reply);
    }

    fn write_out(&mut self, now: Instant, stanza: &Element) -> Result<(), WriteError> {
        self.write_element(now, stanza, true)
    }

    /// Writes `element`, marked as a stanza to re-send if a failed write leaves it unwritten
    /// (`stanza`) or as one never re-sent.
    fn write_element(
        &mut self,
        now: Instant,
        element: &Element,
        stanza: bool,
    ) -> Result<(), WriteError> {
        if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
            log::trace!(target: "exampple::wire", "send packet: {}", xml::to_string(element));
        }
        self.marks.push(Mark {
            at: self.transmit.len(),
            stanza,
        });
        match xml::write_in(element, ns::COMPONENT, &mut self.transmit) {
            Ok(()) => {
                self.last_output = now;
                Ok(())
            }
            Err(error) => {
                // Nothing was written.
                self.marks.pop();
                log::error!(target: "exampple", "dropped a <{}/> that cannot be written as XML: {error}", element.name());
                Err(error)
            }
        }
    }

    /// Sends `error` as the answer to `stanza` (wrapped in `envelope`), if it may be answered.
    fn answer_error(
        &mut self,
        now: Instant,
        stanza: &Element,
        envelope: Option<&Envelope>,
        error: &StanzaError,
    ) {
        if !stanza::may_answer_with_error(stanza) {
            return;
        }
        let reply = stanza::error_reply(stanza, error);
        let reply = match envelope {
            Some(e) => e.wrap(reply),
            None => reply,
        };
        self.send_stanza(now, reply);
    }

    /// A stanza of `kind` from the server (in the component namespace).
    fn on_stanza(&mut self, now: Instant, kind: StanzaKind, mut stanza: Element) {
        if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
            log::trace!(target: "exampple::wire", "received packet: {}", xml::to_string(&stanza));
        }
        if self.config.trimmed {
            xml::trim(&mut stanza);
        }
        if kind == StanzaKind::Message
            && let Some(namespaces) = delegation::advertised_namespaces(&stanza)
        {
            log::info!(target: "exampple", "the server delegates {namespaces:?} to this component");
            for n in &namespaces {
                if !self.delegated.contains(n) {
                    self.delegated.push(n.clone());
                }
            }
            self.events.push_back(Event::Delegated { namespaces });
            return;
        }
        let (stanza, envelope) = match self.table.envelopes().is_empty() {
            true => (stanza, None),
            false => match Envelope::unwrap(&stanza, self.table.envelopes()) {
                Some((envelope, inner)) => (inner, Some(envelope)),
                None => (stanza, None),
            },
        };
        let kind = match StanzaKind::from_name(stanza.name()) {
            Some(k) => k,
            None => return,
        };
        self.route(now, kind, stanza, envelope);
    }

    fn route(
        &mut self,
        now: Instant,
        kind: StanzaKind,
        stanza: Element,
        envelope: Option<Envelope>,
    ) {
        // Read once: the checks below all look at these attributes.
        let head = Head::of(&stanza);
        let type_attr = head.kind;
        if kind == StanzaKind::Iq && matches!(type_attr, Some("result") | Some("error")) {
            // (Answers are never wrapped in an envelope: only a `set` is unwrapped.)
            if head
                .id
                .is_some_and(|id| id.starts_with(KEEPALIVE_ID_PREFIX))
            {
                // The answer to our own keepalive ping: any input already proved the peer
                // alive.
                return;
            }
            if !self.calls.is_empty() && self.answer_call(&stanza) {
                return;
            }
        }
        let stanza_type = match (kind, StanzaType::of(kind, type_attr)) {
            (_, Some(t)) => t,
            (StanzaKind::Message, None) => StanzaType::Message(stanza::MessageType::Normal),
            (StanzaKind::Iq, None) => {
                let error = StanzaError::new(Condition::BadRequest)
                    .with_text("en", "invalid or missing iq type");
                if type_attr.is_some() {
                    self.answer_error(now, &stanza, envelope.as_ref(), &error);
                }
                return;
            }
            // RFC 6120 §8.3.3.1: a type the receiver does not know is a bad request. (A
            // message of unknown type is `normal`, RFC 6121 §5.2.2: above.)
            (StanzaKind::Presence, None) => {
                log::debug!(target: "exampple", "refused a presence of unknown type {:?} from {:?} with bad-request", type_attr.unwrap_or(""), head.from.unwrap_or(""));
                let error = StanzaError::new(Condition::BadRequest)
                    .with_text("en", "invalid presence type");
                self.answer_error(now, &stanza, envelope.as_ref(), &error);
                return;
            }
        };
        let is_request = matches!(stanza_type, StanzaType::Iq(IqType::Get | IqType::Set));
        if is_request {
            // RFC 6120 §8.1.3: an iq must have an id, or its answer cannot be matched.
            if head.id.is_none_or(str::is_empty) {
                let error = StanzaError::new(Condition::BadRequest)
                    .with_text("en", "an iq must carry an id");
                self.answer_error(now, &stanza, envelope.as_ref(), &error);
                return;
            }
            let mut payloads = stanza.children();
            let first = payloads.next();
            if first.is_none() || payloads.next().is_some() {
                let error = StanzaError::new(Condition::BadRequest).with_text(
                    "en",
                    "an iq get or set must carry exactly one payload element",
                );
                self.answer_error(now, &stanza, envelope.as_ref(), &error);
                return;
            }
        }
        for (attr, value) in [("from", head.from), ("to", head.to)] {
            if let Some(jid) = value
                && !self.valid_jids.check(jid)
            {
                let error = StanzaError::new(Condition::JidMalformed)
                    .with_text("en", format!("malformed `{attr}` JID"));
                if is_request {
                    self.answer_error(now, &stanza, envelope.as_ref(), &error);
                } else {
                    log::debug!(target: "exampple", "dropped a stanza with a malformed `{attr}`");
                }
                return;
            }
        }
        // The payload namespace; children in the stanza's own namespace (a message's <body>)
        // have none, as in exampple.
        let xmlns = match stanza.children().next() {
            Some(child) if !child.has_ns(ns::COMPONENT) && !child.has_ns(ns::CLIENT) => child.ns(),
            _ => String::new(),
        };
        if stanza_type == StanzaType::Iq(IqType::Get)
            && xmlns == ns::DISCO_INFO
            && self.answer_disco(now, &stanza, envelope.as_ref())
        {
            return;
        }
        let Some(controller) = self.table.lookup(stanza_type, &xmlns).cloned() else {
            if is_request {
                self.answer_error(
                    now,
                    &stanza,
                    envelope.as_ref(),
                    &StanzaError::new(Condition::ServiceUnavailable),
                );
            } else {
                log::debug!(target: "exampple", "dropped an unrouted {kind} of type {stanza_type} ({xmlns})");
            }
            return;
        };
        if self.requests.len() >= self.config.max_in_flight {
            log::warn!(target: "exampple", "too many requests in flight ({}): refusing one", self.requests.len());
            if is_request {
                let error = StanzaError::new(Condition::ResourceConstraint)
                    .with_text("en", "too many requests");
                self.answer_error(now, &stanza, envelope.as_ref(), &error);
            }
            return;
        }
        let request = RequestId(self.next_request);
        self.next_request += 1;
        let payload: Vec<Element> = stanza.children().cloned().collect();
        let conn = Conn::new(ConnParts {
            request,
            outbox: self.outbox.clone(),
            domain: self.domain.clone(),
            kind,
            stanza_type,
            xmlns,
            stanza,
            envelope,
        });
        let deadline = now + self.config.stanza_timeout;
        let controller_name: Arc<str> = controller.name_arc();
        self.requests.insert(
            request,
            deadline,
            InFlight {
                conn: conn.clone(),
                controller: controller_name,
                started: now,
            },
        );
        self.events.push_back(Event::Dispatch(Dispatch {
            request,
            controller,
            conn,
            payload,
            outbox: self.outbox.clone(),
        }));
    }

    /// Answers disco#info to the bare domain; false when the router should handle it.
    fn answer_disco(
        &mut self,
        now: Instant,
        stanza: &Element,
        envelope: Option<&Envelope>,
    ) -> bool {
        if envelope.is_some()
            || !stanza
                .attr("to")
                .is_some_and(|to| crate::jid::is_domain(to, &self.domain))
        {
            return false;
        }
        let Some(query) = stanza.children().next() else {
            return false;
        };
        let node = query.attr("node");
        let table = self.table.clone();
        let answer = match (node, table.discovery()) {
            (None, Some(discovery)) => discovery.info_query(None, table.features()),
            (None, None) => return false,
            (Some(node), discovery) => match delegation::delegated_namespace_of_node(node) {
                Some(delegated) => {
                    let features: Vec<String> = table
                        .features()
                        .iter()
                        .filter(|f| *f == delegated || f.starts_with(&format!("{delegated}#")))
                        .cloned()
                        .collect();
                    let mut query = Element::bare("query", ns::DISCO_INFO);
                    xml::set_attr(&mut query, "node", node);
                    for feature in features
                        .into_iter()
                        .chain(std::iter::once(delegated.to_string()))
                        .collect::<BTreeSet<_>>()
                    {
                        let mut el = Element::bare("feature", ns::DISCO_INFO);
                        xml::set_attr(&mut el, "var", feature);
                        query.append_child(el);
                    }
                    query
                }
                None if discovery.is_some()
                    || table
                        .lookup_route(StanzaType::Iq(IqType::Get), ns::DISCO_INFO)
                        .is_none() =>
                {
                    let error = StanzaError::new(Condition::ItemNotFound);
                    self.answer_error(now, stanza, None, &error);
                    return true;
                }
                None => return false,
            },
        };
        let reply = stanza::iq_result(stanza, [answer]);
        self.send_stanza(now, reply);
        true
    }

    fn finish_request(&mut self, now: Instant, request: RequestId, outcome: Outcome) {
        let Some(flight) = self.requests.remove(&request) else {
            // Already timed out (and answered).
            if let Outcome::Panic(message) = &outcome {
                log::error!(target: "exampple", "request {request} panicked after its timeout: {message}");
            }
            return;
        };
        let duration = now.saturating_duration_since(flight.started);
        let conn = &flight.conn;
        let error = outcome.stanza_error();
        let detail = match &outcome {
            Outcome::Success => None,
            Outcome::Failure(e) => Some(e.to_string()),
            Outcome::Panic(m) => Some(format!("panic: {m}")),
        };
        // The requester already has internal-server-error for an answer that could not be
        // written: one error answer only, and the request failed.
        if conn.state().unwritable.load(Ordering::Relaxed) {
            let detail = detail.map_or_else(
                || "its answer cannot be written as XML".to_string(),
                |d| format!("its answer cannot be written as XML; then {d}"),
            );
            self.report(&flight, RequestOutcome::Failure, duration, Some(&detail));
            return;
        }
        if let Some(error) = &error {
            self.answer_error(now, conn.stanza(), conn.envelope(), error);
        } else if matches!(
            conn.stanza_type(),
            StanzaType::Iq(IqType::Get | IqType::Set)
        ) && flight.conn.state().sent.load(Ordering::Relaxed) == 0
        {
            log::warn!(target: "exampple", "{} returned without answering the iq {:?}", flight.controller, conn.id().unwrap_or(""));
        }
        let outcome = if error.is_some() {
            RequestOutcome::Failure
        } else {
            RequestOutcome::Success
        };
        self.report(&flight, outcome, duration, detail.as_deref());
    }

    fn expire_requests(&mut self, now: Instant) {
        while let Some((request, flight)) = self.requests.pop_expired(now) {
            flight.conn.state().expired.store(true, Ordering::Relaxed);
            let error = StanzaError::new(Condition::RemoteServerTimeout)
                .with_text("en", "the request took too long to be processed");
            self.answer_error(now, flight.conn.stanza(), flight.conn.envelope(), &error);
            self.events.push_back(Event::Cancel(request));
            self.report(
                &flight,
                RequestOutcome::Timeout,
                self.config.stanza_timeout,
                None,
            );
        }
    }

    fn report(
        &self,
        flight: &InFlight,
        outcome: RequestOutcome,
        duration: Duration,
        detail: Option<&str>,
    ) {
        // The event costs a handful of allocations: build it only for someone who reads it.
        let level = if outcome == RequestOutcome::Success {
            log::Level::Info
        } else {
            log::Level::Error
        };
        if self.observer.is_none() && !log::log_enabled!(target: "exampple", level) {
            return;
        }
        let conn = &flight.conn;
        let event = RequestEvent {
            outcome,
            duration,
            kind: conn.kind(),
            stanza_type: conn.stanza_type(),
            xmlns: conn.xmlns().to_string(),
            id: conn.id().map(str::to_string),
            from: conn.from().map(str::to_string),
            to: conn.to().map(str::to_string),
            controller: flight.controller.to_string(),
        };
        observe::log_request(&event, detail);
        if let Some(observer) = &self.observer {
            observer.request(&event);
        }
    }
}

/// A UUID v4 (the form of every id the component generates), drawn from the component's
/// generator rather than from the OS, so that a seeded run repeats its ids.
fn random_uuid(rng: &mut fastrand::Rng) -> String {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// The seed of a component given none: a hash of what the caller passed (its domain and
/// `now`), since the core reads nothing from the OS. Deterministic for the same inputs.
fn derived_seed(domain: &str, now: Instant) -> u64 {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` has fixed keys (unlike `RandomState`): no OS randomness.
    let mut hasher = std::hash::DefaultHasher::new();
    domain.hash(&mut hasher);
    now.hash(&mut hasher);
    hasher.finish()
}

/// Whether `stanza` is the answer to the iq `request` (a result or an error with its id).
fn answers(request: &Element, stanza: &Element) -> bool {
    request.name() == "iq"
        && matches!(request.attr("type"), Some("get" | "set"))
        && is_iq_answer(stanza)
        && stanza.attr("id") == request.attr("id")
}

/// Whether `stanza` is an iq result or error.
fn is_iq_answer(stanza: &Element) -> bool {
    stanza.name() == "iq" && matches!(stanza.attr("type"), Some("result" | "error"))
}

/// What an element directly under the stream is, once the component is online.
enum TopLevel {
    /// A stanza: an iq, message or presence in `jabber:component:accept`, where XEP-0114
    /// puts them.
    Stanza(StanzaKind),
    /// Nothing to act on (a `<handshake/>` after the handshake, `<stream:features/>`).
    Ignored(&'static str),
    /// The server's `<stream:error/>`.
    StreamError,
    /// Anything else, stanzas in `jabber:client` or `jabber:server` included: a component
    /// stream carries neither (the stanzas a server delegates in them, XEP-0355, sit inside
    /// their envelope, not directly under the stream).
    Unsupported,
}

fn top_level(el: &Element) -> TopLevel {
    // `has_ns` compares in place (`ns()` allocates): stanzas are the usual case.
    if el.has_ns(ns::COMPONENT) {
        match StanzaKind::from_name(el.name()) {
            Some(kind) => TopLevel::Stanza(kind),
            None if el.name() == "handshake" => {
                TopLevel::Ignored("a <handshake/> after the handshake")
            }
            None => TopLevel::Unsupported,
        }
    } else if el.has_ns(ns::STREAM) {
        match el.name() {
            "error" => TopLevel::StreamError,
            "features" => TopLevel::Ignored("<stream:features/>"),
            _ => TopLevel::Unsupported,
        }
    } else {
        TopLevel::Unsupported
    }
}

/// Moves an element (and its descendants) from namespace `from` to `to`.
fn renamespace(element: Element, from: &str, to: &str) -> Element {
    let mut out = Element::bare(
        element.name(),
        if element.ns() == from {
            to.to_string()
        } else {
            element.ns()
        },
    );
    for ((attr_ns, name), value) in element.attrs().iter() {
        out.attrs_mut()
            .insert(attr_ns.clone(), name.clone(), value.clone());
    }
    for node in element.nodes() {
        match node {
            minidom::Node::Element(child) => {
                out.append_child(renamespace(child.clone(), from, to));
            }
            minidom::Node::Text(text) => out.append_text_node(text.clone()),
        }
    }
    out
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("domain", &self.domain)
            .field("state", &self.state)
            .field("in_flight", &self.requests.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}
