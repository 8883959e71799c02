//! A sans-IO XMPP client (c2s, RFC 6120) state machine: stream, STARTTLS, SASL, resource
//! binding, session, then stanzas both ways.
//!
//! It has the shape of the component core: the runtime opens the socket and calls
//! [`Client::handle_connected`], feeds what it reads to [`Client::handle_input`], calls
//! [`Client::handle_timeout`] at [`Client::poll_timeout`], and after each call drains
//! [`Client::poll_transmit`] (bytes to write) and [`Client::poll_event`]. When the event
//! [`ClientEvent::StartTls`] comes out, the runtime upgrades the socket to TLS and calls
//! [`Client::handle_tls_established`]. Time is always passed in; nothing here reads a clock,
//! opens a socket or spawns a thread.
//!
//! The flow: stream header → features → STARTTLS (if offered and the [`TlsPolicy`] allows) →
//! SASL (SCRAM-SHA-1 preferred, PLAIN only over TLS unless allowed) → stream restart → bind
//! → session (only if the server lists it as not optional) → initial presence →
//! [`ClientEvent::Online`].
//!
//! ```
//! use std::time::Instant;
//! use exampple_core::client::{Client, ClientConfig, ClientEvent};
//!
//! let config = ClientConfig::new("alice@localhost/test", "alice-pass").unwrap()
//!     .allow_plain_without_tls(true);
//! let mut client = Client::new(config);
//! let now = Instant::now();
//! client.handle_connected(now);
//! let header = client.poll_transmit().unwrap();
//! assert!(header.starts_with(b"<?xml version='1.0'?><stream:stream to='localhost'"));
//! client.handle_input(now, b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
//!     xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>\
//!     <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
//!     <mechanism>PLAIN</mechanism></mechanisms></stream:features>");
//! let auth = client.poll_transmit().unwrap();
//! assert_eq!(
//!     auth,
//!     b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXBhc3M=</auth>"
//! );
//! client.handle_input(now, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
//!     <not-authorized/><text>Unable to authorize you</text></failure>");
//! let Some(ClientEvent::Failed(error)) = client.poll_event() else { panic!() };
//! assert_eq!(error.to_string(), "authentication failed: not-authorized (Unable to authorize you)");
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use minidom::Element;

use crate::jid::{FullJid, Jid, JidError};
use crate::ns;
use crate::parser::{Limits, ParseError, StreamItem, StreamParser};
use crate::sasl::{self, Mechanism, SaslError, ScramSha1};
use crate::stanza::StanzaError;
use crate::xml;
/// Moved to [`xml::into_client_ns`], kept here for the client's users.
pub use crate::xml::into_client_ns;

/// Whether the client upgrades the connection with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum TlsPolicy {
    /// Never; a server that requires TLS fails the login.
    Never,
    /// When the server offers it (the default).
    #[default]
    IfOffered,
    /// Always; a server that does not offer it fails the login.
    Required,
}

