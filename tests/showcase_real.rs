//! The showcase's ad-hoc commands and per-user counter through real Prosody and ejabberd
//! (started by `scripts/test.sh`), driven by the project's c2s client as a user would:
//! discovery of the commands, the survey stage by stage (prev, complete, cancel, execute),
//! an unknown node, 20 concurrent increments, a second resource sharing the counter, another
//! user with their own, `counter-reset`, and `shout@` answering from its own address.

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::{AutoConnect, Config, Element, xml};
use support::servers::{Server, user};
use support::{Setup, Which};

const T: Duration = Duration::from_secs(10);
const COMPONENT: &str = "component.localhost";
const COMMANDS: &str = "http://jabber.org/protocol/commands";

fn ask(client: &Client, iq: Element) -> Element {
    client
        .request(iq, T)
        .unwrap_or_else(|e| panic!("no answer through the server: {e}"))
}

/// The `<command/>` of a result, or the error's condition and specific condition.
fn command(answer: &Element) -> Result<Element, (String, Option<String>)> {
    if answer.attr("type") == Some("result") {
        return Ok(answer
            .get_child("command", COMMANDS)
            .cloned()
            .unwrap_or_else(|| panic!("no <command/>: {}", exampple::xml::to_string(answer))));
    }
    let error = answer
        .children()
        .find(|c| c.name() == "error")
        .unwrap_or_else(|| {
            panic!(
                "neither result nor error: {}",
                exampple::xml::to_string(answer)
            )
        });
    let defined = error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    let specific = error
        .children()
        .find(|c| c.ns() == COMMANDS)
        .map(|c| c.name().to_string());
    Err((defined, specific))
}

/// A `<command/>` request: `action` on `node`, in `session`, with a submitted form of
/// `values` (`form_type` as its FORM_TYPE).
fn request(
    node: &str,
    action: &str,
    session: Option<&str>,
    form: Option<(&str, &[(&str, &str)])>,
) -> Element {
    let mut command = xml!("<command xmlns='{COMMANDS}' node='{node}' action='{action}'/>");
    if let Some(session) = session {
        exampple::xml::set_attr(&mut command, "sessionid", session);
    }
    if let Some((form_type, values)) = form {
        let mut x = xml!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field></x>"
        );
        for (var, value) in values {
            x.append_child(xml!(
                "<field xmlns='jabber:x:data' var='{var}'><value>{value}</value></field>"
            ));
        }
        command.append_child(x);
    }
    let mut iq = xml!("<iq type='set' to='{COMPONENT}'/>");
    iq.append_child(command);
    iq
}

fn counter(client: &Client, kind: &str) -> u64 {
    let payload = if kind == "set" {
        "<inc xmlns='urn:example:counter'/>"
    } else {
        "<count xmlns='urn:example:counter'/>"
    };
    let iq = exampple::xml::parse(&format!(
        "<iq type='{kind}' to='{COMPONENT}'>{payload}</iq>"
    ))
    .unwrap();
    let answer = ask(client, iq);
    answer
        .get_child("count", "urn:example:counter")
        .unwrap_or_else(|| panic!("no count: {}", exampple::xml::to_string(&answer)))
        .text()
        .parse()
        .unwrap()
}

fn field(command: &Element, var: &str) -> Option<String> {
    command
        .get_child("x", "jabber:x:data")?
        .children()
        .find(|f| f.attr("var") == Some(var))
        .and_then(|f| f.children().find(|v| v.name() == "value"))
        .map(Element::text)
}

