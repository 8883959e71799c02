//! The router's dispatch of arbitrary stanzas: a stanza built from structured input (kind,
//! attributes from a dictionary or arbitrary, payloads in routed and unknown namespaces,
//! delegation envelopes) is serialised, sent by the server to an online component, and
//! every controller runs inline. Then the same stanza goes through the parser-free path
//! (`xml::parse` of its text) to check the router does not depend on how it was built.
#![no_main]

use arbitrary::Arbitrary;
use exampple_core::{Element, xml};
use exampple_fuzz::{Driver, config, router};
use libfuzzer_sys::fuzz_target;

const KINDS: &[&str] = &["iq", "message", "presence", "handshake", "error", "x"];
const TYPES: &[&str] = &[
    "get",
    "set",
    "result",
    "error",
    "chat",
    "normal",
    "groupchat",
    "headline",
    "available",
    "unavailable",
    "subscribe",
    "probe",
    "",
    "GET",
    "bogus",
];
const JIDS: &[&str] = &[
    "component.localhost",
    "alice@localhost/res",
    "localhost",
    "a@b@c",
    "@localhost",
    "alice@localhost/",
    "",
    "Component.Localhost",
    "x@component.localhost",
];
const NAMESPACES: &[&str] = &[
    "urn:example:echo",
    "urn:example:refuse",
    "urn:example:form",
    "urn:example:async",
    "jabber:iq:rpc",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "urn:xmpp:delegation:2",
    "urn:xmpp:forward:0",
    "jabber:x:data",
    "jabber:component:accept",
    "jabber:client",
    "urn:ietf:params:xml:ns:xmpp-stanzas",
    "urn:unknown",
];
const NAMES: &[&str] = &[
    "query",
    "x",
    "field",
    "value",
    "forwarded",
    "delegation",
    "delegate",
    "methodCall",
    "methodName",
    "params",
    "param",
    "int",
    "string",
    "struct",
    "member",
    "name",
    "array",
    "data",
    "iq",
    "message",
    "presence",
    "error",
    "body",
    "required",
    "option",
    "bad-request",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Pick(u8),
    Raw(String),
}

impl Text {
    fn get(&self, dict: &[&str]) -> String {
        match self {
            Text::Pick(i) => dict[usize::from(*i) % dict.len()].to_string(),
            Text::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Node {
    name: Text,
    ns: Option<Text>,
    attrs: Vec<(Text, Text)>,
    text: Option<String>,
    children: Vec<Node>,
}

#[derive(Arbitrary, Debug)]
struct Stanza {
    flags: u8,
    kind: u8,
    kind_raw: Option<String>,
    stanza_type: Option<Text>,
    id: Option<Text>,
    from: Option<Text>,
    to: Option<Text>,
    lang: Option<String>,
    payload: Vec<Node>,
    repeat: u8,
}

fn valid_name(name: &str) -> bool {
    rxml::NcName::try_from(name).is_ok()
}

fn build(node: &Node, depth: usize) -> Option<Element> {
    let name = node.name.get(NAMES);
    if !valid_name(&name) {
        return None;
    }
    let ns = node
        .ns
        .as_ref()
        .map_or_else(|| "urn:unknown".to_string(), |n| n.get(NAMESPACES));
    let mut el = Element::bare(name, ns);
    for (key, value) in &node.attrs {
        xml::set_attr(&mut el, &key.get(NAMES), value.get(JIDS));
    }
    if let Some(text) = &node.text {
        el.append_text_node(text.clone());
    }
    if depth < 8 {
        for child in node.children.iter().take(8) {
            if let Some(child) = build(child, depth + 1) {
                el.append_child(child);
            }
        }
    }
    Some(el)
}

fuzz_target!(|stanza: Stanza| {
    let name = match &stanza.kind_raw {
        Some(raw) if valid_name(raw) => raw.clone(),
        _ => KINDS[usize::from(stanza.kind) % KINDS.len()].to_string(),
    };
    let mut el = Element::bare(name, "jabber:component:accept");
    for (attr, value) in [
        ("type", &stanza.stanza_type),
        ("from", &stanza.from),
        ("to", &stanza.to),
    ] {
        if let Some(value) = value {
            let dict = if attr == "type" { TYPES } else { JIDS };
            xml::set_attr(&mut el, attr, value.get(dict));
        }
    }
    if let Some(id) = &stanza.id {
        xml::set_attr(&mut el, "id", id.get(&["1", "", "keepalive-1"]));
    }
    if let Some(lang) = &stanza.lang {
        xml::set_lang(&mut el, lang.clone());
    }
    for node in stanza.payload.iter().take(4) {
        if let Some(child) = build(node, 1) {
            el.append_child(child);
        }
    }
    let mut bytes = Vec::new();
    if !xml::write_stanza(&el, "jabber:component:accept", &mut bytes) {
        // Not representable in XML (a character XML cannot carry): the wire cannot hold it.
        return;
    }
    let mut driver = Driver::online(config(stanza.flags), router(stanza.flags & 32 != 0));
    for _ in 0..=(stanza.repeat % 3) {
        driver.input(&bytes);
    }
    assert!(driver.component.is_online() || !driver.component.is_stopped());
    // The same text through `xml::parse`, the runtime parser (`xml!` templates agree with it).
    let text = String::from_utf8(bytes).expect("minidom writes UTF-8");
    let parsed = xml::parse(&text).expect("what minidom wrote parses");
    assert_eq!(parsed.name(), el.name());
});