/// The configuration of a client connection.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The account's JID; its resource, if any, is the one requested at bind time.
    pub jid: Jid,
    /// The password. Never logged: `Debug` shows it redacted.
    pub password: String,
    /// The server's host name or address (default: the JID's domain).
    pub host: String,
    /// The server's c2s port (default 5222).
    pub port: u16,
    /// The domain in the stream's `to` (default: the JID's domain).
    pub domain: String,
    /// The SASL mechanisms allowed, in order of preference (default SCRAM-SHA-1, PLAIN).
    pub mechanisms: Vec<Mechanism>,
    /// When to use STARTTLS (default [`TlsPolicy::IfOffered`]).
    pub tls: TlsPolicy,
    /// Allow PLAIN without TLS (default false: the password would travel in the clear).
    pub allow_plain_without_tls: bool,
    /// A PEM file of CA certificates to trust for TLS instead of the public web roots
    /// (default `None`). Used by the `tls` feature of exampple-client.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// How long the login may take, from the connection to [`ClientEvent::Online`]
    /// (default 10 s).
    pub login_timeout: Duration,
    /// How long to wait for the server's `</stream:stream>` after [`Client::close`]
    /// (default 2 s).
    pub close_timeout: Duration,
    /// Send a whitespace keepalive after this much time without output (default `None`).
    pub keepalive: Option<Duration>,
    /// The presence sent once bound, before [`ClientEvent::Online`] (default `<presence/>`;
    /// `None` sends none).
    pub initial_presence: Option<Element>,
    /// The largest stanza accepted from the server, in bytes (default 256 KiB).
    pub max_stanza_size: usize,
    /// The deepest element nesting accepted in a stanza (default 64).
    pub max_depth: usize,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("jid", &self.jid.to_string())
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("domain", &self.domain)
            .field("mechanisms", &self.mechanisms)
            .field("tls", &self.tls)
            .field("allow_plain_without_tls", &self.allow_plain_without_tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("login_timeout", &self.login_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("keepalive", &self.keepalive)
            .field("initial_presence", &self.initial_presence)
            .field("max_stanza_size", &self.max_stanza_size)
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for the account `jid` (`user@domain` or `user@domain/resource`),
    /// every other option at its default. The JID must have a local part.
    pub fn new(jid: &str, password: impl Into<String>) -> Result<Self, ClientError> {
        let parsed = Jid::new(jid).map_err(|e| ClientError::InvalidJid(jid.to_string(), e))?;
        if parsed.node().is_none() {
            return Err(ClientError::Config(format!(
                "the JID `{jid}` has no local part (user@domain)"
            )));
        }
        let domain = parsed.domain().to_string();
        Ok(ClientConfig {
            jid: parsed,
            password: password.into(),
            host: domain.clone(),
            port: 5222,
            domain,
            mechanisms: vec![Mechanism::ScramSha1, Mechanism::Plain],
            tls: TlsPolicy::IfOffered,
            allow_plain_without_tls: false,
            tls_ca_file: None,
            login_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            keepalive: None,
            initial_presence: Some(Element::bare("presence", ns::CLIENT)),
            max_stanza_size: crate::config::DEFAULT_MAX_STANZA_SIZE,
            max_depth: crate::config::DEFAULT_MAX_DEPTH,
        })
    }

    /// Sets the server host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the server port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets host and port from `host:port` (an IPv6 address in brackets); without a port,
    /// only the host changes.
    pub fn address(mut self, address: &str) -> Self {
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                self.host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                self.port = port.parse().unwrap_or(self.port);
            }
            _ => self.host = address.to_string(),
        }
        self
    }

    /// Sets the SASL mechanisms allowed, in order of preference.
    pub fn mechanisms(mut self, mechanisms: impl IntoIterator<Item = Mechanism>) -> Self {
        self.mechanisms = mechanisms.into_iter().collect();
        self
    }

    /// Sets the TLS policy.
    pub fn tls(mut self, policy: TlsPolicy) -> Self {
        self.tls = policy;
        self
    }

    /// Allows (or not) PLAIN without TLS.
    pub fn allow_plain_without_tls(mut self, allow: bool) -> Self {
        self.allow_plain_without_tls = allow;
        self
    }

    /// Trusts the CA certificates of this PEM file for TLS (instead of the public web
    /// roots).
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Sets the login timeout.
    pub fn login_timeout(mut self, timeout: Duration) -> Self {
        self.login_timeout = timeout;
        self
    }

    /// Sets the close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets the whitespace keepalive interval.
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets the initial presence (`None`: send none).
    pub fn initial_presence(mut self, presence: Option<Element>) -> Self {
        self.initial_presence = presence;
        self
    }

    /// Sets the largest stanza accepted.
    pub fn max_stanza_size(mut self, bytes: usize) -> Self {
        self.max_stanza_size = bytes;
        self
    }

    /// `host:port`, as a socket address to connect to.
    pub fn socket_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_stanza_size: self.max_stanza_size,
            max_depth: self.max_depth,
        }
    }
}

/// What the client reports to its runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server agreed to STARTTLS: upgrade the socket to TLS now, then call
    /// [`Client::handle_tls_established`]. Bytes read before the upgrade must not be fed.
    StartTls,
    /// Logged in, bound and the initial presence sent: stanzas may flow.
    Online {
        /// The full JID the server bound.
        jid: FullJid,
    },
    /// A stanza from the server (in `jabber:client`).
    Stanza(Element),
    /// The login or the stream failed; nothing more will happen on this connection (the
    /// closing bytes are queued: write them, then drop the socket).
    Failed(ClientError),
    /// The stream was closed (by [`Client::close`] or by the server); drop the socket.
    Closed,
}

