//! The XEP-0114 stream, wire level: opening, handshake, stream errors, keepalives,
//! reconnect backoff, the disconnected queue, close, chunking and hostile bytes.

use std::time::{Duration, Instant};

use exampple_core::component::{Disconnect, Event, handshake_digest};
use exampple_core::{AutoConnect, Component, ComponentError, Config, Router, xml};
use proptest::prelude::*;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>";

fn config() -> Config {
    Config::new("component.localhost", "123456")
}

fn events(c: &mut Component) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The one event the component has: a disconnection, with why and when it reconnects.
fn disconnected(c: &mut Component) -> (Disconnect, Instant) {
    let mut evs = events(c);
    match evs.pop() {
        Some(Event::Disconnected {
            reason,
            reconnect_at,
        }) if evs.is_empty() => (reason, reconnect_at),
        last => panic!("{evs:?} then {last:?}"),
    }
}

fn transmit(c: &mut Component) -> String {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend(b);
    }
    String::from_utf8(out).unwrap()
}

/// Connects the component (the TCP connection is up): it writes its stream header.
fn connect(c: &mut Component, now: Instant) {
    c.connect(now);
    c.handle_connected(now);
}

/// Connects and opens the stream (the server's header): the component sends its handshake.
fn open_stream(c: &mut Component, now: Instant) {
    connect(c, now);
    c.handle_input(now, SERVER_HEADER.as_bytes());
}

/// Connects and returns the component online, with its output drained.
/// The reconnection due at `at`: connects, opens the stream and completes the handshake
/// (what the component writes after the handshake is left for the caller to read).
fn handshake_again(c: &mut Component, at: Instant) {
    c.handle_timeout(at);
    assert!(matches!(events(c).as_slice(), [Event::Connect { .. }]));
    c.handle_connected(at);
    c.handle_input(at, SERVER_HEADER.as_bytes());
    transmit(c);
    c.handle_input(at, b"<handshake/>");
}

/// A controller that answers a ping with an empty result.
fn ping(
    conn: exampple_core::Conn,
    _: Vec<exampple_core::Element>,
) -> Result<(), exampple_core::StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

fn online(config: Config, router: Router, now: Instant) -> Component {
    let mut c = Component::new(config, router, now).unwrap();
    c.connect(now);
    assert!(
        matches!(events(&mut c).as_slice(), [Event::Connect { address }] if address == "127.0.0.1:5252")
    );
    c.handle_connected(now);
    c.handle_input(now, SERVER_HEADER.as_bytes());
    c.handle_input(now, b"<handshake/>");
    transmit(&mut c);
    assert!(
        matches!(events(&mut c).as_slice(), [Event::Online { stream_id }] if stream_id == "sid")
    );
    c
}

#[test]
fn opening_sends_header_and_full_digest() {
    let now = Instant::now();
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    assert!(events(&mut c).is_empty(), "auto_connect defaults to never");
    c.connect(now);
    events(&mut c);
    c.handle_connected(now);
    assert_eq!(
        transmit(&mut c),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='component.localhost'>"
    );
    c.handle_input(now, SERVER_HEADER.as_bytes());
    // The xmpp-parsers test vector.
    assert_eq!(
        transmit(&mut c),
        "<handshake>9accec263ab84a43c6037ccf7cd48cb1d3f6df8e</handshake>"
    );
    c.handle_input(now, b"<handshake/>");
    assert!(c.is_online());
}

#[test]
fn digest_keeps_leading_zeros() {
    // exampple printed the digest as an integer and lost leading zero nibbles.
    let (id, digest) = (0u32..)
        .map(|i| {
            let id = format!("stream-{i}");
            let d = handshake_digest(&id, "secret");
            (id, d)
        })
        .find(|(_, d)| d.starts_with('0'))
        .unwrap();
    assert_eq!(digest.len(), 40);
    let now = Instant::now();
    let mut c = Component::new(
        Config::new("component.localhost", "secret"),
        Router::new(),
        now,
    )
    .unwrap();
    connect(&mut c, now);
    transmit(&mut c);
    let header = SERVER_HEADER.replace("id='sid'", &format!("id='{id}'"));
    c.handle_input(now, header.as_bytes());
    assert_eq!(transmit(&mut c), format!("<handshake>{digest}</handshake>"));
    assert_eq!(
        handshake_digest("16272490714779491840", "guest"),
        "d9707615095682a1dee89bc578239e82ef4560ed"
    );
}

#[test]
fn wrong_secret_fails_with_condition_and_text() {
    let now = Instant::now();
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    open_stream(&mut c, now);
    events(&mut c);
    c.handle_input(
        now,
        b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
          <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Invalid handshake</text></stream:error></stream:stream>",
    );
    let evs = events(&mut c);
    let [Event::Failed(ComponentError::Rejected(error))] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(error.condition, "not-authorized");
    assert_eq!(error.text.as_deref(), Some("Invalid handshake"));
    assert!(c.is_stopped());
    assert_eq!(
        c.poll_timeout(),
        None,
        "no reconnect after a permanent failure"
    );
}

#[test]
fn healing_stream_error_reconnects_with_capped_backoff() {
    let now = Instant::now();
    let cfg = config().reconnect_backoff(Duration::from_millis(100), Duration::from_secs(2));
    let mut c = Component::new(cfg, Router::new(), now).unwrap();
    open_stream(&mut c, now);
    events(&mut c);
    c.handle_input(
        now,
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    let (reason, reconnect_at) = disconnected(&mut c);
    let Disconnect::StreamError(e) = reason else {
        panic!("{reason:?}")
    };
    // (A conflict waits the longest backoff from the start: see tests/drain.rs.)
    assert_eq!(e.condition, "system-shutdown");
    let mut delays = vec![reconnect_at - now];
    let mut t = reconnect_at;
    for _ in 0..12 {
        c.handle_timeout(t);
        assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
        c.handle_connect_failed(t, "connection refused");
        let (reason, reconnect_at) = disconnected(&mut c);
        assert!(matches!(reason, Disconnect::ConnectFailed(_)), "{reason:?}");
        delays.push(reconnect_at - t);
        t = reconnect_at;
    }
    assert!(
        delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100),
        "{delays:?}"
    );
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(2)),
        "capped: {delays:?}"
    );
    assert!(
        delays.last().unwrap() >= &Duration::from_secs(1),
        "grows: {delays:?}"
    );
}

