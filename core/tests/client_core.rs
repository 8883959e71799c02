//! The sans-IO client against a scripted server: wire-level XML in and out, simulated time.
//!
//! The server's lines are what Prosody 0.12 sends (captured from a real one); the client's are checked
//! byte for byte, with its random ids replaced by `{id}`.

use std::time::{Duration, Instant};

use exampple_core::client::{Client, ClientConfig, ClientError, ClientEvent, TlsPolicy};
use exampple_core::sasl::{self, Mechanism, SaslError};
use exampple_core::stanza::Condition;
use exampple_core::xml;

const CLIENT_HEADER: &str = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream version='1.0' xmlns='jabber:client' id='ea5a104f-2780-487f-9247-79b078ccce28' xml:lang='en' from='localhost' xmlns:stream='http://etherx.jabber.org/streams'>";
const FEATURES_AUTH: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
const FEATURES_BIND: &str = "<stream:features><sub xmlns='urn:xmpp:features:pre-approval'/><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session><c ver='Qvr5UZ4hxdwJlvP3Mt7sG+HxZJY=' xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im'/><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>";
const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const PLAIN_AUTH: &str = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXBhc3M=</auth>";
const BIND_REQUEST: &str = "<iq id='{id}' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>";

/// A client with a simulated clock; collects what the client writes and reports.
struct Harness {
    client: Client,
    start: Instant,
    now: Instant,
    sent: String,
    events: Vec<ClientEvent>,
}

impl Harness {
    fn new(config: ClientConfig) -> Self {
        let now = Instant::now();
        Harness {
            client: Client::new(config),
            start: now,
            now,
            sent: String::new(),
            events: Vec::new(),
        }
    }

