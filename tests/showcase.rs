//! The showcase's behaviour, wire level, through the test kit (its router is the one the
//! example runs; `scripts/demo.sh` drives the same behaviour through a real Prosody).

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod app;

use std::time::Duration;

use exampple::testing::TestComponent;
use exampple::{Config, Element, xml};

const T: Duration = Duration::from_secs(5);

fn showcase() -> TestComponent {
    let config = Config::new("component.localhost", "secret")
        .stanza_timeout(Duration::from_secs(1))
        .trimmed(true)
        .set_from(true);
    TestComponent::builder(config, app::router())
        .settle(Duration::from_millis(200))
        .start()
}

fn iq(kind: &str, id: &str, payload: Element) -> Element {
    xml!(
        "<iq type='{kind}' id='{id}' from='alice@localhost/r' to='component.localhost'>{}</iq>",
        payload
    )
}

#[test]
fn discovery() {
    let mut c = showcase();
    c.component_received(iq(
        "get",
        "d",
        xml!("<query xmlns='http://jabber.org/protocol/disco#info'/>"),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='d' to='alice@localhost/r' type='result'>\
         <query xmlns='http://jabber.org/protocol/disco#info'>\
         <identity category='component' name='showcase' type='generic'/>\
         <feature var='http://jabber.org/protocol/commands'/>\
         <feature var='http://jabber.org/protocol/disco#info'/>\
         <feature var='jabber:iq:rpc'/>\
         <feature var='jabber:iq:version'/>\
         <feature var='urn:example:counter'/>\
         <feature var='urn:example:crash'/>\
         <feature var='urn:example:delegated'/>\
         <feature var='urn:example:form'/>\
         <feature var='urn:example:instance'/>\
         <feature var='urn:example:privileged'/>\
         <feature var='urn:example:raise'/>\
         <feature var='urn:example:roundtrip'/>\
         <feature var='urn:example:slow'/>\
         <feature var='urn:xmpp:delegation:1'/>\
         <feature var='urn:xmpp:delegation:2'/>\
         <feature var='urn:xmpp:mix:core:1#create'/>\
         <feature var='urn:xmpp:ping'/>\
         <x xmlns='jabber:x:data' type='result'>\
         <field type='hidden' var='FORM_TYPE'><value>urn:example:showcase</value></field>\
         <field type='text-single' var='max-file-size'><value>1048576</value></field></x>\
         </query></iq>"
    ));
}

#[test]
fn ping_and_version() {
    let mut c = showcase();
    c.component_received(iq("get", "p", xml!("<ping xmlns='urn:xmpp:ping'/>")));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='p' to='alice@localhost/r' type='result'/>"
    ));
    c.component_received(iq("get", "v", xml!("<query xmlns='jabber:iq:version'/>")));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='v' to='alice@localhost/r' type='result'><query xmlns='jabber:iq:version'>\
         <name>exampple</name><version>{}</version></query></iq>",
        env!("CARGO_PKG_VERSION")
    ));
}

#[test]
fn form_get_valid_and_invalid_submit() {
    let mut c = showcase();
    c.component_received(iq("get", "f", xml!("<query xmlns='urn:example:form'/>")));
    let reply = c.stanza_receive(T).unwrap();
    let form = reply
        .get_child("query", "urn:example:form")
        .and_then(|q| q.get_child("x", "jabber:x:data"))
        .unwrap();
    assert_eq!(form.attr("type"), Some("form"));
    assert_eq!(
        form.get_child("title", "jabber:x:data").unwrap().text(),
        "Personal Details"
    );
    let vars: Vec<_> = form.children().filter_map(|f| f.attr("var")).collect();
    assert_eq!(vars, ["FORM_TYPE", "name", "surname", "gender"]);

    c.component_received(iq(
        "set",
        "s1",
        xml!("<query xmlns='urn:example:form'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:example:form</value></field>\
         <field var='name'><value>Manuel</value></field><field var='gender'><value>M</value></field></x></query>"),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='s1' to='alice@localhost/r' type='result'/>"
    ));

    c.component_received(iq(
        "set",
        "s2",
        xml!(
            "<query xmlns='urn:example:form'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:example:form</value></field>\
         <field var='gender'><value>X</value></field></x></query>"
        ),
    ));
    let error = c.stanza_receive(T).unwrap();
    assert_eq!(error.attr("type"), Some("error"));
    let text = exampple::StanzaError::from_element(
        error.get_child("error", "jabber:component:accept").unwrap(),
    )
    .unwrap();
    assert_eq!(text.condition, exampple::Condition::BadRequest);
    assert_eq!(
        text.text.as_deref(),
        Some("name: name is required; gender: gender use invalid option `X`")
    );
}

