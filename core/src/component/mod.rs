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

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;

use crate::config::{AutoConnect, Config};
use crate::conn::SendError;
use crate::conn::outbox::{Outbox, OutboxItem, Sender};
use crate::in_flight::InFlightTable;
use crate::parser::{Limits, StreamBuilder, StreamItem, StreamLexer, Tokens};
use crate::router::{RouteTable, Router};

mod calls;
mod dispatch;
mod event;
mod ids;
mod inbound;
mod lifecycle;
pub(crate) mod observer;
mod outbound;
mod output;
mod routing;
mod stream;
mod timers;

pub use dispatch::{Dispatch, DispatchFuture};
pub use event::{ComponentError, Disconnect, Event};
pub use stream::{StreamError, handshake_digest};

use calls::PendingCalls;
use dispatch::InFlight;
use observer::{LifecycleEvent, Observer, Tally};
use output::Output;
use timers::{Timer, TimerTable};

/// Where the connection stands. A state's deadline is one of its timers ([`State::timers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `connect()`.
    Idle,
    /// Waiting to connect (auto-connect delay or backoff).
    Waiting,
    /// `Connect` emitted, waiting for `handle_connected`.
    Connecting,
    /// Header sent, waiting for the server's header.
    Opening,
    /// Handshake sent, waiting for `<handshake/>`.
    Handshaking,
    Online,
    /// Not routing new stanzas, waiting for running controllers.
    Draining,
    /// `</stream:stream>` sent, waiting for the server's.
    Closing,
    Failed,
    Closed,
}

impl State {
    /// The timers that count in this state, in the order they fire when due together.
    fn timers(self) -> &'static [Timer] {
        match self {
            // A drain's deadline counts while reconnecting too (`Component::close`).
            State::Waiting => &[Timer::Reconnect, Timer::Drain],
            State::Opening | State::Handshaking => &[Timer::Opening, Timer::Drain],
            // A ping unanswered ends the connection before anything else is written.
            State::Online => &[Timer::KeepaliveAnswer, Timer::Ping, Timer::Keepalive],
            State::Draining => &[Timer::Drain],
            State::Closing => &[Timer::Close],
            State::Idle | State::Connecting | State::Failed | State::Closed => &[],
        }
    }

    /// Whether the server's input counts.
    fn is_reading(self) -> bool {
        matches!(
            self,
            State::Opening | State::Handshaking | State::Online | State::Draining | State::Closing
        )
    }
}

/// The component: see the [module documentation](self).
pub struct Component {
    config: Config,
    table: Arc<RouteTable>,
    outbox: Arc<Outbox>,
    domain: Arc<str>,
    state: State,
    timers: TimerTable,
    /// The tokeniser of `handle_input` (runtimes may run their own, see `stream_lexer`).
    lexer: StreamLexer,
    /// Tokens into elements, for the current connection.
    builder: StreamBuilder,
    output: Output,
    events: VecDeque<Event>,
    /// The stanzas kept while disconnected, for the next connection.
    queue: VecDeque<Element>,
    requests: InFlightTable<InFlight>,
    calls: PendingCalls,
    next_request: u64,
    /// Connection attempts since the component was last online (for the backoff).
    attempts: u32,
    /// Every random choice of the component (reconnect jitter, generated ids), so that a
    /// run with the same seed and inputs is repeated byte for byte.
    rng: fastrand::Rng,
    observer: Option<Arc<dyn Observer>>,
    /// The counts the observer's traffic reports come from.
    tally: Tally,
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
    /// When the drain under way ends, if one is: a drain outlives a reconnection, so that
    /// the answers of the requests in flight still go out.
    drain_deadline: Option<Instant>,
    /// IQ results and errors addressed to the component that answered no call of ours.
    stray_results: u64,
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
        let outbox = Arc::new(Outbox::new(
            config.max_queue,
            Arc::from(config.domain.as_str()),
        ));
        let seed = config
            .seed
            .unwrap_or_else(|| ids::derived_seed(&config.domain, now));
        // Logged so that a run can be replayed with `Config::seed`.
        log::debug!(target: "exampple", "random seed {seed}");
        let mut component = Component {
            domain: Arc::from(config.domain.as_str()),
            table: Arc::new(table),
            outbox,
            state: State::Idle,
            timers: TimerTable::default(),
            lexer: StreamLexer::new(limits),
            builder: StreamBuilder::new(),
            output: Output::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            requests: InFlightTable::new(),
            calls: PendingCalls::new(),
            next_request: 1,
            attempts: 0,
            rng: fastrand::Rng::with_seed(seed),
            observer: None,
            tally: Tally::default(),
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
            drain_deadline: None,
            stray_results: 0,
            config,
        };
        match component.config.auto_connect {
            AutoConnect::Never => {}
            AutoConnect::Immediately => component.connect(now),
            AutoConnect::After(delay) => component.wait(now + delay),
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

    /// Whether a drain is under way ([`Component::drain`]): the component serves what
    /// arrives, and closes once the requests in flight have finished or the drain's
    /// deadline has come.
    pub fn is_draining(&self) -> bool {
        self.drain_deadline.is_some() && !self.is_stopped()
    }

    /// How many IQ results and errors addressed to the component matched no call of its
    /// own (and no route). With several instances on one domain the server may hand the
    /// result of one instance's call to another: each such stray is logged and counted
    /// here, and the caller that waits for it gets [`CallError::Timeout`] after its own
    /// timeout (never an endless wait). [`Config::instance_domain`] gives each instance an
    /// address its results come back to.
    ///
    /// [`CallError::Timeout`]: crate::conn::CallError::Timeout
    pub fn stray_results(&self) -> u64 {
        self.stray_results
    }

    /// Sends the component's IQ calls through `instance`, the connection of this
    /// instance's private domain ([`Config::instance_domain`]): each call goes out from
    /// `instance`'s domain, and `instance` takes its result or error (and its timeout) and
    /// hands it to the caller. The runtimes do this when the configuration names an
    /// instance domain; `instance` is driven like any component (with no routes of its
    /// own, it answers only what the core answers: disco#info, errors). Privileged requests
    /// (XEP-0356) take `instance`'s connection only when the server granted its domain
    /// what they need, and the shared one otherwise.
    pub fn route_calls_through(&mut self, instance: &Component) {
        // The link is set once, by the driver that builds both cores.
        let _ = self.outbox.instance.set(instance.outbox.clone());
    }

    /// How many stanzas wait for the connection.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The namespaces the server announced as delegated to the component.
    pub fn delegated_namespaces(&self) -> &[String] {
        &self.delegated
    }

    /// Tells `observer` of every handled stanza, each step of the connection's life and the
    /// traffic (see [`crate::observe`]). Set it before driving the component: when
    /// [`AutoConnect::Immediately`] had `new` ask for the connection already, the observer
    /// is told [`LifecycleEvent::Connecting`] at once.
    pub fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
        if self.state == State::Connecting {
            self.observe_lifecycle(|| LifecycleEvent::Connecting {
                address: self.config.address(),
            });
        }
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
        if matches!(self.state, State::Idle | State::Waiting) {
            self.state = State::Connecting;
            let address = self.config.address();
            self.observe_lifecycle(|| LifecycleEvent::Connecting {
                address: address.clone(),
            });
            self.events.push_back(Event::Connect { address });
        }
    }

