//! The test kit itself: its assertions must fail, with a useful message, when they should.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use exampple_core::testing::{Handshake, TestComponent};
use exampple_core::{Config, Conn, Element, Router, StanzaError, xml};

fn two(conn: Conn, _: Vec<Element>) -> Result<(), StanzaError> {
    conn.send(xml!("<message to='a@x' id='m1'><body>one</body></message>"))?;
    conn.send(xml!("<message to='a@x' id='m2'><body>two</body></message>"))?;
    Ok(())
}

fn kit() -> TestComponent {
    let router = Router::new().iq("urn:test", |ns| ns.get("two", two));
    TestComponent::start(Config::new("c.example.com", "s").set_from(true), router)
}

fn trigger(c: &mut TestComponent) {
    c.component_received(xml!(
        "<iq type='get' id='1' from='a@x/r' to='c.example.com'><q xmlns='urn:test:two'/></iq>"
    ));
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should have failed");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn exact_match_reports_the_first_difference_and_the_history() {
    let mut c = kit();
    trigger(&mut c);
    let message = panic_message(|| {
        c.assert_stanza_received(xml!(
            "<message to='a@x' id='m1' from='c.example.com'><body>uno</body></message>"
        ));
    });
    assert!(
        message.contains("first difference at /message/body[1]"),
        "{message}"
    );
    assert!(
        message.contains("every stanza the component sent (2)"),
        "{message}"
    );
    assert!(message.contains("<body>two</body>"), "{message}");
}

#[test]
fn exact_match_refuses_extra_attributes_subset_accepts_them() {
    let mut c = kit();
    trigger(&mut c);
    let message = panic_message(|| {
        c.assert_stanza_received(xml!("<message to='a@x' id='m1'><body>one</body></message>"));
    });
    assert!(message.contains("from"), "{message}");
    let mut c = kit();
    trigger(&mut c);
    c.assert_stanza_received_matching(xml!("<message id='m1'><body>one</body></message>"));
    c.assert_stanza_received_matching(xml!("<message id='m2'/>"));
}

#[test]
fn all_stanzas_in_any_order_with_multiset_semantics() {
    let mut c = kit();
    trigger(&mut c);
    c.assert_all_stanza_receive_matching(
        vec![xml!("<message id='m2'/>"), xml!("<message id='m1'/>")],
        Duration::from_secs(2),
    );

    let mut c = kit();
    trigger(&mut c);
    let message = panic_message(|| {
        c.assert_all_stanza_receive_matching(
            vec![xml!("<message id='m1'/>"), xml!("<message id='m1'/>")],
            Duration::from_secs(2),
        );
    });
    assert!(
        message.contains("matches none of the 1 remaining"),
        "{message}"
    );

    let mut c = kit();
    trigger(&mut c);
    let message = panic_message(|| {
        c.assert_all_stanza_receive_matching(
            vec![
                xml!("<message id='m1'/>"),
                xml!("<message id='m2'/>"),
                xml!("<message id='m3'/>"),
            ],
            Duration::from_millis(200),
        );
    });
    assert!(
        message.contains("1 expected stanza(s) never sent"),
        "{message}"
    );
    assert!(message.contains("m3"), "{message}");
}

#[test]
fn waiting_assertion_times_out_with_a_message() {
    let mut c = kit();
    let message = panic_message(|| {
        c.assert_stanza_receive(xml!("<iq type='result'/>"), Duration::from_millis(50));
    });
    assert!(
        message.contains("but it sent nothing within 50ms"),
        "{message}"
    );
    assert!(
        message.contains("the component sent no stanza at all"),
        "{message}"
    );
}

#[test]
fn raw_partial_chunks_are_delivered_once_complete() {
    let mut c = kit();
    c.component_received_raw(
        b"<iq type='get' id='1' from='a@x/r' to='c.example.com'><q xmlns='urn",
    );
    assert!(c.stanza_received().is_none());
    c.component_received_raw(b":test:two'/></iq>");
    assert_eq!(
        c.stanza_receive(Duration::from_secs(2)).unwrap().attr("id"),
        Some("m1")
    );
}

#[test]
fn keepalive_through_simulated_time() {
    let config = Config::new("c.example.com", "s").ping(Some(Duration::from_secs(30)));
    let mut c = TestComponent::start(config, Router::new());
    c.advance(Duration::from_secs(30));
    assert!(c.raw_sent().ends_with(b"\n") || c.stanza_received().is_some());
    let ping = c
        .history()
        .iter()
        .find(|s| s.get_child("ping", "urn:xmpp:ping").is_some())
        .cloned();
    assert_eq!(ping.unwrap().attr("to"), Some("example.com"));
    // No answer: the connection is declared dead, and comes back after the backoff.
    c.advance(Duration::from_secs(10));
    assert!(!c.is_online());
    assert!(c.advance_to_next_timeout());
    assert!(c.is_online());
}

#[test]
fn silent_handshake_times_out_and_reconnects() {
    let config = Config::new("c.example.com", "s").handshake_timeout(Duration::from_secs(5));
    let mut c = TestComponent::builder(config, Router::new())
        .handshake(Handshake::Silent)
        .start();
    assert!(!c.is_online());
    c.advance(Duration::from_secs(5));
    assert!(matches!(
        c.last_disconnect(),
        Some(exampple_core::Disconnect::HandshakeTimeout)
    ));
    c.set_handshake(Handshake::AcceptAny);
    assert!(c.advance_to_next_timeout());
    assert!(c.is_online());
}
