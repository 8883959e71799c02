//! The second stage of parsing: tokens into the stream header and stanzas, built as
//! minidom elements.
//!
//! minidom has a tree builder of its own; this one does the same job with less: it reads
//! the tokens in place (copying attribute values and text once, into the elements, so that
//! the tokens go back whole to the thread that made them: see [`Tokens`]), resolves
//! namespaces against a stack of the declarations in scope instead of cloning each
//! element's declarations, and leaves `Element::prefixes` empty (a parsed element keeps its
//! namespace, and the writer declares namespaces from those alone). minidom's builder gives
//! each element with an `xmlns` a map of its declarations: memory for every payload, and
//! again for its copy given to the controller.
//!
//! It also rejects what minidom's builder lets through: an attribute given twice.

use minidom::Element;
use rxml::{AttrMap, Namespace, NcName, RawEvent};

use super::{ParseError, StreamHeader, StreamItem, Tokens};
use crate::ns;

/// Tokens into items (the stream header and stanzas as minidom elements), for one stream:
/// the second stage of [`StreamParser`](super::StreamParser), for a program that tokenises
/// on another thread. It reads the tokens in place and leaves them spent, to go back whole
/// to the thread that made them (see [`Tokens`]).
pub struct StreamBuilder {
    /// The namespaces declared by the open elements (the stream's first), by index.
    namespaces: Vec<String>,
    /// One scope per open element, the stream's first.
    scopes: Vec<Scope>,
    /// The elements being built: the stanza, then its open descendants.
    stack: Vec<Element>,
    /// The element whose head is being read.
    head: Option<Head>,
    header: Option<StreamHeader>,
    header_done: bool,
    failed: bool,
    templates: Templates,
}

/// Bare elements recently built, by name and namespace: a clone of one shares its
/// namespace (minidom keeps it in an `Arc`) where `Element::bare` allocates the namespace
/// twice (a `String`, then the `Arc`). Direct-mapped, so a lookup costs one hash and one
/// comparison whatever the peer sends.
struct Templates {
    slots: Vec<Option<Element>>,
}

impl Templates {
    const SLOTS: usize = 64;

    fn new() -> Self {
        Templates {
            slots: vec![None; Self::SLOTS],
        }
    }

    /// A bare element named `name` in `namespace`.
    fn element(&mut self, name: &str, namespace: &str) -> Element {
        let slot = &mut self.slots[slot_of(name, namespace)];
        if let Some(template) = slot
            && template.name() == name
            && template.has_ns(namespace)
        {
            return template.clone();
        }
        let element = Element::bare(name, namespace);
        *slot = Some(element.clone());
        element
    }
}

/// A slot for a name in a namespace: a multiplicative hash of their lengths and of a few
/// of their bytes (names and namespaces differ mostly in length and at their ends).
fn slot_of(name: &str, namespace: &str) -> usize {
    let edge = |s: &str| {
        let b = s.as_bytes();
        let first = b.first().copied().unwrap_or(0);
        let last = b.last().copied().unwrap_or(0);
        let before_last = b.len().checked_sub(2).map_or(0, |i| b[i]);
        u64::from(first)
            | u64::from(last) << 8
            | u64::from(before_last) << 16
            | (b.len() as u64) << 24
    };
    let key = edge(name) ^ edge(namespace).rotate_left(32);
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % Templates::SLOTS
}

/// What a prefix (or the default namespace) is bound to.
#[derive(Clone, Copy)]
enum Bound {
    /// A declared namespace: an index into `namespaces`.
    Declared(usize),
    /// The `xml` prefix's namespace, always bound.
    Xml,
    /// No namespace (the default namespace undeclared).
    Nothing,
}

/// What an open element declares.
struct Scope {
    /// The default namespace in force, an index into `namespaces` (`None`: no namespace).
    default: Option<usize>,
    /// The prefixes it declares, with their namespaces' indices.
    prefixes: Vec<(NcName, usize)>,
    /// `namespaces.len()` before this element's declarations.
    mark: usize,
}