    /// The TCP connection is open: the stream header is queued for writing.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == State::Connecting {
            self.open(now);
        }
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
        if self.state.is_reading() && !self.server_ended {
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
            State::Closing => self.finish_close(),
            State::Opening | State::Handshaking | State::Online | State::Draining => {
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
        let unsent = self.output.unsent_stanzas(buffer, written);
        self.handle_closed(now, reason);
        self.requeue(unsent);
    }

    /// Bytes from the server, in any chunking. (Answers to stanzas in input that also ends
    /// the connection: see [`Component::handle_tokens`].)
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if !self.state.is_reading() {
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
        if !self.state.is_reading() {
            tokens.spent = true;
            return;
        }
        self.read(now, tokens);
        self.report_traffic();
    }

    /// Controllers or senders left stanzas, outcomes or calls: take them.
    pub fn handle_outbox(&mut self, now: Instant) {
        self.drain_outbox(now);
        self.report_traffic();
    }

    /// Time passed: fire what is due. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain_outbox(now);
        self.expire_requests(now);
        self.calls.expire(now);
        self.fire_timers(now);
        self.report_traffic();
    }

    /// Sends a stanza (queued while disconnected, up to `max_queue`).
    pub fn send(&mut self, now: Instant, stanza: Element) -> Result<(), SendError> {
        if self.is_stopped() {
            return Err(SendError::Closed);
        }
        if self.state != State::Online && self.queue.len() >= self.config.max_queue {
            return Err(SendError::QueueFull(self.config.max_queue));
        }
        self.send_stanza(now, stanza);
        self.report_traffic();
        Ok(())
    }

    /// Drains the component within [`Config::drain_timeout`]: see [`Component::close`].
    pub fn drain(&mut self, now: Instant) {
        self.close(now, self.config.drain_timeout);
    }

    /// Ends the component gracefully, within `grace`: it goes on serving what arrives (a
    /// server balancing between instances keeps routing to this one until its stream
    /// closes), lets the requests in flight finish, and at the deadline answers each one
    /// still running with `service-unavailable` (and cancels its controller), so that no
    /// request goes unanswered. Then the stream is closed with what the outbox held
    /// written before it, the server's close is awaited, and [`Event::Closed`] follows.
    ///
    /// A connection lost meanwhile is reopened, and the drain goes on on it until its
    /// deadline (the answers wait in the queue kept while disconnected). Not connected
    /// and with nothing in flight, the component closes at once.
    pub fn close(&mut self, now: Instant, grace: Duration) {
        self.drain_outbox(now);
        match self.state {
            State::Online => self.drain_within(now, grace),
            State::Draining | State::Closing | State::Closed | State::Failed => {}
            _ if !self.requests.is_empty() => {
                self.drain_deadline = Some(now + grace);
                self.timers.set(Timer::Drain, now + grace);
                self.report_drain(observer::DrainProgress::Begin {
                    in_flight: self.requests.len(),
                    grace,
                });
            }
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
        self.output.poll_transmit()
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
        self.output.poll_transmit_into(buffer)
    }

    /// Whether output is waiting for [`Component::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        self.output.has_transmit()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Component::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.requests.next_deadline(),
            self.calls.next_deadline(),
            self.timers.next_timeout(self.state.timers()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
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