    fn plain() -> Self {
        Harness::new(config().mechanisms([Mechanism::Plain]))
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            self.sent.push_str(&String::from_utf8(bytes).unwrap());
        }
        while let Some(event) = self.client.poll_event() {
            self.events.push(event);
        }
    }

    fn connect(&mut self) {
        self.client.handle_connected(self.now);
        self.drain();
    }

    fn feed(&mut self, text: &str) {
        self.client.handle_input(self.now, text.as_bytes());
        self.drain();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.drain();
    }

    /// What the client wrote since the last call, ids replaced by `{id}`.
    fn take_sent(&mut self) -> String {
        normalise_ids(&std::mem::take(&mut self.sent))
    }

    /// The id of the last iq the client wrote (before [`take_sent`]).
    fn last_iq_id(&self) -> String {
        let start = self.sent.rfind("<iq id='").expect("no iq sent") + "<iq id='".len();
        let len = self.sent[start..].find('\'').unwrap();
        self.sent[start..start + len].to_string()
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    fn failure(&mut self) -> ClientError {
        let mut events = self.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        match events.remove(0) {
            ClientEvent::Failed(e) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// PLAIN login up to Online; returns the bound JID.
    fn login_plain(&mut self) -> String {
        self.connect();
        assert_eq!(self.take_sent(), CLIENT_HEADER);
        self.feed(SERVER_HEADER);
        self.feed(FEATURES_AUTH);
        assert_eq!(self.take_sent(), PLAIN_AUTH);
        self.feed(SUCCESS);
        assert_eq!(self.take_sent(), CLIENT_HEADER);
        self.feed(&format!("{SERVER_HEADER}{FEATURES_BIND}"));
        let id = self.last_iq_id();
        assert_eq!(self.take_sent(), BIND_REQUEST);
        self.feed(&bind_result(&id));
        assert_eq!(self.take_sent(), "<presence id='{id}'/>");
        let events = self.take_events();
        assert!(
            matches!(&events[..], [ClientEvent::Online { jid }] if jid.to_string() == "alice@localhost/test"),
            "{events:?}"
        );
        assert!(self.client.is_online());
        "alice@localhost/test".to_string()
    }
}

fn config() -> ClientConfig {
    ClientConfig::new("alice@localhost/test", "alice-pass")
        .unwrap()
        .allow_plain_without_tls(true)
}

fn bind_result(id: &str) -> String {
    format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/test</jid></bind></iq>"
    )
}

/// Replaces every UUID (8-4-4-4-12 hex digits) by `{id}`.
fn normalise_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i..i + 36).is_some_and(is_uuid) {
            out.push_str("{id}");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn plain_login_stanzas_and_close() {
    let mut h = Harness::plain();
    h.login_plain();
    assert_eq!(h.client.jid().unwrap().to_string(), "alice@localhost/test");
    assert_eq!(
        h.client.stream_id(),
        Some("ea5a104f-2780-487f-9247-79b078ccce28")
    );

    // Stanzas from the server come out as events, in jabber:client.
    h.feed("<message from='bob@localhost/x' to='alice@localhost/test' type='chat' id='m1'><body>hi</body></message>");
    let events = h.take_events();
    let [ClientEvent::Stanza(message)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        xml::to_string(message),
        "<message xmlns='jabber:client' from='bob@localhost/x' id='m1' to='alice@localhost/test' type='chat'><body>hi</body></message>"
    );

    // Stanzas written in the component namespace go out in jabber:client, without xmlns.
    let ping =
        xml::parse("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap();
    let id = h.client.send(h.now, ping).unwrap();
    h.drain();
    assert_eq!(
        h.sent,
        format!("<iq id='{id}' to='localhost' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    );
    h.take_sent();
    let with_id =
        xml::parse("<message to='bob@localhost' id='own'><body>x</body></message>").unwrap();
    assert_eq!(h.client.send(h.now, with_id).unwrap(), "own");
    h.drain();
    assert_eq!(
        h.take_sent(),
        "<message id='own' to='bob@localhost'><body>x</body></message>"
    );

    // Close: our closing tag, then the server's, then Closed.
    h.client.close(h.now);
    h.drain();
    assert_eq!(h.take_sent(), "</stream:stream>");
    assert!(h.take_events().is_empty());
    h.feed("</stream:stream>");
    assert!(matches!(&h.take_events()[..], [ClientEvent::Closed]));
    assert!(h.client.is_closed());
    assert_eq!(h.client.poll_timeout(), None);
    assert!(matches!(
        h.client.send(h.now, xml::parse("<presence/>").unwrap()),
        Err(ClientError::NotOnline)
    ));
}

/// A scripted SCRAM-SHA-1 server built on the crate's own primitives.
struct ScramServer {
    salt: Vec<u8>,
    iterations: u32,
    password: String,
    client_first_bare: String,
    server_first: String,
}

impl ScramServer {
    fn new(password: &str) -> Self {
        ScramServer {
            salt: b"prosody-salt-1234".to_vec(),
            iterations: 4096,
            password: password.to_string(),
            client_first_bare: String::new(),
            server_first: String::new(),
        }
    }

    /// Reads the client's `<auth>`, returns the server-first message.
    fn first(&mut self, auth: &str) -> String {
        let prefix = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>";
        let payload = auth
            .strip_prefix(prefix)
            .and_then(|s| s.strip_suffix("</auth>"))
            .unwrap();
        let client_first = String::from_utf8(sasl::decode(payload).unwrap()).unwrap();
        let bare = client_first.strip_prefix("n,,").unwrap();
        assert!(bare.starts_with("n=alice,r="), "{bare}");
        let nonce = bare.strip_prefix("n=alice,r=").unwrap();
        assert_eq!(nonce.len(), 32, "a UUID's hex digits");
        self.client_first_bare = bare.to_string();
        self.server_first = format!(
            "r={nonce}3rfcNHYJY1ZVvWVs7j,s={},i={}",
            sasl::encode(&self.salt),
            self.iterations
        );
        self.server_first.clone()
    }

    /// Checks the client's `<response>` and returns the server-final message.
    fn last(&self, response: &str) -> String {
        let payload = response
            .strip_prefix("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
            .and_then(|s| s.strip_suffix("</response>"))
            .unwrap();
        let client_final = String::from_utf8(sasl::decode(payload).unwrap()).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let nonce = self.server_first[2..].split(',').next().unwrap();
        assert_eq!(without_proof, format!("c=biws,r={nonce}"));
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let salted = sasl::salted_password(&self.password, &self.salt, self.iterations);
        assert_eq!(
            proof,
            sasl::encode(&sasl::client_proof(&salted, auth_message.as_bytes())),
            "the client proof"
        );
        format!(
            "v={}",
            sasl::encode(&sasl::server_signature(&salted, auth_message.as_bytes()))
        )
    }
}

fn challenge(message: &str) -> String {
    format!(
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
        sasl::encode(message.as_bytes())
    )
}

#[test]
fn scram_login_prefers_scram_and_verifies_the_server() {
    let mut h = Harness::new(config());
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    let mut server = ScramServer::new("alice-pass");
    let first = server.first(&h.take_sent());
    h.feed(&challenge(&first));
    let last = server.last(&h.take_sent());
    h.feed(&format!(
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
        sasl::encode(last.as_bytes())
    ));
    assert_eq!(h.take_sent(), CLIENT_HEADER);
    h.feed(&format!("{SERVER_HEADER}{FEATURES_BIND}"));
    let id = h.last_iq_id();
    assert_eq!(h.take_sent(), BIND_REQUEST);
    h.feed(&bind_result(&id));
    assert!(matches!(&h.take_events()[..], [ClientEvent::Online { .. }]));
}

#[test]
fn scram_server_final_in_a_challenge_then_empty_success() {
    let mut h = Harness::new(config());
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    let mut server = ScramServer::new("alice-pass");
    let first = server.first(&h.take_sent());
    h.feed(&challenge(&first));
    let last = server.last(&h.take_sent());
    h.feed(&challenge(&last));
    assert_eq!(
        h.take_sent(),
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    h.feed(SUCCESS);
    assert_eq!(h.take_sent(), CLIENT_HEADER);
    assert!(h.take_events().is_empty());
}

#[test]
fn scram_with_a_server_that_does_not_know_the_password() {
    let mut h = Harness::new(config());
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    let mut server = ScramServer::new("another-password");
    let first = server.first(&h.take_sent());
    h.feed(&challenge(&first));
    let sent = h.take_sent();
    // The server cannot check the proof here; it answers with its own signature.
    let payload = sent
        .strip_prefix("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
        .unwrap();
    assert!(payload.ends_with("</response>"));
    let forged = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    h.feed(&format!(
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
        sasl::encode(forged.as_bytes())
    ));
    assert_eq!(
        h.take_sent(),
        "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:stream>"
    );
    let error = h.failure();
    assert!(matches!(
        error,
        ClientError::Sasl(SaslError::InvalidServerSignature)
    ));
    // Success without any signature is refused too.
    let mut h = Harness::new(config());
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    let mut server = ScramServer::new("alice-pass");
    let first = server.first(&h.take_sent());
    h.feed(&challenge(&first));
    h.feed(SUCCESS);
    assert!(matches!(
        h.failure(),
        ClientError::Sasl(SaslError::Malformed(_))
    ));
}

#[test]
fn scram_refuses_an_absurd_iteration_count() {
    let mut h = Harness::new(config());
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    let mut server = ScramServer::new("alice-pass");
    server.iterations = 10_000_000;
    let first = server.first(&h.take_sent());
    h.feed(&challenge(&first));
    assert!(matches!(
        h.failure(),
        ClientError::Sasl(SaslError::IterationsOutOfRange(10_000_000))
    ));
}

#[test]
fn wrong_password_is_a_clear_sasl_failure() {
    let mut h = Harness::plain();
    h.connect();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    h.take_sent();
    h.feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>Unable to authorize you with the authentication credentials you&apos;ve sent.</text></failure>");
    assert_eq!(h.take_sent(), "</stream:stream>");
    let error = h.failure();
    assert_eq!(error.condition(), Some("not-authorized"));
    assert_eq!(
        error.to_string(),
        "authentication failed: not-authorized (Unable to authorize you with the authentication credentials you've sent.)"
    );
    assert!(h.client.is_closed());
    // Nothing more happens after a failure.
    h.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    assert!(h.take_events().is_empty());
    assert_eq!(h.take_sent(), "");
}

#[test]
fn stream_errors_are_reported_with_condition_and_text() {
    let mut h = Harness::plain();
    h.connect();
    h.feed(&format!("{SERVER_HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>This server does not serve example.org</text></stream:error></stream:stream>"));
    let error = h.failure();
    assert!(
        matches!(&error, ClientError::Stream { condition, text }
            if condition == "host-unknown" && text.as_deref() == Some("This server does not serve example.org")),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "stream error: host-unknown (This server does not serve example.org)"
    );
    // While online too.
    let mut h = Harness::plain();
    h.login_plain();
    h.feed("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    assert_eq!(h.take_sent(), "</stream:stream>");
    assert_eq!(h.failure().condition(), Some("conflict"));
}

#[test]
fn malformed_xml_closes_with_a_stream_error() {
    let mut h = Harness::plain();
    h.login_plain();
    h.feed("<message><body></message>");
    assert_eq!(
        h.take_sent(),
        "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(matches!(h.failure(), ClientError::Parse(_)));
    // A header in the wrong namespace.
    let mut h = Harness::plain();
    h.connect();
    h.take_sent();
    h.feed("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>");
    assert_eq!(
        h.take_sent(),
        "<stream:error><invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(matches!(h.failure(), ClientError::Protocol(_)));
}

#[test]
fn starttls_then_plain_over_tls() {
    // PLAIN is allowed once TLS is up, even without allow_plain_without_tls.
    let config = ClientConfig::new("alice@localhost/test", "alice-pass")
        .unwrap()
        .mechanisms([Mechanism::Plain]);
    let mut h = Harness::new(config);
    h.connect();
    h.take_sent();
    h.feed(&format!("{SERVER_HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"));
    assert_eq!(
        h.take_sent(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(h.take_events().is_empty());
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(&h.take_events()[..], [ClientEvent::StartTls]));
    assert_eq!(h.take_sent(), "");
    // TLS bytes must not reach the core; if they do, they are ignored.
    h.feed("\x16\x03\x01");
    assert!(h.take_events().is_empty());
    h.client.handle_tls_established(h.now);
    h.drain();
    assert!(h.client.is_tls_active());
    assert_eq!(h.take_sent(), CLIENT_HEADER);
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    assert_eq!(h.take_sent(), PLAIN_AUTH);
}

#[test]
fn tls_policies() {
    let offered = format!(
        "{SERVER_HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    );
    let required = format!(
        "{SERVER_HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
    );
    let none = format!("{SERVER_HEADER}{FEATURES_AUTH}");

    // Never: an offer is ignored, a requirement fails.
    let mut h = Harness::new(config().tls(TlsPolicy::Never));
    h.connect();
    h.take_sent();
    h.feed(&offered);
    assert_eq!(h.take_sent(), PLAIN_AUTH);
    let mut h = Harness::new(config().tls(TlsPolicy::Never));
    h.connect();
    h.feed(&required);
    assert!(matches!(h.failure(), ClientError::TlsRequiredByServer));

    // Required: no offer fails.
    let mut h = Harness::new(config().tls(TlsPolicy::Required));
    h.connect();
    h.take_sent();
    h.feed(&none);
    assert_eq!(h.take_sent(), "</stream:stream>");
    let error = h.failure();
    assert!(matches!(error, ClientError::TlsUnavailable));
    assert_eq!(
        error.to_string(),
        "TLS is required by the client's policy but the server does not offer STARTTLS"
    );

    // The server refuses STARTTLS.
    let mut h = Harness::new(config());
    h.connect();
    h.feed(&offered);
    h.feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
    assert!(matches!(h.failure(), ClientError::TlsRefused));

    // The runtime cannot do TLS.
    let mut h = Harness::new(config());
    h.connect();
    h.feed(&offered);
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(&h.take_events()[..], [ClientEvent::StartTls]));
    h.take_sent();
    h.client.handle_tls_failed(h.now, "no TLS support");
    h.drain();
    assert_eq!(h.take_sent(), "", "nothing in the clear after <proceed/>");
    assert_eq!(h.failure().to_string(), "TLS: no TLS support");
}

#[test]
fn plain_needs_tls_unless_allowed() {
    let strict = ClientConfig::new("alice@localhost", "alice-pass").unwrap();
    let mut h = Harness::new(strict);
    h.connect();
    h.feed(&format!("{SERVER_HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>DIGEST-MD5</mechanism></mechanisms></stream:features>"));
    let error = h.failure();
    assert!(
        matches!(&error, ClientError::NoCommonMechanism { offered, plain_needs_tls: true, .. }
            if offered == &["PLAIN", "DIGEST-MD5"]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "no common SASL mechanism: the server offers [\"PLAIN\", \"DIGEST-MD5\"], the client allows [ScramSha1, Plain] (PLAIN is offered but not allowed without TLS)"
    );
    // SCRAM only, and the server has only PLAIN.
    let mut h = Harness::new(config().mechanisms([Mechanism::ScramSha1]));
    h.connect();
    h.feed(&format!("{SERVER_HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"));
    assert!(matches!(
        h.failure(),
        ClientError::NoCommonMechanism {
            plain_needs_tls: false,
            ..
        }
    ));
}

#[test]
fn bind_without_resource_and_required_session() {
    let config = ClientConfig::new("alice@localhost", "alice-pass")
        .unwrap()
        .allow_plain_without_tls(true)
        .mechanisms([Mechanism::Plain])
        .initial_presence(None);
    let mut h = Harness::new(config);
    h.connect();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    h.feed(SUCCESS);
    h.take_sent();
    // An older server: the session is not optional.
    h.feed(&format!("{SERVER_HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>"));
    let id = h.last_iq_id();
    assert_eq!(
        h.take_sent(),
        "<iq id='{id}' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    );
    h.feed(&format!("<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/1234-abcd</jid></bind></iq>"));
    let id = h.last_iq_id();
    assert_eq!(
        h.take_sent(),
        "<iq id='{id}' type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    );
    assert!(h.take_events().is_empty());
    h.feed(&format!("<iq type='result' id='{id}'/>"));
    // No initial presence configured.
    assert_eq!(h.take_sent(), "");
    let events = h.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Online { jid }] if jid.to_string() == "alice@localhost/1234-abcd"),
        "{events:?}"
    );
}

#[test]
fn bind_errors() {
    let mut h = Harness::plain();
    h.connect();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    h.feed(SUCCESS);
    h.feed(&format!("{SERVER_HEADER}{FEATURES_BIND}"));
    let id = h.last_iq_id();
    h.take_sent();
    h.feed(&format!("<iq type='error' id='{id}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    let error = h.failure();
    assert!(
        matches!(&error, ClientError::Bind(e) if e.condition == Condition::Conflict),
        "{error:?}"
    );
    // A result without a JID is a protocol violation.
    let mut h = Harness::plain();
    h.connect();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    h.feed(SUCCESS);
    h.feed(&format!("{SERVER_HEADER}{FEATURES_BIND}"));
    let id = h.last_iq_id();
    h.feed(&format!("<iq type='result' id='{id}'/>"));
    assert!(matches!(h.failure(), ClientError::Protocol(_)));
}

/// The server's side of a PLAIN login, turn by turn; a turn may depend on what the client
/// wrote before it.
fn plain_script() -> Vec<fn(&Harness) -> String> {
    vec![
        |_| format!("{SERVER_HEADER}{FEATURES_AUTH}"),
        |_| SUCCESS.to_string(),
        |_| format!("{SERVER_HEADER}{FEATURES_BIND}"),
        |h| bind_result(&h.last_iq_id()),
        |_| {
            "<message from='bob@localhost/x' type='chat'><body>é</body></message><iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>".to_string()
        },
    ]
}

/// Runs the script, splitting `split_turn` at `split_at` (or feeding it byte by byte when
/// `split_at` is `None`); returns what the client wrote and reported, ids normalised.
fn run_script(split_turn: usize, split_at: Option<usize>) -> (String, Vec<String>) {
    let mut h = Harness::plain();
    h.connect();
    for (turn, script) in plain_script().into_iter().enumerate() {
        let text = script(&h);
        if turn != split_turn {
            h.feed(&text);
            continue;
        }
        let bytes = text.as_bytes();
        match split_at {
            Some(at) => {
                h.client.handle_input(h.now, &bytes[..at]);
                h.client.handle_input(h.now, &bytes[at..]);
            }
            None => {
                for b in bytes {
                    h.client.handle_input(h.now, std::slice::from_ref(b));
                }
            }
        }
        h.drain();
    }
    let events = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            ClientEvent::Stanza(s) => xml::to_string(&s),
            other => format!("{other:?}"),
        })
        .collect();
    (h.take_sent(), events)
}

#[test]
fn every_split_point_gives_the_same_result() {
    let reference = run_script(usize::MAX, None);
    assert_eq!(
        reference.1,
        [
            "Online { jid: FullJid(\"alice@localhost/test\") }",
            "<message xmlns='jabber:client' from='bob@localhost/x' type='chat'><body>é</body></message>",
            "<iq xmlns='jabber:client' from='localhost' id='p1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
            "Closed",
        ]
    );
    assert_eq!(
        reference.0,
        format!(
            "{CLIENT_HEADER}{PLAIN_AUTH}{CLIENT_HEADER}{BIND_REQUEST}<presence id='{{id}}'/></stream:stream>"
        )
    );
    let h = Harness::plain();
    let lengths: Vec<usize> = plain_script()
        .iter()
        .enumerate()
        .map(|(turn, script)| {
            if turn == 3 {
                bind_result("00000000-0000-0000-0000-000000000000").len()
            } else {
                script(&h).len()
            }
        })
        .collect();
    for (turn, len) in lengths.into_iter().enumerate() {
        for at in 0..=len {
            assert_eq!(
                run_script(turn, Some(at)),
                reference,
                "turn {turn} split at {at}"
            );
        }
        assert_eq!(
            run_script(turn, None),
            reference,
            "turn {turn} byte by byte"
        );
    }
}

#[test]
fn login_timeout() {
    let mut h = Harness::plain();
    h.connect();
    let deadline = h.start + Duration::from_secs(10);
    assert_eq!(h.client.poll_timeout(), Some(deadline));
    h.feed(SERVER_HEADER);
    h.take_sent();
    h.advance(Duration::from_secs(9));
    assert!(h.take_events().is_empty());
    assert_eq!(h.take_sent(), "");
    // A spurious early wakeup does nothing.
    h.client.handle_timeout(h.now);
    h.drain();
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.take_sent(),
        "<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    let error = h.failure();
    assert_eq!(
        error.to_string(),
        "timed out waiting for the stream features"
    );
    assert_eq!(h.client.poll_timeout(), None);

    // The timeout covers the whole login, and stops once online.
    let mut h = Harness::new(
        config()
            .mechanisms([Mechanism::Plain])
            .login_timeout(Duration::from_secs(3)),
    );
    h.connect();
    h.feed(&format!("{SERVER_HEADER}{FEATURES_AUTH}"));
    h.advance(Duration::from_secs(2));
    h.feed(SUCCESS);
    h.feed(&format!("{SERVER_HEADER}{FEATURES_BIND}"));
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.failure().to_string(),
        "timed out waiting for resource binding"
    );
}

#[test]
fn close_timeout_and_keepalive() {
    let mut h = Harness::new(
        config()
            .mechanisms([Mechanism::Plain])
            .keepalive(Some(Duration::from_secs(30))),
    );
    h.login_plain();
    let online_at = h.now;
    assert_eq!(
        h.client.poll_timeout(),
        Some(online_at + Duration::from_secs(30))
    );
    h.advance(Duration::from_secs(30));
    assert_eq!(h.take_sent(), " ");
    assert_eq!(
        h.client.poll_timeout(),
        Some(online_at + Duration::from_secs(60))
    );
    // Output resets the keepalive.
    h.advance(Duration::from_secs(10));
    h.client
        .send(h.now, xml::parse("<presence/>").unwrap())
        .unwrap();
    h.drain();
    h.take_sent();
    assert_eq!(
        h.client.poll_timeout(),
        Some(online_at + Duration::from_secs(70))
    );
    h.client.close(h.now);
    h.drain();
    assert_eq!(h.take_sent(), "</stream:stream>");
    let closing_at = h.now;
    assert_eq!(
        h.client.poll_timeout(),
        Some(closing_at + Duration::from_secs(2))
    );
    h.advance(Duration::from_secs(2));
    assert!(matches!(&h.take_events()[..], [ClientEvent::Closed]));
    assert_eq!(h.take_sent(), "");
}

#[test]
fn end_of_connection() {
    // The socket ends while online: the connection is lost.
    let mut h = Harness::plain();
    h.login_plain();
    h.client.handle_eof(h.now);
    h.drain();
    assert!(matches!(h.failure(), ClientError::ConnectionLost));
    assert_eq!(h.take_sent(), "");
    // The server closes the stream during the login.
    let mut h = Harness::plain();
    h.connect();
    h.feed(&format!("{SERVER_HEADER}</stream:stream>"));
    assert_eq!(
        h.failure().to_string(),
        "the server closed the stream waiting for the stream features"
    );
    // The server closes the stream while online: a normal end.
    let mut h = Harness::plain();
    h.login_plain();
    h.feed("</stream:stream>");
    assert_eq!(h.take_sent(), "</stream:stream>");
    assert!(matches!(&h.take_events()[..], [ClientEvent::Closed]));
}

#[test]
fn unexpected_elements_during_login_are_protocol_errors() {
    let mut h = Harness::plain();
    h.connect();
    h.feed(SERVER_HEADER);
    h.take_sent();
    h.feed("<message><body>too early</body></message>");
    assert_eq!(
        h.take_sent(),
        "<stream:error><unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert_eq!(
        h.failure().to_string(),
        "protocol violation: unexpected <message xmlns='jabber:client'> waiting for the stream features"
    );
}

#[test]
fn config_checks_and_redacts() {
    assert!(matches!(
        ClientConfig::new("localhost", "x"),
        Err(ClientError::Config(_))
    ));
    assert!(matches!(
        ClientConfig::new("a@b@c", "x"),
        Err(ClientError::InvalidJid(..))
    ));
    let c = ClientConfig::new("alice@localhost", "secret-pass")
        .unwrap()
        .address("127.0.0.1:5223");
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 5223));
    assert_eq!(c.socket_address(), "127.0.0.1:5223");
    assert_eq!(c.domain, "localhost");
    assert!(!format!("{c:?}").contains("secret-pass"));
    let c = c.address("[::1]:5222");
    assert_eq!(c.socket_address(), "[::1]:5222");
}

#[test]
fn inbox_keeps_what_does_not_match_and_explains_a_failed_wait() {
    use exampple_core::client::Inbox;
    use exampple_core::matching::Match;
    let mut inbox = Inbox::default();
    let stanza = |s: &str| xml::parse_in(s, "jabber:client").unwrap();
    inbox.push(stanza("<presence from='bob@localhost/x'/>"));
    inbox.push(stanza("<iq type='result' id='a1' from='localhost'/>"));
    inbox.push(stanza(
        "<message from='bob@localhost/x' type='chat'><body>hi</body></message>",
    ));
    assert!(inbox.take_response("zz").is_none());
    assert_eq!(inbox.take_response("a1").unwrap().attr("id"), Some("a1"));
    let pattern = xml::parse("<message type='groupchat'/>").unwrap();
    assert!(inbox.take_match(&pattern, Match::Subset).is_none());
    assert_eq!(inbox.len(), 2);
    let error = inbox.wait_error(Some(&pattern), Match::Subset, Duration::from_millis(200));
    assert_eq!(
        error.to_string(),
        "timed out after 200ms waiting for a stanza matching (Subset):
  <message xmlns='jabber:client' type='groupchat'/>
received meanwhile (2):
- /presence: element name: expected <message>, found <presence>
  <presence xmlns='jabber:client' from='bob@localhost/x'/>
- /message: attribute type: expected 'groupchat', found 'chat'
  <message xmlns='jabber:client' from='bob@localhost/x' type='chat'>
    <body>hi</body>
  </message>"
    );
    inbox.end("closed");
    let error = inbox.wait_error(None, Match::Subset, Duration::from_secs(1));
    assert!(
        error.to_string().starts_with(
            "the connection ended (closed) waiting for a response\nreceived meanwhile (2):"
        ),
        "{error}"
    );
    assert_eq!(inbox.pop().unwrap().name(), "presence");
}
