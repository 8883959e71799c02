//! Controllers with extractors (the payload element, typed payloads, application state),
//! closures as controllers, and application errors that carry a stanza condition: wire
//! level, through the test kit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use exampple_core::extract::{Payload, State};
use exampple_core::testing::TestComponent;
use exampple_core::{Condition, Config, Conn, Element, Router, RouterError, StanzaError, xml};

fn config() -> Config {
    Config::new("test.example.com", "secret").set_from(true)
}

fn iq(kind: &str, id: &str, payload: &str) -> Element {
    xml::parse(&format!(
        "<iq type='{kind}' id='{id}' from='user@example.com/res' to='test.example.com'>{payload}</iq>"
    ))
    .unwrap()
}

#[derive(Default)]
struct Counter(AtomicU64);

/// The state first, then the payload element.
fn inc(conn: Conn, State(counter): State<Arc<Counter>>, inc: Element) -> Result<(), StanzaError> {
    let by: u64 = inc.attr("by").unwrap_or("1").parse().unwrap_or(1);
    let n = counter.0.fetch_add(by, Ordering::SeqCst) + by;
    conn.iq_resp([xml!("<count xmlns='urn:example:counter'>{n}</count>")])
        .send()?;
    Ok(())
}

/// The payload element first, then the state, async.
async fn count(
    conn: Conn,
    _query: Element,
    State(counter): State<Arc<Counter>>,
) -> Result<(), StanzaError> {
    let n = counter.0.load(Ordering::SeqCst);
    conn.iq_resp([xml!("<count xmlns='urn:example:counter'>{n}</count>")])
        .send()?;
    Ok(())
}

#[test]
fn controllers_take_the_payload_element_and_the_routers_state() {
    let router = Router::new()
        .state(Arc::new(Counter::default()))
        .iq("urn:example", |ns| {
            ns.set("counter", inc).get("counter", count)
        });
    let mut c = TestComponent::start(config(), router);
    c.component_received(iq("set", "1", "<inc xmlns='urn:example:counter' by='2'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='1' from='test.example.com' to='user@example.com/res'><count xmlns='urn:example:counter'>2</count></iq>"
    ));
    c.component_received(iq("set", "2", "<inc xmlns='urn:example:counter'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='2' from='test.example.com' to='user@example.com/res'><count xmlns='urn:example:counter'>3</count></iq>"
    ));
    c.component_received(iq("get", "3", "<count xmlns='urn:example:counter'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='3' from='test.example.com' to='user@example.com/res'><count xmlns='urn:example:counter'>3</count></iq>"
    ));
}

#[test]
fn a_controller_taking_a_state_the_router_lacks_is_refused_when_built() {
    let router = Router::new().iq("urn:example", |ns| ns.set("counter", inc));
    let Err(error) = TestComponent::builder(config(), router).try_start() else {
        panic!("a router whose controller lacks its state must be refused");
    };
    assert!(
        matches!(
            &error,
            exampple_core::ComponentError::Router(RouterError::MissingState { controller, state })
                if controller.ends_with("extract::inc") && state.contains("Counter")
        ),
        "{error}"
    );
    assert!(error.to_string().contains("Router::state"), "{error}");
}

#[test]
fn a_message_without_payload_to_a_controller_taking_one_gets_bad_request() {
    fn wants_one(conn: Conn, payload: Element) -> Result<(), StanzaError> {
        conn.send(xml!(
            "<message to='{}'><got>{}</got></message>",
            conn.from().unwrap_or(""),
            payload.name()
        ))?;
        Ok(())
    }
    let router = Router::new().message(|m| m.normal(wants_one));
    let mut c = TestComponent::start(config(), router);
    c.component_received(xml!(
        "<message id='m1' from='user@example.com/res' to='test.example.com'/>"
    ));
    c.assert_stanza_received(xml!(
        "<message type='error' id='m1' from='test.example.com' to='user@example.com/res'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the stanza has no payload</text></error></message>"
    ));
}

/// A payload type of the application's (or `xmpp-parsers`'): converted from the element.
struct Ping {
    note: String,
}

impl TryFrom<Element> for Ping {
    type Error = String;

    fn try_from(element: Element) -> Result<Self, String> {
        if !element.is("ping", "urn:xmpp:ping") {
            return Err(format!("not a ping: {}", element.name()));
        }
        Ok(Ping {
            note: element.attr("note").unwrap_or_default().to_string(),
        })
    }
}

