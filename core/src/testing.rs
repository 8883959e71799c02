//! The test kit: a component running a real [`Router`] and [`Config`] over an in-memory
//! transport, with a dummy server that does the handshake, and stanza assertions.
//!
//! Controllers run as in production (on their own threads, sync or async, with
//! `stanza_timeout` and error replies; on a runtime of the test's choosing with
//! [`TestComponentBuilder::spawn_controllers_with`]); time is simulated: [`TestComponent::advance`] moves
//! the component's clock, so timeouts and keepalives are tested without sleeping.
//!
//! ```
//! use exampple_core::testing::TestComponent;
//! use exampple_core::{xml, Config, Conn, Element, Router, StanzaError};
//!
//! fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
//!     conn.iq_resp([]).send()?;
//!     Ok(())
//! }
//!
//! let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
//! let config = Config::new("component.example.com", "secret").set_from(true);
//! let mut component = TestComponent::start(config, router);
//! component.component_received(xml!(
//!     "<iq type='get' from='alice@example.com/res' to='component.example.com' id='1'>\
//!        <ping xmlns='urn:xmpp:ping'/></iq>"
//! ));
//! component.assert_stanza_received(xml!(
//!     "<iq type='result' from='component.example.com' to='alice@example.com/res' id='1'/>"
//! ));
//! ```
//!
//! Matching is exact by default (exampple's semantics: name, every attribute, children in
//! order); the `_matching` variants of each assertion compare with a pattern instead (the
//! attributes it names, its children as a subsequence), which suits generated ids.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use minidom::Element;

use crate::component::{Component, ComponentError, Disconnect, Event, handshake_digest};
use crate::config::Config;
use crate::conn::RequestId;
use crate::matching::{Match, Mismatch, pretty};
use crate::parser::{Limits, StreamItem, StreamParser};
use crate::router::Router;
use crate::xml;

/// The stream id the dummy server announces (exampple's).
pub const STREAM_ID: &str = "16272490714779491840";

/// How the dummy server answers the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handshake {
    /// Accept when the digest matches the configured secret (the default).
    #[default]
    CheckSecret,
    /// Accept whatever the digest.
    AcceptAny,
    /// Reject with `<not-authorized/>`.
    Reject,
    /// Never answer.
    Silent,
}

