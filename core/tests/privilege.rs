//! XEP-0356 privileged entity at the wire level, through the test kit's simulated server:
//! both namespace generations, what was not granted, the server's refusals, and grants that
//! last one connection.

use std::time::Duration;

use exampple_core::component::Event;
use exampple_core::privilege::{
    IqAccess, MessageAccess, Permissions, PresenceAccess, RosterAccess, RosterItem, Subscription,
    Version,
};
use exampple_core::testing::{TestComponent, block_on};
use exampple_core::{
    Config, Conn, Element, MessageType, PrivilegeError, Router, StanzaError, stanza, xml,
};

const DOMAIN: &str = "gw.localhost";
const WAIT: Duration = Duration::from_secs(5);

/// `<roster xmlns='urn:example:privileged'/>`: the sender's roster through the privilege.
async fn roster(conn: Conn) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    let roster = conn.privileged().roster(&user).await?;
    let mut answer = xml!("<roster xmlns='urn:example:privileged'/>");
    for item in &roster.items {
        answer.append_child(xml!(
            "<item xmlns='urn:example:privileged' jid='{}' name='{}' groups='{}'/>",
            item.jid.as_str(),
            item.name.as_deref().unwrap_or(""),
            item.groups.join(",")
        ));
    }
    conn.iq_resp([answer]).send()?;
    Ok(())
}

/// `<notify to='JID'>TEXT</notify>`: a chat message on the sender's behalf (a sync
/// controller).
fn notify(conn: Conn, notify: Element) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    let message = stanza::message(MessageType::Chat)
        .from(user)
        .to(notify.attr("to").unwrap_or_default())
        .body(notify.text())
        .build();
    conn.privileged().send_message(message)?;
    conn.iq_resp([]).send()?;
    Ok(())
}

/// `<add jid='JID'/>`: adds JID to the sender's roster (a sync controller waiting on the
/// future with `block_on`).
fn add(conn: Conn, add: Element) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    let item = RosterItem::new(add.attr("jid").unwrap_or_default())
        .name("Bob")
        .subscription(Subscription::None)
        .group("Friends");
    block_on(conn.privileged().set_roster(&user, &item))?;
    conn.iq_resp([]).send()?;
    Ok(())
}

/// `<bookmarks/>`: the sender's private XML storage, read with a privileged iq.
async fn bookmarks(conn: Conn) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .map(|j| j.to_bare().to_string())
        .unwrap_or_default();
    let iq = xml!(
        "<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>"
    );
    let answer = conn.privileged().iq(&user, iq).await?;
    conn.iq_resp(answer.children().cloned().collect::<Vec<_>>())
        .send()?;
    Ok(())
}

fn component() -> TestComponent {
    let router = Router::new()
        .iq("urn:example", |ns| {
            ns.get("privileged", roster)
                .set("privileged", notify)
                .set("add", add)
                .get("bookmarks", bookmarks)
        })
        .presence(|p| {
            p.available(|conn: Conn| -> Result<(), StanzaError> {
                conn.send(xml!(
                    "<message to='{}'><body>seen</body></message>",
                    conn.from().unwrap_or_default()
                ))?;
                Ok(())
            })
        });
    TestComponent::start(Config::new(DOMAIN, "secret").set_from(true), router)
}

/// Asserts `sent` is `expected` with `ID` standing for the id the component chose.
#[track_caller]
fn assert_sent(sent: &Element, expected: &str) {
    let id = sent.attr("id").unwrap_or("");
    let expected = xml::parse(&expected.replace("ID", id)).unwrap();
    assert_eq!(xml::to_string(sent), xml::to_string(&expected));
}

fn ask_roster(c: &mut TestComponent) {
    c.component_received_nowait(xml!(
        "<iq type='get' id='r1' from='alice@localhost/phone' to='{DOMAIN}'><roster xmlns='urn:example:privileged'/></iq>"
    ));
}

fn error_condition(answer: &Element) -> (String, String) {
    let error = answer
        .children()
        .find(|c| c.name() == "error")
        .unwrap_or_else(|| panic!("not an error: {}", xml::to_string(answer)));
    let condition = error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    (error.attr("type").unwrap_or("").to_string(), condition)
}

