//! Stanza matchers: compare an expected stanza with the one received, and say where they
//! differ.
//!
//! Two ways to compare:
//! - [`matches_exact`] (exampple's default): same name and namespace, the same attributes
//!   (`id` included, none extra), the same children in the same order, the same text; with
//!   `trimmed`, whitespace-only text between elements is ignored on both sides.
//! - [`matches_subset`] (a *pattern*): the attributes the pattern names must be equal (others
//!   are allowed), each child of the pattern must match a child of the actual element, in
//!   order (other children may come between), recursively; text is compared only where the
//!   pattern has non-whitespace text.
//!
//! A [`Mismatch`] names the first difference with a path such as
//! `/iq/query[1]: attribute type: expected 'result', found 'error'`; its `Display` adds both
//! stanzas pretty-printed. In a path, `name[n]` is the n-th child element (counting from 1,
//! whatever its name) of the element before it.
//!
//! ```
//! use exampple_core::matching::{self, Match};
//! use exampple_core::xml;
//!
//! let actual = xml::parse(
//!     "<iq type='result' id='1' from='localhost'><query xmlns='urn:x' a='1'><item/></query></iq>",
//! ).unwrap();
//! let pattern = xml::parse("<iq type='result'><query xmlns='urn:x'/></iq>").unwrap();
//! assert!(matching::matches_subset(&pattern, &actual).is_ok());
//! assert!(Match::Subset.check(&pattern, &actual).is_ok());
//!
//! let err = matching::matches_exact(&pattern, &actual, false).unwrap_err();
//! assert_eq!(err.path, "/iq");
//! assert_eq!(err.detail, "unexpected attribute from='localhost'");
//!
//! let pattern = xml::parse("<iq type='error'/>").unwrap();
//! let err = Match::Subset.check(&pattern, &actual).unwrap_err();
//! assert_eq!(err.summary(), "/iq: attribute type: expected 'error', found 'result'");
//! ```

use std::fmt;

use minidom::{Element, Node};

use crate::ns;

/// How an expected stanza is compared with a received one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Match {
    /// Everything equal (see [`matches_exact`]); whitespace-only text counts.
    #[default]
    Exact,
    /// Everything equal, whitespace-only text between elements ignored
    /// ([`matches_exact`] with `trimmed`).
    ExactTrimmed,
    /// The expected stanza is a pattern (see [`matches_subset`]).
    Subset,
}

impl Match {
    /// Compares `expected` with `actual` this way.
    pub fn check(self, expected: &Element, actual: &Element) -> Result<(), Mismatch> {
        match self {
            Match::Exact => matches_exact(expected, actual, false),
            Match::ExactTrimmed => matches_exact(expected, actual, true),
            Match::Subset => matches_subset(expected, actual),
        }
    }

    /// Whether `actual` matches `expected` this way.
    pub fn is_match(self, expected: &Element, actual: &Element) -> bool {
        self.check(expected, actual).is_ok()
    }
}

/// The first difference between an expected and an actual stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Where: `/iq/query[1]` (see the [module docs](self)).
    pub path: String,
    /// What: `attribute type: expected 'result', found 'error'`.
    pub detail: String,
    /// The whole expected stanza (or pattern).
    pub expected: Box<Element>,
    /// The whole actual stanza.
    pub actual: Box<Element>,
}

impl Mismatch {
    /// The one-line summary `path: detail`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.path, self.detail)
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.path, self.detail)?;
        writeln!(f, "expected:")?;
        write_indented(f, &pretty(&self.expected))?;
        writeln!(f, "actual:")?;
        write_indented(f, &pretty(&self.actual))
    }
}

impl std::error::Error for Mismatch {}

fn write_indented(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for line in text.lines() {
        writeln!(f, "  {line}")?;
    }
    Ok(())
}

/// Compares exactly: name, namespace, every attribute (no extra ones), children in order
/// and text. With `trimmed`, whitespace-only text nodes are ignored on both sides (text with
/// content is compared as it is, spaces included).
pub fn matches_exact(expected: &Element, actual: &Element, trimmed: bool) -> Result<(), Mismatch> {
    let mut path = format!("/{}", actual.name());
    exact(expected, actual, trimmed, &mut path).map_err(|detail| Mismatch {
        path: detail.0,
        detail: detail.1,
        expected: Box::new(expected.clone()),
        actual: Box::new(actual.clone()),
    })
}