#[derive(Default)]
struct Signal {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    fn notify(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    fn wait(&self, until: Instant) {
        let mut flag = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        while !*flag {
            let now = Instant::now();
            if now >= until {
                return;
            }
            flag = self
                .cond
                .wait_timeout(flag, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *flag = false;
    }
}

/// A component with a dummy server; see the [module documentation](self).
pub struct TestComponent {
    component: Component,
    now: Instant,
    server: StreamParser,
    sent: VecDeque<Element>,
    history: Vec<Element>,
    raw: Vec<u8>,
    signal: Arc<Signal>,
    handshake: Handshake,
    secret: String,
    domain: String,
    trimmed: bool,
    settle: Duration,
    events: Vec<Event>,
    running: Arc<Mutex<Vec<RequestId>>>,
    online: bool,
    spawner: Option<Spawner>,
}

/// The seed of a [`TestComponent`] whose configuration sets none
/// ([`Config::seed`]): the ids and reconnect delays of a test are the same on every run.
pub const DEFAULT_TEST_SEED: u64 = 0x5EED_5EED_5EED_5EED;

/// Configures a [`TestComponent`] before it starts.
#[must_use]
pub struct TestComponentBuilder {
    config: Config,
    router: Router,
    handshake: Handshake,
    settle: Duration,
    connect: bool,
    spawner: Option<Spawner>,
}

impl std::fmt::Debug for TestComponentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestComponentBuilder")
            .field("config", &self.config)
            .field("router", &self.router)
            .field("handshake", &self.handshake)
            .field("settle", &self.settle)
            .field("connect", &self.connect)
            .field("spawner", &self.spawner.is_some())
            .finish()
    }
}

/// Starts a controller's future on the executor of the test's choosing.
type Spawner = Arc<dyn Fn(ControllerRun) + Send + Sync>;

/// A controller run by the test kit, as a future: it runs the controller to its end and
/// tells the test kit. [`TestComponentBuilder::spawn_controllers_with`] says where it is
/// polled.
pub type ControllerRun = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl TestComponentBuilder {
    /// Runs controllers by handing their futures to `spawn`, for controllers that need a
    /// runtime: one that awaits tokio's timers or I/O must be polled inside a tokio
    /// runtime, say (`move |run| { handle.spawn(run); }`). Sync controllers come this way
    /// too, as futures that run them when first polled. By default each controller runs on
    /// a thread of its own, async ones with a minimal `block_on` that knows no reactor.
    pub fn spawn_controllers_with(
        mut self,
        spawn: impl Fn(ControllerRun) + Send + Sync + 'static,
    ) -> Self {
        self.spawner = Some(Arc::new(spawn));
        self
    }

    /// How the dummy server answers the handshake.
    pub fn handshake(mut self, handshake: Handshake) -> Self {
        self.handshake = handshake;
        self
    }

    /// How long [`TestComponent::component_received`] waits for the controllers it
    /// started (default 2 s of real time).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Do not connect at start (test `auto_connect` and the disconnected queue).
    pub fn disconnected(mut self) -> Self {
        self.connect = false;
        self
    }

    /// Starts the component; it connects and completes the handshake unless told otherwise.
    ///
    /// # Panics
    /// When the router or the configuration is invalid (a test setup error).
    pub fn start(self) -> TestComponent {
        match self.try_start() {
            Ok(c) => c,
            Err(e) => panic!("TestComponent: {e}"),
        }
    }

    /// Like [`TestComponentBuilder::start`], returning the error.
    pub fn try_start(self) -> Result<TestComponent, ComponentError> {
        let now = Instant::now();
        let trimmed = self.config.trimmed;
        let secret = self.config.password.clone();
        let domain = self.config.domain.clone();
        let limits = Limits {
            max_stanza_size: 64 << 20,
            max_depth: 100_000,
        };
        let mut config = self.config;
        // Fixed unless the test sets one: a test kit run is repeated byte for byte.
        config.seed.get_or_insert(DEFAULT_TEST_SEED);
        let mut component = Component::new(config, self.router, now)?;
        let signal = Arc::new(Signal::default());
        let wake = signal.clone();
        component.set_waker(Arc::new(move || wake.notify()));
        let mut test = TestComponent {
            component,
            now,
            server: StreamParser::new(limits),
            sent: VecDeque::new(),
            history: Vec::new(),
            raw: Vec::new(),
            signal,
            handshake: self.handshake,
            secret,
            domain,
            trimmed,
            settle: self.settle,
            events: Vec::new(),
            running: Arc::new(Mutex::new(Vec::new())),
            online: false,
            spawner: self.spawner,
        };
        if self.connect {
            test.component.connect(now);
        }
        test.pump();
        Ok(test)
    }
}

impl TestComponent {
    /// Starts `router` with `config` and completes the handshake.
    pub fn start(config: Config, router: Router) -> Self {
        Self::builder(config, router).start()
    }

    /// A builder to change the dummy server's behaviour first.
    pub fn builder(config: Config, router: Router) -> TestComponentBuilder {
        TestComponentBuilder {
            config,
            router,
            handshake: Handshake::default(),
            settle: Duration::from_secs(2),
            connect: true,
            spawner: None,
        }
    }

    /// The component under test.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// The component under test, to drive it directly.
    pub fn component_mut(&mut self) -> &mut Component {
        &mut self.component
    }

    /// The simulated current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Whether the component is online.
    pub fn is_online(&self) -> bool {
        self.component.is_online()
    }

