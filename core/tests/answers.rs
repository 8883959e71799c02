//! Answers written straight from their request (`iq_resp` and `message_resp` sent as they
//! are, with no reply element built) against the same answers built as elements and sent
//! with `conn.send`: the bytes on the wire must be the same, wire level, through the test kit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exampple_core::observe::{Observer, RequestEvent, RequestOutcome};
use exampple_core::testing::TestComponent;
use exampple_core::{Condition, Config, Conn, Element, Router, StanzaError, StanzaKind, xml};
use proptest::prelude::*;

const DOMAIN: &str = "test.example.com";
const T: Duration = Duration::from_secs(5);

/// Answers with the request's own payload echoed, written straight from the request.
fn direct(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    match conn.kind() {
        StanzaKind::Iq => conn.iq_resp(payload).send()?,
        _ => conn.message_resp(payload).send()?,
    }
    Ok(())
}

/// The same answer, built as an element first.
fn built(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let reply = match conn.kind() {
        StanzaKind::Iq => conn.iq_resp(payload),
        _ => conn.message_resp(payload),
    };
    conn.send(reply.into_element())?;
    Ok(())
}

type ControllerFn = fn(Conn, Vec<Element>) -> Result<(), StanzaError>;

fn router(controller: ControllerFn) -> Router {
    Router::new()
        .iq("urn:answer", |ns| {
            ns.get("q", controller).set("q", controller)
        })
        .message(|m| {
            m.chat(controller)
                .normal(controller)
                .headline(controller)
                .groupchat(controller)
        })
}