#[test]
fn rpc_methods_and_fault() {
    let mut c = showcase();
    // Parameters are elements of their own, so each says its namespace.
    let call = |method: &str, params: Vec<Element>| {
        xml!(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>{method}</methodName><params>{}</params></methodCall></query>",
            params
        )
    };
    c.component_received(iq(
        "set",
        "r1",
        call(
            "examples.add",
            vec![
                xml!("<param xmlns='jabber:iq:rpc'><value><int>2</int></value></param>"),
                xml!("<param xmlns='jabber:iq:rpc'><value><int>40</int></value></param>"),
            ],
        ),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='r1' to='alice@localhost/r' type='result'><query xmlns='jabber:iq:rpc'>\
         <methodResponse><params><param><value><int>42</int></value></param></params></methodResponse></query></iq>"
    ));
    c.component_received(iq(
        "set",
        "r2",
        call(
            "examples.echo",
            vec![xml!(
                "<param xmlns='jabber:iq:rpc'><value><string>hello</string></value></param>"
            )],
        ),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='r2' to='alice@localhost/r' type='result'><query xmlns='jabber:iq:rpc'>\
         <methodResponse><params><param><value><string>hello</string></value></param></params></methodResponse></query></iq>"
    ));
    c.component_received(iq("set", "r3", call("examples.nope", Vec::new())));
    let fault = c.stanza_receive(T).unwrap();
    assert_eq!(fault.attr("type"), Some("result"));
    assert!(exampple::xml::to_string(&fault).contains("<fault>"));
}

#[test]
fn chat_echo_and_probe() {
    let mut c = showcase();
    c.component_received(xml!(
        "<message type='chat' id='m1' from='alice@localhost/r' to='component.localhost'><body>hi</body><thread>t1</thread></message>"
    ));
    c.assert_stanza_received(xml!(
        "<message type='chat' id='m1' from='component.localhost' to='alice@localhost/r'><body>echo: hi</body><thread>t1</thread></message>"
    ));
    c.component_received(xml!(
        "<presence type='probe' from='alice@localhost/r' to='component.localhost'/>"
    ));
    c.assert_stanza_received(xml!(
        "<presence from='component.localhost' to='alice@localhost/r'/>"
    ));
}

#[test]
fn error_routes_and_fallback() {
    let mut c = showcase();
    c.component_received(iq("get", "e1", xml!("<query xmlns='urn:example:raise'/>")));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='e1' to='alice@localhost/r' type='error'><query xmlns='urn:example:raise'/>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>user not found</text></error></iq>"
    ));
    c.component_received(iq("get", "e2", xml!("<query xmlns='urn:example:crash'/>")));
    // Up to T, not the 200 ms settle: the panic hook prints the panic (with a backtrace
    // under RUST_BACKTRACE=1, which can take longer than that) before the answer is sent.
    // Exact: the panic's message must not reach the sender.
    c.assert_stanza_receive(
        xml!(
            "<iq from='component.localhost' id='e2' to='alice@localhost/r' type='error'><query xmlns='urn:example:crash'/>\
             <error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
        T,
    );
    c.component_received(iq("get", "e3", xml!("<query xmlns='urn:example:slow'/>")));
    c.advance(Duration::from_secs(1));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='e3' to='alice@localhost/r' type='error'><query xmlns='urn:example:slow'/>\
         <error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the request took too long to be processed</text></error></iq>"
    ));
    c.component_received(iq(
        "get",
        "e4",
        xml!("<query xmlns='urn:example:unknown'/>"),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='e4' to='alice@localhost/r' type='error'><query xmlns='urn:example:unknown'/>\
         <error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    // Still serving after all of that.
    c.component_received(iq("get", "p", xml!("<ping xmlns='urn:xmpp:ping'/>")));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='p' to='alice@localhost/r' type='result'/>"
    ));
}

#[test]
fn delegated_request_answered_in_the_envelope() {
    let mut c = showcase();
    c.component_received_raw(
        b"<iq from='localhost' to='component.localhost' type='set' id='OUTER'>\
          <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
          <iq xmlns='jabber:client' xml:lang='en' to='localhost' from='alice@localhost/d' id='INNER' type='get'>\
          <query xmlns='urn:example:delegated'/></iq></forwarded></delegation></iq>",
    );
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='OUTER' to='localhost' type='result'>\
         <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
         <iq xmlns='jabber:client' from='localhost' id='INNER' to='alice@localhost/d' type='result'>\
         <query xmlns='urn:example:delegated'><answer>42</answer></query></iq>\
         </forwarded></delegation></iq>"
    ));
}