/// Why a client could not log in or lost its stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A JID that does not parse.
    #[error("invalid JID `{0}`: {1}")]
    InvalidJid(String, JidError),
    /// A configuration that cannot work.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The server refused the credentials (`<failure>` with this condition).
    #[error("authentication failed: {condition}{}", text_suffix(.text))]
    Auth {
        /// The SASL condition: `not-authorized`, `account-disabled`, ...
        condition: String,
        /// The server's explanation, if any.
        text: Option<String>,
    },
    /// The SASL exchange broke (bad server message, wrong server signature, ...).
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
    /// The server sent a stream error.
    #[error("stream error: {condition}{}", text_suffix(.text))]
    Stream {
        /// The stream error condition: `conflict`, `host-unknown`, ...
        condition: String,
        /// The server's explanation, if any.
        text: Option<String>,
    },
    /// The server sent XML the client cannot parse (the stream is closed with an error).
    #[error("invalid XML from the server: {0}")]
    Parse(#[from] ParseError),
    /// The policy requires TLS and the server does not offer STARTTLS.
    #[error("TLS is required by the client's policy but the server does not offer STARTTLS")]
    TlsUnavailable,
    /// The server requires TLS and the policy is [`TlsPolicy::Never`].
    #[error("the server requires STARTTLS but the client's TLS policy is Never")]
    TlsRequiredByServer,
    /// The server answered STARTTLS with `<failure/>`.
    #[error("the server refused STARTTLS")]
    TlsRefused,
    /// The TLS upgrade failed in the runtime.
    #[error("TLS: {0}")]
    Tls(String),
    /// No mechanism both offered by the server and allowed by the configuration.
    #[error(
        "no common SASL mechanism: the server offers {offered:?}, the client allows {allowed:?}{}",
        if *plain_needs_tls { " (PLAIN is offered but not allowed without TLS)" } else { "" }
    )]
    NoCommonMechanism {
        /// What the server offered.
        offered: Vec<String>,
        /// What the configuration allows.
        allowed: Vec<Mechanism>,
        /// Whether PLAIN was offered and allowed but refused for lack of TLS.
        plain_needs_tls: bool,
    },
    /// Resource binding failed.
    #[error("resource binding failed: {0}")]
    Bind(Box<StanzaError>),
    /// Session establishment failed.
    #[error("session establishment failed: {0}")]
    Session(Box<StanzaError>),
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A step took longer than its timeout.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server closed the stream before the login completed.
    #[error("the server closed the stream {0}")]
    StreamClosed(&'static str),
    /// The connection ended without the stream being closed.
    #[error("the connection was lost")]
    ConnectionLost,
    /// `send` while not online.
    #[error("the client is not online")]
    NotOnline,
    /// An I/O error in the runtime.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn text_suffix(text: &Option<String>) -> String {
    match text {
        Some(t) if !t.is_empty() => format!(" ({t})"),
        _ => String::new(),
    }
}

impl ClientError {
    /// The SASL or stream error condition, for [`ClientError::Auth`] and
    /// [`ClientError::Stream`].
    pub fn condition(&self) -> Option<&str> {
        match self {
            ClientError::Auth { condition, .. } | ClientError::Stream { condition, .. } => {
                Some(condition)
            }
            _ => None,
        }
    }
}

enum SaslState {
    Plain,
    Scram(Box<ScramSha1>),
}

enum State {
    Idle,
    AwaitHeader,
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    Sasl(SaslState),
    AwaitBind(String),
    AwaitSession(String),
    Online,
    Closing,
    Done,
}

impl State {
    fn describe(&self) -> &'static str {
        match self {
            State::Idle => "before connecting",
            State::AwaitHeader => "waiting for the server's stream header",
            State::AwaitFeatures => "waiting for the stream features",
            State::AwaitProceed => "waiting for the answer to STARTTLS",
            State::AwaitTls => "during the TLS handshake",
            State::Sasl(_) => "during SASL authentication",
            State::AwaitBind(_) => "waiting for resource binding",
            State::AwaitSession(_) => "waiting for session establishment",
            State::Online => "while online",
            State::Closing => "waiting for the server to close the stream",
            State::Done => "after the end of the stream",
        }
    }
}