    /// Events other than dispatches seen so far (connects, disconnects, failures, ...).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Injects a stanza as if the server sent it, then waits (up to the settle time) for
    /// the controllers it started to finish.
    pub fn component_received(&mut self, stanza: impl Into<Element>) {
        let stanza = stanza.into();
        let mut bytes = Vec::new();
        xml::write_stanza(&stanza, crate::ns::COMPONENT, &mut bytes);
        self.component_received_raw(&bytes);
    }

    /// Injects raw bytes (any chunk, even a partial stanza), then settles like
    /// [`TestComponent::component_received`].
    pub fn component_received_raw(&mut self, bytes: &[u8]) {
        let before = self.running_count();
        self.component.handle_input(self.now, bytes);
        self.pump();
        if self.running_count() > before || before > 0 {
            self.settle();
        }
    }

    /// Injects without waiting for controllers.
    pub fn component_received_nowait(&mut self, stanza: impl Into<Element>) {
        let stanza = stanza.into();
        let mut bytes = Vec::new();
        xml::write_stanza(&stanza, crate::ns::COMPONENT, &mut bytes);
        self.component.handle_input(self.now, &bytes);
        self.pump();
    }

    /// The dummy server advertises `permissions` (XEP-0356), as a real server does right
    /// after the handshake: the component's privileged requests then go out as the server
    /// would expect them (assert them with [`TestComponent::stanza_received`] and answer
    /// them with [`TestComponent::component_received`]).
    ///
    /// ```
    /// use exampple_core::privilege::{MessageAccess, Permissions, Version};
    /// use exampple_core::testing::TestComponent;
    /// use exampple_core::{Config, Router, xml};
    ///
    /// let mut component = TestComponent::start(Config::new("gw.localhost", "secret"), Router::new());
    /// component.advertise_privileges(
    ///     &Permissions::new(Version::V1, "localhost").with_message(MessageAccess::Outgoing),
    /// );
    /// let message = xml!("<message from='alice@localhost' to='bob@localhost'><body>hi</body></message>");
    /// component.component().sender().privileged().send_message(message).unwrap();
    /// component.pump();
    /// let sent = component.stanza_received().unwrap();
    /// assert_eq!(sent.attr("to"), Some("localhost"));
    /// assert!(sent.get_child("privilege", "urn:xmpp:privilege:1").is_some());
    /// ```
    pub fn advertise_privileges(&mut self, permissions: &crate::privilege::Permissions) {
        let advertisement = permissions.to_advertisement(&self.domain);
        self.component_received(advertisement);
    }

    /// The dummy server drops the connection (the component reconnects after its backoff:
    /// see [`TestComponent::advance`]).
    pub fn drop_connection(&mut self) {
        self.component
            .handle_closed(self.now, "dropped by the test");
        self.online = false;
        self.pump();
    }

    /// Changes how the dummy server answers the next handshakes.
    pub fn set_handshake(&mut self, handshake: Handshake) {
        self.handshake = handshake;
    }

    /// Moves the simulated clock forward and fires what is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.component.handle_timeout(self.now);
        self.pump();
    }

    /// Moves the clock to the component's next deadline, if any.
    pub fn advance_to_next_timeout(&mut self) -> bool {
        match self.component.poll_timeout() {
            Some(at) => {
                if at > self.now {
                    self.now = at;
                }
                self.component.handle_timeout(self.now);
                self.pump();
                true
            }
            None => false,
        }
    }

    /// Every byte the component wrote, as received by the dummy server.
    pub fn raw_sent(&self) -> &[u8] {
        &self.raw
    }

    /// Every stanza the component sent since the start (taken or not).
    pub fn history(&self) -> &[Element] {
        &self.history
    }

    /// Takes the oldest stanza sent, without waiting.
    pub fn stanza_received(&mut self) -> Option<Element> {
        self.pump();
        self.sent.pop_front()
    }

    /// Waits (real time) for the next stanza sent.
    pub fn stanza_receive(&mut self, timeout: Duration) -> Option<Element> {
        let until = Instant::now() + timeout;
        loop {
            self.pump();
            if let Some(s) = self.sent.pop_front() {
                return Some(s);
            }
            if Instant::now() >= until {
                return None;
            }
            self.signal
                .wait(until.min(Instant::now() + Duration::from_millis(50)));
        }
    }

