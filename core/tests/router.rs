//! Routing, controllers, discovery, delegation and includes, wire level (XML in, XML out),
//! through the test kit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exampple_core::disco::{Discovery, Identity, category};
use exampple_core::observe::{Observer, RequestEvent, RequestOutcome};
use exampple_core::testing::TestComponent;
use exampple_core::{Condition, Config, Conn, Element, Router, RouterError, StanzaError, xml};

const T: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::new("test.example.com", "secret").set_from(true)
}

/// Answers an iq result naming the controller, so tests see which route ran.
fn named(
    name: &'static str,
) -> impl Fn(Conn, Vec<Element>) -> Result<(), StanzaError> + Send + Sync + 'static {
    move |conn: Conn, _payload: Vec<Element>| {
        let answer = xml!(
            "<handled xmlns='urn:test' by='{name}' type='{}' ns='{}'/>",
            conn.stanza_type(),
            conn.xmlns()
        );
        match conn.kind() {
            exampple_core::StanzaKind::Iq => conn.iq_resp([answer]).send()?,
            _ => conn.send(exampple_core::stanza::message_reply(
                conn.stanza(),
                [answer],
            ))?,
        }
        Ok(())
    }
}

fn handled_by(stanza: &Element) -> String {
    stanza
        .get_child("handled", "urn:test")
        .and_then(|h| h.attr("by"))
        .unwrap_or("<none>")
        .to_string()
}

fn iq(kind: &str, ns: &str) -> Element {
    xml!(
        "<iq type='{kind}' id='1' from='user@example.com/res' to='test.example.com'><query xmlns='{ns}'/></iq>"
    )
}

#[test]
fn iq_routes_by_type_and_namespace() {
    let router = Router::new()
        .iq("urn:xmpp", |ns| {
            ns.get("ping", named("ping")).set("ping", named("ping-set"))
        })
        .iq("jabber:iq:", |ns| {
            ns.get("register", named("register"))
                .result("register", named("result"))
                .error("register", named("error"))
        })
        .iq("http://jabber.org/protocol", |ns| {
            ns.join_with("/").get("disco#items", named("items"))
        });
    let mut c = TestComponent::start(config(), router);
    for (kind, ns, by) in [
        ("get", "urn:xmpp:ping", "ping"),
        ("set", "urn:xmpp:ping", "ping-set"),
        ("get", "jabber:iq:register", "register"),
        ("result", "jabber:iq:register", "result"),
        ("error", "jabber:iq:register", "error"),
        ("get", "http://jabber.org/protocol/disco#items", "items"),
    ] {
        c.component_received(iq(kind, ns));
        let reply = c.stanza_receive(T).unwrap();
        assert_eq!(handled_by(&reply), by, "{kind} {ns}");
    }
}

#[test]
fn exact_wire_answer_of_a_ping() {
    fn ping(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        conn.iq_resp([]).send()?;
        Ok(())
    }
    let mut c = TestComponent::start(
        config(),
        Router::new().iq("urn:xmpp", |ns| ns.get("ping", ping)),
    );
    c.component_received_raw(
        b"<iq type='get' to='test.example.com' from='User@example.com/res1' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    // The JID's case is kept in replies.
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='1' to='User@example.com/res1' type='result'/>"
    ));
    assert_eq!(
        String::from_utf8_lossy(c.raw_sent())
            .rsplit("</handshake>")
            .next()
            .unwrap(),
        "<iq from='test.example.com' id='1' to='User@example.com/res1' type='result'/>"
    );
}