/// The client state machine; see the [module docs](self).
pub struct Client {
    config: ClientConfig,
    state: State,
    parser: StreamParser,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    now: Option<Instant>,
    tls_active: bool,
    authenticated: bool,
    session_needed: bool,
    sent_close: bool,
    login_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    last_output: Option<Instant>,
    stream_id: Option<String>,
    bound: Option<FullJid>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("jid", &self.config.jid.to_string())
            .field("state", &self.state.describe())
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that has not connected yet.
    pub fn new(config: ClientConfig) -> Self {
        let parser = StreamParser::new(config.limits());
        Client {
            config,
            state: State::Idle,
            parser,
            out: Vec::new(),
            events: VecDeque::new(),
            now: None,
            tls_active: false,
            authenticated: false,
            session_needed: false,
            sent_close: false,
            login_deadline: None,
            close_deadline: None,
            last_output: None,
            stream_id: None,
            bound: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The bound full JID, once online.
    pub fn jid(&self) -> Option<&FullJid> {
        self.bound.as_ref()
    }

    /// Whether the client is online (bound, stanzas may be sent).
    pub fn is_online(&self) -> bool {
        matches!(self.state, State::Online)
    }

    /// Whether the connection is over (after [`ClientEvent::Closed`] or
    /// [`ClientEvent::Failed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether TLS was established.
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// The id of the server's current stream.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// The socket is connected: queues the stream header and starts the login timeout.
    pub fn handle_connected(&mut self, now: Instant) {
        self.now = Some(now);
        if !matches!(self.state, State::Idle) {
            return;
        }
        self.login_deadline = Some(now + self.config.login_timeout);
        self.open_stream();
    }

    /// The runtime finished the TLS handshake after [`ClientEvent::StartTls`]: restarts the
    /// stream.
    pub fn handle_tls_established(&mut self, now: Instant) {
        self.now = Some(now);
        if !matches!(self.state, State::AwaitTls) {
            log::warn!("TLS established while {}: ignored", self.state.describe());
            return;
        }
        self.tls_active = true;
        self.open_stream();
    }

    /// The runtime could not establish TLS: the login fails.
    pub fn handle_tls_failed(&mut self, now: Instant, reason: impl Into<String>) {
        self.now = Some(now);
        if matches!(self.state, State::AwaitTls) {
            // The stream is unusable: no closing tag can be sent.
            self.sent_close = true;
            self.fail(ClientError::Tls(reason.into()));
        }
    }

    /// Bytes from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = Some(now);
        match self.state {
            State::Idle | State::Done => return,
            State::AwaitTls => {
                log::warn!(
                    "{} bytes received during the TLS upgrade: ignored",
                    bytes.len()
                );
                return;
            }
            _ => {}
        }
        log::trace!("client received {}", String::from_utf8_lossy(bytes));
        let mut items = Vec::new();
        let result = self.parser.feed(bytes, &mut items);
        for item in items {
            if matches!(self.state, State::Done) {
                return;
            }
            self.on_item(item);
        }
        if let Err(error) = result
            && !matches!(self.state, State::Done)
        {
            self.stream_error(error.condition());
            self.fail(ClientError::Parse(error));
        }
    }

    /// The connection ended (the peer closed the socket or it broke).
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = Some(now);
        match self.state {
            State::Done => {}
            State::Idle | State::Closing => self.finish(),
            _ if self.parser.is_closed() => self.finish(),
            _ => {
                self.sent_close = true;
                self.fail(ClientError::ConnectionLost);
            }
        }
    }