#[test]
fn route_and_namespace_listing() {
    let router = app::router();
    let routes = router.format_routes(false);
    assert!(
        routes.lines().any(|l| l.starts_with("iq ")
            && l.contains(" get ")
            && l.contains("urn:xmpp:ping")
            && l.ends_with(" ping")),
        "{routes}"
    );
    assert!(routes.contains("jabber:iq:rpc"));
    assert!(
        router
            .format_namespaces()
            .lines()
            .any(|l| l == "urn:example:form")
    );
}

/// The `routes` and `namespaces` commands of `examples/showcase` (the runtime no longer
/// reads the arguments; the program answers them through `app::listing`).
#[test]
fn showcase_listing_commands() {
    let routes = app::listing("routes", false).expect("routes is a command");
    assert!(
        routes
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["iq", "get", "urn:xmpp:ping", "showcase::app", "ping"]),
        "{routes}"
    );
    assert!(
        routes
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "iq",
                    "set",
                    "jabber:iq:rpc",
                    "exampple_core::rpc::Rpc",
                    "handle_query"
                ]),
        "{routes}"
    );
    assert!(
        routes
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["message", "chat", "shout@", "showcase::app", "shout"]),
        "{routes}"
    );
    let colored = app::listing("routes", true).expect("routes is a command");
    assert!(colored.starts_with("\x1b[34miq "), "{colored:?}");
    let namespaces = app::listing("namespaces", false).expect("namespaces is a command");
    assert!(
        namespaces.lines().any(|l| l == "urn:xmpp:ping"),
        "{namespaces}"
    );
    assert_eq!(app::listing("namespaces", true), Some(namespaces));
    assert_eq!(app::listing("connect", false), None);
    assert_eq!(app::listing("", false), None);
}

/// The survey (`next`, `prev` with the name filled in, `complete`, `cancel`, `execute` as the
/// default action), an unknown node, and the listing, as a client sees them.
#[test]
fn survey_command() {
    use exampple::testing::CommandRun;
    let mut c = showcase();
    c.component_received(iq(
        "get",
        "items",
        xml!("<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>"),
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='items' to='alice@localhost/r' type='result'>\
         <query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'>\
         <item jid='component.localhost' name='Survey' node='survey'/>\
         <item jid='component.localhost' name='Reset counter' node='counter-reset'/>\
         </query></iq>"
    ));
    let mut run = CommandRun::execute(&mut c, "alice@localhost/r", "survey").unwrap();
    assert_eq!(
        run.actions(),
        (vec!["next".to_string()], Some("next".to_string()))
    );
    run.next(&mut c, &[("name", "Ann")]).unwrap();
    assert_eq!(
        run.actions(),
        (
            vec!["prev".to_string(), "complete".to_string()],
            Some("complete".to_string())
        )
    );
    run.prev(&mut c).unwrap();
    let name = run
        .form()
        .and_then(|f| f.children().find(|f| f.attr("var") == Some("name")))
        .and_then(|f| f.get_child("value", "jabber:x:data"))
        .map(|v| v.text());
    assert_eq!(name.as_deref(), Some("Ann"));
    run.execute_stage(&mut c, &[("name", "Ann")]).unwrap();
    let done = run.execute_stage(&mut c, &[("color", "green")]).unwrap();
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(
        CommandRun::notes(&done),
        vec![("info".to_string(), "Thanks Ann, you like green".to_string())]
    );

    let mut run = CommandRun::execute(&mut c, "alice@localhost/r", "survey").unwrap();
    let canceled = run.cancel(&mut c).unwrap();
    assert_eq!(canceled.attr("status"), Some("canceled"));

    let error = CommandRun::execute(&mut c, "alice@localhost/r", "nope").unwrap_err();
    assert!(
        error
            .get_child("error", "jabber:component:accept")
            .and_then(|e| e.get_child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"))
            .is_some(),
        "{}",
        xml::to_string(&error)
    );
}

/// The counter: per bare JID (every resource shares it), atomic under concurrent
/// increments, reset by the `counter-reset` command.
#[test]
fn counter_per_user_and_reset() {
    use exampple::testing::CommandRun;
    let mut c = showcase();
    let inc = |c: &mut TestComponent, from: &str, id: &str| -> String {
        c.component_received(xml!(
            "<iq type='set' id='{id}' from='{from}' to='component.localhost'><inc xmlns='urn:example:counter'/></iq>"
        ));
        let answer = c.stanza_received().expect("an answer");
        answer
            .get_child("count", "urn:example:counter")
            .map(|n| n.text())
            .unwrap_or_else(|| panic!("{}", xml::to_string(&answer)))
    };
    assert_eq!(inc(&mut c, "alice@localhost/a", "1"), "1");
    assert_eq!(inc(&mut c, "alice@localhost/b", "2"), "2");
    assert_eq!(inc(&mut c, "bob@localhost/a", "3"), "1");
    c.component_received(xml!(
        "<iq type='get' id='4' from='alice@localhost/c' to='component.localhost'><count xmlns='urn:example:counter'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq from='component.localhost' id='4' to='alice@localhost/c' type='result'><count xmlns='urn:example:counter'>2</count></iq>"
    ));
    // Twenty at once: each answered once, with 3..=22.
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.push(xml!(
            "<iq type='set' id='b{i}' from='alice@localhost/r{}' to='component.localhost'><inc xmlns='urn:example:counter'/></iq>",
            i % 3
        ));
    }
    for stanza in burst {
        c.component_received_nowait(stanza);
    }
    let mut counts: Vec<u64> = (0..20)
        .map(|_| {
            let answer = c
                .stanza_receive(Duration::from_secs(5))
                .expect("every increment answered");
            answer
                .get_child("count", "urn:example:counter")
                .unwrap()
                .text()
                .parse()
                .unwrap()
        })
        .collect();
    counts.sort();
    assert_eq!(counts, (3..=22).collect::<Vec<u64>>());
    let done = CommandRun::execute(&mut c, "alice@localhost/r", "counter-reset").unwrap();
    assert_eq!(
        xml::to_string(done.last()),
        "<command xmlns='http://jabber.org/protocol/commands' node='counter-reset' status='completed'><note type='info'>Counter reset</note></command>"
    );
    assert_eq!(inc(&mut c, "alice@localhost/a", "5"), "1");
    assert_eq!(
        inc(&mut c, "bob@localhost/a", "6"),
        "2",
        "bob's counter is his"
    );
}