/// Compares with `pattern` as a subset: the pattern's attributes must be equal (extra ones
/// are allowed), its children must match children of `actual` in order (extra ones allowed
/// anywhere), recursively; text is compared where the pattern has non-whitespace text.
pub fn matches_subset(pattern: &Element, actual: &Element) -> Result<(), Mismatch> {
    let mut path = format!("/{}", actual.name());
    subset(pattern, actual, &mut path).map_err(|detail| Mismatch {
        path: detail.0,
        detail: detail.1,
        expected: Box::new(pattern.clone()),
        actual: Box::new(actual.clone()),
    })
}

/// (path, detail) of a difference.
type Diff = (String, String);

fn name_and_ns(expected: &Element, actual: &Element, path: &str) -> Result<(), Diff> {
    if expected.name() != actual.name() {
        return Err((
            path.to_string(),
            format!(
                "element name: expected <{}>, found <{}>",
                expected.name(),
                actual.name()
            ),
        ));
    }
    if expected.ns() != actual.ns() {
        return Err((
            path.to_string(),
            format!(
                "namespace of <{}>: expected '{}', found '{}'",
                expected.name(),
                expected.ns(),
                actual.ns()
            ),
        ));
    }
    Ok(())
}

/// The attributes of an element as (display name, value), in the map's (sorted) order.
fn attributes(element: &Element) -> Vec<(String, &str)> {
    element
        .attrs()
        .iter()
        .map(|((namespace, name), value)| {
            let namespace = namespace.as_str();
            let shown = if namespace.is_empty() {
                name.to_string()
            } else if namespace == ns::XML {
                format!("xml:{name}")
            } else {
                format!("{{{namespace}}}{name}")
            };
            (shown, value.as_str())
        })
        .collect()
}

fn compare_attributes(
    expected: &Element,
    actual: &Element,
    path: &str,
    allow_extra: bool,
) -> Result<(), Diff> {
    let actual_attrs = attributes(actual);
    let expected_attrs = attributes(expected);
    for (name, value) in &expected_attrs {
        match actual_attrs.iter().find(|(n, _)| n == name) {
            None => {
                return Err((
                    path.to_string(),
                    format!("missing attribute {name}='{value}'"),
                ));
            }
            Some((_, found)) if found != value => {
                return Err((
                    path.to_string(),
                    format!("attribute {name}: expected '{value}', found '{found}'"),
                ));
            }
            Some(_) => {}
        }
    }
    if !allow_extra
        && let Some((name, value)) = actual_attrs
            .iter()
            .find(|(n, _)| !expected_attrs.iter().any(|(e, _)| e == n))
    {
        return Err((
            path.to_string(),
            format!("unexpected attribute {name}='{value}'"),
        ));
    }
    Ok(())
}

/// A child of an element, adjacent text nodes merged.
enum Item<'a> {
    Text(String),
    Element(&'a Element, usize),
}

fn items(element: &Element, trimmed: bool) -> Vec<Item<'_>> {
    let mut out: Vec<Item<'_>> = Vec::new();
    let mut position = 0;
    for node in element.nodes() {
        match node {
            Node::Element(child) => {
                position += 1;
                out.push(Item::Element(child, position));
            }
            Node::Text(text) => {
                if let Some(Item::Text(previous)) = out.last_mut() {
                    previous.push_str(text);
                } else {
                    out.push(Item::Text(text.clone()));
                }
            }
        }
    }
    if trimmed {
        out.retain(|item| !matches!(item, Item::Text(t) if is_blank(t)));
    }
    out
}

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

fn describe(item: &Item<'_>) -> String {
    match item {
        Item::Text(text) => format!("text {text:?}"),
        Item::Element(el, _) => format!("<{} xmlns='{}'>", el.name(), el.ns()),
    }
}

fn exact(
    expected: &Element,
    actual: &Element,
    trimmed: bool,
    path: &mut String,
) -> Result<(), Diff> {
    name_and_ns(expected, actual, path)?;
    compare_attributes(expected, actual, path, false)?;
    let expected_items = items(expected, trimmed);
    let actual_items = items(actual, trimmed);
    for (index, (e, a)) in expected_items.iter().zip(&actual_items).enumerate() {
        match (e, a) {
            (Item::Text(et), Item::Text(at)) => {
                if et != at {
                    return Err((path.clone(), format!("text: expected {et:?}, found {at:?}")));
                }
            }
            (Item::Element(ee, _), Item::Element(ae, position)) => {
                let len = path.len();
                path.push_str(&format!("/{}[{position}]", ae.name()));
                exact(ee, ae, trimmed, path)?;
                path.truncate(len);
            }
            (e, a) => {
                return Err((
                    path.clone(),
                    format!(
                        "content {}: expected {}, found {}",
                        index + 1,
                        describe(e),
                        describe(a)
                    ),
                ));
            }
        }
    }
    if let Some(extra) = actual_items.get(expected_items.len()) {
        return Err((path.clone(), format!("unexpected {}", describe(extra))));
    }
    if let Some(missing) = expected_items.get(actual_items.len()) {
        return Err((path.clone(), format!("missing {}", describe(missing))));
    }
    Ok(())
}