    /// Time passed; spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if matches!(self.state, State::Done) {
            return;
        }
        if self.close_deadline.is_some_and(|d| now >= d) {
            self.close_deadline = None;
            log::debug!("the server did not close its stream in time");
            self.finish();
            return;
        }
        if self.login_deadline.is_some_and(|d| now >= d) {
            self.login_deadline = None;
            let phase = self.state.describe();
            if matches!(self.state, State::AwaitTls) {
                self.sent_close = true;
            } else {
                self.stream_error("connection-timeout");
            }
            self.fail(ClientError::Timeout(phase));
            return;
        }
        if let (State::Online, Some(interval), Some(last)) =
            (&self.state, self.config.keepalive, self.last_output)
            && now >= last + interval
        {
            self.write(b" ");
        }
    }

    /// Sends a stanza. Elements in `jabber:component:accept` (what [`xml::parse`] and the
    /// [`stanza`](crate::stanza) builders make) are moved to `jabber:client` (see
    /// [`into_client_ns`]); a stanza without an `id` gets a UUID v4. Returns the stanza's id.
    pub fn send(&mut self, now: Instant, stanza: Element) -> Result<String, ClientError> {
        self.now = Some(now);
        if !matches!(self.state, State::Online) {
            return Err(ClientError::NotOnline);
        }
        let (id, bytes) = prepare_stanza(stanza);
        self.write(&bytes);
        Ok(id)
    }

    /// Closes the stream: sends `</stream:stream>` and waits (up to the close timeout) for
    /// the server's; then [`ClientEvent::Closed`].
    pub fn close(&mut self, now: Instant) {
        self.now = Some(now);
        match self.state {
            State::Done | State::Closing => {}
            State::Idle => self.finish(),
            State::AwaitTls => {
                self.sent_close = true;
                self.finish();
            }
            _ => {
                self.send_close();
                self.login_deadline = None;
                self.close_deadline = Some(now + self.config.close_timeout);
                self.state = State::Closing;
                if self.parser.is_closed() {
                    self.finish();
                }
            }
        }
    }

    /// All bytes to write, in one buffer; `None` when there are none.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Done) {
            return None;
        }
        let keepalive = match (&self.state, self.config.keepalive, self.last_output) {
            (State::Online, Some(interval), Some(last)) => Some(last + interval),
            _ => None,
        };
        [self.login_deadline, self.close_deadline, keepalive]
            .into_iter()
            .flatten()
            .min()
    }

    fn write(&mut self, bytes: &[u8]) {
        log::trace!("client sends {}", String::from_utf8_lossy(bytes));
        self.write_quietly(bytes);
    }

    /// Writes without logging (SASL payloads carry the password or a proof of it).
    fn write_quietly(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.last_output = self.now;
    }

    fn open_stream(&mut self) {
        self.parser = StreamParser::new(self.config.limits());
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='{}' xmlns:stream='{}'>",
            xml::escape(&self.config.domain),
            ns::CLIENT,
            ns::STREAM
        );
        self.write(header.as_bytes());
        self.state = State::AwaitHeader;
    }

    fn send_close(&mut self) {
        if !self.sent_close {
            self.sent_close = true;
            self.write(b"</stream:stream>");
        }
    }

    fn stream_error(&mut self, condition: &str) {
        if self.sent_close {
            return;
        }
        let error = format!(
            "<stream:error><{condition} xmlns='{}'/></stream:error>",
            ns::STREAM_ERRORS
        );
        self.write(error.as_bytes());
        self.send_close();
    }

    fn fail(&mut self, error: ClientError) {
        log::debug!("client failed {}: {error}", self.state.describe());
        self.send_close();
        self.state = State::Done;
        self.login_deadline = None;
        self.close_deadline = None;
        self.events.push_back(ClientEvent::Failed(error));
    }

    fn finish(&mut self) {
        self.send_close();
        self.state = State::Done;
        self.login_deadline = None;
        self.close_deadline = None;
        self.events.push_back(ClientEvent::Closed);
    }

    fn protocol(&mut self, what: String) {
        self.stream_error("unsupported-stanza-type");
        self.fail(ClientError::Protocol(what));
    }

    fn on_item(&mut self, item: StreamItem) {
        match item {
            StreamItem::Header(header) => {
                if !matches!(self.state, State::AwaitHeader) {
                    return;
                }
                if !header.is_stream() {
                    self.stream_error("invalid-namespace");
                    self.fail(ClientError::Protocol(
                        "the server's stream header is not <stream:stream>".to_string(),
                    ));
                    return;
                }
                if header.default_ns.as_deref() != Some(ns::CLIENT) {
                    self.stream_error("invalid-namespace");
                    self.fail(ClientError::Protocol(format!(
                        "the server's stream is in {:?}, not jabber:client",
                        header.default_ns.unwrap_or_default()
                    )));
                    return;
                }
                self.stream_id = header.id;
                self.state = State::AwaitFeatures;
            }
            StreamItem::Close => match self.state {
                State::Closing => self.finish(),
                State::Online => self.finish(),
                _ => {
                    let phase = self.state.describe();
                    self.fail(ClientError::StreamClosed(phase));
                }
            },
            StreamItem::Element(element) => self.on_element(element),
        }
    }

    fn on_element(&mut self, element: Element) {
        if element.is("error", ns::STREAM) {
            let (condition, text) = read_condition(&element, ns::STREAM_ERRORS);
            self.fail(ClientError::Stream { condition, text });
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::AwaitFeatures if element.is("features", ns::STREAM) => {
                self.on_features(&element)
            }
            State::AwaitProceed if element.is("proceed", ns::TLS) => {
                self.state = State::AwaitTls;
                self.events.push_back(ClientEvent::StartTls);
            }
            State::AwaitProceed if element.is("failure", ns::TLS) => {
                // The server closes the stream and the connection after this.
                self.sent_close = true;
                self.fail(ClientError::TlsRefused);
            }
            State::Sasl(sasl) if element.has_ns(ns::SASL) => self.on_sasl(sasl, &element),
            State::AwaitBind(id) if is_response(&element, &id) => self.on_bind(&element),
            State::AwaitSession(id) if is_response(&element, &id) => {
                if element.attr("type") == Some("error") {
                    self.fail(ClientError::Session(Box::new(stanza_error(&element))));
                } else {
                    self.go_online();
                }
            }
            State::Online | State::Closing => {
                self.state = state;
                if is_stanza(&element) {
                    self.events.push_back(ClientEvent::Stanza(element));
                } else {
                    log::debug!("ignoring <{} xmlns='{}'>", element.name(), element.ns());
                }
            }
            State::AwaitBind(_) | State::AwaitSession(_) if is_stanza(&element) => {
                // Nothing else should come before the session is established; keep it.
                self.state = state;
                self.events.push_back(ClientEvent::Stanza(element));
            }
            other => {
                let phase = other.describe();
                self.state = other;
                self.protocol(format!(
                    "unexpected <{} xmlns='{}'> {phase}",
                    element.name(),
                    element.ns()
                ));
            }
        }
    }

    fn on_features(&mut self, features: &Element) {
        if self.authenticated {
            if !features.has_child("bind", ns::BIND) {
                self.protocol("the server offers no resource binding".to_string());
                return;
            }
            self.session_needed = features
                .get_child("session", ns::SESSION)
                .is_some_and(|s| !s.has_child("optional", ns::SESSION));
            self.bind();
            return;
        }
        if !self.tls_active {
            let starttls = features.get_child("starttls", ns::TLS);
            match (self.config.tls, starttls) {
                (TlsPolicy::Never, Some(s)) if s.has_child("required", ns::TLS) => {
                    self.send_close();
                    self.fail(ClientError::TlsRequiredByServer);
                    return;
                }
                (TlsPolicy::IfOffered | TlsPolicy::Required, Some(_)) => {
                    self.write(format!("<starttls xmlns='{}'/>", ns::TLS).as_bytes());
                    self.state = State::AwaitProceed;
                    return;
                }
                (TlsPolicy::Required, None) => {
                    self.send_close();
                    self.fail(ClientError::TlsUnavailable);
                    return;
                }
                _ => {}
            }
        }
        self.start_sasl(features);
    }

    fn start_sasl(&mut self, features: &Element) {
        let offered: Vec<String> = features
            .get_child("mechanisms", ns::SASL)
            .map(|m| {
                m.children()
                    .filter(|c| c.is("mechanism", ns::SASL))
                    .map(|c| c.text().trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let plain_ok = self.tls_active || self.config.allow_plain_without_tls;
        let mut plain_needs_tls = false;
        let chosen = self.config.mechanisms.iter().copied().find(|m| {
            if !offered.iter().any(|o| o == m.as_str()) {
                return false;
            }
            if *m == Mechanism::Plain && !plain_ok {
                plain_needs_tls = true;
                return false;
            }
            true
        });
        let Some(mechanism) = chosen else {
            self.fail(ClientError::NoCommonMechanism {
                offered,
                allowed: self.config.mechanisms.clone(),
                plain_needs_tls,
            });
            return;
        };
        let username = self
            .config
            .jid
            .node()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let (initial, state) = match mechanism {
            Mechanism::Plain => (
                sasl::plain(&username, &self.config.password),
                SaslState::Plain,
            ),
            Mechanism::ScramSha1 => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                match ScramSha1::new(&username, &self.config.password, &nonce) {
                    Ok(scram) => (scram.client_first(), SaslState::Scram(Box::new(scram))),
                    Err(e) => {
                        self.fail(ClientError::Sasl(e));
                        return;
                    }
                }
            }
        };
        let auth = format!(
            "<auth xmlns='{}' mechanism='{}'>{}</auth>",
            ns::SASL,
            mechanism.as_str(),
            sasl::encode(&initial)
        );
        log::trace!("client sends <auth mechanism='{mechanism}'> (payload not logged)");
        self.write_quietly(auth.as_bytes());
        self.state = State::Sasl(state);
    }

    fn on_sasl(&mut self, mut sasl: SaslState, element: &Element) {
        match element.name() {
            "challenge" => {
                let data = match sasl::decode(&element.text()) {
                    Ok(d) => d,
                    Err(e) => return self.sasl_failed(e),
                };
                let SaslState::Scram(scram) = &mut sasl else {
                    return self.protocol("a SASL challenge to PLAIN".to_string());
                };
                let reply = if scram.awaits_server_final() {
                    scram.handle_server_final(&data).map(|()| Vec::new())
                } else {
                    scram.handle_server_first(&data)
                };
                match reply {
                    Ok(reply) => {
                        let response = if reply.is_empty() {
                            format!("<response xmlns='{}'/>", ns::SASL)
                        } else {
                            format!(
                                "<response xmlns='{}'>{}</response>",
                                ns::SASL,
                                sasl::encode(&reply)
                            )
                        };
                        log::trace!("client sends a SASL <response> (payload not logged)");
                        self.write_quietly(response.as_bytes());
                        self.state = State::Sasl(sasl);
                    }
                    Err(e) => self.sasl_failed(e),
                }
            }
            "success" => {
                if let SaslState::Scram(scram) = &mut sasl
                    && !scram.is_verified()
                {
                    let data = match sasl::decode(&element.text()) {
                        Ok(d) => d,
                        Err(e) => return self.sasl_failed(e),
                    };
                    if data.is_empty() {
                        return self.sasl_failed(SaslError::Malformed(
                            "success without the server signature".to_string(),
                        ));
                    }
                    if let Err(e) = scram.handle_server_final(&data) {
                        return self.sasl_failed(e);
                    }
                }
                self.authenticated = true;
                self.open_stream();
            }
            "failure" => {
                let (condition, text) = read_condition(element, ns::SASL);
                self.fail(ClientError::Auth { condition, text });
            }
            other => {
                let other = other.to_string();
                self.protocol(format!("unexpected SASL element <{other}>"));
            }
        }
    }

    fn sasl_failed(&mut self, error: SaslError) {
        // Abort the exchange politely, then give up on the stream.
        self.write(format!("<abort xmlns='{}'/>", ns::SASL).as_bytes());
        self.fail(ClientError::Sasl(error));
    }

    fn bind(&mut self) {
        let id = uuid::Uuid::new_v4().to_string();
        let mut bind = Element::bare("bind", ns::BIND);
        if let Some(resource) = self.config.jid.resource() {
            bind.append_child(
                Element::builder("resource", ns::BIND)
                    .append(resource.as_str())
                    .build(),
            );
        }
        let mut iq = Element::bare("iq", ns::CLIENT);
        xml::set_attr(&mut iq, "type", "set");
        xml::set_attr(&mut iq, "id", id.clone());
        iq.append_child(bind);
        let mut out = Vec::new();
        xml::write_stanza(&iq, ns::CLIENT, &mut out);
        self.write(&out);
        self.state = State::AwaitBind(id);
    }

    fn on_bind(&mut self, iq: &Element) {
        if iq.attr("type") != Some("result") {
            self.fail(ClientError::Bind(Box::new(stanza_error(iq))));
            return;
        }
        let jid = iq
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("jid", ns::BIND))
            .map(|j| j.text());
        let Some(jid) = jid else {
            return self.protocol("bind result without a JID".to_string());
        };
        match FullJid::new(jid.trim()) {
            Ok(full) => self.bound = Some(full),
            Err(e) => return self.protocol(format!("bound JID `{jid}` is invalid: {e}")),
        }
        if self.session_needed {
            let id = uuid::Uuid::new_v4().to_string();
            let session = format!(
                "<iq id='{id}' type='set'><session xmlns='{}'/></iq>",
                ns::SESSION
            );
            self.write(session.as_bytes());
            self.state = State::AwaitSession(id);
        } else {
            self.go_online();
        }
    }

    fn go_online(&mut self) {
        if let Some(presence) = self.config.initial_presence.clone() {
            let (_, bytes) = prepare_stanza(presence);
            self.write(&bytes);
        }
        self.login_deadline = None;
        self.state = State::Online;
        if let Some(jid) = self.bound.clone() {
            self.events.push_back(ClientEvent::Online { jid });
        }
    }
}