    /// Asserts, without waiting, that the oldest stanza sent equals `expected` (and takes it).
    #[track_caller]
    pub fn assert_stanza_received(&mut self, expected: impl Into<Element>) -> Element {
        self.assert_received_with(expected.into(), self.exact(), None)
    }

    /// Like [`TestComponent::assert_stanza_received`], with `pattern` as a subset pattern.
    #[track_caller]
    pub fn assert_stanza_received_matching(&mut self, pattern: impl Into<Element>) -> Element {
        self.assert_received_with(pattern.into(), Match::Subset, None)
    }

    /// Waits up to `timeout` for the next stanza sent and asserts it equals `expected`.
    #[track_caller]
    pub fn assert_stanza_receive(
        &mut self,
        expected: impl Into<Element>,
        timeout: Duration,
    ) -> Element {
        self.assert_received_with(expected.into(), self.exact(), Some(timeout))
    }

    /// Like [`TestComponent::assert_stanza_receive`], with `pattern` as a subset pattern.
    #[track_caller]
    pub fn assert_stanza_receive_matching(
        &mut self,
        pattern: impl Into<Element>,
        timeout: Duration,
    ) -> Element {
        self.assert_received_with(pattern.into(), Match::Subset, Some(timeout))
    }

    /// Waits until every expected stanza was sent, in any order (each matched by a
    /// distinct stanza); fails on a stanza that matches none of the remaining ones, or when
    /// `timeout` passes with some left unmatched.
    #[track_caller]
    pub fn assert_all_stanza_receive(
        &mut self,
        expected: Vec<Element>,
        timeout: Duration,
    ) -> Vec<Element> {
        self.assert_all_with(expected, self.exact(), timeout)
    }

    /// Like [`TestComponent::assert_all_stanza_receive`], with subset patterns.
    #[track_caller]
    pub fn assert_all_stanza_receive_matching(
        &mut self,
        patterns: Vec<Element>,
        timeout: Duration,
    ) -> Vec<Element> {
        self.assert_all_with(patterns, Match::Subset, timeout)
    }

    /// Asserts that nothing was sent (waiting `wait` of real time for late stanzas).
    #[track_caller]
    pub fn assert_nothing_sent(&mut self, wait: Duration) {
        if let Some(stanza) = self.stanza_receive(wait) {
            panic!(
                "expected no stanza, but the component sent:\n{}",
                indent(&pretty(&stanza))
            );
        }
    }

    fn exact(&self) -> Match {
        if self.trimmed {
            Match::ExactTrimmed
        } else {
            Match::Exact
        }
    }

    #[track_caller]
    fn assert_received_with(
        &mut self,
        expected: Element,
        how: Match,
        timeout: Option<Duration>,
    ) -> Element {
        let actual = match timeout {
            Some(t) => self.stanza_receive(t),
            None => self.stanza_received(),
        };
        match actual {
            None => panic!(
                "expected the component to send:\n{}\nbut it sent nothing{}.\n{}",
                indent(&pretty(&expected)),
                timeout
                    .map(|t| format!(" within {t:?}"))
                    .unwrap_or_default(),
                self.describe_history()
            ),
            Some(actual) => match how.check(&expected, &actual) {
                Ok(()) => actual,
                Err(mismatch) => panic!(
                    "{}\n{}",
                    describe_mismatch(&mismatch),
                    self.describe_history()
                ),
            },
        }
    }