#[test]
fn message_and_presence_types_with_defaults() {
    let router = Router::new()
        .message(|m| {
            m.normal(named("normal"))
                .chat(named("chat"))
                .groupchat(named("groupchat"))
                .headline(named("headline"))
                .error(named("m-error"))
        })
        .presence(|p| {
            p.available(named("available"))
                .unavailable(named("unavailable"))
                .subscribe(named("subscribe"))
                .subscribed(named("subscribed"))
                .unsubscribe(named("unsubscribe"))
                .unsubscribed(named("unsubscribed"))
                .probe(named("probe"))
                .error(named("p-error"))
        });
    let mut c = TestComponent::start(config(), router);
    // The type is optional: set on the element, not pasted into the template.
    for (ty, by) in [
        ("", "normal"),
        ("normal", "normal"),
        ("chat", "chat"),
        ("groupchat", "groupchat"),
        ("headline", "headline"),
        ("error", "m-error"),
        ("bogus", "normal"),
    ] {
        let mut message =
            xml!("<message from='a@example.com/r' to='test.example.com'><body>hi</body></message>");
        if !ty.is_empty() {
            xml::set_attr(&mut message, "type", ty);
        }
        c.component_received(message);
        assert_eq!(
            handled_by(&c.stanza_receive(T).unwrap()),
            by,
            "message {ty}"
        );
    }
    for (ty, by) in [
        ("", "available"),
        ("unavailable", "unavailable"),
        ("subscribe", "subscribe"),
        ("subscribed", "subscribed"),
        ("unsubscribe", "unsubscribe"),
        ("unsubscribed", "unsubscribed"),
        ("probe", "probe"),
        ("error", "p-error"),
    ] {
        let mut presence = xml!("<presence from='a@example.com/r' to='test.example.com'/>");
        if !ty.is_empty() {
            xml::set_attr(&mut presence, "type", ty);
        }
        c.component_received(presence);
        assert_eq!(
            handled_by(&c.stanza_receive(T).unwrap()),
            by,
            "presence {ty}"
        );
    }
}

#[test]
fn exact_route_beats_catch_all_beats_fallback_whatever_the_order() {
    let router = Router::new()
        .message(|m| m.groupchat(named("any-groupchat")))
        .message_ns("urn:xmpp:chat-markers:0", |m| m.groupchat(named("markers")))
        .iq("", |ns| ns.get("", named("any-get")))
        .iq("urn:xmpp", |ns| ns.get("ping", named("ping")))
        .fallback(named("fallback"));
    let mut c = TestComponent::start(config(), router);
    c.component_received(xml!(
        "<message type='groupchat' from='a@x/r' to='test.example.com'><markable xmlns='urn:xmpp:chat-markers:0'/><body>x</body></message>"
    ));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "markers");
    c.component_received(xml!(
        "<message type='groupchat' from='a@x/r' to='test.example.com'><body>x</body></message>"
    ));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "any-groupchat");
    c.component_received(iq("get", "urn:xmpp:ping"));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "ping");
    c.component_received(iq("get", "urn:other"));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "any-get");
    c.component_received(iq("set", "urn:other"));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "fallback");
}

#[test]
fn defaults_without_fallback() {
    let mut c = TestComponent::start(config(), Router::new());
    c.component_received(iq("get", "urn:unknown"));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='1' to='user@example.com/res' type='error'><query xmlns='urn:unknown'/>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    c.component_received(iq("result", "urn:unknown"));
    c.component_received(iq("error", "urn:unknown"));
    c.component_received(xml!(
        "<message from='a@x/r' to='test.example.com'><body>x</body></message>"
    ));
    c.component_received(xml!("<presence from='a@x/r' to='test.example.com'/>"));
    c.assert_nothing_sent(Duration::from_millis(100));
}

