//! The component's randomness, wire level: every random choice (generated ids, reconnect
//! delays) comes from `Config::seed`, so a simulated run with a fixed seed is repeated byte
//! for byte, and ids stay unique and UUID-shaped.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use exampple_core::component::Event;
use exampple_core::testing::TestComponent;
use exampple_core::{Component, Config, Conn, Element, Router, StanzaError, xml};

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
    xmlns:stream='http://etherx.jabber.org/streams' id='sid' from='component.localhost'>";

fn transmit(c: &mut Component) -> String {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend(b);
    }
    String::from_utf8(out).expect("the component writes UTF-8")
}

fn online(config: Config, now: Instant) -> Component {
    online_with(config, Router::new(), now)
}

fn online_with(config: Config, router: Router, now: Instant) -> Component {
    let mut c = Component::new(config, router, now).expect("valid component");
    c.connect(now);
    c.handle_connected(now);
    c.handle_input(now, SERVER_HEADER.as_bytes());
    c.handle_input(now, b"<handshake/>");
    transmit(&mut c);
    while c.poll_event().is_some() {}
    assert!(c.is_online());
    c
}

fn message(to: &str) -> Element {
    xml::parse(&format!(
        "<message xmlns='jabber:component:accept' to='{to}'><body>hi</body></message>"
    ))
    .expect("valid stanza")
}

/// A simulated run: stanzas with generated ids (sent by the core and through a `Sender`), an
/// IQ call, a keepalive ping left unanswered, then a server that refuses five reconnects.
/// Everything the component writes, and every delay it asks for relative to the run's start,
/// goes into the transcript.
fn run(seed: u64) -> String {
    let start = Instant::now();
    let config = Config::new("component.localhost", "123456")
        .seed(seed)
        .auto_generate_id(true)
        .ping(Some(Duration::from_secs(30)))
        .ping_timeout(Duration::from_secs(10));
    // Replies to a chat message: a request without id gets a reply with a generated one.
    let router = Router::new().message(|m| {
        m.chat(|conn: Conn, _: Vec<Element>| -> Result<(), StanzaError> {
            conn.message_resp([]).send()?;
            Ok(())
        })
    });
    let mut c = online_with(config, router, start);
    let mut out = String::new();
    c.handle_input(
        start,
        b"<message from='x@localhost' to='component.localhost' type='chat'><body>q</body></message>",
    );
    while let Some(event) = c.poll_event() {
        if let Event::Dispatch(dispatch) = event {
            let _ = dispatch.run();
        }
    }
    c.send(start, message("a@localhost")).expect("sent");
    let sender = c.sender();
    sender.send(message("b@localhost")).expect("sent");
    let iq = xml::parse(
        "<iq xmlns='jabber:component:accept' type='get' to='localhost'><query xmlns='urn:q'/></iq>",
    )
    .expect("valid stanza");
    let _call = sender.call(iq, Duration::from_secs(60)).expect("call sent");
    c.handle_outbox(start);
    out += &transmit(&mut c);
    // Silence from the server: a whitespace keepalive and an XEP-0199 ping ...
    let mut t = start + Duration::from_secs(30);
    c.handle_timeout(t);
    out += &transmit(&mut c);
    // ... left unanswered: disconnected, then every reconnect refused.
    for _ in 0..6 {
        let Some(next) = c.poll_timeout() else {
            panic!("no timeout after {out}");
        };
        t = next;
        c.handle_timeout(t);
        out += &transmit(&mut c);
        while let Some(event) = c.poll_event() {
            match event {
                Event::Disconnected { reconnect_at, .. } => {
                    out += &format!("[reconnect in {:?}]", reconnect_at - t);
                }
                Event::Connect { .. } => c.handle_connect_failed(t, "refused"),
                _ => {}
            }
        }
        if let Some(next) = c.poll_timeout() {
            out += &format!("[timeout in {:?}]", next - t);
        }
    }
    out
}

fn attr_values<'a>(transcript: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}='");
    transcript
        .match_indices(&needle)
        .map(|(at, _)| {
            let rest = &transcript[at + needle.len()..];
            &rest[..rest.find('\'').expect("closed attribute")]
        })
        .collect()
}