#[test]
fn a_typed_payload_converts_or_answers_bad_request_with_the_reason() {
    fn pong(conn: Conn, Payload(ping): Payload<Ping>) -> Result<(), StanzaError> {
        conn.iq_resp([xml!("<pong xmlns='urn:example' note='{}'/>", ping.note)])
            .send()?;
        Ok(())
    }
    let router = Router::new().iq("", |ns| ns.get("", pong));
    let mut c = TestComponent::start(config(), router);
    c.component_received(iq(
        "get",
        "1",
        "<ping xmlns='urn:xmpp:ping' note='hi &amp; bye'/>",
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='1' from='test.example.com' to='user@example.com/res'><pong xmlns='urn:example' note='hi &amp; bye'/></iq>"
    ));
    c.component_received(iq("get", "2", "<query xmlns='urn:other'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='error' id='2' from='test.example.com' to='user@example.com/res'><query xmlns='urn:other'/><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>not a ping: query</text></error></iq>"
    ));
}

/// An application error that wraps a stanza error somewhere in its chain.
#[derive(Debug)]
enum AppError {
    Lookup(StanzaError),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lookup failed")
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Lookup(e) => Some(e),
        }
    }
}

#[test]
fn an_application_error_wrapping_a_stanza_error_answers_with_its_condition() {
    fn lookup(_conn: Conn, _query: Element) -> Result<(), AppError> {
        Err(AppError::Lookup(
            StanzaError::new(Condition::ItemNotFound).with_text("en", "no such user"),
        ))
    }
    fn plain(_conn: Conn) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }
    let router = Router::new().iq("urn:example", |ns| {
        ns.get("lookup", lookup).get("plain", plain)
    });
    let mut c = TestComponent::start(config(), router);
    c.component_received(iq("get", "1", "<q xmlns='urn:example:lookup'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='error' id='1' from='test.example.com' to='user@example.com/res'><q xmlns='urn:example:lookup'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no such user</text></error></iq>"
    ));
    // Any other error: internal-server-error, without its text (it may hold internals).
    c.component_received(iq("get", "2", "<q xmlns='urn:example:plain'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='error' id='2' from='test.example.com' to='user@example.com/res'><q xmlns='urn:example:plain'/><error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
}

#[test]
fn closures_sync_and_async_move_are_controllers_named_by_where_they_are() {
    let counter = Arc::new(Counter::default());
    let seen = counter.clone();
    let router = Router::new().state(counter).iq("urn:example", |ns| {
        ns.set("bump", |conn: Conn, State(c): State<Arc<Counter>>| {
            c.0.fetch_add(1, Ordering::SeqCst);
            conn.iq_resp([]).send()
        })
        .get("peek", move |conn: Conn| {
            let seen = seen.clone();
            async move {
                let n = seen.0.load(Ordering::SeqCst);
                conn.iq_resp([xml!("<n xmlns='urn:example'>{n}</n>")])
                    .send()
            }
        })
    });
    let names: Vec<String> = router.routes().into_iter().map(|r| r.controller).collect();
    assert_eq!(names.len(), 2);
    for name in &names {
        assert!(
            name.starts_with("extract::closures_sync_and_async_move_are_controllers_named_by_where_they_are::{closure at extract.rs:"),
            "{name}"
        );
    }
    assert_ne!(names[0], names[1], "each closure names its own line");
    let mut c = TestComponent::start(config(), router);
    c.component_received(iq("set", "1", "<bump xmlns='urn:example:bump'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='1' from='test.example.com' to='user@example.com/res'/>"
    ));
    c.component_received(iq("get", "2", "<peek xmlns='urn:example:peek'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='2' from='test.example.com' to='user@example.com/res'><n xmlns='urn:example'>1</n></iq>"
    ));
}

#[test]
fn included_routers_bring_their_state() {
    let counter = Router::new()
        .state(Arc::new(Counter::default()))
        .iq("urn:example", |ns| ns.set("counter", inc));
    let router = Router::new().include(counter);
    let mut c = TestComponent::start(config(), router);
    c.component_received(iq("set", "1", "<inc xmlns='urn:example:counter'/>"));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='1' from='test.example.com' to='user@example.com/res'><count xmlns='urn:example:counter'>1</count></iq>"
    ));
}