/// What the component wrote after its handshake, for `request` on a fresh component.
fn answer_on_the_wire(config: Config, controller: ControllerFn, request: &[u8]) -> String {
    let mut c = TestComponent::start(config, router(controller));
    c.component_received_raw(request);
    String::from_utf8_lossy(c.raw_sent())
        .rsplit("</handshake>")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn attribute(name: &'static str, value: Option<String>) -> String {
    value.map_or(String::new(), |v| format!(" {name}='{}'", xml::escape(&v)))
}

fn request() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just(("iq", Some("get"))),
        Just(("iq", Some("set"))),
        Just(("message", Some("chat"))),
        Just(("message", Some("normal"))),
        Just(("message", Some("headline"))),
        Just(("message", Some("groupchat"))),
        Just(("message", None)),
    ];
    let value = proptest::option::of(prop_oneof![
        Just(String::new()),
        Just("1".to_string()),
        Just("a&b<c>'d\"e\tf".to_string()),
        Just("é𝄞".to_string()),
    ]);
    let from = proptest::option::of(prop_oneof![
        Just("user@example.com/res".to_string()),
        Just("User@Example.com/r&'<>\"".to_string()),
        Just("example.com".to_string()),
    ]);
    let to = prop_oneof![
        Just(Some(DOMAIN.to_string())),
        Just(Some(format!("room@{DOMAIN}/nick"))),
        Just(None),
    ];
    // The stream's namespace, given or not (a stanza in another one ends the stream).
    let namespace = prop_oneof![Just(""), Just(" xmlns='jabber:component:accept'")];
    let payload = prop_oneof![
        Just("<q xmlns='urn:answer:q'/>"),
        Just("<q xmlns='urn:answer:q' a='&amp;&apos;'><x>t&lt;&#13;</x><y xmlns='urn:y'/></q>"),
        Just("<body>hi &amp; bye</body><q xmlns='urn:answer:q'/>"),
    ];
    (kind, value, from, to, namespace, payload).prop_map(
        |((name, kind), id, from, to, namespace, payload)| {
            let payload = if name == "iq" {
                // An iq request carries exactly one payload element.
                payload.replace("<body>hi &amp; bye</body>", "")
            } else {
                payload.to_string()
            };
            format!(
                "<{name}{namespace}{}{}{}{}>{payload}</{name}>",
                attribute("type", kind.map(str::to_string)),
                attribute("id", id),
                attribute("from", from),
                attribute("to", to),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn direct_answers_are_the_built_answers_byte_for_byte(
        request in request(),
        set_from in any::<bool>(),
    ) {
        let config = Config::new(DOMAIN, "secret").set_from(set_from);
        let direct = answer_on_the_wire(config.clone(), direct, request.as_bytes());
        let built = answer_on_the_wire(config, built, request.as_bytes());
        prop_assert_eq!(&direct, &built, "request {}", request);
        // Every request here is answered: with the echo, or (an iq without an id) an error.
        prop_assert!(!direct.is_empty(), "no answer to {}", request);
        // Whatever went out parses.
        xml::parse_all(&direct).expect("the answer parses");
    }
}

#[test]
fn an_answer_without_an_id_gets_a_generated_one() {
    let config = Config::new(DOMAIN, "secret").auto_generate_id(true);
    let out = answer_on_the_wire(
        config,
        direct,
        b"<message type='chat' from='a@b/c' to='test.example.com'><body>x</body></message>",
    );
    let answer = xml::parse(&out).unwrap();
    let id = answer.attr("id").expect("an id");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(answer.attr("to"), Some("a@b/c"));
    assert_eq!(answer.attr("type"), Some("chat"));
}

/// The request `late`, held by `keep` (in `slot`) while the connection drops, answered
/// with `payload` while disconnected; then the reconnection, with nothing sent before it.
fn answered_while_disconnected(
    keep: fn(Conn, Vec<Element>) -> Result<(), StanzaError>,
    slot: &Mutex<Option<Conn>>,
    payload: Element,
) -> TestComponent {
    let mut c = TestComponent::start(
        Config::new(DOMAIN, "secret").set_from(true),
        Router::new().iq("urn:answer", |ns| ns.get("q", keep)),
    );
    c.component_received_raw(
        b"<iq type='get' id='late' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>",
    );
    c.drop_connection();
    let conn = slot.lock().unwrap().take().expect("the controller ran");
    conn.iq_resp([payload]).send().expect("queued");
    c.pump();
    c.assert_nothing_sent(Duration::ZERO);
    assert!(c.advance_to_next_timeout());
    assert!(c.is_online());
    c
}

static KEPT: Mutex<Option<Conn>> = Mutex::new(None);

fn keep(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    *KEPT.lock().unwrap() = Some(conn);
    Ok(())
}

/// An answer sent while the connection is down waits in the queue, and goes out (built
/// as an element then) once the component is back online.
#[test]
fn an_answer_sent_while_disconnected_goes_out_after_the_reconnect() {
    let mut c = answered_while_disconnected(keep, &KEPT, xml!("<done xmlns='urn:answer:q'/>"));
    c.assert_stanza_receive(
        xml!(
            "<iq type='result' id='late' from='test.example.com' to='a@b/c'><done xmlns='urn:answer:q'/></iq>"
        ),
        T,
    );
}

/// A reply that was looked at before it was sent is still the same answer.
#[test]
fn a_reply_inspected_before_sending_is_sent_unchanged() {
    fn inspect(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
        let reply = conn.iq_resp(payload);
        assert_eq!(reply.stanza().attr("type"), Some("result"));
        reply.send()?;
        Ok(())
    }
    let request =
        b"<iq type='get' id='i' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>";
    let config = Config::new(DOMAIN, "secret");
    assert_eq!(
        answer_on_the_wire(config.clone(), inspect, request),
        answer_on_the_wire(config, built, request)
    );
}

/// Answers with a character XML cannot carry (U+0001), written straight from the request.
fn unwritable_direct(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    let bad = "a\u{1}b";
    conn.iq_resp([xml!("<q xmlns='urn:answer:q'>{bad}</q>")])
        .send()?;
    Ok(())
}

/// The same answer built as an element and sent with `conn.send`.
fn unwritable_built(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    let bad = "\u{FFFE}";
    let reply = conn.iq_resp([xml!("<q xmlns='urn:answer:q' v='{bad}'/>")]);
    conn.send(reply.into_element())?;
    Ok(())
}

/// An answer XML cannot carry is not silence: the requester gets `internal-server-error`
/// (without the internal detail), and the component goes on answering.
#[test]
fn an_unwritable_answer_becomes_internal_server_error() {
    for controller in [unwritable_direct as ControllerFn, unwritable_built] {
        let router = Router::new().iq("urn:answer", |ns| ns.get("q", controller).set("q", direct));
        let mut c = TestComponent::start(Config::new(DOMAIN, "secret"), router);
        c.component_received_raw(
            b"<iq type='get' id='bad' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>",
        );
        let wire = String::from_utf8_lossy(c.raw_sent())
            .rsplit("</handshake>")
            .next()
            .unwrap_or_default()
            .to_string();
        let answer = xml::parse(&wire).expect("one answer on the wire");
        assert_eq!(answer.name(), "iq");
        assert_eq!(answer.attr("type"), Some("error"), "{wire}");
        assert_eq!(answer.attr("id"), Some("bad"));
        assert_eq!(answer.attr("to"), Some("a@b/c"));
        let error = answer
            .get_child("error", exampple_core::ns::COMPONENT)
            .expect("an <error/>");
        assert_eq!(error.attr("type"), Some("cancel"), "{wire}");
        let conditions: Vec<_> = error.children().map(|c| c.name().to_string()).collect();
        assert_eq!(conditions, ["internal-server-error"], "{wire}");
        assert!(!wire.contains("cannot"), "{wire}");
        assert_eq!(c.stanza_received(), Some(answer));

        c.component_received_raw(
            b"<iq type='set' id='next' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>",
        );
        c.assert_stanza_receive_matching(xml!("<iq type='result' id='next'/>"), T);
    }
}

/// What [`answer_with`] puts in its answer.
static ANSWER_TEXT: Mutex<String> = Mutex::new(String::new());

fn answer_with(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    let text = ANSWER_TEXT.lock().unwrap().clone();
    conn.iq_resp([xml!("<q xmlns='urn:answer:q' v='{text}'>{text}</q>")])
        .send()?;
    Ok(())
}

fn with_forbidden() -> impl Strategy<Value = String> {
    let forbidden = prop_oneof![
        (0u32..0x20)
            .prop_filter("allowed", |c| ![0x9, 0xA, 0xD].contains(c))
            .prop_map(|c| char::from_u32(c).unwrap()),
        Just('\u{FFFE}'),
        Just('\u{FFFF}'),
    ];
    (any::<String>(), forbidden, any::<String>()).prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever string a controller answers with: a character XML cannot carry gives
    /// `internal-server-error`, anything else goes out as it is; never a panic.
    #[test]
    fn any_answer_text_is_sent_or_refused_cleanly(
        text in prop_oneof![with_forbidden(), any::<String>(), Just("]]></q><x/>".to_string())]
    ) {
        *ANSWER_TEXT.lock().unwrap() = text.clone();
        let out = answer_on_the_wire(
            Config::new(DOMAIN, "secret"),
            answer_with,
            b"<iq type='get' id='t' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>",
        );
        let answer = xml::parse(&out).expect("one answer");
        let carried = text
            .chars()
            .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..));
        if carried {
            prop_assert_eq!(answer.attr("type"), Some("result"));
            let q = answer.get_child("q", "urn:answer:q").expect("the payload");
            prop_assert_eq!(q.attr("v"), Some(text.as_str()));
            prop_assert_eq!(q.text(), text);
            prop_assert_eq!(q.children().count(), 0);
        } else {
            prop_assert_eq!(answer.attr("type"), Some("error"));
            prop_assert!(out.contains("<internal-server-error"), "{}", out);
        }
    }
}