/// A chat message to `shout@` is answered from `shout@` in upper case (routing by the
/// addressed local part); the domain still echoes.
#[test]
fn shout_answers_in_upper_case_from_its_own_address() {
    let mut c = showcase();
    c.component_received(xml!(
        "<message type='chat' id='s1' from='alice@localhost/r' to='shout@component.localhost'><body>hello bob</body></message>"
    ));
    c.assert_stanza_received(xml!(
        "<message type='chat' from='shout@component.localhost' to='alice@localhost/r'><body>HELLO BOB</body></message>"
    ));
    c.component_received(xml!(
        "<message type='chat' id='s2' from='alice@localhost/r' to='component.localhost'><body>hello</body></message>"
    ));
    c.assert_stanza_received(xml!(
        "<message type='chat' id='s2' from='component.localhost' to='alice@localhost/r'><body>echo: hello</body></message>"
    ));
}

/// The showcase's privileged contract, with the test kit's simulated server: the roster
/// through the privilege (and `forbidden` without it), a notify on the sender's behalf.
#[test]
fn privileged_roster_and_notify() {
    use exampple::privilege::{MessageAccess, Permissions, RosterAccess, Version};

    let mut c = showcase();
    let roster = || iq("get", "r", xml!("<roster xmlns='urn:example:privileged'/>"));
    c.component_received(roster());
    let refused = c.stanza_received().expect("an answer");
    assert_eq!(refused.attr("type"), Some("error"));
    let error = refused
        .get_child("error", "jabber:component:accept")
        .unwrap();
    assert_eq!(error.attr("type"), Some("auth"));
    assert!(
        error
            .get_child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas")
            .is_some()
    );

    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost")
            .with_roster(RosterAccess::Get)
            .with_message(MessageAccess::Outgoing),
    );
    c.component_received_nowait(roster());
    let get = c
        .stanza_receive(Duration::from_secs(5))
        .expect("the roster get");
    assert_eq!(get.attr("to"), Some("alice@localhost"));
    assert!(get.get_child("query", "jabber:iq:roster").is_some());
    let id = get.attr("id").unwrap();
    c.component_received(xml!(
        "<iq type='result' id='{id}' from='alice@localhost' to='component.localhost'>\
         <query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='both'/></query></iq>"
    ));
    c.assert_stanza_receive(
        xml!(
            "<iq type='result' id='r' from='component.localhost' to='alice@localhost/r'>\
             <roster xmlns='urn:example:privileged'><item jid='bob@localhost'/></roster></iq>"
        ),
        Duration::from_secs(5),
    );

    c.component_received(iq(
        "set",
        "n",
        xml!("<notify xmlns='urn:example:privileged' to='bob@localhost'>hello bob</notify>"),
    ));
    c.assert_stanza_received(xml!(
        "<message from='component.localhost' to='localhost'><privilege xmlns='urn:xmpp:privilege:2'>\
         <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost' to='bob@localhost'>\
         <body>hello bob</body></message></forwarded></privilege></message>"
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='n' from='component.localhost' to='alice@localhost/r'/>"
    ));
}