/// Puts a stanza in `jabber:client`, gives it an id if it has none, and serialises it.
fn prepare_stanza(stanza: Element) -> (String, Vec<u8>) {
    let mut stanza = into_client_ns(stanza);
    let id = match stanza.attr("id") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            xml::set_attr(&mut stanza, "id", id.clone());
            id
        }
    };
    let mut out = Vec::new();
    xml::write_stanza(&stanza, ns::CLIENT, &mut out);
    (id, out)
}

fn is_stanza(element: &Element) -> bool {
    element.ns() == ns::CLIENT && matches!(element.name(), "iq" | "message" | "presence")
}

fn is_response(element: &Element, id: &str) -> bool {
    element.is("iq", ns::CLIENT)
        && element.attr("id") == Some(id)
        && matches!(element.attr("type"), Some("result" | "error"))
}

fn stanza_error(iq: &Element) -> StanzaError {
    iq.get_child("error", ns::CLIENT)
        .and_then(StanzaError::from_element)
        .unwrap_or_else(|| StanzaError::new(crate::stanza::Condition::UndefinedCondition))
}

/// The condition (first child in `namespace` other than `<text>`) and text of a SASL
/// failure or stream error.
fn read_condition(element: &Element, namespace: &str) -> (String, Option<String>) {
    let mut condition = None;
    let mut text = None;
    for child in element.children() {
        if child.ns() != namespace {
            continue;
        }
        if child.name() == "text" {
            text = Some(child.text());
        } else if condition.is_none() {
            condition = Some(child.name().to_string());
        }
    }
    (
        condition.unwrap_or_else(|| "undefined-condition".to_string()),
        text,
    )
}