static KEPT_BAD: Mutex<Option<Conn>> = Mutex::new(None);

fn keep_bad(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    *KEPT_BAD.lock().unwrap() = Some(conn);
    Ok(())
}

/// While disconnected the answer is checked before it is queued, so the requester still
/// hears `internal-server-error` (and nothing more) after the reconnect.
#[test]
fn an_unwritable_answer_sent_while_disconnected_is_refused_when_queued() {
    let bad = "\u{0}";
    let mut c = answered_while_disconnected(
        keep_bad,
        &KEPT_BAD,
        xml!("<done xmlns='urn:answer:q'>{bad}</done>"),
    );
    c.assert_stanza_receive(
        xml!(
            "<iq type='error' id='late' from='test.example.com' to='a@b/c'><q xmlns='urn:answer:q'/>\
             <error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
        T,
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<RequestEvent>>);

impl Observer for Recorder {
    fn request(&self, event: &RequestEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// Answers with what XML cannot carry, then fails: one error answer goes out, not two.
fn unwritable_then_fails(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    unwritable_direct(conn, payload)?;
    Err(StanzaError::new(Condition::BadRequest))
}

/// The request whose answer could not be written is reported as failed, with the reason,
/// and its requester hears only the one `internal-server-error`.
#[test]
fn an_unwritable_answer_is_a_failed_request_answered_once() {
    for (controller, then) in [
        (unwritable_direct as ControllerFn, None),
        (unwritable_then_fails, Some("bad-request")),
    ] {
        let mut c = TestComponent::start(
            Config::new(DOMAIN, "secret"),
            Router::new().iq("urn:answer", |ns| ns.get("q", controller)),
        );
        let recorder = Arc::new(Recorder::default());
        c.component_mut().set_observer(recorder.clone());
        c.component_received_raw(
            b"<iq type='get' id='bad' from='a@b/c' to='test.example.com'><q xmlns='urn:answer:q'/></iq>",
        );
        let answer = c.stanza_receive(T).expect("an answer");
        assert_eq!(answer.attr("type"), Some("error"));
        assert!(xml::to_string(&answer).contains("<internal-server-error"));
        c.assert_nothing_sent(Duration::from_millis(50));
        let events = recorder.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].outcome, RequestOutcome::Failure, "then {then:?}");
    }
}