#[test]
fn a_roster_through_either_generation() {
    for version in [Version::V1, Version::V2] {
        let mut c = component();
        c.advertise_privileges(
            &Permissions::new(version, "localhost").with_roster(RosterAccess::Get),
        );
        assert!(c.take_events().iter().any(|e| matches!(
            e,
            Event::Privileged { permissions } if permissions.roster() == RosterAccess::Get
        )));
        ask_roster(&mut c);
        let get = c.stanza_receive(WAIT).expect("the roster get");
        assert_sent(
            &get,
            &format!(
                "<iq xmlns='jabber:component:accept' type='get' from='{DOMAIN}' to='alice@localhost' id='ID'><query xmlns='jabber:iq:roster'/></iq>"
            ),
        );
        let id = get.attr("id").unwrap();
        c.component_received(xml!(
            "<iq type='result' id='{id}' from='alice@localhost' to='{DOMAIN}'><query xmlns='jabber:iq:roster' ver='7'>\
             <item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item>\
             <item jid='carol@localhost' subscription='none'/></query></iq>"
        ));
        c.assert_stanza_receive(
            xml!(
                "<iq type='result' id='r1' from='{DOMAIN}' to='alice@localhost/phone'><roster xmlns='urn:example:privileged'>\
                 <item jid='bob@localhost' name='Bob' groups='Friends,Work'/><item jid='carol@localhost' name='' groups=''/>\
                 </roster></iq>"
            ),
            WAIT,
        );
    }
}

#[test]
fn what_was_not_granted_fails_at_once_with_forbidden() {
    // Nothing advertised at all (ejabberd's way of granting nothing).
    let mut c = component();
    ask_roster(&mut c);
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(answer.attr("type"), Some("error"));
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    c.assert_nothing_sent(Duration::from_millis(100));

    // An advertisement without the permission (Prosody's way): roster none, no message.
    let mut c = component();
    c.advertise_privileges(&Permissions::new(Version::V2, "localhost"));
    ask_roster(&mut c);
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    let text = answer
        .children()
        .find(|e| e.name() == "error")
        .and_then(|e| e.children().find(|t| t.name() == "text"))
        .map(Element::text)
        .unwrap_or_default();
    assert_eq!(
        text,
        "localhost granted this component no roster get permission"
    );
    c.component_received(xml!(
        "<iq type='set' id='n1' from='alice@localhost/phone' to='{DOMAIN}'><notify xmlns='urn:example:privileged' to='bob@localhost'>hi</notify></iq>"
    ));
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    // Roster get only: a set is not granted.
    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost").with_roster(RosterAccess::Get),
    );
    c.component_received(xml!(
        "<iq type='set' id='a1' from='alice@localhost/phone' to='{DOMAIN}'><add xmlns='urn:example:add' jid='bob@localhost'/></iq>"
    ));
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    c.assert_nothing_sent(Duration::from_millis(100));
}

#[test]
fn a_message_on_a_users_behalf_in_the_advertised_namespace() {
    for version in [Version::V1, Version::V2] {
        let mut c = component();
        c.advertise_privileges(
            &Permissions::new(version, "localhost").with_message(MessageAccess::Outgoing),
        );
        c.component_received(xml!(
            "<iq type='set' id='n1' from='alice@localhost/phone' to='{DOMAIN}'><notify xmlns='urn:example:privileged' to='bob@localhost'>hello bob</notify></iq>"
        ));
        let wrapped = c.stanza_receive(WAIT).expect("the privileged message");
        let ns = version.namespace();
        assert_sent(
            &wrapped,
            &format!(
                "<message xmlns='jabber:component:accept' from='{DOMAIN}' to='localhost'><privilege xmlns='{ns}'>\
                 <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost' to='bob@localhost'>\
                 <body>hello bob</body></message></forwarded></privilege></message>"
            ),
        );
        c.assert_stanza_receive(
            xml!("<iq type='result' id='n1' from='{DOMAIN}' to='alice@localhost/phone'/>"),
            WAIT,
        );
    }
}

