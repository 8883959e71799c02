//! Ad-hoc commands (XEP-0050), every path, wire level through the test kit: stages with
//! next, prev, complete, execute and cancel; bad sessions, bad payloads, bad actions,
//! expiry on the simulated clock, the session limit, access, and discovery.

use std::time::Duration;

use exampple_core::commands::{Command, Commands, Finish, Note};
use exampple_core::disco::{Discovery, Identity};
use exampple_core::forms::{Field, FormSpec};
use exampple_core::testing::{CommandRun, TestComponent};
use exampple_core::{Config, Element, Router, xml};

const ALICE: &str = "alice@example.com/phone";
const DOMAIN: &str = "test.example.com";

fn survey() -> Command {
    let name = FormSpec::new("urn:example:survey:name")
        .field(Field::text_single("name").required().label("Your name"));
    let color = FormSpec::new("urn:example:survey:color").field(
        Field::list_single("color")
            .required()
            .option("Red", "red")
            .option("Green", "green")
            .option("Blue", "blue"),
    );
    Command::new("survey", "Survey")
        .stage(name)
        .stage(color)
        .on_complete(|_conn, forms| {
            let name = forms[0].text("name").unwrap_or_default();
            let color = forms[1].value("color").unwrap_or_default();
            Ok(Finish::note(Note::info(format!(
                "Thanks {name}, you like {color}"
            ))))
        })
}

fn commands() -> Commands {
    Commands::new()
        .command(survey())
        .command(
            Command::new("reset", "Reset")
                .on_complete(|_, _| Ok(Finish::note(Note::info("Counter reset")))),
        )
        .command(
            Command::new("admin", "Admin only")
                .allow(|jid| jid.to_string().starts_with("admin@"))
                .on_complete(|_, _| Ok(Finish::done())),
        )
}

fn start(commands: Commands) -> TestComponent {
    let router = Router::new()
        .discovery(Discovery::new().identity(Identity::new("component", "generic", "test")))
        .include(commands);
    TestComponent::start(Config::new(DOMAIN, "secret").set_from(true), router)
}

/// The condition and the XEP-0050 specific condition of an error answer.
fn conditions(error: &Element) -> (String, Option<String>) {
    let error = error
        .get_child("error", "jabber:component:accept")
        .expect("an <error/>");
    let mut defined = None;
    let mut specific = None;
    for child in error.children() {
        if child.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && child.name() != "text" {
            defined = Some(child.name().to_string());
        }
        if child.ns() == "http://jabber.org/protocol/commands" {
            specific = Some(child.name().to_string());
        }
    }
    (defined.expect("a defined condition"), specific)
}

fn field_value(form: &Element, var: &str) -> Option<String> {
    form.children()
        .find(|f| f.attr("var") == Some(var))
        .and_then(|f| f.get_child("value", "jabber:x:data"))
        .map(Element::text)
}

#[test]
fn a_two_stage_command_goes_next_prev_and_completes() {
    let mut c = start(commands());
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    assert_eq!(run.status(), Some("executing"));
    assert_eq!(run.actions(), (vec!["next".into()], Some("next".into())));
    let first = run.last().clone();
    assert_eq!(first.attr("node"), Some("survey"));
    let form = run.form().expect("stage 1's form");
    assert_eq!(form.attr("type"), Some("form"));
    assert_eq!(
        field_value(form, "FORM_TYPE").as_deref(),
        Some("urn:example:survey:name")
    );

    run.next(&mut c, &[("name", "Ann")]).unwrap();
    assert_eq!(
        run.actions(),
        (
            vec!["prev".into(), "complete".into()],
            Some("complete".into())
        )
    );
    assert_eq!(
        field_value(run.form().unwrap(), "FORM_TYPE").as_deref(),
        Some("urn:example:survey:color")
    );

    // Back to stage 1: the name is filled in.
    run.prev(&mut c).unwrap();
    assert_eq!(
        field_value(run.form().unwrap(), "name").as_deref(),
        Some("Ann")
    );
    assert_eq!(run.form().unwrap().attr("type"), Some("form"));

    run.next(&mut c, &[("name", "Ann & Bob")]).unwrap();
    let done = run.complete(&mut c, &[("color", "blue")]).unwrap();
    assert_eq!(
        xml::to_string(&done),
        format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='survey' sessionid='{}' status='completed'><note type='info'>Thanks Ann &amp; Bob, you like blue</note></command>",
            run.session().unwrap()
        )
    );
    // The session is gone.
    let error = run.cancel(&mut c).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-sessionid".into()))
    );
}

#[test]
fn execute_with_a_form_is_the_stages_default_action() {
    let mut c = start(commands());
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    run.execute_stage(&mut c, &[("name", "Ann")]).unwrap();
    assert_eq!(run.status(), Some("executing"));
    let done = run.execute_stage(&mut c, &[("color", "red")]).unwrap();
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(
        CommandRun::notes(&done),
        vec![("info".to_string(), "Thanks Ann, you like red".to_string())]
    );
}

#[test]
fn cancel_ends_the_session() {
    let mut c = start(commands());
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    let session = run.session().unwrap().to_string();
    let canceled = run.cancel(&mut c).unwrap();
    assert_eq!(
        xml::to_string(&canceled),
        format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='survey' sessionid='{session}' status='canceled'/>"
        )
    );
    let error = run.next(&mut c, &[("name", "x")]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-sessionid".into()))
    );
}