#[test]
fn auto_connect_after_delay() {
    let now = Instant::now();
    let mut c = Component::new(
        config().auto_connect(AutoConnect::After(Duration::from_millis(250))),
        Router::new(),
        now,
    )
    .unwrap();
    assert!(events(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(250)));
    c.handle_timeout(now + Duration::from_millis(100));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(now + Duration::from_millis(250));
    assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
    let mut c = Component::new(
        config().auto_connect(AutoConnect::Immediately),
        Router::new(),
        now,
    )
    .unwrap();
    assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
}

#[test]
fn stanzas_sent_while_disconnected_are_queued_and_bounded() {
    let now = Instant::now();
    let mut c = Component::new(config().max_queue(2), Router::new(), now).unwrap();
    c.send(
        now,
        xml::parse("<iq type='get' from='component.localhost' to='you' id='1'/>").unwrap(),
    )
    .unwrap();
    c.send(now, xml::parse("<message to='you' id='2'/>").unwrap())
        .unwrap();
    assert_eq!(
        c.send(now, xml::parse("<message to='you' id='3'/>").unwrap()),
        Err(exampple_core::SendError::QueueFull(2))
    );
    assert_eq!(c.queued(), 2);
    open_stream(&mut c, now);
    transmit(&mut c);
    c.handle_input(now, b"<handshake/>");
    assert_eq!(
        transmit(&mut c),
        "<iq from='component.localhost' id='1' to='you' type='get'/><message id='2' to='you'/>"
    );
}

#[test]
fn set_from_and_auto_id() {
    let now = Instant::now();
    let mut c = online(
        config().set_from(true).auto_generate_id(true),
        Router::new(),
        now,
    );
    c.send(
        now,
        xml::parse("<message from='someone@else' to='you'/>").unwrap(),
    )
    .unwrap();
    let out = transmit(&mut c);
    let el = xml::parse(&out).unwrap();
    assert_eq!(el.attr("from"), Some("component.localhost"));
    let id = el.attr("id").unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
}

#[test]
fn payload_namespaces_are_kept_without_redundant_declarations() {
    let now = Instant::now();
    let mut c = online(config(), Router::new(), now);
    let stanza =
        xml::parse("<message to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x></message>").unwrap();
    c.send(now, stanza).unwrap();
    assert_eq!(
        transmit(&mut c),
        "<message to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x></message>"
    );
    // A stanza built in jabber:client by mistake is put in the component namespace.
    let stanza = xml::parse_in(
        "<message to='a@b'><body>hi</body></message>",
        "jabber:client",
    )
    .unwrap();
    c.send(now, stanza).unwrap();
    assert_eq!(
        transmit(&mut c),
        "<message to='a@b'><body>hi</body></message>"
    );
}

#[test]
fn malformed_xml_gets_not_well_formed_and_reconnect() {
    for (input, condition) in [
        (&b"<iq></message>"[..], "not-well-formed"),
        (b"<iq>\xff</iq>", "not-well-formed"),
        (b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]><x/>", "restricted-xml"),
        (b"<!-- comment -->", "restricted-xml"),
        (b"stray text<iq/>", "bad-format"),
    ] {
        let now = Instant::now();
        let mut c = online(config(), Router::new(), now);
        c.handle_input(now, input);
        assert_eq!(
            transmit(&mut c),
            format!(
                "<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
            )
        );
        let evs = events(&mut c);
        assert!(
            matches!(evs.as_slice(), [Event::Disconnected { reason: Disconnect::BadInput { condition: c, .. }, .. }] if *c == condition),
            "{evs:?}"
        );
    }
}

#[test]
fn oversized_stanza_gets_policy_violation() {
    let now = Instant::now();
    let mut c = online(config().max_stanza_size(4096), Router::new(), now);
    let big = format!(
        "<message to='component.localhost'><body>{}</body></message>",
        "x".repeat(10_000)
    );
    c.handle_input(now, big.as_bytes());
    assert!(transmit(&mut c).contains("<policy-violation"));
    let deep = "<a>".repeat(1000);
    let mut c = online(config(), Router::new(), now);
    c.handle_input(now, format!("<message>{deep}").as_bytes());
    assert!(transmit(&mut c).contains("<policy-violation"));
}

#[test]
fn wrong_stream_namespace_and_missing_id() {
    let now = Instant::now();
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    connect(&mut c, now);
    transmit(&mut c);
    c.handle_input(now, b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>");
    assert!(transmit(&mut c).contains("<invalid-namespace"));
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Connect { .. }, Event::Disconnected { .. }]
    ));

    let mut c = Component::new(config(), Router::new(), now).unwrap();
    connect(&mut c, now);
    transmit(&mut c);
    c.handle_input(now, b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>");
    assert_eq!(
        transmit(&mut c),
        "",
        "waits for a stream error that may explain"
    );
    c.handle_input(now, b"<handshake/>");
    assert!(transmit(&mut c).contains("<invalid-id"));

    // Prosody for an unknown domain: a header without an id, then host-unknown.
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    connect(&mut c, now);
    transmit(&mut c);
    events(&mut c);
    c.handle_input(
        now,
        b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>\
          <stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
    let evs = events(&mut c);
    assert!(
        matches!(evs.as_slice(), [Event::Failed(ComponentError::Rejected(e))] if e.condition == "host-unknown"),
        "{evs:?}"
    );
}

#[test]
fn stanzas_before_the_handshake_are_refused() {
    let now = Instant::now();
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    open_stream(&mut c, now);
    transmit(&mut c);
    events(&mut c);
    c.handle_input(now, b"<message to='component.localhost'/>");
    assert!(transmit(&mut c).contains("<not-authorized"));
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Disconnected { .. }]
    ));
}

#[test]
fn handshake_that_never_comes_times_out() {
    let now = Instant::now();
    let mut c = Component::new(
        config().handshake_timeout(Duration::from_secs(3)),
        Router::new(),
        now,
    )
    .unwrap();
    open_stream(&mut c, now);
    events(&mut c);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(3)));
    c.handle_timeout(now + Duration::from_secs(3));
    let (reason, _) = disconnected(&mut c);
    assert!(matches!(reason, Disconnect::HandshakeTimeout), "{reason:?}");
}