#[test]
fn only_bare_local_users_can_be_acted_for() {
    let mut c = component();
    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost")
            .with_message(MessageAccess::Outgoing)
            .with_roster(RosterAccess::Both),
    );
    let privileged = c.component().sender().privileged();
    // A user of a server that granted nothing.
    let message =
        xml!("<message from='mallory@elsewhere' to='bob@localhost'><body>x</body></message>");
    assert!(matches!(
        privileged.send_message(message),
        Err(PrivilegeError::NotGranted { server, .. }) if server == "elsewhere"
    ));
    // A full JID, a domain, no `to`.
    for (from, to) in [
        ("alice@localhost/r", "bob@localhost"),
        ("localhost", "bob@localhost"),
    ] {
        let message = xml!("<message from='{from}' to='{to}'><body>x</body></message>");
        assert!(matches!(
            privileged.send_message(message),
            Err(PrivilegeError::NotAUser { .. })
        ));
    }
    let message = xml!("<message from='alice@localhost'><body>x</body></message>");
    assert!(matches!(
        privileged.send_message(message),
        Err(PrivilegeError::InvalidStanza(_))
    ));
    assert!(matches!(
        block_on(privileged.roster("alice@localhost/phone")),
        Err(PrivilegeError::NotAUser { .. })
    ));
    c.assert_nothing_sent(Duration::from_millis(50));
}

#[test]
fn a_roster_set_and_the_servers_refusal() {
    let mut c = component();
    c.advertise_privileges(
        &Permissions::new(Version::V1, "localhost").with_roster(RosterAccess::Both),
    );
    c.component_received_nowait(xml!(
        "<iq type='set' id='a1' from='alice@localhost/phone' to='{DOMAIN}'><add xmlns='urn:example:add' jid='bob@localhost'/></iq>"
    ));
    let set = c.stanza_receive(WAIT).expect("the roster set");
    assert_sent(
        &set,
        &format!(
            "<iq xmlns='jabber:component:accept' type='set' from='{DOMAIN}' to='alice@localhost' id='ID'><query xmlns='jabber:iq:roster'>\
             <item jid='bob@localhost' name='Bob' subscription='none'><group>Friends</group></item></query></iq>"
        ),
    );
    let id = set.attr("id").unwrap();
    c.component_received(xml!(
        "<iq type='result' id='{id}' from='alice@localhost' to='{DOMAIN}'/>"
    ));
    c.assert_stanza_receive(
        xml!("<iq type='result' id='a1' from='{DOMAIN}' to='alice@localhost/phone'/>"),
        WAIT,
    );

    // The server refuses after all: its error is the answer.
    ask_roster(&mut c);
    let get = c.stanza_receive(WAIT).expect("the roster get");
    let id = get.attr("id").unwrap();
    c.component_received(xml!(
        "<iq type='error' id='{id}' from='alice@localhost' to='{DOMAIN}'><error type='auth'>\
         <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(answer.attr("id"), Some("r1"));
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
}

#[test]
fn a_privileged_iq_needs_version_2_and_its_namespace() {
    let permissions = |version| {
        Permissions::new(version, "localhost").with_iq("jabber:iq:private", IqAccess::Get)
    };
    let ask = |c: &mut TestComponent| {
        c.component_received_nowait(xml!(
            "<iq type='get' id='b1' from='alice@localhost/phone' to='{DOMAIN}'><bookmarks xmlns='urn:example:bookmarks'/></iq>"
        ));
    };
    // The two shapes of answer: Prosody's (<privilege><forwarded>) and the XEP's
    // (<privileged_iq>).
    for reply in [
        "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>INNER</forwarded></privilege>",
        "<privileged_iq xmlns='urn:xmpp:privilege:2'>INNER</privileged_iq>",
    ] {
        let mut c = component();
        c.advertise_privileges(&permissions(Version::V2));
        ask(&mut c);
        let outer = c.stanza_receive(WAIT).expect("the privileged iq");
        let inner_id = outer
            .get_child("privileged_iq", "urn:xmpp:privilege:2")
            .and_then(|p| p.children().next())
            .and_then(|i| i.attr("id"))
            .expect("an inner id")
            .to_string();
        assert_sent(
            &outer,
            &format!(
                "<iq xmlns='jabber:component:accept' type='get' from='{DOMAIN}' to='alice@localhost' id='ID'>\
                 <privileged_iq xmlns='urn:xmpp:privilege:2'><iq xmlns='jabber:client' type='get' from='alice@localhost' to='alice@localhost' id='{inner_id}'>\
                 <query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq></privileged_iq></iq>"
            ),
        );
        let id = outer.attr("id").unwrap();
        let inner = format!(
            "<iq xmlns='jabber:client' type='result' id='{inner_id}' from='alice@localhost' to='alice@localhost'>\
             <query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><url name='x' url='https://example.org'/></storage></query></iq>"
        );
        let answer = format!(
            "<iq type='result' id='{id}' from='alice@localhost' to='{DOMAIN}'>{}</iq>",
            reply.replace("INNER", &inner)
        );
        c.component_received(xml::parse_in(&answer, "jabber:component:accept").unwrap());
        let answer = c.stanza_receive(WAIT).expect("the answer");
        assert_eq!(
            answer.attr("type"),
            Some("result"),
            "{}",
            xml::to_string(&answer)
        );
        let storage = answer
            .get_child("query", "jabber:iq:private")
            .and_then(|q| q.get_child("storage", "storage:bookmarks"))
            .expect("the storage");
        assert_eq!(storage.children().count(), 1);
    }
    // A privilege:1 server has no iq permission; a set is not granted either.
    let mut c = component();
    c.advertise_privileges(&permissions(Version::V1));
    ask(&mut c);
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    let granted =
        Permissions::new(Version::V2, "localhost").with_iq("jabber:iq:private", IqAccess::Get);
    assert!(granted.allows_iq("jabber:iq:private", exampple_core::IqType::Get));
    assert!(!granted.allows_iq("jabber:iq:private", exampple_core::IqType::Set));
}

#[test]
fn grants_last_one_connection() {
    let mut c = component();
    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost").with_roster(RosterAccess::Get),
    );
    let privileged = c.component().sender().privileged();
    assert_eq!(privileged.granted().len(), 1);
    c.drop_connection();
    c.advance(Duration::from_secs(60));
    assert!(c.is_online(), "reconnected");
    assert!(
        privileged.permissions("localhost").is_none(),
        "forgotten with the connection"
    );
    ask_roster(&mut c);
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
    // The server advertises again on the new connection, with more.
    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost").with_roster(RosterAccess::Both),
    );
    assert_eq!(
        privileged.permissions("localhost").map(|p| p.roster()),
        Some(RosterAccess::Both)
    );
    ask_roster(&mut c);
    let get = c.stanza_receive(WAIT).expect("the roster get");
    assert_eq!(get.attr("to"), Some("alice@localhost"));
}

