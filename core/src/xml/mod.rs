//! XML helpers: build an [`Element`] from a template ([`xml!`](crate::xml!)) or parse one
//! from a string ([`parse`]), serialise stanzas for the wire, drop whitespace-only text,
//! escape attribute values.
//!
//! [`xml!`](crate::xml!) is the role of exampple's `~x` sigil: write the XML you mean and get
//! an element. Its template is checked when the program is compiled, and the values it
//! interpolates are data, never markup. [`parse`] is the runtime counterpart, for XML known
//! only at run time; it returns a `Result`. Do not build XML for it with `format!` from
//! values you do not control: `xml!` is the way to put values in XML.
//!
//! ```
//! use exampple_core::xml;
//!
//! let to = "a@b/c";
//! let iq = xml!("<iq type='get' id='1' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>");
//! assert_eq!(iq, xml::parse("<iq type='get' id='1' to='a@b/c'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap());
//! assert_eq!(iq.name(), "iq");
//! // Elements written without a namespace are stanzas of the component stream.
//! assert_eq!(iq.ns(), "jabber:component:accept");
//! assert_eq!(iq.children().next().unwrap().ns(), "urn:xmpp:ping");
//! assert!(xml::parse("<iq>").is_err());
//! ```

use minidom::{Element, Node, tree_builder::TreeBuilder};
use rxml::{Parse, RawParser, error::EndOrError};

use crate::ns;

pub use minidom::Element as XmlElement;

// Reached through `crate::__private`, by the code `xml!` generates.
pub(crate) mod build;
mod writer;

pub(crate) use writer::write_parts;
pub use writer::{MAX_WRITE_DEPTH, WriteError, is_xml_text, write_in};

/// Why a string could not be parsed into an element.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The text is not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Syntax(#[from] rxml::Error),
    /// The text is well-formed but cannot become an element (undeclared prefix, ...).
    #[error("invalid XML element: {0}")]
    Dom(#[from] minidom::Error),
    /// The text holds no element at all.
    #[error("no XML element in the input")]
    Empty,
    /// The text holds more than one top-level element where one was expected.
    #[error("more than one top-level element in the input")]
    TooMany,
    /// Non-whitespace text outside of any element.
    #[error("text outside of an element")]
    StrayText,
}

/// Parses one element; elements without an `xmlns` are put in `jabber:component:accept`.
///
/// The runtime counterpart of [`xml!`](crate::xml!), for XML known only at run time (read
/// from a file or the network): it returns an error rather than panicking. To put values in
/// XML written in the code, use `xml!`, never `parse(&format!(...))`, which would read
/// markup in the values.
///
/// Whitespace is kept as it is (see [`trim`] to drop whitespace-only text).
pub fn parse(text: &str) -> Result<Element, XmlError> {
    parse_in(text, ns::COMPONENT)
}

/// Parses one element, putting elements without an `xmlns` in `default_ns`.
pub fn parse_in(text: &str, default_ns: &str) -> Result<Element, XmlError> {
    let mut all = parse_all_in(text, default_ns)?;
    match all.len() {
        0 => Err(XmlError::Empty),
        1 => Ok(all.remove(0)),
        _ => Err(XmlError::TooMany),
    }
}

/// Parses any number of sibling elements (whitespace between them is ignored).
///
/// ```
/// let els = exampple_core::xml::parse_all("<a/> <b/>").unwrap();
/// assert_eq!(els.len(), 2);
/// ```
pub fn parse_all(text: &str) -> Result<Vec<Element>, XmlError> {
    parse_all_in(text, ns::COMPONENT)
}

/// Like [`parse_all`], with another default namespace.
pub fn parse_all_in(text: &str, default_ns: &str) -> Result<Vec<Element>, XmlError> {
    let mut parser = RawParser::new();
    let mut builder = TreeBuilder::new();
    // A synthetic root lets the text hold several elements and gives the default namespace.
    let root = format!("<r xmlns='{}'>", escape(default_ns));
    let mut data = root.as_bytes();
    let mut out = Vec::new();
    feed_fragment(&mut parser, &mut builder, &mut data, &mut out)?;
    let mut data = text.as_bytes();
    feed_fragment(&mut parser, &mut builder, &mut data, &mut out)?;
    let mut data: &[u8] = b"</r>";
    feed_fragment(&mut parser, &mut builder, &mut data, &mut out)?;
    if builder.depth() != 0 {
        return Err(XmlError::Syntax(rxml::Error::InvalidEof(None)));
    }
    Ok(out)
}