#[test]
fn keepalive_whitespace_then_ping_then_dead_peer() {
    let now = Instant::now();
    let cfg = config()
        .ping(Some(Duration::from_secs(30)))
        .ping_timeout(Duration::from_secs(10));
    // A route for every iq result: the keepalive's answer must not reach it.
    let router = Router::new().iq("", |ns| {
        ns.result(
            "",
            |_: exampple_core::Conn, _: Vec<exampple_core::Element>| {},
        )
    });
    let mut c = online(cfg, router, now);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(30)));
    // Input keeps the connection alive but output idles: a whitespace keepalive.
    c.handle_input(now + Duration::from_secs(20), b" ");
    c.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(transmit(&mut c), "\n");
    // Silence from the server: an XEP-0199 ping to the parent domain.
    let t = now + Duration::from_secs(50);
    c.handle_timeout(t);
    let out = transmit(&mut c);
    let ping = xml::parse(&out).unwrap();
    assert_eq!(ping.attr("to"), Some("localhost"));
    assert_eq!(ping.attr("type"), Some("get"));
    assert!(ping.get_child("ping", "urn:xmpp:ping").is_some());
    // Any answer keeps it alive ...
    c.handle_input(
        t + Duration::from_secs(1),
        format!(
            "<iq type='result' id='{}' from='localhost'/>",
            ping.attr("id").unwrap()
        )
        .as_bytes(),
    );
    c.handle_timeout(t + Duration::from_secs(11));
    assert!(events(&mut c).is_empty());
    // ... no answer ends the connection.
    let t = t + Duration::from_secs(31);
    c.handle_timeout(t);
    transmit(&mut c);
    c.handle_timeout(t + Duration::from_secs(10));
    let (reason, _) = disconnected(&mut c);
    assert!(matches!(reason, Disconnect::KeepaliveTimeout), "{reason:?}");
}

#[test]
fn server_close_and_own_close() {
    let now = Instant::now();
    let mut c = online(config(), Router::new(), now);
    c.handle_input(now, b"</stream:stream>");
    assert_eq!(transmit(&mut c), "</stream:stream>");
    let (reason, _) = disconnected(&mut c);
    assert!(matches!(reason, Disconnect::ServerClosed), "{reason:?}");

    let mut c = online(config(), Router::new(), now);
    c.close(now, Duration::from_secs(1));
    assert_eq!(transmit(&mut c), "</stream:stream>");
    assert!(events(&mut c).is_empty(), "waits for the server's close");
    c.handle_input(now, b"</stream:stream>");
    assert!(matches!(events(&mut c).as_slice(), [Event::Closed]));
    assert!(c.is_stopped());
}

#[test]
fn connection_lost_reconnects() {
    let now = Instant::now();
    let mut c = online(config(), Router::new(), now);
    c.handle_closed(now, "reset by peer");
    let (reason, reconnect_at) = disconnected(&mut c);
    let Disconnect::ConnectionLost(why) = reason else {
        panic!("{reason:?}")
    };
    assert_eq!(why, "reset by peer");
    c.handle_timeout(reconnect_at);
    assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
}

/// Once the runtime says the server ended its side, stanzas sent are kept for the next
/// connection instead of written to this one, and answers too; the server's last bytes
/// (here a stream error and its close) are still read and acted on.
#[test]
fn stanzas_sent_after_the_server_ended_wait_for_the_next_connection() {
    let now = Instant::now();
    let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
    let mut c = online(config(), router, now);
    let sender = c.sender();

    // Before: written at once.
    sender
        .send(xml!("<message to='a@localhost' id='before'/>"))
        .unwrap();
    c.handle_outbox(now);
    assert_eq!(transmit(&mut c), "<message id='before' to='a@localhost'/>");

    c.handle_server_ended();
    sender
        .send(xml!("<message to='a@localhost' id='after'/>"))
        .unwrap();
    c.handle_outbox(now);
    // A request in the server's last bytes is routed; its answer is kept too.
    c.handle_input(
        now,
        b"<iq type='get' id='p1' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    while let Some(event) = c.poll_event() {
        if let Event::Dispatch(dispatch) = event {
            let _ = dispatch.run();
        }
    }
    c.handle_outbox(now);
    assert_eq!(
        transmit(&mut c),
        "",
        "nothing for a connection whose server is gone"
    );
    assert_eq!(c.queued(), 2);

    // The server's stream error and close still count.
    c.handle_input(
        now,
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
    let (reason, reconnect_at) = disconnected(&mut c);
    assert!(format!("{reason}").contains("system-shutdown"), "{reason}");
    c.handle_closed(now, "eof");
    transmit(&mut c);

    // The next connection gets them, after its handshake.
    handshake_again(&mut c, reconnect_at);
    assert_eq!(
        transmit(&mut c),
        "<message id='after' to='a@localhost'/><iq from='component.localhost' id='p1' to='u@localhost/r' type='result'/>"
    );
    // And this connection is written to again.
    sender
        .send(xml!("<message to='a@localhost' id='later'/>"))
        .unwrap();
    c.handle_outbox(reconnect_at);
    assert_eq!(transmit(&mut c), "<message id='later' to='a@localhost'/>");
}

fn stream_bytes() -> Vec<u8> {
    let mut s = String::from(SERVER_HEADER);
    s.push_str("<handshake/>\n");
    s.push_str("<message from='a@localhost/r' to='component.localhost' type='chat' id='m1'><body>é 𝄞 日本語 &lt;&amp; &#x1F600;<![CDATA[<raw>]]></body><x:y xmlns:x='urn:x' a='1'/></message>  ");
    s.push_str("<presence from='b@localhost/r' to='component.localhost'/>");
    s.push_str("<iq type='get' id='i1' from='c@localhost/r' to='component.localhost'><query xmlns='urn:q'/></iq>");
    s.into_bytes()
}

/// Runs the whole stream through a router that echoes every stanza it gets to the
/// requester and returns what the component sent.
fn run_chunked(chunks: &[&[u8]]) -> Vec<String> {
    use exampple_core::Conn;
    let now = Instant::now();
    let router = Router::new().fallback(|conn: Conn, _p: Vec<exampple_core::Element>| {
        let _ = conn.send(conn.stanza().clone());
    });
    let mut c = Component::new(config(), router, now).unwrap();
    connect(&mut c, now);
    transmit(&mut c);
    let mut out = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        c.handle_input(now, chunk);
        while let Some(ev) = c.poll_event() {
            if let Event::Dispatch(d) = ev {
                let _ = d.run();
            }
        }
        c.handle_outbox(now);
        let bytes = transmit(&mut c);
        if i > 0 || !bytes.starts_with("<handshake>") {
            out.push_str(&bytes);
        } else if let Some(end) = bytes.find("</handshake>") {
            out.push_str(&bytes[end + "</handshake>".len()..]);
        }
    }
    c.handle_outbox(now);
    out.push_str(&transmit(&mut c));
    let out = out.replace(
        &format!(
            "<handshake>{}</handshake>",
            handshake_digest("sid", "123456")
        ),
        "",
    );
    xml::parse_all(&out)
        .unwrap()
        .iter()
        .map(xml::to_string)
        .collect()
}

