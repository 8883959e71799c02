//! Typed payloads from xmpp-parsers (feature `xmpp-parsers`): a controller takes the request
//! as a parsed type and answers with one, over the wire.

use exampple_core::extract::Payload;
use exampple_core::parsers::version::{VersionQuery, VersionResult};
use exampple_core::testing::TestComponent;
use exampple_core::{Config, Conn, Router, StanzaError, xml};

fn version(conn: Conn, Payload(_query): Payload<VersionQuery>) -> Result<(), StanzaError> {
    let answer = VersionResult {
        name: "exampple <test>".into(),
        version: "1.0".into(),
        os: None,
    };
    conn.iq_resp([answer.into()]).send()?;
    Ok(())
}

#[test]
fn a_controller_takes_and_answers_xmpp_parsers_types() {
    let router = Router::new().iq("jabber:iq:version", |ns| ns.get("", version));
    let config = Config::new("test.example.com", "secret").set_from(true);
    let mut c = TestComponent::start(config, router);
    c.component_received(xml!(
        "<iq type='get' id='v1' from='user@example.com/res' to='test.example.com'><query xmlns='jabber:iq:version'/></iq>"
    ));
    c.assert_stanza_received(xml!(
        "<iq type='result' id='v1' from='test.example.com' to='user@example.com/res'><query xmlns='jabber:iq:version'><name>exampple &lt;test&gt;</name><version>1.0</version></query></iq>"
    ));
    // A payload of the namespace that is not the type (xmpp-parsers says why).
    c.component_received(xml!(
        "<iq type='get' id='v2' from='user@example.com/res' to='test.example.com'><version xmlns='jabber:iq:version'/></iq>"
    ));
    let error = c.assert_stanza_received_matching(xml!(
        "<iq type='error' id='v2'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    let text = error
        .get_child("error", "jabber:component:accept")
        .and_then(|e| e.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas"))
        .map(|t| t.text())
        .unwrap_or_default();
    assert!(!text.is_empty(), "the conversion's reason is the text");
}
