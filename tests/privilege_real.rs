//! XEP-0356 through real Prosody (`urn:xmpp:privilege:2`) and ejabberd
//! (`urn:xmpp:privilege:1`), started by `scripts/test.sh` with roster `both` and message
//! `outgoing` granted to the showcase's domain (Prosody also grants iqs in
//! `jabber:iq:private`): alice reads her roster through the showcase, bob receives the
//! message the showcase sends on alice's behalf, and a privileged iq stores and reads alice's
//! private XML (Prosody), or is refused at once as not granted (ejabberd speaks `:1`, which
//! has no iq permission).

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use std::time::{Duration, Instant};

use exampple::c2s::blocking::Client;
use exampple::matching::Match;
use exampple::{AutoConnect, Config, Conn, Element, StanzaError, xml};
use support::servers::{Server, user};
use support::{Setup, Which};

const T: Duration = Duration::from_secs(10);
const COMPONENT: &str = "component.localhost";

fn ask(client: &Client, iq: Element) -> Element {
    client
        .request(iq, T)
        .unwrap_or_else(|e| panic!("no answer through the server: {e}"))
}

/// `<private xmlns='urn:example:private'>TEXT</private>` (set): stores TEXT in the sender's
/// private XML storage with a privileged iq set, reads it back with a get, and answers
/// what it read.
async fn private(conn: Conn, payload: Element) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    let privileged = conn.privileged();
    let text = payload.text();
    privileged
        .iq(
            &user,
            xml!(
                "<iq type='set'><query xmlns='jabber:iq:private'><note xmlns='urn:example:note'>{text}</note></query></iq>"
            ),
        )
        .await?;
    let read = privileged
        .iq(
            &user,
            xml!("<iq type='get'><query xmlns='jabber:iq:private'><note xmlns='urn:example:note'/></query></iq>"),
        )
        .await?;
    let note = read
        .get_child("query", "jabber:iq:private")
        .and_then(|q| q.get_child("note", "urn:example:note"))
        .map(Element::text)
        .unwrap_or_default();
    conn.iq_resp([xml!(
        "<private xmlns='urn:example:private'>{note}</private>"
    )])
    .send()?;
    Ok(())
}

fn error_condition(answer: &Element) -> Option<(String, String)> {
    let error = answer.children().find(|c| c.name() == "error")?;
    let condition = error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")?
        .name()
        .to_string();
    Some((error.attr("type").unwrap_or("").to_string(), condition))
}

fn scenario(server: Server) {
    let _turn = server.lock();
    let config = Config::new(COMPONENT, "secret")
        .port(server.component_port())
        .auto_connect(AutoConnect::Immediately)
        .set_from(true)
        .trimmed(true)
        .reconnect_backoff(Duration::from_millis(200), Duration::from_secs(2));
    let router = app::router().iq("urn:example", |ns| ns.set("private", private));
    let running = support::start(Which::Smol, config, router, Setup::default());
    let alice = user(server, "alice", "priv");
    let bob = user(server, "bob", "priv");
    bob.send(xml!("<presence/>")).unwrap();

    // alice's roster has bob (set by alice herself, as a client does).
    let set = ask(
        &alice,
        xml!(
            "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>"
        ),
    );
    assert_eq!(
        set.attr("type"),
        Some("result"),
        "{}",
        exampple::xml::to_string(&set)
    );

    // The showcase reads it through the privilege once it is online and granted (the
    // advertisement follows the handshake).
    let until = Instant::now() + T;
    let roster = loop {
        let answer = ask(
            &alice,
            xml!("<iq type='get' to='{COMPONENT}'><roster xmlns='urn:example:privileged'/></iq>"),
        );
        if answer.attr("type") == Some("result") {
            break answer;
        }
        assert!(
            Instant::now() < until,
            "no roster through {server:?}: {}",
            exampple::xml::to_string(&answer)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let jids: Vec<&str> = roster
        .get_child("roster", "urn:example:privileged")
        .expect("a <roster/>")
        .children()
        .filter_map(|i| i.attr("jid"))
        .collect();
    assert!(jids.contains(&"bob@localhost"), "{jids:?}");

    // A message on alice's behalf: bob gets it from alice.
    let done = ask(
        &alice,
        xml!(
            "<iq type='set' to='{COMPONENT}'><notify xmlns='urn:example:privileged' to='bob@localhost'>hello bob</notify></iq>"
        ),
    );
    assert_eq!(
        done.attr("type"),
        Some("result"),
        "{}",
        exampple::xml::to_string(&done)
    );
    let message = bob
        .wait_for(
            &xml!("<message from='alice@localhost'><body>hello bob</body></message>"),
            Match::Subset,
            T,
        )
        .unwrap_or_else(|e| panic!("bob got nothing from alice through {server:?}: {e}"));
    assert_eq!(message.attr("type"), Some("chat"));

    // A privileged iq: Prosody (`:2`) carries it out; ejabberd (`:1`) has no iq permission,
    // so the showcase refuses at once rather than wait for a timeout.
    let started = Instant::now();
    let answer = ask(
        &alice,
        xml!(
            "<iq type='set' to='{COMPONENT}'><private xmlns='urn:example:private'>kept</private></iq>"
        ),
    );
    match server {
        Server::Prosody => assert_eq!(
            answer
                .get_child("private", "urn:example:private")
                .map(Element::text),
            Some("kept".to_string()),
            "{}",
            exampple::xml::to_string(&answer)
        ),
        Server::Ejabberd => {
            assert_eq!(
                error_condition(&answer),
                Some(("auth".to_string(), "forbidden".to_string())),
                "{}",
                exampple::xml::to_string(&answer)
            );
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "refused at once"
            );
        }
    }

    // Clean up alice's roster for the next run.
    ask(
        &alice,
        xml!(
            "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>"
        ),
    );
    alice.close();
    bob.close();
    (running.shutdown)(Duration::from_millis(500));
    running.join.join().unwrap().unwrap();
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn prosody_privileged_roster_message_and_iq() {
    scenario(Server::Prosody);
}

#[test]
#[ignore = "needs an XMPP server: scripts/test.sh"]
fn ejabberd_privileged_roster_and_message() {
    scenario(Server::Ejabberd);
}