fn subset(pattern: &Element, actual: &Element, path: &mut String) -> Result<(), Diff> {
    name_and_ns(pattern, actual, path)?;
    compare_attributes(pattern, actual, path, true)?;
    let pattern_text: String = pattern.texts().collect();
    if !is_blank(&pattern_text) {
        let actual_text: String = actual.texts().collect();
        if pattern_text != actual_text {
            return Err((
                path.clone(),
                format!("text: expected {pattern_text:?}, found {actual_text:?}"),
            ));
        }
    }
    let candidates: Vec<&Element> = actual.children().collect();
    let mut next = 0;
    for wanted in pattern.children() {
        // Greedy: the earliest matching child leaves the most room for the following
        // pattern children, so it finds an embedding whenever one exists.
        let mut first_near_miss: Option<Diff> = None;
        let mut found = None;
        for (offset, candidate) in candidates.iter().enumerate().skip(next) {
            let len = path.len();
            path.push_str(&format!("/{}[{}]", candidate.name(), offset + 1));
            let result = subset(wanted, candidate, path);
            path.truncate(len);
            match result {
                Ok(()) => {
                    found = Some(offset);
                    break;
                }
                Err(diff) => {
                    let same_kind =
                        candidate.name() == wanted.name() && candidate.ns() == wanted.ns();
                    if same_kind && first_near_miss.is_none() {
                        first_near_miss = Some(diff);
                    }
                }
            }
        }
        match found {
            Some(offset) => next = offset + 1,
            None => {
                // Report inside the first candidate of the right name and namespace: that is
                // most often the element the pattern was written for.
                return Err(first_near_miss.unwrap_or_else(|| {
                    let after = if next == 0 {
                        String::new()
                    } else {
                        format!(" after child {next}")
                    };
                    (
                        path.clone(),
                        format!(
                            "missing child <{} xmlns='{}'>{after}",
                            wanted.name(),
                            wanted.ns()
                        ),
                    )
                }));
            }
        }
    }
    Ok(())
}

/// Pretty-prints an element: indented by two spaces, one element per line, the namespace
/// declared where it changes, attributes sorted. Text-only elements stay on one line;
/// whitespace-only text is left out.
///
/// ```
/// let el = exampple_core::xml::parse(
///     "<iq type='result' id='1'><query xmlns='urn:x'><item name='a'>text</item><empty/></query></iq>",
/// ).unwrap();
/// assert_eq!(
///     exampple_core::matching::pretty(&el),
///     "<iq xmlns='jabber:component:accept' id='1' type='result'>\n  <query xmlns='urn:x'>\n    <item name='a'>text</item>\n    <empty/>\n  </query>\n</iq>"
/// );
/// ```
pub fn pretty(element: &Element) -> String {
    let mut out = String::new();
    pretty_into(element, None, 0, &mut out);
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn pretty_into(element: &Element, parent_ns: Option<&str>, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let element_ns = element.ns();
    out.push_str(&indent);
    out.push('<');
    out.push_str(element.name());
    if parent_ns != Some(element_ns.as_str()) {
        out.push_str(&format!(" xmlns='{}'", crate::xml::escape(&element_ns)));
    }
    for (name, value) in attributes(element) {
        out.push_str(&format!(" {name}='{}'", crate::xml::escape(value)));
    }
    let nodes: Vec<&Node> = element
        .nodes()
        .filter(|n| !matches!(n, Node::Text(t) if is_blank(t)))
        .collect();
    if nodes.is_empty() {
        out.push_str("/>\n");
        return;
    }
    let only_text = nodes.iter().all(|n| matches!(n, Node::Text(_)));
    if only_text {
        out.push('>');
        for node in nodes {
            if let Node::Text(text) = node {
                out.push_str(&crate::xml::escape(text));
            }
        }
        out.push_str(&format!("</{}>\n", element.name()));
        return;
    }
    out.push_str(">\n");
    for node in nodes {
        match node {
            Node::Element(child) => pretty_into(child, Some(&element_ns), depth + 1, out),
            Node::Text(text) => {
                out.push_str(&"  ".repeat(depth + 1));
                out.push_str(&crate::xml::escape(text));
                out.push('\n');
            }
        }
    }
    out.push_str(&indent);
    out.push_str(&format!("</{}>\n", element.name()));
}