    #[track_caller]
    fn assert_all_with(
        &mut self,
        expected: Vec<Element>,
        how: Match,
        timeout: Duration,
    ) -> Vec<Element> {
        let until = Instant::now() + timeout;
        let mut remaining = expected;
        let mut matched = Vec::new();
        while !remaining.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            let Some(actual) = self.stanza_receive(left) else {
                let missing: Vec<String> = remaining.iter().map(|e| indent(&pretty(e))).collect();
                panic!(
                    "{} expected stanza(s) never sent within {timeout:?}:\n{}\n{}",
                    remaining.len(),
                    missing.join("\n"),
                    self.describe_history()
                );
            };
            match remaining.iter().position(|e| how.is_match(e, &actual)) {
                Some(i) => {
                    remaining.remove(i);
                    matched.push(actual);
                }
                None => {
                    let closest = remaining
                        .iter()
                        .filter_map(|e| how.check(e, &actual).err())
                        .next();
                    panic!(
                        "the component sent a stanza that matches none of the {} remaining expected ones:\n{}\n{}\n{}",
                        remaining.len(),
                        indent(&pretty(&actual)),
                        closest
                            .map(|m| format!("closest difference: {}", m.summary()))
                            .unwrap_or_default(),
                        self.describe_history()
                    );
                }
            }
        }
        matched
    }

    fn describe_history(&self) -> String {
        if self.history.is_empty() {
            return "the component sent no stanza at all".into();
        }
        let mut out = format!(
            "every stanza the component sent ({}):\n",
            self.history.len()
        );
        for (i, s) in self.history.iter().enumerate() {
            out.push_str(&format!("  [{}]\n{}\n", i + 1, indent(&indent(&pretty(s)))));
        }
        out
    }

    fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn settle(&mut self) {
        let until = Instant::now() + self.settle;
        loop {
            self.pump();
            if self.running_count() == 0 || Instant::now() >= until {
                break;
            }
            self.signal
                .wait(until.min(Instant::now() + Duration::from_millis(20)));
        }
        self.pump();
    }

    /// Moves everything along: outbox, output (through the dummy server), events.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            self.component.handle_outbox(self.now);
            while let Some(bytes) = self.component.poll_transmit() {
                progressed = true;
                self.on_component_bytes(&bytes);
            }
            while let Some(event) = self.component.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            if !progressed && !self.component.has_outbox() {
                return;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Dispatch(dispatch) => {
                let running = self.running.clone();
                let request = dispatch.request;
                running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(request);
                let signal = self.signal.clone();
                let done = move || {
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|r| *r != request);
                    signal.notify();
                };
                match &self.spawner {
                    Some(spawn) => spawn(Box::pin(async move {
                        dispatch.into_future().await;
                        done();
                    })),
                    None => {
                        std::thread::spawn(move || {
                            if let Some(rest) = dispatch.run() {
                                block_on(rest);
                            }
                            done();
                        });
                    }
                }
            }
            Event::Connect { .. } => {
                self.online = false;
                self.server = StreamParser::new(Limits {
                    max_stanza_size: 64 << 20,
                    max_depth: 100_000,
                });
                self.component.handle_connected(self.now);
                self.events.push(Event::Connect {
                    address: String::new(),
                });
            }
            Event::Online { stream_id } => {
                self.online = true;
                self.events.push(Event::Online { stream_id });
            }
            other => self.events.push(other),
        }
    }

    fn on_component_bytes(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        let mut items = Vec::new();
        if let Err(e) = self.server.feed(bytes, &mut items) {
            panic!(
                "the component wrote XML the dummy server cannot parse ({e}): {}",
                String::from_utf8_lossy(bytes)
            );
        }
        for item in items {
            match item {
                StreamItem::Header(_) => {
                    let header = format!(
                        "<?xml version='1.0'?><stream:stream id='{STREAM_ID}' xml:lang='en' \
                         xmlns:stream='http://etherx.jabber.org/streams' from='{}' xmlns='jabber:component:accept'>",
                        xml::escape(&self.domain)
                    );
                    self.component.handle_input(self.now, header.as_bytes());
                }
                StreamItem::Element(el) if el.name() == "handshake" && !self.online => {
                    let accept = match self.handshake {
                        Handshake::AcceptAny => true,
                        Handshake::CheckSecret => {
                            el.text() == handshake_digest(STREAM_ID, &self.secret)
                        }
                        Handshake::Reject => false,
                        Handshake::Silent => continue,
                    };
                    let answer: &[u8] = if accept {
                        b"<handshake/>"
                    } else {
                        b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
                    };
                    self.component.handle_input(self.now, answer);
                }
                StreamItem::Element(el) => {
                    self.history.push(el.clone());
                    self.sent.push_back(el);
                }
                StreamItem::Close => {}
            }
        }
    }

    /// The reason of the last disconnect event, if any.
    pub fn last_disconnect(&self) -> Option<&Disconnect> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason),
            _ => None,
        })
    }

    /// The permanent failure, if the component stopped with one.
    pub fn failure(&self) -> Option<&ComponentError> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Failed(error) => Some(error),
            _ => None,
        })
    }
}