/// An element head being read: its name and attributes, before its namespace is known.
struct Head {
    prefix: Option<NcName>,
    name: NcName,
    attributes: AttrMap,
    /// Attributes with a prefix, resolved at the end of the head.
    prefixed: Vec<(NcName, NcName, String)>,
    default: Option<String>,
    prefixes: Vec<(NcName, String)>,
}

impl Default for StreamBuilder {
    fn default() -> Self {
        StreamBuilder::new()
    }
}

impl StreamBuilder {
    /// A builder for a new stream.
    pub fn new() -> Self {
        StreamBuilder {
            namespaces: Vec::new(),
            scopes: Vec::new(),
            stack: Vec::new(),
            head: None,
            header: None,
            header_done: false,
            failed: false,
            templates: Templates::new(),
        }
    }

    /// Builds what `tokens` hold into `out`, leaving them spent (see [`Tokens`]): the items
    /// in order, then the error that ends the stream (the builder's own, or the lexer's).
    pub fn build(
        &mut self,
        tokens: &mut Tokens,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), ParseError> {
        if tokens.spent {
            return Ok(());
        }
        tokens.spent = true;
        let mut result = Ok(());
        for event in &tokens.events {
            if self.failed {
                break;
            }
            if let Err(e) = self.on_event(event, out) {
                self.failed = true;
                result = Err(e);
            }
        }
        let lexer_error = tokens.error.take();
        result?;
        match lexer_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn on_event(&mut self, event: &RawEvent, out: &mut Vec<StreamItem>) -> Result<(), ParseError> {
        match event {
            RawEvent::XmlDeclaration(..) => Ok(()),
            RawEvent::ElementHeadOpen(_, (prefix, name)) => {
                let (prefix, name) = (prefix.clone(), name.clone());
                if !self.header_done {
                    self.header = Some(StreamHeader {
                        name: name.to_string(),
                        prefix: prefix.as_ref().map(|p| p.to_string()),
                        ..StreamHeader::default()
                    });
                }
                self.head = Some(Head {
                    prefix,
                    name,
                    attributes: AttrMap::new(),
                    prefixed: Vec::new(),
                    default: None,
                    prefixes: Vec::new(),
                });
                Ok(())
            }
            RawEvent::Attribute(_, (prefix, name), value) => {
                if !self.header_done {
                    self.header_attribute(prefix.as_ref().map(|p| p.as_str()), name, value);
                }
                let (prefix, name, value) = (prefix.clone(), name.clone(), value.clone());
                let Some(head) = self.head.as_mut() else {
                    return Ok(());
                };
                match (prefix, name) {
                    (None, name) if name.as_str() == "xmlns" => head.default = Some(value),
                    (Some(prefix), name) if prefix.as_str() == "xmlns" => {
                        head.prefixes.push((name, value))
                    }
                    (Some(prefix), name) => head.prefixed.push((prefix, name, value)),
                    (None, name) => {
                        if head
                            .attributes
                            .insert(Namespace::NONE, name, value)
                            .is_some()
                        {
                            return Err(duplicate_attribute());
                        }
                    }
                }
                Ok(())
            }
            RawEvent::ElementHeadClose(_) => {
                let Some(head) = self.head.take() else {
                    return Ok(());
                };
                self.open(head)?;
                if !self.header_done {
                    self.header_done = true;
                    out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                }
                Ok(())
            }
            RawEvent::ElementFoot(_) => {
                if !self.header_done {
                    // `<stream:stream/>`: opened and closed at once.
                    self.header_done = true;
                    self.head = None;
                    out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                    out.push(StreamItem::Close);
                    return Ok(());
                }
                self.close(out);
                Ok(())
            }
            RawEvent::Text(_, text) => {
                // Text at stream level never comes here: the lexer drops whitespace
                // between stanzas and refuses anything else.
                if let Some(top) = self.stack.last_mut() {
                    top.append_text(text.as_str());
                }
                Ok(())
            }
        }
    }

    fn header_attribute(&mut self, prefix: Option<&str>, name: &str, value: &str) {
        let Some(h) = self.header.as_mut() else {
            return;
        };
        let value = Some(value.to_string());
        match (prefix, name) {
            (None, "id") => h.id = value,
            (None, "from") => h.from = value,
            (None, "to") => h.to = value,
            (None, "version") => h.version = value,
            (None, "xmlns") => h.default_ns = value,
            (Some("xmlns"), p) if Some(p) == h.prefix.as_deref() => h.stream_ns = value,
            _ => {}
        }
    }

    /// The end of a head: its declarations come into scope, its name and attributes are
    /// resolved, and the element (unless it is the stream's) is opened.
    fn open(&mut self, head: Head) -> Result<(), ParseError> {
        let mark = self.namespaces.len();
        let default = match head.default {
            // `xmlns=''` undeclares the default namespace.
            Some(declared) if declared.is_empty() => None,
            Some(declared) => {
                self.namespaces.push(declared);
                Some(self.namespaces.len() - 1)
            }
            None => self.scopes.last().and_then(|scope| scope.default),
        };
        let mut prefixes = Vec::with_capacity(head.prefixes.len());
        for (prefix, namespace) in head.prefixes {
            if prefix.as_str() == "xmlns"
                || (prefix.as_str() == "xml") != (namespace == ns::XML)
                || namespace.is_empty()
            {
                self.namespaces.truncate(mark);
                return Err(ParseError::NotWellFormed(format!(
                    "the prefix `{prefix}` cannot be bound to {namespace:?}"
                )));
            }
            self.namespaces.push(namespace);
            prefixes.push((prefix, self.namespaces.len() - 1));
        }
        self.scopes.push(Scope {
            default,
            prefixes,
            mark,
        });
        let opened = self.element(head.prefix, head.name, head.attributes, head.prefixed);
        match opened {
            Ok(Some(element)) => {
                self.stack.push(element);
                Ok(())
            }
            // The stream's own element is not built: only its declarations count.
            Ok(None) => Ok(()),
            Err(e) => {
                self.close_scope();
                Err(e)
            }
        }
    }

    fn element(
        &mut self,
        prefix: Option<NcName>,
        name: NcName,
        mut attributes: AttrMap,
        prefixed: Vec<(NcName, NcName, String)>,
    ) -> Result<Option<Element>, ParseError> {
        let bound = match &prefix {
            None => match self.scopes.last().and_then(|scope| scope.default) {
                Some(i) => Bound::Declared(i),
                None => Bound::Nothing,
            },
            Some(prefix) => self.prefix(prefix)?,
        };
        for (prefix, name, value) in prefixed {
            let namespace = match self.prefix(&prefix)? {
                Bound::Xml => Namespace::xml().clone(),
                other => Namespace::from(self.namespace(other).to_string()),
            };
            if attributes.insert(namespace, name, value).is_some() {
                return Err(duplicate_attribute());
            }
        }
        if self.scopes.len() == 1 {
            return Ok(None);
        }
        // The fields apart: the namespace borrows `namespaces`, the clone needs `templates`.
        let namespace = match bound {
            Bound::Declared(i) => self.namespaces[i].as_str(),
            Bound::Xml => ns::XML,
            Bound::Nothing => "",
        };
        let mut element = self.templates.element(&name, namespace);
        *element.attrs_mut() = attributes;
        Ok(Some(element))
    }

    /// What a prefix is bound to where the innermost scope is.
    fn prefix(&self, prefix: &NcName) -> Result<Bound, ParseError> {
        if prefix.as_str() == "xml" {
            return Ok(Bound::Xml);
        }
        self.scopes
            .iter()
            .rev()
            .flat_map(|scope| scope.prefixes.iter())
            .find(|(declared, _)| declared == prefix)
            .map(|&(_, i)| Bound::Declared(i))
            .ok_or_else(|| {
                ParseError::NotWellFormed(format!(
                    "the namespace prefix `{prefix}` is not declared"
                ))
            })
    }

    fn namespace(&self, bound: Bound) -> &str {
        match bound {
            Bound::Declared(i) => &self.namespaces[i],
            Bound::Xml => ns::XML,
            Bound::Nothing => "",
        }
    }

    /// The end of an element: it joins its parent, or is a complete stanza; the end of the
    /// stream's element is the close.
    fn close(&mut self, out: &mut Vec<StreamItem>) {
        self.close_scope();
        match self.stack.pop() {
            Some(element) => match self.stack.last_mut() {
                Some(parent) => {
                    parent.append_child(element);
                }
                None => out.push(StreamItem::Element(element)),
            },
            None => out.push(StreamItem::Close),
        }
    }

    fn close_scope(&mut self) {
        if let Some(scope) = self.scopes.pop() {
            self.namespaces.truncate(scope.mark);
        }
    }
}

fn duplicate_attribute() -> ParseError {
    ParseError::NotWellFormed("an attribute given twice".into())
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, StreamItem, StreamParser};
    use super::*;
    use minidom::tree_builder::TreeBuilder;
    use proptest::prelude::*;
    use rxml::{Parse, RawParser, error::EndOrError};

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'>";