fn feed_fragment(
    parser: &mut RawParser,
    builder: &mut TreeBuilder,
    data: &mut &[u8],
    out: &mut Vec<Element>,
) -> Result<(), XmlError> {
    loop {
        match parser.parse(data, false) {
            Err(EndOrError::NeedMoreData) => return Ok(()),
            Err(EndOrError::Error(e)) => return Err(XmlError::Syntax(e)),
            Ok(None) => return Ok(()),
            Ok(Some(ev)) => {
                if builder.depth() == 1
                    && let rxml::RawEvent::Text(_, ref text) = ev
                {
                    if text.chars().all(char::is_whitespace) {
                        continue;
                    }
                    return Err(XmlError::StrayText);
                }
                let is_foot = matches!(ev, rxml::RawEvent::ElementFoot(_));
                builder.process_event(ev)?;
                if is_foot
                    && builder.depth() == 1
                    && let Some(el) = builder.unshift_child()
                {
                    out.push(el);
                }
            }
        }
    }
}

/// Drops every whitespace-only text node, recursively (the `trimmed` option).
///
/// Text with content is kept exactly, including its surrounding spaces.
///
/// ```
/// use exampple_core::xml;
/// let mut el = xml::parse("<message>\n  <body> hi </body>\n</message>").unwrap();
/// xml::trim(&mut el);
/// assert_eq!(xml::to_string(&el), "<message xmlns='jabber:component:accept'><body> hi </body></message>");
/// ```
pub fn trim(element: &mut Element) {
    let has_blank_text = element
        .nodes()
        .any(|n| matches!(n, Node::Text(t) if t.chars().all(char::is_whitespace)));
    if has_blank_text {
        let nodes = element.take_nodes();
        for node in nodes {
            match node {
                Node::Text(t) if t.chars().all(char::is_whitespace) => {}
                other => element.append_node(other),
            }
        }
    }
    for child in element.children_mut() {
        trim(child);
    }
}