impl std::fmt::Debug for TestComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestComponent")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_mismatch(mismatch: &Mismatch) -> String {
    format!(
        "the stanza sent does not match the one expected.\nfirst difference at {}\n\nexpected:\n{}\n\nactual:\n{}\n",
        mismatch.summary(),
        indent(&pretty(&mismatch.expected)),
        indent(&pretty(&mismatch.actual))
    )
}

/// Runs `future` to its end on this thread, sleeping while it waits: for tests that wait
/// for an iq answer outside a controller, and for the test kit's own controller threads.
/// It knows no reactor: a future that needs one (tokio's timers) needs its runtime's.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// An ad-hoc command ([`commands`](crate::commands)) driven stage by stage from a unit test:
/// each step sends the `<command/>` request a client would, and returns the answer's
/// `<command/>`, or the error stanza.
///
/// ```
/// use exampple_core::commands::{Command, Commands, Finish, Note};
/// use exampple_core::forms::{Field, FormSpec};
/// use exampple_core::testing::{CommandRun, TestComponent};
/// use exampple_core::{Config, Router};
///
/// let name = FormSpec::new("urn:example:greet").field(Field::text_single("name").required());
/// let commands = Commands::new().command(
///     Command::new("greet", "Greet me").stage(name).on_complete(|_, forms| {
///         let name = forms[0].text("name").unwrap_or_default();
///         Ok(Finish::note(Note::info(format!("Hello {name}"))))
///     }),
/// );
/// let config = Config::new("component.example.com", "secret");
/// let mut c = TestComponent::start(config, Router::new().include(commands));
/// let mut run = CommandRun::execute(&mut c, "alice@example.com/res", "greet").unwrap();
/// assert_eq!(run.status(), Some("executing"));
/// let done = run.complete(&mut c, &[("name", "Alice")]).unwrap();
/// assert_eq!(run.status(), Some("completed"));
/// assert_eq!(CommandRun::notes(&done), vec![("info".to_string(), "Hello Alice".to_string())]);
/// ```
#[derive(Debug, Clone)]
pub struct CommandRun {
    from: String,
    node: String,
    session: Option<String>,
    last: Element,
    count: u64,
}

impl CommandRun {
    /// Executes `node` as `from` (a full JID): the first stage's form, or the completion of
    /// a command without stages. `Err` is the error stanza.
    pub fn execute(
        component: &mut TestComponent,
        from: &str,
        node: &str,
    ) -> Result<CommandRun, Element> {
        let mut run = CommandRun {
            from: from.to_string(),
            node: node.to_string(),
            session: None,
            last: Element::bare("command", crate::commands::NS_COMMANDS),
            count: 0,
        };
        run.send(component, Some("execute"), None)?;
        Ok(run)
    }

    /// The last answer's `<command/>`.
    pub fn last(&self) -> &Element {
        &self.last
    }

    /// The last answer's status (`executing`, `completed`, `canceled`).
    pub fn status(&self) -> Option<&str> {
        self.last.attr("status")
    }

    /// The session id.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The form the last answer shows, if any.
    pub fn form(&self) -> Option<&Element> {
        self.last.get_child("x", crate::forms::NS_DATA_FORMS)
    }