/// `<instance/>` names the instance that answered: its private domain, or the shared one.
#[test]
fn instance_names_the_instance_that_answered() {
    let named = |instance_domain: Option<&str>, name: &str| {
        let config = Config::new("component.localhost", "secret").set_from(true);
        let router = app::router_for(instance_domain.map(str::to_string));
        let mut c = TestComponent::start(config, router);
        c.component_received(iq(
            "get",
            "i",
            xml!("<instance xmlns='urn:example:instance'/>"),
        ));
        c.assert_stanza_received(xml!(
            "<iq from='component.localhost' id='i' to='alice@localhost/r' type='result'>\
             <instance xmlns='urn:example:instance' name='{name}'/></iq>"
        ));
    };
    named(None, "component.localhost");
    named(Some("i1.component.localhost"), "i1.component.localhost");
}

/// `<roundtrip/>` pings the sender's full JID and answers once the user has; without the
/// user's answer, `remote-server-timeout`.
#[test]
fn roundtrip_pings_the_user_and_answers_after_their_result() {
    let config = Config::new("component.localhost", "secret")
        .stanza_timeout(Duration::from_secs(10))
        .set_from(true);
    let mut c = TestComponent::builder(config, app::router())
        .settle(Duration::from_millis(200))
        .start();
    c.component_received(iq(
        "get",
        "r1",
        xml!("<roundtrip xmlns='urn:example:roundtrip'/>"),
    ));
    let ping = c.assert_stanza_received_matching(xml!(
        "<iq from='component.localhost' to='alice@localhost/r' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    let id = ping.attr("id").expect("the call has an id").to_string();
    c.component_received(xml!(
        "<iq type='result' id='{id}' from='alice@localhost/r' to='component.localhost'/>"
    ));
    c.assert_stanza_receive(
        xml!(
            "<iq from='component.localhost' id='r1' to='alice@localhost/r' type='result'>\
             <roundtrip xmlns='urn:example:roundtrip'/></iq>"
        ),
        T,
    );

    // The user never answers: the call times out after 5 s.
    c.component_received(iq(
        "get",
        "r2",
        xml!("<roundtrip xmlns='urn:example:roundtrip'/>"),
    ));
    c.assert_stanza_received_matching(xml!(
        "<iq from='component.localhost' to='alice@localhost/r' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    c.advance(app::ROUNDTRIP_TIMEOUT);
    c.assert_stanza_receive(
        xml!(
            "<iq from='component.localhost' id='r2' to='alice@localhost/r' type='error'>\
             <roundtrip xmlns='urn:example:roundtrip'/>\
             <error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the user did not answer the ping</text>\
             </error></iq>"
        ),
        T,
    );
}

/// `<slow ms='N'/>` answers after N ms; a bad `ms` is a bad request.
#[test]
fn slow_answers_after_the_time_it_is_asked_for() {
    let mut c = showcase();
    c.component_received(iq(
        "get",
        "s1",
        xml!("<slow xmlns='urn:example:slow' ms='50'/>"),
    ));
    c.assert_stanza_receive(
        xml!("<iq from='component.localhost' id='s1' to='alice@localhost/r' type='result'/>"),
        T,
    );
    for (id, ms) in [("s2", "60001"), ("s3", "soon")] {
        c.component_received(iq(
            "get",
            id,
            xml!("<slow xmlns='urn:example:slow' ms='{ms}'/>"),
        ));
        c.assert_stanza_receive(
            xml!(
                "<iq from='component.localhost' id='{id}' to='alice@localhost/r' type='error'>\
                 <slow xmlns='urn:example:slow' ms='{ms}'/>\
                 <error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>ms: milliseconds, at most 60000</text>\
                 </error></iq>"
            ),
            T,
        );
    }
}