/// Serialises an element (with its own namespace declaration) to a `String`; an element
/// that cannot be written (see [`write_element`]) gives an empty string.
pub fn to_string(element: &Element) -> String {
    let mut out = Vec::new();
    write_element(element, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends an element's XML (with its own namespace declaration) to `out`.
///
/// An element that XML cannot carry (a name that is not an XML name, a character XML
/// cannot carry, an element in a reserved namespace, or nesting deeper than
/// [`MAX_WRITE_DEPTH`]) is written as nothing rather than half, and an error is logged, so
/// a controller's bad string never takes the connection down.
pub fn write_element(element: &Element, out: &mut Vec<u8>) -> bool {
    write_logged(element, "", out)
}

/// Appends a stanza to `out` as it goes on a stream whose default namespace is `stream_ns`:
/// the redundant `xmlns='<stream_ns>'` on the top element is left out.
///
/// ```
/// use exampple_core::xml;
/// let iq = xml::parse("<iq id='1' type='result'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap();
/// let mut out = Vec::new();
/// xml::write_stanza(&iq, "jabber:component:accept", &mut out);
/// assert_eq!(out, b"<iq id='1' type='result'><ping xmlns='urn:xmpp:ping'/></iq>");
/// ```
pub fn write_stanza(element: &Element, stream_ns: &str, out: &mut Vec<u8>) -> bool {
    write_logged(element, stream_ns, out)
}

fn write_logged(element: &Element, parent_ns: &str, out: &mut Vec<u8>) -> bool {
    match writer::write_in(element, parent_ns, out) {
        Ok(()) => true,
        Err(error) => {
            log::error!(target: "exampple", "dropped a <{}/> that cannot be written as XML: {error}", element.name());
            false
        }
    }
}

/// Escapes a string for use inside a single- or double-quoted attribute value or text.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['<', '>', '&', '\'', '"']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether XML 1.0 can carry `c` (its `Char` production, without U+FFFE and U+FFFF).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` with every character XML 1.0 cannot carry replaced by U+FFFD, so that an element
/// built from it is always writable; borrowed when nothing needed replacing.
///
/// The payload libraries ([`forms`](crate::forms), [`rpc`](crate::rpc)) put text from
/// their callers through this, where [`write_element`] would otherwise drop the element.
pub(crate) fn xml_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

/// An element `<name xmlns='ns'>text</name>` holding [`xml_safe`] text; empty text adds
/// no text node (`<name xmlns='ns'/>`).
pub(crate) fn text_element(name: &str, ns: &str, text: &str) -> Element {
    let mut element = Element::bare(name, ns);
    if !text.is_empty() {
        element.append_text_node(xml_safe(text).into_owned());
    }
    element
}

/// Sets (or replaces) an attribute without a namespace. A name that is not a valid XML
/// name is ignored.
pub fn set_attr(element: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(name) = rxml::NcName::try_from(name) {
        element
            .attrs_mut()
            .insert(rxml::Namespace::NONE, name, value.into());
    }
}

/// Removes an attribute without a namespace.
pub fn remove_attr(element: &mut Element, name: &str) -> Option<String> {
    element.attrs_mut().remove(rxml::Namespace::none(), name)
}

/// Sets `xml:lang`.
pub fn set_lang(element: &mut Element, lang: impl Into<String>) {
    if let Ok(name) = rxml::NcName::try_from("lang") {
        element
            .attrs_mut()
            .insert(rxml::Namespace::xml().clone(), name, lang.into());
    }
}

/// Reads `xml:lang`.
pub fn lang(element: &Element) -> Option<&str> {
    element.attr_ns(ns::XML, "lang")
}

/// Moves `jabber:client` stanza content out of `jabber:component:accept`: every element in
/// that namespace is put in `jabber:client` (other namespaces are left alone). This lets
/// [`parse`] and the stanza builders, which default to the component namespace, write
/// stanzas and patterns for a client, and a component forward a stanza it built as one a
/// user sent (XEP-0356).
///
/// ```
/// use exampple_core::xml;
/// let m = xml::into_client_ns(xml::parse("<message><body>hi</body><x xmlns='urn:x'/></message>").unwrap());
/// assert_eq!(xml::to_string(&m), "<message xmlns='jabber:client'><body>hi</body><x xmlns='urn:x'/></message>");
/// ```
pub fn into_client_ns(element: Element) -> Element {
    if !has_ns_anywhere(&element, ns::COMPONENT) {
        return element;
    }
    rewrite_ns(&element, ns::COMPONENT, ns::CLIENT)
}

fn has_ns_anywhere(element: &Element, namespace: &str) -> bool {
    element.ns() == namespace || element.children().any(|c| has_ns_anywhere(c, namespace))
}

fn rewrite_ns(element: &Element, from: &str, to: &str) -> Element {
    let element_ns = element.ns();
    let target = if element_ns == from {
        to.to_string()
    } else {
        element_ns
    };
    let mut out = Element::bare(element.name(), target);
    for ((namespace, name), value) in element.attrs().iter() {
        out.attrs_mut()
            .insert(namespace.clone(), name.clone(), value.clone());
    }
    for node in element.nodes() {
        match node {
            Node::Element(child) => {
                out.append_child(rewrite_ns(child, from, to));
            }
            Node::Text(text) => out.append_text_node(text.clone()),
        }
    }
    out
}

/// The namespace of an element's first child element, if it has one.
pub fn payload_ns(element: &Element) -> Option<String> {
    element.children().next().map(Element::ns)
}

/// Builds an [`Element`] from an XML template checked when the program is compiled.
///
/// The template is a string literal with `format!`'s placeholders (`{}`, `{0}`, `{name}`,
/// `name = expr`, format specs, `{{`/`}}`). A malformed template is a compile error. Values go
/// into the element as data, never as markup: any string lands in a text node or an attribute
/// value exactly as it is, so a value cannot add elements or attributes.
///
/// - in an attribute value (also mixed, `id='m{n}'`, and `xmlns='{ns}'`) a value is written
///   with `Display`;
/// - in child position, an `Element` or `&Element` becomes a child element, and so does each
///   element of a `Vec<Element>`, an `Option<Element>` or any iterator of elements; any other
///   value becomes text through `Display`. Captured variables (`{x}`) are borrowed, as by
///   `format!` (an element is cloned); an argument (`{}` with `, x`) inserted there once is
///   taken by value, so an element moves in without a copy and an iterator can be consumed.
///
/// Elements without an `xmlns` are in `jabber:component:accept`, as with [`parse`], which
/// is the runtime counterpart for XML that is not known when the program is compiled.
///
/// ```
/// use exampple_core::xml;
/// let id = "42";
/// let body = "a</body><injected/><body>";
/// let payload = xml!("<query xmlns='jabber:iq:version'/>");
/// let el = xml!("<iq id='{id}' type='result'>{payload}<body>{body}</body></iq>");
/// assert_eq!(el.attr("id"), Some("42"));
/// assert_eq!(el.get_child("body", exampple_core::ns::COMPONENT).unwrap().text(), body);
/// assert_eq!(el.children().count(), 2);
/// ```
///
/// ```compile_fail
/// let el = exampple_core::xml!("<message><body>hi</message>");
/// ```
#[macro_export]
macro_rules! xml {
    ($($t:tt)*) => {
        $crate::__private::xml_impl!(($crate) $($t)*)
    };
}

pub use crate::xml;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_namespaces() {
        let el =
            parse("<message><body>a &amp; b</body><x xmlns='urn:x'><y/></x></message>").unwrap();
        assert_eq!(el.ns(), ns::COMPONENT);
        let x = el.get_child("x", "urn:x").unwrap();
        assert_eq!(x.children().next().unwrap().ns(), "urn:x");
        assert_eq!(el.get_child("body", ns::COMPONENT).unwrap().text(), "a & b");
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!(matches!(parse(""), Err(XmlError::Empty)));
        assert!(matches!(parse("<a/><b/>"), Err(XmlError::TooMany)));
        assert!(matches!(parse("<a>"), Err(XmlError::Syntax(_))));
        assert!(matches!(parse("<a></b>"), Err(XmlError::Syntax(_))));
        assert!(matches!(parse("hello <a/>"), Err(XmlError::StrayText)));
        assert!(matches!(parse("<p:a/>"), Err(XmlError::Dom(_))));
        assert!(parse("<!DOCTYPE a><a/>").is_err());
    }

    #[test]
    fn write_stanza_drops_only_the_stream_namespace() {
        let el = parse("<iq xmlns='jabber:client' id='1'/>").unwrap();
        let mut out = Vec::new();
        write_stanza(&el, ns::COMPONENT, &mut out);
        assert_eq!(out, b"<iq xmlns='jabber:client' id='1'/>");
        let el = parse("<presence/>").unwrap();
        let mut out = b"prefix".to_vec();
        write_stanza(&el, ns::COMPONENT, &mut out);
        assert_eq!(out, b"prefix<presence/>");
    }

    #[test]
    fn escape_escapes() {
        assert_eq!(escape("a'b<c>&\""), "a&apos;b&lt;c&gt;&amp;&quot;");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn xml_safe_replaces_what_xml_cannot_carry() {
        assert!(matches!(
            xml_safe("a\tb\u{10000}"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            xml_safe("a\u{0}b\u{FFFE}c\u{1b}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert!(is_xml_text(&xml_safe("\u{0}\u{D7FF}\u{FFFF}")));
        let element = text_element("v", "urn:x", "1 < 2 \u{1}");
        assert_eq!(
            to_string(&element),
            "<v xmlns='urn:x'>1 &lt; 2 \u{FFFD}</v>"
        );
        assert_eq!(
            to_string(&text_element("v", "urn:x", "")),
            "<v xmlns='urn:x'/>"
        );
    }
}
