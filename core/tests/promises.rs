//! What the README promises about limits, the secret and the per-stanza log record, checked
//! on the wire (stanzas in, exact stanzas or bytes out) through the test kit.

use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::Duration;

use exampple_core::testing::TestComponent;
use exampple_core::{Config, Conn, Disconnect, Element, Router, SendError, StanzaError, xml};

const T: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::new("test.example.com", "secret").set_from(true)
}

fn request(id: &str, ns: &str) -> Element {
    xml!(
        "<iq type='get' id='{id}' from='user@example.com/res' to='test.example.com'><query xmlns='{ns}'/></iq>"
    )
}

/// A controller that waits at `barrier` (with the test) before it answers.
fn held(barrier: Arc<Barrier>) -> impl Fn(Conn, Vec<Element>) -> Result<(), StanzaError> {
    move |conn: Conn, _: Vec<Element>| {
        barrier.wait();
        conn.iq_resp([]).send()?;
        Ok(())
    }
}

/// Past `max_in_flight` requests being handled, an iq get gets `resource-constraint` (a
/// message is dropped); once they end, requests are handled again.
#[test]
fn max_in_flight_answers_resource_constraint() {
    let barrier = Arc::new(Barrier::new(3));
    let router = Router::new()
        .iq("urn:test", |ns| ns.get("held", held(barrier.clone())))
        .message(|m| m.normal(|_: Conn, _: Vec<Element>| {}));
    let mut c = TestComponent::start(config().max_in_flight(2), router);
    c.component_received_nowait(request("1", "urn:test:held"));
    c.component_received_nowait(request("2", "urn:test:held"));
    c.component_received_nowait(request("3", "urn:test:held"));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='3' to='user@example.com/res' type='error'><query xmlns='urn:test:held'/>\
         <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>too many requests</text></error></iq>"
    ));
    c.component_received_nowait(xml!(
        "<message from='user@example.com/res' to='test.example.com' id='m'><body>hi</body></message>"
    ));
    c.assert_nothing_sent(Duration::ZERO);
    assert_eq!(c.component().in_flight(), 2);
    barrier.wait();
    c.assert_all_stanza_receive(
        vec![
            xml!("<iq from='test.example.com' id='1' to='user@example.com/res' type='result'/>"),
            xml!("<iq from='test.example.com' id='2' to='user@example.com/res' type='result'/>"),
        ],
        T,
    );
    // Once both have ended, there is room again.
    let until = std::time::Instant::now() + T;
    while c.component().in_flight() > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the requests never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
        c.pump();
    }
    c.component_received_nowait(request("4", "urn:test:held"));
    c.component_received_nowait(request("5", "urn:test:held"));
    c.assert_nothing_sent(Duration::ZERO);
    barrier.wait();
    c.assert_all_stanza_receive(
        vec![
            xml!("<iq from='test.example.com' id='4' to='user@example.com/res' type='result'/>"),
            xml!("<iq from='test.example.com' id='5' to='user@example.com/res' type='result'/>"),
        ],
        T,
    );
}

/// `Config`'s `Debug`, and the component's that holds it, never show the secret.
#[test]
fn the_secret_is_redacted_in_debug() {
    let secret = "s3cr3t-W0rd";
    let config = Config::new("test.example.com", secret);
    let shown = format!("{config:?}");
    assert!(shown.contains("password: \"<redacted>\""), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
    let c = TestComponent::start(config, Router::new());
    let shown = format!("{c:?} {:#?}", c.component());
    assert!(!shown.contains(secret), "{shown}");
}

/// While disconnected, exactly `max_queue` stanzas are kept: the next send fails with
/// `QueueFull(max_queue)` (from the `Sender` as from a controller's `Conn`, where `?` makes
/// it a `resource-constraint` answer), and the kept ones go out first, in order, on the next
/// connection.
#[test]
fn a_full_queue_refuses_and_keeps_the_first_in_order() {
    let (sent, back) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let result = Arc::new(Mutex::new(None));
    let notifies = {
        let (sent, back, result) = (sent.clone(), back.clone(), result.clone());
        move |conn: Conn, _: Vec<Element>| -> Result<(), StanzaError> {
            sent.wait();
            let sending = conn.send(xml!("<message to='bob@example.com' id='from-conn'/>"));
            *result.lock().unwrap() = Some(sending.clone());
            sent.wait();
            back.wait();
            sending?;
            conn.iq_resp([]).send()?;
            Ok(())
        }
    };
    let router = Router::new().iq("urn:test", |ns| ns.get("notify", notifies));
    let mut c = TestComponent::start(config().max_queue(3), router);
    c.component_received_nowait(request("r", "urn:test:notify"));
    c.drop_connection();
    let sender = c.component_mut().sender();
    for i in 0..3 {
        sender
            .send(xml!("<message to='bob@example.com' id='q{i}'/>"))
            .unwrap();
    }
    c.pump();
    assert_eq!(c.component().queued(), 3);
    assert_eq!(
        sender.send(xml!("<message to='bob@example.com' id='q3'/>")),
        Err(SendError::QueueFull(3))
    );
    let now = c.now();
    assert_eq!(
        c.component_mut()
            .send(now, xml!("<message to='bob@example.com' id='q4'/>")),
        Err(SendError::QueueFull(3))
    );
    // The controller sends now, while the queue is full, and answers once back online.
    sent.wait();
    sent.wait();
    assert_eq!(
        result.lock().unwrap().clone(),
        Some(Err(SendError::QueueFull(3)))
    );
    c.pump();
    assert_eq!(c.component().queued(), 3);
    assert!(c.advance_to_next_timeout());
    assert!(c.is_online());
    for i in 0..3 {
        c.assert_stanza_received(xml!(
            "<message from='test.example.com' id='q{i}' to='bob@example.com'/>"
        ));
    }
    back.wait();
    c.assert_stanza_receive(
        xml!(
            "<iq from='test.example.com' id='r' to='user@example.com/res' type='error'><query xmlns='urn:test:notify'/>\
             <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
        T,
    );
    c.assert_nothing_sent(Duration::ZERO);
}

fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp(payload).send()?;
    Ok(())
}

/// `max_depth(n)`: a stanza nested n deep (the stanza itself is 1) is served, one nested
/// deeper closes the stream with `<policy-violation/>`.
#[test]
fn max_depth_closes_the_stream_past_the_limit() {
    let router = Router::new().iq("urn:test", |ns| ns.get("echo", echo));
    let mut c = TestComponent::start(config().max_depth(4), router);
    let four = "<iq type='get' id='4' from='user@example.com/res' to='test.example.com'>\
                <query xmlns='urn:test:echo'><a><b/></a></query></iq>";
    c.component_received_raw(four.as_bytes());
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='4' to='user@example.com/res' type='result'>\
         <query xmlns='urn:test:echo'><a><b/></a></query></iq>"
    ));
    let before = c.raw_sent().len();
    let five = "<iq type='get' id='5' from='user@example.com/res' to='test.example.com'>\
                <query xmlns='urn:test:echo'><a><b><c/></b></a></query></iq>";
    c.component_received_raw(five.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&c.raw_sent()[before..]),
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(
        matches!(c.last_disconnect(), Some(Disconnect::BadInput { condition, .. }) if *condition == "policy-violation"),
        "{:?}",
        c.last_disconnect()
    );
    // The test kit hands the stream error on like a stanza; the nested one got no answer.
    c.assert_stanza_received(xml!(
        "<error xmlns='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>"
    ));
    c.assert_nothing_sent(Duration::ZERO);
}

