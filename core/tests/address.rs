//! Routing by the addressed JID (local part, resource) and XEP-0106 escaping, wire level
//! through the test kit.

use exampple_core::address::{Addressed, To};
use exampple_core::jid::{escape_local, unescape_local};
use exampple_core::testing::TestComponent;
use exampple_core::{Config, Conn, Router, RouterError, StanzaError, xml};

const DOMAIN: &str = "gw.example";

/// Answers a chat message with who handled it and the parts it was addressed with.
fn named(
    name: &'static str,
) -> impl Fn(Conn, Addressed) -> Result<(), StanzaError> + Send + Sync + 'static {
    move |conn: Conn, to: Addressed| {
        conn.send(xml!(
            "<message to='{}' from='{}'><body>{name} local={} resource={}</body></message>",
            conn.from().unwrap_or_default(),
            conn.to().unwrap_or_default(),
            to.local.as_deref().unwrap_or("-"),
            to.resource.as_deref().unwrap_or("-")
        ))?;
        Ok(())
    }
}

fn body_of(c: &mut TestComponent, to: &str) -> String {
    c.component_received(xml!(
        "<message type='chat' from='alice@example.com/r' to='{to}'><body>hi</body></message>"
    ));
    let answer = c.stanza_received().expect("an answer");
    assert_eq!(
        answer.attr("from"),
        Some(to),
        "answered from the address it was sent to"
    );
    answer
        .get_child("body", "jabber:component:accept")
        .map(|b| b.text())
        .unwrap_or_default()
}

#[test]
fn the_most_specific_route_for_the_address_wins() {
    let router = Router::new()
        .message(|m| m.chat(named("domain")))
        .at(To::any_local(), |r| r.message(|m| m.chat(named("puppet"))))
        .at(To::local("shout"), |r| {
            r.message(|m| m.chat(named("shout")))
        })
        .at(To::any_local().any_resource(), |r| {
            r.message(|m| m.chat(named("occupant")))
        })
        .at(To::local("lobby").resource("bot"), |r| {
            r.message(|m| m.chat(named("lobby-bot")))
        });
    let mut c = TestComponent::start(Config::new(DOMAIN, "secret"), router);
    assert_eq!(body_of(&mut c, DOMAIN), "domain local=- resource=-");
    assert_eq!(
        body_of(&mut c, &format!("{DOMAIN}/x")),
        "domain local=- resource=x"
    );
    assert_eq!(
        body_of(&mut c, &format!("shout@{DOMAIN}")),
        "shout local=shout resource=-"
    );
    // An exact local part wins over any local part with a resource.
    assert_eq!(
        body_of(&mut c, &format!("shout@{DOMAIN}/r")),
        "shout local=shout resource=r"
    );
    assert_eq!(
        body_of(
            &mut c,
            &format!("{}@{DOMAIN}", escape_local("bob@irc.example"))
        ),
        r"puppet local=bob\40irc.example resource=-"
    );
    assert_eq!(
        body_of(&mut c, &format!("room@{DOMAIN}/nick")),
        "occupant local=room resource=nick"
    );
    assert_eq!(
        body_of(&mut c, &format!("lobby@{DOMAIN}/bot")),
        "lobby-bot local=lobby resource=bot"
    );
    assert_eq!(
        body_of(&mut c, &format!("lobby@{DOMAIN}/other")),
        "occupant local=lobby resource=other"
    );
}

#[test]
fn an_addressed_route_takes_nothing_else_and_iq_falls_back_as_before() {
    let router = Router::new().at(To::local("shout"), |r| {
        r.iq("urn:xmpp", |ns| {
            ns.get("ping", |conn: Conn| conn.iq_resp([]).send())
        })
    });
    let mut c = TestComponent::start(Config::new(DOMAIN, "secret").set_from(true), router);
    c.component_received(xml!(
        "<iq type='get' id='1' from='alice@example.com/r' to='shout@{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='1' from='shout@{DOMAIN}' to='alice@example.com/r'/>"
    ));
    // The domain has no ping route: service-unavailable, as for any unrouted request.
    c.component_received(xml!(
        "<iq type='get' id='2' from='alice@example.com/r' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    c.assert_stanza_received_matching(xml!(
        "<iq type='error' id='2'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
}

#[test]
fn routes_for_the_same_address_twice_are_refused_and_listings_show_addresses() {
    let router = Router::new()
        .at(To::local("shout"), |r| r.message(|m| m.chat(named("a"))))
        .at(To::local("shout"), |r| r.message(|m| m.chat(named("b"))));
    let error = router.build().unwrap_err();
    assert!(matches!(&error, RouterError::Duplicate { to, .. } if to == "shout@"));
    assert!(error.to_string().contains("to `shout@`"), "{error}");

    let router = Router::new()
        .message(|m| m.chat(named("domain")))
        .at(To::local("shout"), |r| {
            r.message(|m| m.chat(named("shout")))
        })
        .at(To::any_local().any_resource(), |r| {
            r.message(|m| m.chat(named("occupant")))
        });
    let listing = router.format_routes(false);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(lines[1].contains("shout@"), "{listing}");
    assert!(lines[2].contains("*@/*"), "{listing}");
    assert!(!lines[0].contains('@'), "{listing}");
}

#[test]
fn xep_0106_escaping_round_trips() {
    for identifier in [
        "space cadet",
        "call me \"ishmael\"",
        "at&t guy",
        "d'artagnan",
        "/.fanboy",
        "::foo::",
        "<foo>",
        "user@host",
        r"c:\net",
        r"c:\\net",
        r"c:\cool stuff",
        r"c:\5commas",
        "plain",
        "émoji 🎉",
    ] {
        let local = escape_local(identifier);
        assert!(
            !local.contains([' ', '"', '&', '\'', '/', ':', '<', '>', '@']),
            "{identifier} -> {local}"
        );
        assert_eq!(unescape_local(&local), identifier, "{local}");
    }
    // The XEP's own examples (§5.1).
    assert_eq!(escape_local("space cadet"), r"space\20cadet");
    assert_eq!(escape_local(r"c:\net"), r"c\3a\net");
    assert_eq!(escape_local(r"c:\5commas"), r"c\3a\5c5commas");
    assert_eq!(
        unescape_local(r"d\27artagnan\40gascony.fr"),
        "d'artagnan@gascony.fr"
    );
}