    /// The actions the last answer offers (`prev`, `next`, `complete`), and the default.
    pub fn actions(&self) -> (Vec<String>, Option<String>) {
        match self.last.get_child("actions", crate::commands::NS_COMMANDS) {
            Some(actions) => (
                actions.children().map(|a| a.name().to_string()).collect(),
                actions.attr("execute").map(str::to_string),
            ),
            None => (Vec::new(), None),
        }
    }

    /// The notes of a `<command/>` answer: (type, text).
    pub fn notes(command: &Element) -> Vec<(String, String)> {
        command
            .children()
            .filter(|c| c.is("note", crate::commands::NS_COMMANDS))
            .map(|n| (n.attr("type").unwrap_or("info").to_string(), n.text()))
            .collect()
    }

    /// Submits `values` with `next`.
    pub fn next(
        &mut self,
        component: &mut TestComponent,
        values: &[(&str, &str)],
    ) -> Result<Element, Element> {
        self.send(component, Some("next"), Some(values))
    }

    /// Goes back a stage.
    pub fn prev(&mut self, component: &mut TestComponent) -> Result<Element, Element> {
        self.send(component, Some("prev"), None)
    }

    /// Submits `values` with `complete`.
    pub fn complete(
        &mut self,
        component: &mut TestComponent,
        values: &[(&str, &str)],
    ) -> Result<Element, Element> {
        self.send(component, Some("complete"), Some(values))
    }

    /// Submits `values` with `execute` (the stage's default action).
    pub fn execute_stage(
        &mut self,
        component: &mut TestComponent,
        values: &[(&str, &str)],
    ) -> Result<Element, Element> {
        self.send(component, Some("execute"), Some(values))
    }

    /// Cancels the session.
    pub fn cancel(&mut self, component: &mut TestComponent) -> Result<Element, Element> {
        self.send(component, Some("cancel"), None)
    }

    /// Sends the request for `action`, with a submitted form of `values` (its `FORM_TYPE`
    /// taken from the form shown last), and takes the answer.
    pub fn send(
        &mut self,
        component: &mut TestComponent,
        action: Option<&str>,
        values: Option<&[(&str, &str)]>,
    ) -> Result<Element, Element> {
        self.count += 1;
        let id = format!("cmd-{}", self.count);
        let mut command = xml!(
            "<command xmlns='http://jabber.org/protocol/commands' node='{}'/>",
            self.node
        );
        if let Some(action) = action {
            xml::set_attr(&mut command, "action", action);
        }
        if let Some(session) = &self.session {
            xml::set_attr(&mut command, "sessionid", session);
        }
        if let Some(values) = values {
            let mut form = xml!("<x xmlns='jabber:x:data' type='submit'/>");
            let form_type = self.form().and_then(|f| {
                f.children()
                    .find(|c| c.attr("var") == Some("FORM_TYPE"))
                    .and_then(|c| c.get_child("value", crate::forms::NS_DATA_FORMS))
                    .map(Element::text)
            });
            if let Some(form_type) = form_type {
                form.append_child(xml!(
                    "<field xmlns='jabber:x:data' var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"
                ));
            }
            for (var, value) in values {
                form.append_child(xml!(
                    "<field xmlns='jabber:x:data' var='{var}'><value>{value}</value></field>"
                ));
            }
            command.append_child(form);
        }
        let domain = component.domain.clone();
        let mut iq = xml!(
            "<iq type='set' id='{id}' from='{}' to='{domain}'/>",
            self.from
        );
        iq.append_child(command);
        component.component_received(iq);
        let answer = component
            .stanza_received()
            .unwrap_or_else(|| panic!("no answer to the command request {id}"));
        if answer.attr("type") != Some("result") {
            return Err(answer);
        }
        let Some(command) = answer
            .get_child("command", crate::commands::NS_COMMANDS)
            .cloned()
        else {
            panic!("the result has no <command/>: {}", xml::to_string(&answer));
        };
        if let Some(session) = command.attr("sessionid") {
            self.session = Some(session.to_string());
        }
        self.last = command.clone();
        Ok(command)
    }
}