/// The stanzas a client received and the application has not taken yet, with the searches
/// behind `next_stanza`, `wait_for` and `request` (shared by the clients of exampple-client).
///
/// ```
/// use exampple_core::client::Inbox;
/// use exampple_core::matching::Match;
/// use exampple_core::xml;
///
/// let mut inbox = Inbox::default();
/// inbox.push(xml::parse_in("<presence from='bob@localhost/x'/>", "jabber:client").unwrap());
/// inbox.push(xml::parse_in("<message from='bob@localhost/x'><body>hi</body></message>", "jabber:client").unwrap());
/// // Patterns may be written in the component namespace: they are moved to jabber:client.
/// let pattern = xml::parse("<message><body>hi</body></message>").unwrap();
/// assert!(inbox.take_match(&pattern, Match::Subset).is_some());
/// // The presence is still there.
/// assert_eq!(inbox.pop().unwrap().name(), "presence");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Inbox {
    stanzas: VecDeque<Element>,
    ended: Option<String>,
}

impl Inbox {
    /// Keeps a received stanza.
    pub fn push(&mut self, stanza: Element) {
        self.stanzas.push_back(stanza);
    }

    /// Takes the oldest stanza.
    pub fn pop(&mut self) -> Option<Element> {
        self.stanzas.pop_front()
    }