#[test]
fn hostile_stanzas_get_rfc_answers() {
    let mut c = TestComponent::start(
        config(),
        Router::new().iq("", |ns| ns.get("", named("any"))),
    );
    // Two payloads in an iq get.
    c.component_received_raw(b"<iq type='get' id='2' from='a@x/r' to='test.example.com'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>");
    let reply = c.stanza_receive(T).unwrap();
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(xml::to_string(&reply).contains("bad-request"));
    // No payload.
    c.component_received_raw(b"<iq type='get' id='3' from='a@x/r' to='test.example.com'/>");
    assert!(xml::to_string(&c.stanza_receive(T).unwrap()).contains("bad-request"));
    // Unknown iq type.
    c.component_received_raw(
        b"<iq type='fetch' id='4' from='a@x/r' to='test.example.com'><q xmlns='urn:q'/></iq>",
    );
    assert!(xml::to_string(&c.stanza_receive(T).unwrap()).contains("bad-request"));
    // Malformed from.
    c.component_received_raw(
        b"<iq type='get' id='5' from='a@b@c' to='test.example.com'><q xmlns='urn:q'/></iq>",
    );
    assert!(xml::to_string(&c.stanza_receive(T).unwrap()).contains("jid-malformed"));
    // A presence of unknown type: bad-request.
    c.component_received_raw(b"<presence type='dance' from='a@x/r' to='test.example.com'/>");
    let reply = c.stanza_receive(T).unwrap();
    assert_eq!(
        (reply.name(), reply.attr("type")),
        ("presence", Some("error"))
    );
    assert!(xml::to_string(&reply).contains("bad-request"));
    // A result nobody asked for: no answer.
    c.component_received_raw(b"<iq type='result' id='6' from='a@x/r' to='test.example.com'/>");
    c.assert_nothing_sent(Duration::from_millis(100));
    // And it keeps serving.
    c.component_received(iq("get", "urn:q"));
    assert_eq!(handled_by(&c.stanza_receive(T).unwrap()), "any");
}

#[test]
fn duplicate_routes_are_rejected_naming_both_controllers() {
    fn first(_: Conn, _: Vec<Element>) {}
    fn second(_: Conn, _: Vec<Element>) {}
    let router = Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", first))
        .include(Router::new().iq("urn:xmpp:ping", |ns| ns.get("", second)));
    let error = router.build().unwrap_err();
    let RouterError::Duplicate {
        first: a,
        second: b,
        namespace,
        ..
    } = &error
    else {
        panic!()
    };
    assert_eq!(namespace, "urn:xmpp:ping");
    assert!(a.ends_with("first") && b.ends_with("second"), "{error}");
    assert!(
        error.to_string().contains("::first and ") && error.to_string().ends_with("::second"),
        "{error}"
    );
}