/// A log record as the logger below keeps it: level, message, key-values in order.
type Record = (log::Level, String, Vec<(String, String)>);

/// Keeps every record of target `exampple` at info or above.
struct Keep(Mutex<Vec<Record>>);

impl log::Log for Keep {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == "exampple" && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        struct Pairs(Vec<(String, String)>);
        impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
            fn visit_pair(
                &mut self,
                key: log::kv::Key<'kvs>,
                value: log::kv::Value<'kvs>,
            ) -> Result<(), log::kv::Error> {
                self.0.push((key.to_string(), value.to_string()));
                Ok(())
            }
        }
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut pairs = Pairs(Vec::new());
        let _ = record.key_values().visit(&mut pairs);
        self.0
            .lock()
            .unwrap()
            .push((record.level(), record.args().to_string(), pairs.0));
    }

    fn flush(&self) {}
}

fn kept() -> &'static Keep {
    static KEEP: OnceLock<&'static Keep> = OnceLock::new();
    KEEP.get_or_init(|| {
        let keep: &'static Keep = Box::leak(Box::new(Keep(Mutex::new(Vec::new()))));
        log::set_logger(keep).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Info);
        keep
    })
}

/// The records whose `stanza_id` is `id` (tests run in parallel: each uses its own ids).
fn records_for(id: &str) -> Vec<Record> {
    let records = kept().0.lock().unwrap();
    records
        .iter()
        .filter(|(_, _, kv)| kv.iter().any(|(k, v)| k == "stanza_id" && v == id))
        .cloned()
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One record per handled stanza, as the README shows it: `info` "success", `error`
/// "error: ..." or "error timeout", with `elapsed_time` and the stanza's fields (time is
/// simulated, so elapsed_time is exact).
#[test]
fn each_handled_stanza_writes_one_log_record() {
    fn fails(_: Conn, _: Vec<Element>) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }
    fn never(_: Conn, _: Vec<Element>) {
        std::thread::sleep(Duration::from_secs(2));
    }
    kept();
    let router = Router::new().iq("urn:test", |ns| {
        ns.get("echo", echo).get("fails", fails).get("never", never)
    });
    let config = config().stanza_timeout(Duration::from_millis(1250));
    let mut c = TestComponent::start(config, router);
    c.component_received(request("log-ok", "urn:test:echo"));
    c.component_received(request("log-fail", "urn:test:fails"));
    c.component_received_nowait(request("log-slow", "urn:test:never"));
    c.advance(Duration::from_millis(1250));
    let fields = |id: &str, ns: &str, elapsed: &str| {
        pairs(&[
            ("elapsed_time", elapsed),
            ("stanza_id", id),
            ("stanza_type", "iq"),
            ("type", "get"),
            ("xmlns", ns),
            ("from_jid", "user@example.com/res"),
            ("to_jid", "test.example.com"),
        ])
    };
    assert_eq!(
        records_for("log-ok"),
        [(
            log::Level::Info,
            "success".to_string(),
            fields("log-ok", "urn:test:echo", "0ms")
        )]
    );
    assert_eq!(
        records_for("log-fail"),
        [(
            log::Level::Error,
            "error: disk on fire".to_string(),
            fields("log-fail", "urn:test:fails", "0ms")
        )]
    );
    assert_eq!(
        records_for("log-slow"),
        [(
            log::Level::Error,
            "error timeout".to_string(),
            fields("log-slow", "urn:test:never", "1.250s")
        )]
    );
}