    /// Takes the oldest stanza that matches `pattern` (moved to `jabber:client` first, see
    /// [`into_client_ns`]), leaving the others in place.
    pub fn take_match(
        &mut self,
        pattern: &Element,
        how: crate::matching::Match,
    ) -> Option<Element> {
        let pattern = into_client_ns(pattern.clone());
        let index = self
            .stanzas
            .iter()
            .position(|s| how.is_match(&pattern, s))?;
        self.stanzas.remove(index)
    }

    /// Takes the `result` or `error` iq with this id.
    pub fn take_response(&mut self, id: &str) -> Option<Element> {
        let index = self.stanzas.iter().position(|s| is_response(s, id))?;
        self.stanzas.remove(index)
    }

    /// The stanzas not taken yet, oldest first.
    pub fn pending(&self) -> Vec<Element> {
        self.stanzas.iter().cloned().collect()
    }

    /// How many stanzas are waiting.
    pub fn len(&self) -> usize {
        self.stanzas.len()
    }

    /// Whether no stanza is waiting.
    pub fn is_empty(&self) -> bool {
        self.stanzas.is_empty()
    }

    /// Records that the connection ended (no more stanzas will come), and why.
    pub fn end(&mut self, reason: impl Into<String>) {
        if self.ended.is_none() {
            self.ended = Some(reason.into());
        }
    }

    /// Why the connection ended, if it did.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// The error for a wait that found nothing: the pattern and every stanza still pending.
    pub fn wait_error(
        &self,
        pattern: Option<&Element>,
        how: crate::matching::Match,
        waited: Duration,
    ) -> WaitError {
        WaitError {
            pattern: pattern.map(|p| Box::new(into_client_ns(p.clone()))),
            how,
            waited,
            received: self.pending(),
            ended: self.ended.clone(),
        }
    }
}

/// No stanza matched in time (or the connection ended first). `Display` shows the pattern
/// and every stanza received and not taken, pretty-printed, each with why it did not match.
#[derive(Debug, Clone)]
pub struct WaitError {
    /// What was waited for (`None` for an iq response, see `request`).
    pub pattern: Option<Box<Element>>,
    /// How the pattern was compared.
    pub how: crate::matching::Match,
    /// How long the wait lasted.
    pub waited: Duration,
    /// The stanzas received and not taken, oldest first.
    pub received: Vec<Element>,
    /// Why the connection ended, if it did.
    pub ended: Option<String>,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ended {
            Some(reason) => write!(f, "the connection ended ({reason}) ")?,
            None => write!(f, "timed out after {:?} ", self.waited)?,
        }
        match &self.pattern {
            Some(pattern) => {
                writeln!(f, "waiting for a stanza matching ({:?}):", self.how)?;
                for line in crate::matching::pretty(pattern).lines() {
                    writeln!(f, "  {line}")?;
                }
            }
            None => writeln!(f, "waiting for a response")?,
        }
        if self.received.is_empty() {
            return write!(f, "received nothing else");
        }
        write!(f, "received meanwhile ({}):", self.received.len())?;
        for stanza in &self.received {
            if let Some(pattern) = &self.pattern
                && let Err(mismatch) = self.how.check(pattern, stanza)
            {
                write!(f, "\n- {}", mismatch.summary())?;
            }
            for line in crate::matching::pretty(stanza).lines() {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for WaitError {}

/// Why a `request` (send an iq, wait for its response) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The iq could not be sent.
    #[error("could not send the request: {0}")]
    Send(#[from] ClientError),
    /// No response came.
    #[error("no response: {0}")]
    Wait(#[from] WaitError),
    /// The request is not an iq of type get or set.
    #[error("a request must be an iq of type get or set")]
    NotARequest,
}
