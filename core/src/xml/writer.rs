//! Writing elements as XML: one pass over the tree that checks what it writes (names,
//! characters, namespaces, depth) and escapes as it goes, appending to the caller's buffer.
//!
//! minidom's own writer (`Element::write_to`) goes through rxml's encoder, which allocates a
//! buffer for every tag and every attribute, and panics on a character XML cannot carry.
//! This one allocates nothing but the namespace of an element that differs from its
//! parent's (minidom only lends a namespace as a new `String`), and refuses what it cannot
//! write instead of panicking. For elements without namespaced attributes (other than
//! `xml:`) its output is minidom's byte for byte: same attribute order, quotes and escapes.
//! Every element it writes parses back to an equal element.

use minidom::{Element, Node};

use crate::ns;

/// How deep an element may nest to be written. The writer recurses, and received stanzas
/// are limited by `max_depth` far below this: only a controller can build a deeper element.
pub const MAX_WRITE_DEPTH: usize = 1024;

const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Why an element cannot be written as XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An element name that is not an XML name without a colon.
    #[error("an element name that is not a valid XML name")]
    InvalidName,
    /// Text, an attribute value or a namespace holding a character XML 1.0 cannot carry
    /// (a control character other than tab, newline and carriage return, U+FFFE, U+FFFF).
    #[error("a character XML cannot carry")]
    InvalidChar,
    /// An element in the `xml` or `xmlns` namespace, an attribute in the `xmlns` namespace,
    /// or an attribute named `xmlns` (each would be written as a namespace declaration).
    #[error("a reserved namespace")]
    ReservedNamespace,
    /// Nested deeper than [`MAX_WRITE_DEPTH`].
    #[error("nested deeper than {MAX_WRITE_DEPTH} elements")]
    TooDeep,
}

/// Appends `element` as XML to `out`, declaring its namespace unless it is `parent_ns` (the
/// default namespace in force where it is written). On an error nothing is appended.
pub fn write_in(element: &Element, parent_ns: &str, out: &mut Vec<u8>) -> Result<(), WriteError> {
    all_or_nothing(out, |out| write_tree(element, parent_ns, 1, out))
}