fn scenario(server: Server) {
    let _turn = server.lock();
    let config = Config::new(COMPONENT, "secret")
        .port(server.component_port())
        .auto_connect(AutoConnect::Immediately)
        .set_from(true)
        .trimmed(true)
        .reconnect_backoff(Duration::from_millis(200), Duration::from_secs(2));
    let running = support::start(Which::Smol, config, app::router(), Setup::default());
    let alice = user(server, "alice", "phone");
    // The server routes to the component once it has registered it.
    let until = Instant::now() + T;
    while alice
        .request(
            xml!("<iq type='get' to='{COMPONENT}'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Duration::from_secs(2),
        )
        .map(|a| a.attr("type") != Some("result"))
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < until,
            "the showcase never came online on {server:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Discovery: the feature, the listing, a command's node.
    let info = ask(
        &alice,
        xml!(
            "<iq type='get' to='{COMPONENT}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let features: Vec<String> = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var").map(str::to_string))
        .collect();
    assert!(features.iter().any(|f| f == COMMANDS), "{features:?}");
    let items = ask(
        &alice,
        xml!(
            "<iq type='get' to='{COMPONENT}'><query xmlns='http://jabber.org/protocol/disco#items' node='{COMMANDS}'/></iq>"
        ),
    );
    let listed: Vec<(String, String)> = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .children()
        .map(|i| {
            (
                i.attr("node").unwrap_or_default().to_string(),
                i.attr("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("survey".to_string(), "Survey".to_string()),
            ("counter-reset".to_string(), "Reset counter".to_string())
        ]
    );

    // The survey: next, prev (the name is there), complete.
    let first = command(&ask(&alice, request("survey", "execute", None, None))).unwrap();
    assert_eq!(first.attr("status"), Some("executing"));
    let session = first.attr("sessionid").unwrap().to_string();
    let name_form = Some(("urn:example:survey:name", &[("name", "Ann")][..]));
    let second = command(&ask(
        &alice,
        request("survey", "next", Some(&session), name_form),
    ))
    .unwrap();
    assert_eq!(
        field(&second, "FORM_TYPE").as_deref(),
        Some("urn:example:survey:color")
    );
    let back = command(&ask(
        &alice,
        request("survey", "prev", Some(&session), None),
    ))
    .unwrap();
    assert_eq!(field(&back, "name").as_deref(), Some("Ann"));
    command(&ask(
        &alice,
        request("survey", "next", Some(&session), name_form),
    ))
    .unwrap();
    let color_form = Some(("urn:example:survey:color", &[("color", "blue")][..]));
    let done = command(&ask(
        &alice,
        request("survey", "complete", Some(&session), color_form),
    ))
    .unwrap();
    assert_eq!(done.attr("status"), Some("completed"));
    let note = done.children().find(|c| c.name() == "note").unwrap();
    assert_eq!(
        (note.attr("type"), note.text()),
        (Some("info"), "Thanks Ann, you like blue".to_string())
    );

    // Execute as the default action, a bad payload (the session stays), cancel.
    let first = command(&ask(&alice, request("survey", "execute", None, None))).unwrap();
    let session = first.attr("sessionid").unwrap().to_string();
    let empty = Some(("urn:example:survey:name", &[][..]));
    assert_eq!(
        command(&ask(
            &alice,
            request("survey", "execute", Some(&session), empty)
        ))
        .unwrap_err(),
        ("bad-request".to_string(), Some("bad-payload".to_string()))
    );
    let second = command(&ask(
        &alice,
        request("survey", "execute", Some(&session), name_form),
    ))
    .unwrap();
    assert_eq!(second.attr("status"), Some("executing"));
    let canceled = command(&ask(
        &alice,
        request("survey", "cancel", Some(&session), None),
    ))
    .unwrap();
    assert_eq!(canceled.attr("status"), Some("canceled"));
    assert_eq!(
        command(&ask(
            &alice,
            request("survey", "next", Some(&session), name_form)
        ))
        .unwrap_err(),
        ("bad-request".to_string(), Some("bad-sessionid".to_string()))
    );
    assert_eq!(
        command(&ask(&alice, request("nope", "execute", None, None))).unwrap_err(),
        ("item-not-found".to_string(), None)
    );

    // The counter: reset first (earlier runs), 20 increments at once from two resources.
    let reset = command(&ask(
        &alice,
        request("counter-reset", "execute", None, None),
    ))
    .unwrap();
    assert_eq!(reset.attr("status"), Some("completed"));
    assert_eq!(
        reset
            .children()
            .find(|c| c.name() == "note")
            .map(Element::text)
            .as_deref(),
        Some("Counter reset")
    );
    assert_eq!(counter(&alice, "get"), 0);
    let laptop = user(server, "alice", "laptop");
    let mut seen: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let client = if i % 2 == 0 { &alice } else { &laptop };
                s.spawn(move || counter(client, "set"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    seen.sort();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<u64>>(),
        "each increment answered once, in 1..20"
    );
    assert_eq!(
        counter(&laptop, "get"),
        20,
        "the second resource shares the counter"
    );
    let bob = user(server, "bob", "desk");
    command(&ask(&bob, request("counter-reset", "execute", None, None))).unwrap();
    assert_eq!(counter(&bob, "set"), 1, "another user has their own");
    assert_eq!(counter(&alice, "get"), 20);

    // Routing by the addressed local part: shout@ answers from its own address.
    alice
        .send(xml!(
            "<message type='chat' to='shout@{COMPONENT}'><body>hello bob</body></message>"
        ))
        .unwrap();
    let shouted = alice
        .wait_for(
            &xml!("<message from='shout@{COMPONENT}'><body>HELLO BOB</body></message>"),
            exampple::matching::Match::Subset,
            T,
        )
        .unwrap_or_else(|e| panic!("no shout back through {server:?}: {e}"));
    assert_eq!(shouted.attr("type"), Some("chat"));

    alice.close();
    laptop.close();
    bob.close();
    (running.shutdown)(Duration::from_millis(500));
    running.join.join().unwrap().unwrap();
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_showcase_commands_and_counter() {
    scenario(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_showcase_commands_and_counter() {
    scenario(Server::Ejabberd);
}