    /// The stanzas of `body` (after a stream header) as this builder makes them.
    fn ours(body: &str) -> Result<Vec<Element>, ParseError> {
        let mut parser = StreamParser::new(Limits::default());
        let mut items = Vec::new();
        parser.feed(HEADER.as_bytes(), &mut items)?;
        parser.feed(body.as_bytes(), &mut items)?;
        Ok(items
            .into_iter()
            .filter_map(|item| match item {
                StreamItem::Element(el) => Some(el),
                _ => None,
            })
            .collect())
    }

    /// The same with minidom's own tree builder.
    fn minidoms(body: &str) -> Result<Vec<Element>, String> {
        let mut raw = RawParser::new();
        let mut builder = TreeBuilder::new();
        let text = format!("{HEADER}{body}");
        let mut data = text.as_bytes();
        let mut out = Vec::new();
        loop {
            match raw.parse(&mut data, false) {
                Err(EndOrError::NeedMoreData) | Ok(None) => return Ok(out),
                Err(EndOrError::Error(e)) => return Err(e.to_string()),
                Ok(Some(event)) => {
                    if builder.depth() == 1 && matches!(event, RawEvent::Text(..)) {
                        continue;
                    }
                    let foot = matches!(event, RawEvent::ElementFoot(_));
                    builder.process_event(event).map_err(|e| e.to_string())?;
                    if foot
                        && builder.depth() == 1
                        && let Some(el) = builder.unshift_child()
                    {
                        out.push(el);
                    }
                }
            }
        }
    }