/// Runs `write`, and takes back what it appended if it fails.
fn all_or_nothing(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    let start = out.len();
    let result = write(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends an element in `parent_ns` given by its parts: `name`, the attributes (without a
/// namespace, in the order given) that have a value, then `children`. For a reply written
/// straight from its request, without building it as an element first. The attribute
/// names must be XML names (they are the core's own constants).
pub(crate) fn write_parts(
    name: &str,
    attributes: &[(&str, Option<&str>)],
    children: &[Element],
    parent_ns: &str,
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    all_or_nothing(out, |out| {
        if !is_ncname(name) {
            return Err(WriteError::InvalidName);
        }
        out.push(b'<');
        out.extend_from_slice(name.as_bytes());
        for (key, value) in attributes {
            if let Some(value) = value {
                out.push(b' ');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"='");
                escape_into(value, true, out)?;
                out.push(b'\'');
            }
        }
        if children.is_empty() {
            out.extend_from_slice(b"/>");
            return Ok(());
        }
        out.push(b'>');
        for child in children {
            write_tree(child, parent_ns, 2, out)?;
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(name.as_bytes());
        out.push(b'>');
        Ok(())
    })
}

fn write_tree(
    element: &Element,
    parent_ns: &str,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    if depth > MAX_WRITE_DEPTH {
        return Err(WriteError::TooDeep);
    }
    let name = element.name();
    if !is_ncname(name) {
        return Err(WriteError::InvalidName);
    }
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    // `has_ns` compares in place; `ns()` allocates, so it is read only when it differs.
    let own;
    let namespace = if element.has_ns(parent_ns) {
        parent_ns
    } else {
        own = element.ns();
        if own == ns::XML || own == XMLNS_NS {
            return Err(WriteError::ReservedNamespace);
        }
        out.extend_from_slice(b" xmlns='");
        escape_into(&own, true, out)?;
        out.push(b'\'');
        own.as_str()
    };
    write_attributes(element, out)?;
    let mut nodes = element.nodes().peekable();
    if nodes.peek().is_none() {
        out.extend_from_slice(b"/>");
        return Ok(());
    }
    out.push(b'>');
    for node in nodes {
        match node {
            Node::Element(child) => write_tree(child, namespace, depth + 1, out)?,
            Node::Text(text) => escape_into(text, false, out)?,
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    Ok(())
}

/// Writes the attributes in minidom's order (by namespace, then name). An attribute in a
/// namespace other than `xml` gets a prefix declared on this element (`ns0`, `ns1`, ...):
/// elements never use prefixes, so these cannot clash with one an element relies on.
fn write_attributes(element: &Element, out: &mut Vec<u8>) -> Result<(), WriteError> {
    let mut declared: Option<(&str, usize)> = None;
    let mut next_prefix = 0;
    for ((namespace, name), value) in element.attrs().iter() {
        out.push(b' ');
        if namespace.is_none() {
            if name.as_str() == "xmlns" {
                return Err(WriteError::ReservedNamespace);
            }
        } else if namespace.as_str() == ns::XML {
            out.extend_from_slice(b"xml:");
        } else if namespace.as_str() == XMLNS_NS {
            return Err(WriteError::ReservedNamespace);
        } else {
            // The map is ordered by namespace: one declaration per namespace on this element.
            let prefix = match declared {
                Some((uri, prefix)) if uri == namespace.as_str() => prefix,
                _ => {
                    let prefix = next_prefix;
                    next_prefix += 1;
                    declared = Some((namespace.as_str(), prefix));
                    out.extend_from_slice(b"xmlns:");
                    write_prefix(prefix, out);
                    out.extend_from_slice(b"='");
                    escape_into(namespace, true, out)?;
                    out.extend_from_slice(b"' ");
                    prefix
                }
            };
            write_prefix(prefix, out);
            out.push(b':');
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b"='");
        escape_into(value, true, out)?;
        out.push(b'\'');
    }
    Ok(())
}

fn write_prefix(prefix: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "ns{prefix}");
}

/// What a byte needs when written.
const COPY: u8 = 0;
/// Escaped in text and attribute values.
const ESCAPE: u8 = 1;
/// Escaped in attribute values only (quotes, tab and newline, which attribute-value
/// normalisation would turn into spaces).
const ESCAPE_IN_ATTRIBUTE: u8 = 2;
/// A control character XML cannot carry.
const INVALID: u8 = 3;
/// The last byte of U+FFFE (EF BF BE) or U+FFFF (EF BF BF), or of another character.
const MAYBE_NONCHARACTER: u8 = 4;

static CLASS: [u8; 256] = {
    let mut class = [COPY; 256];
    let mut byte = 0;
    while byte < 0x20 {
        class[byte] = INVALID;
        byte += 1;
    }
    class[b'\t' as usize] = ESCAPE_IN_ATTRIBUTE;
    class[b'\n' as usize] = ESCAPE_IN_ATTRIBUTE;
    class[b'\r' as usize] = ESCAPE;
    class[b'<' as usize] = ESCAPE;
    class[b'>' as usize] = ESCAPE;
    class[b'&' as usize] = ESCAPE;
    class[b'\'' as usize] = ESCAPE_IN_ATTRIBUTE;
    class[b'"' as usize] = ESCAPE_IN_ATTRIBUTE;
    class[0xBE] = MAYBE_NONCHARACTER;
    class[0xBF] = MAYBE_NONCHARACTER;
    class
};

/// Appends `text` escaped for text content or (with `attribute`) a single-quoted attribute
/// value; fails on a character XML cannot carry.
fn escape_into(text: &str, attribute: bool, out: &mut Vec<u8>) -> Result<(), WriteError> {
    let bytes = text.as_bytes();
    let mut copied = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let replacement: &[u8] = match CLASS[usize::from(byte)] {
            COPY => continue,
            INVALID => return Err(WriteError::InvalidChar),
            MAYBE_NONCHARACTER => {
                if i >= 2 && bytes[i - 2] == 0xEF && bytes[i - 1] == 0xBF {
                    return Err(WriteError::InvalidChar);
                }
                continue;
            }
            ESCAPE_IN_ATTRIBUTE if !attribute => continue,
            _ => match byte {
                b'<' => b"&lt;",
                b'>' => b"&gt;",
                b'&' => b"&amp;",
                b'\r' => b"&#xd;",
                b'\n' => b"&#xa;",
                b'\t' => b"&#x9;",
                b'\'' => b"&#39;",
                b'"' => b"&#34;",
                _ => continue,
            },
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(replacement);
        copied = i + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    Ok(())
}

/// Whether `name` is an XML name without a colon (what an element name must be).
fn is_ncname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let ascii_start = first.is_ascii_alphabetic() || first == b'_';
    let ascii_rest = bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (ascii_start && ascii_rest) || rxml::NcNameStr::from_str(name).is_ok()
}

/// Whether `text` holds only characters XML 1.0 can carry.
pub fn is_xml_text(text: &str) -> bool {
    escape_into(text, true, &mut Vec::new()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    fn ours(element: &Element, parent_ns: &str) -> String {
        let mut out = Vec::new();
        write_in(element, parent_ns, &mut out).expect("writable");
        String::from_utf8(out).expect("UTF-8")
    }

    fn minidoms(element: &Element) -> String {
        let mut out = Vec::new();
        element.write_to(&mut out).expect("minidom writes it");
        String::from_utf8(out).expect("UTF-8")
    }

    /// An element as a controller builds it (no declared prefixes), from the XML text.
    fn built(text: &str) -> Element {
        fn rebuild(el: &Element) -> Element {
            let mut out = Element::bare(el.name(), el.ns());
            for ((ns, name), value) in el.attrs().iter() {
                out.attrs_mut()
                    .insert(ns.clone(), name.clone(), value.clone());
            }
            for node in el.nodes() {
                match node {
                    Node::Element(child) => {
                        out.append_child(rebuild(child));
                    }
                    Node::Text(text) => out.append_text_node(text.clone()),
                }
            }
            out
        }
        rebuild(&xml::parse(text).expect("test XML"))
    }

    const SAMPLES: &[&str] = &[
        "<iq type='get' id='b1' from='user1@localhost/res' to='component.localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<message type='chat' xml:lang='en'><body>a &amp; b &lt;c&gt; ' \" \t\r\n é𝄞</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<x a=\"'&quot;&lt;&gt;&amp;\" b='&#9;&#10;&#13;'/>",
        "<a xmlns='urn:a'><b><c xmlns='urn:c'><d/></c><e xmlns=''/></b>text</a>",
        "<a></a>",
        "<presence><status>]]&gt;</status><empty></empty></presence>",
    ];

    #[test]
    fn writes_what_minidom_writes() {
        for sample in SAMPLES {
            let element = built(sample);
            assert_eq!(ours(&element, ""), minidoms(&element), "{sample}");
        }
    }

    #[test]
    fn parsed_elements_read_back_equal() {
        for sample in SAMPLES {
            let element = xml::parse(sample).unwrap();
            let written = ours(&element, ns::COMPONENT);
            assert_eq!(xml::parse(&written).unwrap(), element, "{written}");
        }
    }

    #[test]
    fn namespaced_attributes_get_their_own_prefix() {
        let mut element = Element::bare("a", "urn:a");
        for (ns, name) in [("urn:x", "one"), ("urn:x", "two"), ("urn:y", "one")] {
            element.attrs_mut().insert(
                rxml::Namespace::from(ns.to_string()),
                rxml::NcName::try_from(name).unwrap(),
                "v".into(),
            );
        }
        xml::set_lang(&mut element, "en");
        let written = ours(&element, "");
        assert_eq!(
            written,
            "<a xmlns='urn:a' xml:lang='en' xmlns:ns0='urn:x' ns0:one='v' ns0:two='v' xmlns:ns1='urn:y' ns1:one='v'/>"
        );
        assert_eq!(xml::parse(&written).unwrap(), element);
    }

    #[test]
    fn the_parent_namespace_is_not_declared_again() {
        let element = xml::parse("<iq><query xmlns='urn:q'><item/></query></iq>").unwrap();
        assert_eq!(
            ours(&element, ns::COMPONENT),
            "<iq><query xmlns='urn:q'><item/></query></iq>"
        );
        assert_eq!(
            ours(&element, ns::CLIENT),
            "<iq xmlns='jabber:component:accept'><query xmlns='urn:q'><item/></query></iq>"
        );
    }

    #[test]
    fn refuses_what_it_cannot_write_and_appends_nothing() {
        let cases: Vec<(Element, WriteError)> = vec![
            (Element::bare("a b", "urn:a"), WriteError::InvalidName),
            (Element::bare("", "urn:a"), WriteError::InvalidName),
            (Element::bare("p:a", "urn:a"), WriteError::InvalidName),
            (Element::bare("a", ns::XML), WriteError::ReservedNamespace),
            (Element::bare("a", XMLNS_NS), WriteError::ReservedNamespace),
            (Element::bare("a", "urn:\u{1}"), WriteError::InvalidChar),
            (
                {
                    let mut el = Element::bare("a", "urn:a");
                    xml::set_attr(&mut el, "xmlns", "urn:b");
                    el
                },
                WriteError::ReservedNamespace,
            ),
            (
                {
                    let mut el = Element::bare("a", "urn:a");
                    el.attrs_mut().insert(
                        rxml::Namespace::from(XMLNS_NS.to_string()),
                        rxml::NcName::try_from("p").unwrap(),
                        "urn:p".into(),
                    );
                    el
                },
                WriteError::ReservedNamespace,
            ),
            (
                {
                    let mut el = Element::bare("a", "urn:a");
                    let mut child = Element::bare("b", "urn:a");
                    child.append_text_node("ok\u{FFFF}");
                    el.append_child(child);
                    el
                },
                WriteError::InvalidChar,
            ),
        ];
        for (element, expected) in cases {
            let mut out = b"kept".to_vec();
            assert_eq!(write_in(&element, "", &mut out), Err(expected));
            assert_eq!(out, b"kept");
        }
    }

    /// XML 1.0's `Char` production, written out independently of the writer's table.
    fn xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("a"),
                    Just(" "),
                    Just("&"),
                    Just("<"),
                    Just(">"),
                    Just("'"),
                    Just("\""),
                    Just("\t"),
                    Just("\n"),
                    Just("\r"),
                    Just("]]>"),
                    Just("é"),
                    Just("𝄞"),
                    Just("\u{FFFD}"),
                    Just("\u{EFBF}"),
                    Just("\u{FFBE}"),
                ],
                1..8,
            )
            .prop_map(|parts| parts.concat())
        }

        fn name() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("a"),
                Just("body"),
                Just("été"),
                Just("x-y.z_1"),
                Just("query")
            ]
        }

        fn namespace() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just(ns::COMPONENT),
                Just("urn:a"),
                Just("urn:b&'<"),
                Just(""),
                Just("http://jabber.org/protocol/disco#info"),
            ]
        }

        /// Trees as controllers build them; adjacent text nodes are merged so the tree
        /// is one a parser can give back.
        fn tree() -> impl Strategy<Value = Element> {
            let leaf = (
                name(),
                namespace(),
                proptest::collection::vec((name(), text()), 0..3),
            )
                .prop_map(|(name, namespace, attrs)| {
                    let mut el = Element::bare(name, namespace);
                    for (key, value) in attrs {
                        xml::set_attr(&mut el, key, value);
                    }
                    el
                });
            leaf.prop_recursive(4, 24, 4, |inner| {
                (
                    (name(), namespace(), proptest::option::of(text())),
                    proptest::collection::vec(
                        prop_oneof![inner.prop_map(Node::Element), text().prop_map(Node::Text)],
                        0..4,
                    ),
                )
                    .prop_map(|((name, namespace, lang), nodes)| {
                        let mut el = Element::bare(name, namespace);
                        if let Some(lang) = lang {
                            xml::set_lang(&mut el, lang);
                        }
                        for node in nodes {
                            match node {
                                Node::Element(child) => {
                                    el.append_child(child);
                                }
                                Node::Text(text) => el.append_text(text),
                            }
                        }
                        el
                    })
            })
        }

        proptest! {
            #[test]
            fn same_bytes_as_minidom_and_parses_back_equal(element in tree()) {
                let written = ours(&element, "");
                prop_assert_eq!(&written, &minidoms(&element));
                let back = xml::parse_in(&written, "").expect("our output parses");
                prop_assert_eq!(back, element);
            }

            #[test]
            fn refuses_exactly_the_characters_xml_cannot_carry(s in any::<String>()) {
                let mut el = Element::bare("a", "urn:a");
                el.append_text_node(s.clone());
                xml::set_attr(&mut el, "v", s.clone());
                let mut out = Vec::new();
                let written = write_in(&el, "", &mut out);
                prop_assert_eq!(written.is_ok(), s.chars().all(xml_char));
                if written.is_ok() {
                    let back = xml::parse_in(std::str::from_utf8(&out).unwrap(), "").unwrap();
                    prop_assert_eq!(back.attr("v"), Some(s.as_str()));
                    prop_assert_eq!(back.text(), s);
                }
            }
        }
    }

    #[test]
    fn non_ascii_names_are_checked_by_the_full_rules() {
        assert!(is_ncname("été"));
        assert!(is_ncname("_a-b.c9"));
        assert!(!is_ncname("9a"));
        assert!(!is_ncname("-a"));
        assert!(!is_ncname("a\u{2000}"));
    }
}