#[test]
fn an_advertisement_from_a_user_grants_nothing() {
    let mut c = component();
    c.component_received(xml!(
        "<message from='mallory@localhost/x' to='{DOMAIN}'><privilege xmlns='urn:xmpp:privilege:2'>\
         <perm access='roster' type='both'/></privilege></message>"
    ));
    assert!(c.component().sender().privileged().granted().is_empty());
    ask_roster(&mut c);
    let answer = c.stanza_receive(WAIT).expect("an answer");
    assert_eq!(
        error_condition(&answer),
        ("auth".into(), "forbidden".into())
    );
}

#[test]
fn presences_the_server_forwards_are_routed() {
    let mut c = component();
    c.advertise_privileges(
        &Permissions::new(Version::V1, "localhost").with_presence(PresenceAccess::ManagedEntity),
    );
    c.component_received(xml!(
        "<presence from='alice@localhost/phone' to='{DOMAIN}'/>"
    ));
    c.assert_stanza_receive(
        xml!("<message from='{DOMAIN}' to='alice@localhost/phone'><body>seen</body></message>"),
        WAIT,
    );
}

#[test]
fn observers_are_told_what_was_granted() {
    use std::sync::{Arc, Mutex};

    use exampple_core::observe::{LifecycleEvent, Observer, RequestEvent};

    #[derive(Default)]
    struct Grants(Mutex<Vec<String>>);
    impl Observer for Grants {
        fn request(&self, _: &RequestEvent) {}
        fn lifecycle(&self, event: &LifecycleEvent) {
            if let LifecycleEvent::Privileged { permissions } = event {
                self.0.lock().unwrap().push(permissions.to_string());
            }
        }
    }
    let grants = Arc::new(Grants::default());
    let mut c = component();
    c.component_mut().set_observer(grants.clone());
    c.advertise_privileges(
        &Permissions::new(Version::V2, "localhost")
            .with_roster(RosterAccess::Get)
            .with_iq("jabber:iq:private", IqAccess::Both),
    );
    assert_eq!(
        *grants.0.lock().unwrap(),
        [
            "localhost (urn:xmpp:privilege:2): roster get, message none, presence none, iq jabber:iq:private both"
        ]
    );
}