    /// A generated element: each number picks among valid choices given what is in scope.
    #[derive(Debug, Clone)]
    struct Spec {
        default: u8,
        bind_p: u8,
        bind_q: bool,
        prefix: u8,
        attributes: Vec<u8>,
        children: Vec<Child>,
    }

    #[derive(Debug, Clone)]
    enum Child {
        Element(Spec),
        Text(u8),
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let leaf = (
            0u8..4,
            0u8..3,
            any::<bool>(),
            0u8..3,
            proptest::collection::vec(0u8..5, 0..4),
        )
            .prop_map(|(default, bind_p, bind_q, prefix, attributes)| Spec {
                default,
                bind_p,
                bind_q,
                prefix,
                attributes,
                children: Vec::new(),
            });
        leaf.prop_recursive(4, 32, 4, |inner| {
            (
                (
                    0u8..4,
                    0u8..3,
                    any::<bool>(),
                    0u8..3,
                    proptest::collection::vec(0u8..5, 0..4),
                ),
                proptest::collection::vec(
                    prop_oneof![
                        inner.prop_map(Child::Element),
                        (0u8..4).prop_map(Child::Text)
                    ],
                    0..4,
                ),
            )
                .prop_map(
                    |((default, bind_p, bind_q, prefix, attributes), children)| Spec {
                        default,
                        bind_p,
                        bind_q,
                        prefix,
                        attributes,
                        children,
                    },
                )
        })
    }