#[test]
fn discovery_answers_identities_features_and_forms() {
    let form = xml!(
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:example</value></field></x>"
    );
    let router = Router::new()
        .discovery(
            Discovery::new()
                .identity(Identity::new(
                    category::COMPONENT,
                    category::component::GENERIC,
                    "Testing component",
                ))
                .extra(form.clone()),
        )
        .iq("jabber:iq:", |ns| ns.get("register", named("register")))
        .iq("urn:exampple:test", |ns| ns.set("set:0", named("set")))
        .feature("jabber:iq:register#remove")
        .envelope("urn:xmpp:delegation:1")
        .include(Router::new().iq("urn:exampple:test", |ns| ns.get("get:0", named("get"))));
    let mut c = TestComponent::start(config(), router);
    c.component_received(xml!(
        "<iq from='you@example.com/r' to='test.example.com' type='get' id='5'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' to='you@example.com/r' type='result' id='5'>\
           <query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='component' name='Testing component' type='generic'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='jabber:iq:register'/>\
             <feature var='jabber:iq:register#remove'/>\
             <feature var='urn:exampple:test:get:0'/>\
             <feature var='urn:exampple:test:set:0'/>\
             <feature var='urn:xmpp:delegation:1'/>\
             <x xmlns='jabber:x:data' type='result'><field type='hidden' var='FORM_TYPE'><value>urn:example</value></field></x>\
           </query></iq>"
    ));
    // Unknown node.
    c.component_received(xml!(
        "<iq from='you@example.com/r' to='test.example.com' type='get' id='6'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>"
    ));
    assert!(xml::to_string(&c.stanza_receive(T).unwrap()).contains("item-not-found"));
    // Not to the bare domain, or not a get: not disco (no route: service-unavailable / nothing).
    c.component_received(xml!(
        "<iq from='you@example.com/r' to='node@test.example.com' type='get' id='7'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    assert!(xml::to_string(&c.stanza_receive(T).unwrap()).contains("service-unavailable"));
    c.component_received(xml!(
        "<iq from='you@example.com/r' to='test.example.com' type='result' id='8'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    c.assert_nothing_sent(Duration::from_millis(50));
}

#[test]
fn delegation_nodes_are_answered_for_the_server() {
    let router = Router::new()
        .envelope("urn:xmpp:delegation:1")
        .iq("urn:example", |ns| ns.get("delegated", named("delegated")));
    let mut c = TestComponent::start(config(), router);
    c.component_received(xml!(
        "<iq from='example.com' to='test.example.com' type='get' id='d1'>\
         <query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmpp:delegation:1::urn:example:delegated'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' to='example.com' type='result' id='d1'>\
         <query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmpp:delegation:1::urn:example:delegated'>\
         <feature var='urn:example:delegated'/></query></iq>"
    ));
    // The advertisement is not a user message.
    c.component_received(xml!(
        "<message from='example.com' to='test.example.com'><delegation xmlns='urn:xmpp:delegation:1'>\
         <delegated namespace='urn:example:delegated'/></delegation></message>"
    ));
    c.assert_nothing_sent(Duration::from_millis(50));
    assert_eq!(
        c.component().delegated_namespaces(),
        ["urn:example:delegated".to_string()]
    );
}

#[test]
fn delegation_envelope_unwrap_and_wrap() {
    fn echo(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        conn.iq_resp(conn.stanza().children().cloned()).send()?;
        Ok(())
    }
    let router = Router::new()
        .envelope("urn:xmpp:delegation:1")
        .envelope("urn:xmpp:delegation:2")
        .iq("jabber:iq", |ns| ns.get("register", echo));
    let mut c = TestComponent::start(config(), router);
    c.component_received_raw(
        b"<iq from='example.com' id='rr-1' to='test.example.com' type='set'>\
          <delegation xmlns='urn:xmpp:delegation:1'><forwarded xmlns='urn:xmpp:forward:0'>\
          <iq id='aab6a' to='example.com' type='get' xml:lang='en' xmlns='jabber:client'>\
          <query xmlns='jabber:iq:register'/></iq></forwarded></delegation></iq>",
    );
    c.assert_stanza_received(xml!(
        "<iq to='example.com' id='rr-1' from='test.example.com' type='result'>\
         <delegation xmlns='urn:xmpp:delegation:1'><forwarded xmlns='urn:xmpp:forward:0'>\
         <iq xmlns='jabber:client' id='aab6a' from='example.com' type='result'><query xmlns='jabber:iq:register'/></iq>\
         </forwarded></delegation></iq>"
    ));
}

#[test]
fn errors_in_delegated_requests_go_back_in_the_envelope() {
    fn fail(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        Err(StanzaError::new(Condition::ItemNotFound).with_text("en", "user not found"))
    }
    let router = Router::new()
        .envelope("urn:xmpp:delegation:2")
        .iq("urn:example", |ns| ns.get("delegated", fail));
    let mut c = TestComponent::start(config(), router);
    c.component_received_raw(
        b"<iq from='localhost' to='test.example.com' type='set' id='OUTER'>\
          <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
          <iq xmlns='jabber:client' xml:lang='en' to='localhost' from='alice@localhost/d' id='INNER' type='get'>\
          <query xmlns='urn:example:delegated'/></iq></forwarded></delegation></iq>",
    );
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='OUTER' to='localhost' type='result'>\
         <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
         <iq xmlns='jabber:client' from='localhost' id='INNER' to='alice@localhost/d' type='error'>\
         <query xmlns='urn:example:delegated'/><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>user not found</text></error></iq>\
         </forwarded></delegation></iq>"
    ));
}

#[test]
fn returned_errors_panics_and_multiple_sends() {
    fn raise(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        Err((Condition::ServiceUnavailable, "es", "¡fuego!").into())
    }
    fn io_error(_: Conn, _: Vec<Element>) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }
    fn crash(_: Conn, _: Vec<Element>) {
        panic!("boom");
    }
    fn many(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        for i in 0..3 {
            conn.send(xml!(
                "<message to='{}' id='m{i}'><body>{i}</body></message>",
                conn.from().unwrap_or("")
            ))?;
        }
        conn.iq_resp([]).send()?;
        Ok(())
    }
    let router = Router::new()
        .message(|m| m.normal(raise))
        .iq("urn:test", |ns| {
            ns.get("io", io_error).get("crash", crash).get("many", many)
        });
    let mut c = TestComponent::start(config(), router);
    c.component_received(xml!("<message><body>hello</body></message>"));
    c.assert_stanza_received(xml!(
        "<message from='test.example.com' type='error'><body>hello</body><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='es'>¡fuego!</text></error></message>"
    ));
    // Exact: the internal error ("disk on fire", "boom") must not reach the sender.
    c.component_received(iq("get", "urn:test:io"));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='1' to='user@example.com/res' type='error'><query xmlns='urn:test:io'/>\
         <error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    c.component_received(iq("get", "urn:test:crash"));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='1' to='user@example.com/res' type='error'><query xmlns='urn:test:crash'/>\
         <error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    c.component_received(iq("get", "urn:test:many"));
    c.assert_all_stanza_receive(
        vec![
            xml!("<iq from='test.example.com' id='1' to='user@example.com/res' type='result'/>"),
            xml!("<message from='test.example.com' id='m2' to='user@example.com/res'><body>2</body></message>"),
            xml!("<message from='test.example.com' id='m0' to='user@example.com/res'><body>0</body></message>"),
            xml!("<message from='test.example.com' id='m1' to='user@example.com/res'><body>1</body></message>"),
        ],
        T,
    );
}

#[test]
fn async_controllers_run_too() {
    async fn later(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        conn.iq_resp([xml!("<done xmlns='urn:test'/>")]).send()?;
        Ok(())
    }
    async fn failing(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        Err(Condition::Forbidden.into())
    }
    let mut c = TestComponent::start(
        config(),
        Router::new().iq("urn:test", |ns| {
            ns.get("later", later).get("failing", failing)
        }),
    );
    c.component_received(iq("get", "urn:test:later"));
    c.assert_stanza_received_matching(xml!("<iq type='result'><done xmlns='urn:test'/></iq>"));
    c.component_received(iq("get", "urn:test:failing"));
    c.assert_stanza_received_matching(xml!("<iq type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
}

#[derive(Default)]
struct Recorder(Mutex<Vec<RequestEvent>>);

impl Observer for Recorder {
    fn request(&self, event: &RequestEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[test]
fn stanza_timeout_answers_and_drops_late_sends() {
    let late_result = Arc::new(Mutex::new(None));
    let slot = late_result.clone();
    let slow = move |conn: Conn, _: Vec<Element>| {
        std::thread::sleep(Duration::from_millis(300));
        *slot.lock().unwrap() = Some(conn.iq_resp([]).send());
    };
    let config = config().stanza_timeout(Duration::from_secs(1));
    let mut c = TestComponent::builder(
        config,
        Router::new().iq("urn:test", |ns| ns.get("slow", slow)),
    )
    .settle(Duration::from_millis(10))
    .start();
    let recorder = Arc::new(Recorder::default());
    c.component_mut().set_observer(recorder.clone());
    c.component_received(iq("get", "urn:test:slow"));
    c.advance(Duration::from_millis(999));
    c.assert_nothing_sent(Duration::ZERO);
    c.advance(Duration::from_millis(1));
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' id='1' to='user@example.com/res' type='error'><query xmlns='urn:test:slow'/>\
         <error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the request took too long to be processed</text></error></iq>"
    ));
    // The late answer is refused and never delivered.
    c.assert_nothing_sent(Duration::from_millis(600));
    assert_eq!(
        *late_result.lock().unwrap(),
        Some(Err(exampple_core::SendError::TimedOut))
    );
    let events = recorder.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, RequestOutcome::Timeout);
    assert_eq!(events[0].xmlns, "urn:test:slow");
}

#[test]
fn request_events_report_success_and_failure() {
    fn ok(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        conn.iq_resp([]).send()?;
        Ok(())
    }
    fn ko(_: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
        Err(Condition::BadRequest.into())
    }
    let mut c = TestComponent::start(
        config(),
        Router::new().iq("urn:test", |ns| ns.get("ok", ok).get("ko", ko)),
    );
    let recorder = Arc::new(Recorder::default());
    c.component_mut().set_observer(recorder.clone());
    c.component_received(iq("get", "urn:test:ok"));
    c.component_received(iq("get", "urn:test:ko"));
    let events = recorder.0.lock().unwrap();
    let outcomes: Vec<_> = events
        .iter()
        .map(|e| (e.outcome, e.xmlns.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (RequestOutcome::Success, "urn:test:ok"),
            (RequestOutcome::Failure, "urn:test:ko")
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.duration < Duration::from_secs(5) && e.id.as_deref() == Some("1"))
    );
}

#[test]
fn iq_caller_matches_id_and_sender() {
    let answers = Arc::new(AtomicUsize::new(0));
    let seen = answers.clone();
    let ask = move |conn: Conn, _: Vec<Element>| -> Result<(), StanzaError> {
        let call = conn.call(
            xml!("<iq type='get' to='other.example.com' id='q1'><query xmlns='urn:other'/></iq>"),
            Duration::from_secs(3),
        )?;
        let conn2 = conn.clone();
        let seen = seen.clone();
        std::thread::spawn(move || {
            let answer = exampple_core::testing::block_on(call);
            if answer.is_ok() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let _ = conn2.iq_resp([]).send();
        });
        Ok(())
    };
    let mut c = TestComponent::builder(
        config(),
        Router::new().iq("urn:test", |ns| ns.get("ask", ask)),
    )
    .settle(Duration::from_millis(50))
    .start();
    c.component_received(iq("get", "urn:test:ask"));
    c.assert_stanza_receive(xml!("<iq type='get' to='other.example.com' id='q1' from='test.example.com'><query xmlns='urn:other'/></iq>"), T);
    // An answer from someone else does not count (and is routed as any result).
    c.component_received(xml!(
        "<iq type='result' id='q1' from='evil.example.com' to='test.example.com'/>"
    ));
    c.component_received(xml!(
        "<iq type='result' id='q1' from='other.example.com' to='test.example.com'/>"
    ));
    c.assert_stanza_receive(
        xml!("<iq from='test.example.com' id='1' to='user@example.com/res' type='result'/>"),
        T,
    );
    assert_eq!(answers.load(Ordering::SeqCst), 1);
}

#[test]
fn route_listing() {
    fn ping(_: Conn, _: Vec<Element>) {}
    fn get(_: Conn, _: Vec<Element>) {}
    let router = Router::new()
        .iq("urn:xmpp", |ns| ns.get("ping", ping).get("mam:2", get))
        .feature("urn:xmpp:mix:core:1#create")
        .discovery(Discovery::new());
    let plain = router.format_routes(false);
    assert_eq!(
        plain,
        "iq get urn:xmpp:ping  router::route_listing ping\niq get urn:xmpp:mam:2 router::route_listing get\n"
    );
    let colored = router.format_routes(true);
    assert!(colored.starts_with("\x1b[34miq \x1b[33mget \x1b[32murn:xmpp:ping  \x1b[37mrouter::route_listing \x1b[31mping\x1b[0m\n"), "{colored:?}");
    assert_eq!(
        router.format_namespaces(),
        "urn:xmpp:mam:2\nurn:xmpp:mix:core:1#create\nurn:xmpp:ping\n"
    );
}

#[test]
fn trimmed_drops_whitespace_between_elements() {
    fn echo(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
        conn.iq_resp(payload).send()?;
        Ok(())
    }
    let mut c = TestComponent::start(
        config().trimmed(true),
        Router::new().iq("urn:test", |ns| ns.set("echo", echo)),
    );
    c.component_received_raw(b"<iq type='set' id='t' from='a@x/r' to='test.example.com'>\n  <q xmlns='urn:test:echo'>\n    <item> keep me </item>\n  </q>\n</iq>");
    assert_eq!(
        xml::to_string(&c.stanza_receive(T).unwrap()),
        "<iq xmlns='jabber:component:accept' from='test.example.com' id='t' to='a@x/r' type='result'><q xmlns='urn:test:echo'><item> keep me </item></q></iq>"
    );
}

#[test]
fn disconnected_queue_and_reconnect_through_the_test_kit() {
    let mut c = TestComponent::start(config(), Router::new());
    c.drop_connection();
    assert!(!c.is_online());
    c.component_mut()
        .sender()
        .send(xml!("<message to='a@x' id='q'/>"))
        .unwrap();
    c.pump();
    c.assert_nothing_sent(Duration::ZERO);
    assert!(c.advance_to_next_timeout());
    assert!(c.is_online());
    c.assert_stanza_received(xml!("<message to='a@x' id='q' from='test.example.com'/>"));
}

#[test]
fn rejected_secret_through_the_test_kit() {
    // The dummy accepts the configured secret, whichever it is; what the component wrote is
    // checked against hex(sha1(stream id + secret)) computed outside the code under test:
    // printf %s 16272490714779491840secret | sha1sum (and likewise for "wrong").
    for (secret, digest) in [
        ("secret", "5d88177ae4c28839caa2069ba4e48280c7d8140f"),
        ("wrong", "881f2697064a815cb3fc9f3f85392d39391f09d0"),
    ] {
        let c = TestComponent::start(Config::new("test.example.com", secret), Router::new());
        assert!(c.is_online());
        let written = String::from_utf8_lossy(c.raw_sent()).into_owned();
        assert!(
            written.ends_with(&format!("<handshake>{digest}</handshake>")),
            "{written}"
        );
    }
    let c = TestComponent::builder(config(), Router::new())
        .handshake(exampple_core::testing::Handshake::Reject)
        .start();
    assert!(!c.is_online());
    assert!(c.failure().unwrap().to_string().contains("not-authorized"));
}

#[test]
fn rpc_included_with_one_line() {
    use exampple_core::rpc::{self, Fault, Rpc};
    let rpc = Rpc::new().method_with_arity("sum_int", 2, |p| -> Result<i32, Fault> {
        let a: i32 = rpc::param(&p, 0)?;
        let b: i32 = rpc::param(&p, 1)?;
        Ok(a + b)
    });
    let mut c = TestComponent::start(config(), Router::new().include(rpc));
    c.component_received_raw(
        b"<iq to='test.example.com' from='romeo@example.com/res' id='1' type='set'><query xmlns='jabber:iq:rpc'><methodCall>\
          <methodName>sum_int</methodName><params><param><value><int>12</int></value></param>\
          <param><value><int>55</int></value></param></params></methodCall></query></iq>",
    );
    c.assert_stanza_received(xml!(
        "<iq from='test.example.com' to='romeo@example.com/res' id='1' type='result'><query xmlns='jabber:iq:rpc'>\
         <methodResponse><params><param><value><int>67</int></value></param></params></methodResponse></query></iq>"
    ));
    c.component_received_raw(b"<iq to='test.example.com' from='romeo@example.com/res' id='2' type='set'><query xmlns='jabber:iq:rpc'><bogus/></query></iq>");
    c.assert_stanza_received_matching(xml!(
        "<iq id='2' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    c.component_received_raw(
        b"<iq to='test.example.com' from='romeo@example.com/res' id='3' type='set'><query xmlns='jabber:iq:rpc'><methodCall>\
          <methodName>nope</methodName></methodCall></query></iq>",
    );
    let fault = c.stanza_receive(T).unwrap();
    assert_eq!(fault.attr("type"), Some("result"));
    assert!(xml::to_string(&fault).contains("<name>faultCode</name>"));
}