#[test]
fn every_split_point_gives_the_same_stanzas() {
    let bytes = stream_bytes();
    let whole = {
        // Collect with a single chunk.
        let now = Instant::now();
        let _ = now;
        run_chunked(&[&bytes])
    };
    assert_eq!(whole.len(), 3, "{whole:?}");
    for split in 1..bytes.len() {
        let (a, b) = bytes.split_at(split);
        assert_eq!(run_chunked(&[a, b]), whole, "split at {split}");
    }
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run_chunked(&one_by_one), whole);
}

/// An event's name, as the drivers below note them.
fn event_name(event: &Event) -> String {
    format!("{event:?}")
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("")
        .to_string()
}

/// A router that echoes every stanza back and notes its id, for the drivers below.
fn echo_router(routed: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Router {
    use exampple_core::Conn;
    Router::new().fallback(move |conn: Conn, _p: Vec<exampple_core::Element>| {
        routed.lock().unwrap().push(format!(
            "{}#{}",
            conn.stanza().name(),
            conn.id().unwrap_or("")
        ));
        let _ = conn.send(conn.stanza().clone());
    })
}

/// Drives a component through `chunks` of server input, either with `handle_input` or, as
/// a runtime that reads on another thread does, with its own `stream_lexer` and
/// `handle_tokens`; returns everything it wrote and the events it gave, in order.
fn drive(chunks: &[&[u8]], lex_elsewhere: bool) -> (String, Vec<String>) {
    drive_noting(chunks, lex_elsewhere).0
}

/// A component with the echo router, connected (its header sent), at `now`, and the list
/// its router writes the stanzas it gets to.
fn connected_echo(now: Instant) -> (Component, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let routed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut c = Component::new(config(), echo_router(routed.clone()), now).unwrap();
    connect(&mut c, now);
    (c, routed)
}

/// Like `drive`, also returning the stanzas the router got (by name and id).
fn drive_noting(chunks: &[&[u8]], lex_elsewhere: bool) -> ((String, Vec<String>), Vec<String>) {
    use exampple_core::parser::Tokens;
    let now = Instant::now();
    let (mut c, routed) = connected_echo(now);
    let mut lexer = c.stream_lexer();
    let mut written = transmit(&mut c);
    let mut seen = Vec::new();
    for chunk in chunks {
        if lex_elsewhere {
            let mut tokens = Tokens::default();
            lexer.lex(chunk, &mut tokens);
            c.handle_tokens(now, &mut tokens);
            assert!(tokens.is_empty(), "handle_tokens takes everything");
        } else {
            c.handle_input(now, chunk);
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Dispatch(d) => {
                    let _ = d.run();
                }
                other => seen.push(event_name(&other)),
            }
        }
        c.handle_outbox(now);
        written.push_str(&transmit(&mut c));
    }
    let routed = routed.lock().unwrap().clone();
    ((written, seen), routed)
}

/// Server inputs for `drive`: a good stream, and streams that end in each way.
fn server_inputs() -> Vec<Vec<u8>> {
    let good = stream_bytes();
    let mut bad_xml = good.clone();
    bad_xml.extend_from_slice(b"<iq type='get' id='2'></message><presence/>");
    let mut closed = good.clone();
    closed.extend_from_slice(b"</stream:stream>");
    let mut too_deep = good.clone();
    too_deep.extend_from_slice(&b"<a>".repeat(100));
    let stream_error = format!(
        "{SERVER_HEADER}<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    .into_bytes();
    vec![good, bad_xml, closed, too_deep, stream_error]
}

fn chunked<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        i += 1;
    }
    chunks
}