    /// Writes `spec` as XML, using only the prefixes in scope (`p`, `q`).
    fn render(spec: &Spec, p_in_scope: bool, q_in_scope: bool, out: &mut String) {
        let p = p_in_scope || spec.bind_p > 0;
        let q = q_in_scope || spec.bind_q;
        let prefix = match spec.prefix {
            1 if p => "p:",
            2 if q => "q:",
            _ => "",
        };
        out.push_str(&format!("<{prefix}e"));
        match spec.default {
            1 => out.push_str(" xmlns='urn:a'"),
            2 => out.push_str(" xmlns='urn:b'"),
            3 => out.push_str(" xmlns=''"),
            _ => {}
        }
        match spec.bind_p {
            1 => out.push_str(" xmlns:p='urn:p1'"),
            2 => out.push_str(" xmlns:p='urn:p2'"),
            _ => {}
        }
        if spec.bind_q {
            out.push_str(" xmlns:q='urn:q'");
        }
        let mut seen = Vec::new();
        for &a in &spec.attributes {
            let name = match a {
                0 => "a",
                1 => "b",
                2 if p => "p:a",
                3 if q => "q:b",
                4 => "xml:lang",
                _ => continue,
            };
            if !seen.contains(&name) {
                seen.push(name);
                out.push_str(&format!(" {name}='v&amp;{a}'"));
            }
        }
        if spec.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &spec.children {
            match child {
                Child::Element(child) => render(child, p, q, out),
                Child::Text(t) => {
                    out.push_str(["x", " &lt;y&gt; ", "<![CDATA[z]]>", "é"][*t as usize])
                }
            }
        }
        out.push_str(&format!("</{prefix}e>"));
    }

    proptest! {
        #[test]
        fn builds_what_minidom_builds(stanzas in proptest::collection::vec(spec(), 1..4)) {
            let mut body = String::new();
            for stanza in &stanzas {
                render(stanza, false, false, &mut body);
            }
            let theirs = minidoms(&body);
            prop_assume!(theirs.is_ok());
            prop_assert_eq!(ours(&body).expect("we parse what minidom parses"), theirs.unwrap(), "{}", body);
        }
    }

    #[test]
    fn namespaces_resolve_through_the_scopes() {
        let els = ours(
            "<message xmlns:x='urn:x'><x:a x:k='1' xml:lang='en'><b xmlns='urn:b'><x:c/><d xmlns=''/></b></x:a></message>",
        )
        .unwrap();
        let a = els[0].children().next().unwrap();
        assert!(a.is("a", "urn:x"));
        assert_eq!(a.attr_ns("urn:x", "k"), Some("1"));
        assert_eq!(a.attr_ns(ns::XML, "lang"), Some("en"));
        let b = a.children().next().unwrap();
        assert!(b.is("b", "urn:b"));
        let mut inner = b.children();
        assert!(inner.next().unwrap().is("c", "urn:x"));
        assert_eq!(inner.next().unwrap().ns(), "");
        // Declarations end with their element.
        assert!(ours("<message><x:a/></message>").is_err());
        // Parsed elements carry no declarations of their own.
        assert!(a.prefixes.declared_prefixes().is_empty());
    }

    #[test]
    fn what_xml_forbids_is_refused() {
        for body in [
            "<iq id='1' id='2'/>",
            "<iq xmlns:x='urn:x' xmlns:y='urn:x' x:a='1' y:a='2'/>",
            "<iq><y:a/></iq>",
            "<iq xmlns:xmlns='urn:x'/>",
            "<iq xmlns:xml='urn:x'/>",
            "<iq xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
            "<iq xmlns:x=''/>",
        ] {
            assert!(
                matches!(ours(body), Err(ParseError::NotWellFormed(_))),
                "{body}: {:?}",
                ours(body)
            );
        }
    }
}