#[test]
fn an_invalid_submission_is_bad_payload_and_the_session_stays_usable() {
    let mut c = start(commands());
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    let error = run.next(&mut c, &[]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-payload".into()))
    );
    let text = error
        .get_child("error", "jabber:component:accept")
        .and_then(|e| e.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas"))
        .map(Element::text)
        .unwrap_or_default();
    assert!(text.contains("name is required"), "{text}");
    run.next(&mut c, &[("name", "Ann")]).unwrap();
    // An option the list does not offer.
    let error = run.complete(&mut c, &[("color", "purple")]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-payload".into()))
    );
    let done = run.complete(&mut c, &[("color", "green")]).unwrap();
    assert_eq!(done.attr("status"), Some("completed"));
}

#[test]
fn actions_the_stage_does_not_offer_are_bad_action() {
    let mut c = start(commands());
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    let error = run.prev(&mut c).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-action".into()))
    );
    let error = run.complete(&mut c, &[("name", "Ann")]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-action".into()))
    );
    run.next(&mut c, &[("name", "Ann")]).unwrap();
    let error = run.next(&mut c, &[("color", "red")]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-action".into()))
    );
    let error = run.send(&mut c, Some("jump"), None).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("malformed-action".into()))
    );
}

#[test]
fn a_session_is_its_requesters_alone() {
    let mut c = start(commands());
    let run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    // Another user, and another resource of the same user, with alice's session id.
    for other in ["mallory@example.com/x", "alice@example.com/laptop"] {
        let iq = xml!(
            "<iq type='set' id='steal' from='{other}' to='{DOMAIN}'><command xmlns='http://jabber.org/protocol/commands' node='survey' action='cancel' sessionid='{}'/></iq>",
            run.session().unwrap()
        );
        c.component_received(iq);
        let error = c.stanza_received().unwrap();
        assert_eq!(error.attr("type"), Some("error"));
        assert_eq!(
            conditions(&error),
            ("bad-request".into(), Some("bad-sessionid".into()))
        );
    }
}

#[test]
fn a_session_expires_after_its_lifetime_on_the_components_clock() {
    let mut c = start(commands().lifetime(Duration::from_secs(60)));
    let mut run = CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    c.advance(Duration::from_secs(59));
    // Activity keeps it alive.
    run.next(&mut c, &[("name", "Ann")]).unwrap();
    c.advance(Duration::from_secs(59));
    run.prev(&mut c).unwrap();
    c.advance(Duration::from_secs(61));
    let error = run.next(&mut c, &[("name", "Ann")]).unwrap_err();
    assert_eq!(
        conditions(&error),
        ("bad-request".into(), Some("bad-sessionid".into()))
    );
}

#[test]
fn sessions_are_bounded() {
    let commands = commands().max_sessions(2);
    let seen = commands.clone();
    let mut c = start(commands);
    CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    CommandRun::execute(&mut c, ALICE, "survey").unwrap();
    assert_eq!(seen.open_sessions(), 2);
    let error = CommandRun::execute(&mut c, ALICE, "survey").unwrap_err();
    assert_eq!(conditions(&error).0, "resource-constraint");
    // A command without stages needs no session.
    let done = CommandRun::execute(&mut c, ALICE, "reset").unwrap();
    assert_eq!(done.status(), Some("completed"));
}

#[test]
fn a_command_without_stages_completes_at_once() {
    let mut c = start(commands());
    let run = CommandRun::execute(&mut c, ALICE, "reset").unwrap();
    assert_eq!(
        xml::to_string(run.last()),
        "<command xmlns='http://jabber.org/protocol/commands' node='reset' status='completed'><note type='info'>Counter reset</note></command>"
    );
}

#[test]
fn unknown_nodes_and_forbidden_requesters_are_refused() {
    let mut c = start(commands());
    let error = CommandRun::execute(&mut c, ALICE, "nope").unwrap_err();
    assert_eq!(conditions(&error), ("item-not-found".into(), None));
    let error = CommandRun::execute(&mut c, ALICE, "admin").unwrap_err();
    assert_eq!(conditions(&error), ("forbidden".into(), None));
    let run = CommandRun::execute(&mut c, "admin@example.com/desk", "admin").unwrap();
    assert_eq!(run.status(), Some("completed"));
}

#[test]
fn discovery_lists_the_commands_the_requester_may_run() {
    let mut c = start(commands());
    c.component_received(xml!(
        "<iq type='get' id='i1' from='{ALICE}' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='i1' from='{DOMAIN}' to='{ALICE}'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'>\
           <item jid='{DOMAIN}' node='survey' name='Survey'/>\
           <item jid='{DOMAIN}' node='reset' name='Reset'/>\
         </query></iq>"
    ));
    c.component_received(xml!(
        "<iq type='get' id='i2' from='admin@example.com/desk' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"
    ));
    let items = c.stanza_received().unwrap();
    let nodes: Vec<&str> = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .children()
        .filter_map(|i| i.attr("node"))
        .collect();
    assert_eq!(nodes, ["survey", "reset", "admin"]);

    c.component_received(xml!(
        "<iq type='get' id='i3' from='{ALICE}' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info' node='survey'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='i3' from='{DOMAIN}' to='{ALICE}'><query xmlns='http://jabber.org/protocol/disco#info' node='survey'>\
           <identity category='automation' type='command-node' name='Survey'/>\
           <feature var='http://jabber.org/protocol/commands'/>\
           <feature var='jabber:x:data'/>\
         </query></iq>"
    ));

    c.component_received(xml!(
        "<iq type='get' id='i4' from='{ALICE}' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    let info = c.stanza_received().unwrap();
    let features: Vec<&str> = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert!(
        features.contains(&"http://jabber.org/protocol/commands"),
        "{features:?}"
    );
}