#[test]
fn lexing_elsewhere_ends_streams_the_same_way() {
    for input in server_inputs() {
        let (written, events) = drive(&[&input], true);
        assert_eq!((written.clone(), events.clone()), drive(&[&input], false));
        assert!(written.contains("<handshake>"), "{written}");
    }
    // The bad inputs do end the stream, each with its stream error or disconnect.
    let ends: Vec<Vec<String>> = server_inputs()
        .iter()
        .map(|i| drive(&[i], true).1)
        .collect();
    assert_eq!(ends[0], ["Connect", "Online"]);
    for end in &ends[1..] {
        assert!(
            matches!(
                end.last().map(String::as_str),
                Some("Disconnected" | "Failed")
            ),
            "{ends:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn lexing_elsewhere_is_handle_input(
        sizes in proptest::collection::vec(1usize..64, 1..50),
        which in 0usize..5,
    ) {
        let input = &server_inputs()[which];
        let chunks = chunked(input, &sizes);
        prop_assert_eq!(drive(&chunks, true), drive(&chunks, false));
    }

    #[test]
    fn any_chunking_gives_the_same_stanzas(sizes in proptest::collection::vec(1usize..40, 1..200)) {
        let bytes = stream_bytes();
        let whole = run_chunked(&[&bytes]);
        prop_assert_eq!(run_chunked(&chunked(&bytes, &sizes)), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(prefix in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let now = Instant::now();
        let mut c = Component::new(config(), Router::new(), now).unwrap();
        connect(&mut c, now);
        if prefix {
            c.handle_input(now, SERVER_HEADER.as_bytes());
            c.handle_input(now, b"<handshake/>");
        }
        for chunk in data.chunks(97) {
            c.handle_input(now, chunk);
        }
        while c.poll_event().is_some() {}
        let _ = c.poll_transmit();
        c.handle_timeout(now + Duration::from_secs(60));
    }

    #[test]
    fn arbitrary_stanza_text_never_panics(body in "[ -~]{0,200}") {
        let now = Instant::now();
        let mut c = online(config(), Router::new(), now);
        c.handle_input(now, body.as_bytes());
        while c.poll_event().is_some() {}
        let _ = c.poll_transmit();
    }
}

/// The stream error the component sends for text between stanzas, and its close.
const BAD_FORMAT: &str = "<stream:error><bad-format xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";

/// A component connected with `router` that gets the server's opening, then `chunks`, one
/// by one, the way `how` says: through `handle_input` (0), or through a lexer of its own and
/// `handle_tokens` (1). (The same through the runtimes' shared lexer is tested in the
/// driver crate: `driver/tests/shared_lexer_stream.rs`.) Returns it, online or past that,
/// and what it wrote after each chunk.
fn fed_one_by_one(router: Router, chunks: &[&[u8]], how: usize) -> (Component, Vec<String>) {
    use exampple_core::parser::Tokens;
    let now = Instant::now();
    let mut c = Component::new(config(), router, now).unwrap();
    c.connect(now);
    c.handle_connected(now);
    let mut lexer = c.stream_lexer();
    let mut feed = |c: &mut Component, chunk: &[u8]| match how {
        0 => c.handle_input(now, chunk),
        1 => {
            let mut tokens = Tokens::default();
            lexer.lex(chunk, &mut tokens);
            c.handle_tokens(now, &mut tokens);
        }
        _ => unreachable!("way {how}"),
    };
    feed(&mut c, SERVER_HEADER.as_bytes());
    feed(&mut c, b"<handshake/>");
    transmit(&mut c);
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Connect { .. }, Event::Online { .. }]
    ));
    let written = chunks
        .iter()
        .map(|chunk| {
            feed(&mut c, chunk);
            transmit(&mut c)
        })
        .collect();
    (c, written)
}

/// A server that sends text after the header (or between stanzas) and nothing more: the
/// component answers with bad-format and closes at once, then reconnects, whichever way
/// its input is tokenised and however the text is cut.
#[test]
fn text_between_stanzas_ends_the_stream_at_once() {
    let now = Instant::now();
    for how in 0..2 {
        for chunks in [
            &[&b"hello"[..]][..],
            &[b"\n", b" \t", b"h", b"ello"],
            &[b"  he", b"llo"],
        ] {
            let (mut c, written) = fed_one_by_one(Router::new(), chunks, how);
            // Nothing for the whitespace; the error with the text's first character.
            let at = chunks
                .iter()
                .position(|c| c.iter().any(|b| !b.is_ascii_whitespace()))
                .unwrap();
            let mut expected = vec![String::new(); chunks.len()];
            expected[at] = BAD_FORMAT.to_string();
            assert_eq!(written, expected, "{chunks:?}, way {how}");
            let (reason, reconnect_at) = disconnected(&mut c);
            assert!(
                matches!(&reason, Disconnect::BadInput { condition: "bad-format", reason } if reason == "text outside of a stanza"),
                "{reason:?}"
            );
            c.handle_closed(now, "eof");
            assert!(events(&mut c).is_empty());
            c.handle_timeout(reconnect_at);
            assert!(matches!(events(&mut c).as_slice(), [Event::Connect { .. }]));
        }
    }
}

/// Whitespace keepalives between stanzas, in any cut, are still accepted, and stanzas
/// around them answered.
#[test]
fn whitespace_keepalives_between_stanzas_are_accepted() {
    let now = Instant::now();
    let request = |id: &str| {
        format!(
            "<iq type='get' id='{id}' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    };
    let (p1, p2) = (request("p1"), request("p2"));
    for how in 0..2 {
        let chunks: [&[u8]; 7] = [
            b"\n",
            b" ",
            p1.as_bytes(),
            b" \r\n\t ",
            &p2.as_bytes()[..5],
            &p2.as_bytes()[5..],
            b"\n\n",
        ];
        let router = Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping));
        let (mut c, _) = fed_one_by_one(router, &chunks, how);
        while let Some(event) = c.poll_event() {
            match event {
                Event::Dispatch(dispatch) => {
                    let _ = dispatch.run();
                }
                other => panic!("way {how}: {other:?}"),
            }
        }
        c.handle_outbox(now);
        assert_eq!(
            transmit(&mut c),
            "<iq from='component.localhost' id='p1' to='u@localhost/r' type='result'/>\
             <iq from='component.localhost' id='p2' to='u@localhost/r' type='result'/>",
            "way {how}"
        );
        assert!(c.is_online());
    }
}

/// A router answering pings, and delegated pings (XEP-0355) in their envelope.
fn ping_router() -> Router {
    Router::new()
        .envelope("urn:xmpp:delegation:2")
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
}

/// Gives `input` to an online component with the ping router, runs what it dispatches,
/// and returns what it wrote and whether it is still online.
fn answer_to(input: &str) -> (String, Vec<Event>) {
    let now = Instant::now();
    let mut c = online(config(), ping_router(), now);
    c.handle_input(now, input.as_bytes());
    let mut rest = Vec::new();
    while let Some(event) = c.poll_event() {
        match event {
            Event::Dispatch(dispatch) => {
                let _ = dispatch.run();
            }
            other => rest.push(other),
        }
    }
    c.handle_outbox(now);
    (transmit(&mut c), rest)
}