fn assert_uuid_v4(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(uuid.get_version_num(), 4, "{id}");
    assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
    // Hyphenated, as before the seed.
    assert_eq!(uuid.hyphenated().to_string(), id);
}

#[test]
fn a_seeded_run_repeats_byte_for_byte() {
    let first = run(42);
    let second = run(42);
    assert_eq!(first, second);
    // The run has what the seed must cover: a reply's auto id, two stanzas' auto ids, a
    // call id, a keepalive ping's id and reconnect delays.
    assert!(first.starts_with("<message id='"), "{first}");
    let ids = attr_values(&first, "id");
    assert_eq!(ids.len(), 5, "{first}");
    for id in &ids[..4] {
        assert_uuid_v4(id);
    }
    let ping = ids[4]
        .strip_prefix("exampple-keepalive-")
        .unwrap_or_else(|| panic!("not a keepalive: {}", ids[4]));
    assert_uuid_v4(ping);
    assert!(first.contains("<ping xmlns='urn:xmpp:ping'/>"), "{first}");
    assert_eq!(first.matches("[reconnect in ").count(), 6, "{first}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5, "{first}");
}

#[test]
fn another_seed_gives_other_ids_and_delays() {
    let (a, b) = (run(42), run(43));
    let (ids_a, ids_b) = (attr_values(&a, "id"), attr_values(&b, "id"));
    assert_eq!(ids_a.len(), ids_b.len());
    for (x, y) in ids_a.iter().zip(&ids_b) {
        assert_ne!(x, y);
    }
    let delays = |t: &str| -> Vec<String> {
        t.split("[reconnect in ")
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    assert_ne!(delays(&a), delays(&b));
}

#[test]
fn ten_thousand_generated_ids_are_unique_uuids() {
    let now = Instant::now();
    let config = Config::new("component.localhost", "123456")
        .seed(7)
        .auto_generate_id(true)
        .max_queue(20_000);
    let mut c = online(config, now);
    let mut ids = HashSet::new();
    for _ in 0..10_000 {
        c.send(now, message("a@localhost")).expect("sent");
        let out = transmit(&mut c);
        let [id] = attr_values(&out, "id")[..] else {
            panic!("one id expected: {out}");
        };
        assert_uuid_v4(id);
        assert!(ids.insert(id.to_string()), "{id} generated twice");
    }
}

/// The first auto id of a component built unseeded for `domain` at `now`.
fn unseeded_id(domain: &str, now: Instant) -> String {
    let mut c = Component::new(
        Config::new(domain, "s").auto_generate_id(true),
        Router::new(),
        now,
    )
    .expect("valid component");
    // Not connected: the stanza is queued; connecting writes it.
    c.send(now, message("a@localhost")).expect("queued");
    c.connect(now);
    c.handle_connected(now);
    c.handle_input(
        now,
        SERVER_HEADER
            .replace("component.localhost", domain)
            .as_bytes(),
    );
    c.handle_input(now, b"<handshake/>");
    let out = transmit(&mut c);
    attr_values(&out, "id")
        .last()
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_string()
}

#[test]
fn unseeded_components_differ_by_domain_and_start() {
    let now = Instant::now();
    let a = unseeded_id("a.localhost", now);
    assert_uuid_v4(&a);
    assert_ne!(a, unseeded_id("b.localhost", now));
    assert_ne!(a, unseeded_id("a.localhost", now + Duration::from_nanos(1)));
}

/// The test kit's wire output for a stanza sent with a generated id.
fn kit_run(config: Config) -> Vec<u8> {
    let mut test = TestComponent::start(config.auto_generate_id(true), Router::new());
    test.component()
        .sender()
        .send(message("a@localhost"))
        .expect("sent");
    test.pump();
    test.raw_sent().to_vec()
}

#[test]
fn the_test_kit_is_seeded_and_the_config_seed_wins() {
    let config = || Config::new("component.localhost", "secret");
    let first = kit_run(config());
    assert!(String::from_utf8_lossy(&first).contains(" id='"));
    assert_eq!(first, kit_run(config()));
    assert_ne!(first, kit_run(config().seed(1)));
    assert_eq!(kit_run(config().seed(1)), kit_run(config().seed(1)));
}