/// What may stand directly under a component stream: stanzas in `jabber:component:accept`
/// (its default namespace, declared again or bound to a prefix), and the stream's own
/// elements. Anything else, stanzas in `jabber:client` or `jabber:server` included, ends
/// the stream with unsupported-stanza-type (RFC 6120 §4.9.3.25), and what follows it in the
/// same read is not routed.
#[test]
fn only_component_stanzas_and_stream_elements_stand_under_the_stream() {
    let ping = |attrs: &str| {
        format!(
            "<iq{attrs} type='get' id='p' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    };
    let answer = "<iq from='component.localhost' id='p' to='u@localhost/r' type='result'/>";
    for (input, written) in [
        (ping(""), answer.to_string()),
        (ping(" xmlns='jabber:component:accept'"), answer.to_string()),
        (
            ping(" xmlns:c='jabber:component:accept'")
                .replace("<iq", "<c:iq")
                .replace("</iq>", "</c:iq>"),
            answer.to_string(),
        ),
        // Nothing to act on, nothing to refuse.
        (format!("<stream:features/>{}", ping("")), answer.to_string()),
        (format!("<handshake/>{}", ping("")), answer.to_string()),
        // A request a server delegates: in jabber:client, inside its envelope.
        (
            "<iq type='set' id='OUTER' from='localhost' to='component.localhost'>\
             <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <iq xmlns='jabber:client' type='get' id='INNER' from='alice@localhost/d' to='localhost'>\
             <ping xmlns='urn:xmpp:ping'/></iq></forwarded></delegation></iq>"
                .to_string(),
            "<iq from='component.localhost' id='OUTER' to='localhost' type='result'>\
             <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <iq xmlns='jabber:client' from='localhost' id='INNER' to='alice@localhost/d' type='result'/>\
             </forwarded></delegation></iq>"
                .to_string(),
        ),
    ] {
        let (out, events) = answer_to(&input);
        assert_eq!(out, written, "{input}");
        assert!(events.is_empty(), "{input}: {events:?}");
    }
    let refused = "<stream:error><unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";
    for (input, reason) in [
        (
            ping(" xmlns='urn:foo'"),
            "<iq/> in namespace \"urn:foo\" directly under the stream",
        ),
        (
            "<foo xmlns='urn:bar'/>".to_string(),
            "<foo/> in namespace \"urn:bar\" directly under the stream",
        ),
        (
            ping(" xmlns='jabber:client'"),
            "<iq/> in namespace \"jabber:client\" directly under the stream",
        ),
        (
            "<message xmlns='jabber:server' from='a@localhost' to='component.localhost'><body>x</body></message>".to_string(),
            "<message/> in namespace \"jabber:server\" directly under the stream",
        ),
        (
            "<foo/>".to_string(),
            "<foo/> in namespace \"jabber:component:accept\" directly under the stream",
        ),
        (
            "<stream:iq/>".to_string(),
            "<iq/> in namespace \"http://etherx.jabber.org/streams\" directly under the stream",
        ),
        (
            "<iq xmlns=''/>".to_string(),
            "<iq/> in namespace \"\" directly under the stream",
        ),
    ] {
        // The refused element first, then a ping that must not be routed.
        let (out, events) = answer_to(&format!("{input}{}", ping("")));
        assert_eq!(out, refused, "{input}");
        assert!(
            matches!(events.as_slice(), [Event::Disconnected { reason: Disconnect::BadInput { condition: "unsupported-stanza-type", reason: r }, .. }] if r == reason),
            "{input}: {events:?}"
        );
    }
}

/// A presence of a type RFC 6121 does not define is answered with bad-request (RFC 6120
/// §8.3.3.1), not dropped, and the stream goes on; known types and presence errors are
/// never answered so.
#[test]
fn a_presence_of_unknown_type_gets_bad_request() {
    let (out, events) = answer_to(
        "<presence type='bogus' id='pb' from='u@localhost/r' to='component.localhost'><status>x</status></presence>",
    );
    assert_eq!(
        out,
        "<presence from='component.localhost' id='pb' to='u@localhost/r' type='error'><status>x</status>\
         <error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>invalid presence type</text></error></presence>"
    );
    assert!(events.is_empty(), "{events:?}");
    for kind in [
        "",
        " type='unavailable'",
        " type='subscribe'",
        " type='error'",
    ] {
        let (out, events) = answer_to(&format!(
            "<presence{kind} id='pk' from='u@localhost/r' to='component.localhost'/>"
        ));
        assert_eq!(out, "", "{kind}");
        assert!(events.is_empty(), "{kind}: {events:?}");
    }
}

/// Stanzas in the same input as the server's stream error: the server has ended the
/// stream and may not read what follows, so their answers, the core's own (an error) as
/// well as a controller's, go out on the next connection after its handshake, each once.
#[test]
fn answers_to_stanzas_before_a_stream_error_go_out_once_on_the_next_connection() {
    let now = Instant::now();
    let mut c = online(config(), ping_router(), now);
    c.handle_input(
        now,
        b"<iq type='get' id='a1' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>\
          <iq type='set' id='u1' from='u@localhost/r' to='component.localhost'><q xmlns='urn:unrouted'/></iq>\
          <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
    let mut reconnect_at = None;
    while let Some(event) = c.poll_event() {
        match event {
            Event::Dispatch(dispatch) => {
                let _ = dispatch.run();
            }
            Event::Disconnected {
                reason: Disconnect::StreamError(e),
                reconnect_at: at,
            } if e.condition == "system-shutdown" => reconnect_at = Some(at),
            other => panic!("{other:?}"),
        }
    }
    c.handle_outbox(now);
    assert_eq!(transmit(&mut c), "", "nothing for the ended connection");
    assert_eq!(c.queued(), 2);
    c.handle_closed(now, "eof");
    let reconnect_at = reconnect_at.expect("a disconnection");

    handshake_again(&mut c, reconnect_at);
    c.handle_outbox(reconnect_at);
    c.handle_timeout(reconnect_at);
    assert_eq!(
        transmit(&mut c),
        "<iq from='component.localhost' id='u1' to='u@localhost/r' type='error'><q xmlns='urn:unrouted'/>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>\
         <iq from='component.localhost' id='a1' to='u@localhost/r' type='result'/>"
    );
    assert_eq!(c.queued(), 0);
    assert!(matches!(events(&mut c).as_slice(), [Event::Online { .. }]));
    // Nothing more, ever.
    c.handle_outbox(reconnect_at);
    assert_eq!(transmit(&mut c), "");
}

/// The same when the input completes the handshake: the stanzas queued while
/// disconnected stay queued for the connection after, instead of going to this one.
#[test]
fn a_handshake_and_a_stream_error_in_one_input_keep_the_queue() {
    let now = Instant::now();
    let mut c = Component::new(config(), ping_router(), now).unwrap();
    c.sender()
        .send(xml!("<message to='a@localhost' id='q1'/>"))
        .unwrap();
    c.connect(now);
    c.handle_connected(now);
    c.handle_input(now, SERVER_HEADER.as_bytes());
    transmit(&mut c);
    c.handle_input(
        now,
        b"<handshake/><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    assert_eq!(transmit(&mut c), "");
    assert_eq!(c.queued(), 1);
    let (reason, reconnect_at) = match events(&mut c).as_slice() {
        [
            Event::Connect { .. },
            Event::Online { .. },
            Event::Disconnected {
                reason,
                reconnect_at,
            },
        ] => (reason.clone(), *reconnect_at),
        other => panic!("{other:?}"),
    };
    assert!(matches!(reason, Disconnect::StreamError(_)), "{reason:?}");
    handshake_again(&mut c, reconnect_at);
    assert_eq!(transmit(&mut c), "<message id='q1' to='a@localhost'/>");
}

/// Whatever ends the connection in the input, the answers to the stanzas before it come
/// after the connection's last bytes: on the next connection, once.
#[test]
fn every_end_in_the_input_keeps_the_answers_before_it_for_the_next_connection() {
    let refusal = |condition: &str| {
        format!(
            "<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        )
    };
    for (end, last_bytes) in [
        (
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            String::new(),
        ),
        ("</stream:stream>", "</stream:stream>".to_string()),
        ("<foo xmlns='urn:bar'/>", refusal("unsupported-stanza-type")),
        ("<iq></message>", refusal("not-well-formed")),
        ("stray", refusal("bad-format")),
    ] {
        let now = Instant::now();
        let mut c = online(config(), ping_router(), now);
        c.handle_input(
            now,
            format!("<iq type='set' id='u1' from='u@localhost/r' to='component.localhost'><q xmlns='urn:unrouted'/></iq>{end}").as_bytes(),
        );
        assert_eq!(transmit(&mut c), last_bytes, "{end}");
        let (_, reconnect_at) = disconnected(&mut c);
        handshake_again(&mut c, reconnect_at);
        assert_eq!(
            transmit(&mut c),
            "<iq from='component.localhost' id='u1' to='u@localhost/r' type='error'><q xmlns='urn:unrouted'/>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            "{end}"
        );
    }
}

/// The handshake's answer counts only in the component namespace: a `<handshake/>` in
/// another one is an element before the handshake completed.
#[test]
fn a_handshake_in_a_foreign_namespace_does_not_open_the_stream() {
    let now = Instant::now();
    let mut c = Component::new(config(), Router::new(), now).unwrap();
    c.connect(now);
    c.handle_connected(now);
    c.handle_input(now, SERVER_HEADER.as_bytes());
    transmit(&mut c);
    c.handle_input(now, b"<handshake xmlns='urn:foo'/>");
    assert!(!c.is_online());
    assert_eq!(
        transmit(&mut c),
        "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    let evs = events(&mut c);
    assert!(
        matches!(
            evs.as_slice(),
            [
                Event::Connect { .. },
                Event::Disconnected {
                    reason: Disconnect::BadInput {
                        condition: "not-authorized",
                        ..
                    },
                    ..
                }
            ]
        ),
        "{evs:?}"
    );
}

/// A message from the component with a body, as it is written.
fn message(id: &str) -> String {
    format!("<message id='{id}' to='a@localhost'><body>text of {id}</body></message>")
}

/// Sends each of `ids` as a message.
fn send_messages(c: &mut Component, now: Instant, ids: &[&str]) {
    for id in ids {
        c.send(now, xml::parse(&message(id)).unwrap()).unwrap();
    }
}

/// After a failure: the next connection, up to online; returns what the component writes
/// once online.
fn reconnect(c: &mut Component) -> String {
    let (reason, reconnect_at) = disconnected(c);
    assert!(
        matches!(&reason, Disconnect::ConnectionLost(why) if why == "write timed out")
            || matches!(reason, Disconnect::ServerClosed),
        "{reason:?}"
    );
    c.handle_timeout(reconnect_at);
    assert!(matches!(events(c).as_slice(), [Event::Connect { .. }]));
    c.handle_connected(reconnect_at);
    assert!(transmit(c).starts_with("<?xml version='1.0'?><stream:stream"));
    c.handle_input(reconnect_at, SERVER_HEADER.as_bytes());
    assert!(transmit(c).starts_with("<handshake>"));
    c.handle_input(reconnect_at, b"<handshake/>");
    assert!(matches!(events(c).as_slice(), [Event::Online { .. }]));
    transmit(c)
}

/// A write that fails part-way: the stanzas the socket did not take go out on the next
/// connection, in order, before those sent meanwhile; the one the failure cut (the server
/// may have part of it) does not. The answer written straight from its request counts as a
/// stanza like any other.
#[test]
fn a_failed_write_keeps_the_stanzas_it_left_unwritten_for_the_next_connection() {
    let now = Instant::now();
    let mut c = online(config(), ping_router(), now);
    let mut out = Vec::new();
    send_messages(&mut c, now, &["m1", "m2"]);
    c.handle_input(
        now,
        b"<iq type='get' id='p3' from='u@localhost/r' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    while let Some(event) = c.poll_event() {
        match event {
            Event::Dispatch(dispatch) => {
                let _ = dispatch.run();
            }
            other => panic!("{other:?}"),
        }
    }
    c.handle_outbox(now);
    send_messages(&mut c, now, &["m4", "m5"]);
    assert!(c.poll_transmit_into(&mut out));
    let answer = "<iq from='component.localhost' id='p3' to='u@localhost/r' type='result'/>";
    let stanzas = [
        message("m1"),
        message("m2"),
        answer.into(),
        message("m4"),
        message("m5"),
    ];
    assert_eq!(String::from_utf8_lossy(&out), stanzas.concat());

    // The socket took the first stanza and half of the second.
    let written = stanzas[0].len() + stanzas[1].len() / 2;
    c.handle_write_failed(now, "write timed out", &out, written);
    assert_eq!(c.queued(), 3);
    send_messages(&mut c, now, &["m6"]);
    assert_eq!(
        reconnect(&mut c),
        [answer.into(), message("m4"), message("m5"), message("m6")].concat()
    );
    assert_eq!(c.queued(), 0);
}

/// A failure between two stanzas cuts none: all those after it go out on the next
/// connection. The same with the buffers of `poll_transmit`.
#[test]
fn a_write_failing_between_stanzas_keeps_all_it_left_unwritten() {
    let now = Instant::now();
    let ids = ["m1", "m2", "m3", "m4", "m5"];
    let stanzas: Vec<String> = ids.iter().map(|id| message(id)).collect();
    for unwritten_from in 0..=ids.len() {
        for vec_api in [false, true] {
            let mut c = online(config(), Router::new(), now);
            send_messages(&mut c, now, &ids);
            let out = if vec_api {
                c.poll_transmit().unwrap()
            } else {
                let mut out = Vec::new();
                assert!(c.poll_transmit_into(&mut out));
                out
            };
            let written: usize = stanzas[..unwritten_from].iter().map(String::len).sum();
            c.handle_write_failed(now, "write timed out", &out, written);
            assert_eq!(
                reconnect(&mut c),
                stanzas[unwritten_from..].concat(),
                "failed after {unwritten_from} stanzas"
            );
        }
    }
}

/// Output appended to bytes the runtime has not written yet: the stanzas are found where
/// they are in the runtime's buffer.
#[test]
fn a_failed_write_finds_the_stanzas_of_output_appended_to_the_unwritten() {
    let now = Instant::now();
    let stanzas: Vec<String> = ["m1", "m2", "m3", "m4"]
        .iter()
        .map(|id| message(id))
        .collect();
    // The failure cuts m2, then m3.
    for (written, resent) in [
        (stanzas[0].len() + 3, 2),
        (stanzas[0].len() + stanzas[1].len() + 3, 3),
    ] {
        let mut c = online(config(), Router::new(), now);
        let mut out = Vec::new();
        send_messages(&mut c, now, &["m1", "m2"]);
        assert!(c.poll_transmit_into(&mut out));
        // Not written yet: the next output is appended.
        send_messages(&mut c, now, &["m3", "m4"]);
        assert!(c.poll_transmit_into(&mut out));
        assert_eq!(String::from_utf8_lossy(&out), stanzas.concat());
        c.handle_write_failed(now, "write timed out", &out, written);
        assert_eq!(reconnect(&mut c), stanzas[resent..].concat());
    }
    // Once the runtime asks with an empty buffer, what it had is written: the marks start
    // over with the new output.
    let mut c = online(config(), Router::new(), now);
    let mut out = Vec::new();
    send_messages(&mut c, now, &["m1", "m2"]);
    assert!(c.poll_transmit_into(&mut out));
    out.clear();
    send_messages(&mut c, now, &["m3", "m4"]);
    assert!(c.poll_transmit_into(&mut out));
    c.handle_write_failed(now, "write timed out", &out, stanzas[2].len());
    assert_eq!(reconnect(&mut c), stanzas[3]);
}

/// Keepalives (whitespace and the XEP-0199 ping), the stream's close and a stream error are
/// not stanzas to re-send: only the stanzas between them go out on the next connection. A
/// failure after the component's own close keeps nothing: it has stopped.
#[test]
fn a_failed_write_resends_no_keepalive_and_no_stream_close() {
    let now = Instant::now();
    let secs = Duration::from_secs;
    let cfg = config().ping(Some(secs(30))).ping_timeout(secs(10));
    let mut c = online(cfg, Router::new(), now);
    send_messages(&mut c, now, &["m1"]);
    c.handle_input(now + secs(20), b" ");
    c.handle_timeout(now + secs(30));
    c.handle_timeout(now + secs(50));
    send_messages(&mut c, now + secs(50), &["m2"]);
    c.handle_input(now + secs(51), b"</stream:stream>");
    let mut out = Vec::new();
    assert!(c.poll_transmit_into(&mut out));
    let out_text = String::from_utf8_lossy(&out).into_owned();
    let ping_at = out_text.find("<iq ").expect("a ping");
    let ping_end = out_text.find("</iq>").expect("a ping") + "</iq>".len();
    assert_eq!(&out_text[..ping_at], format!("{}\n", message("m1")));
    assert!(out_text[ping_at..].contains("<ping xmlns='urn:xmpp:ping'/>"));
    assert_eq!(
        &out_text[ping_end..],
        format!("{}</stream:stream>", message("m2"))
    );
    // The server closed: the component is disconnected already when the write fails.
    c.handle_write_failed(now + secs(51), "write timed out", &out, 0);
    assert_eq!(reconnect(&mut c), [message("m1"), message("m2")].concat());

    // A stream error of the component's own, for input it refuses.
    let mut c = online(config(), Router::new(), now);
    send_messages(&mut c, now, &["m1"]);
    c.handle_input(now, b"<message/><unknown xmlns='urn:other'/>");
    let mut out = Vec::new();
    assert!(c.poll_transmit_into(&mut out));
    assert!(
        String::from_utf8_lossy(&out).starts_with(&format!("{}<stream:error>", message("m1"))),
        "{}",
        String::from_utf8_lossy(&out)
    );
    c.handle_write_failed(now, "write timed out", &out, 0);
    let (reason, reconnect_at) = disconnected(&mut c);
    assert!(matches!(reason, Disconnect::BadInput { .. }), "{reason:?}");
    handshake_again(&mut c, reconnect_at);
    assert_eq!(transmit(&mut c), message("m1"));

    let mut c = online(config(), Router::new(), now);
    send_messages(&mut c, now, &["m1"]);
    c.close(now, secs(1));
    let mut out = Vec::new();
    assert!(c.poll_transmit_into(&mut out));
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("{}</stream:stream>", message("m1"))
    );
    c.handle_write_failed(now, "write timed out", &out, 0);
    assert!(matches!(events(&mut c).as_slice(), [Event::Closed]));
    assert_eq!(c.queued(), 0);
}

/// The stanzas kept from a failed write go before those queued already, within
/// `max_queue`: the earliest are kept.
#[test]
fn a_failed_write_keeps_at_most_max_queue_stanzas_the_earliest() {
    let now = Instant::now();
    let mut c = online(config().max_queue(3), Router::new(), now);
    send_messages(&mut c, now, &["m1", "m2", "m3", "m4"]);
    let mut out = Vec::new();
    assert!(c.poll_transmit_into(&mut out));
    // Sent after the server ended its side: queued, behind what the failure leaves.
    c.handle_server_ended();
    send_messages(&mut c, now, &["m5"]);
    assert_eq!(c.queued(), 1);
    c.handle_write_failed(now, "write timed out", &out, 0);
    assert_eq!(c.queued(), 3);
    assert_eq!(
        reconnect(&mut c),
        [message("m1"), message("m2"), message("m3")].concat()
    );
}
