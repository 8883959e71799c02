//! The `xml!` template parser (the macro crate's `template` module, included here as plain
//! code) against `xml::parse`: on templates without placeholders, what the parser accepts the
//! runtime parser accepts too, and both give the same element.

#[path = "../../macros/src/template.rs"]
#[allow(dead_code)]
mod template;

use exampple_core::{Element, ns, xml};
use proptest::prelude::*;
use template::{Content, Ns, Piece};

/// The element a template without placeholders builds (what the generated code does).
fn build(el: &template::Element) -> Element {
    let ns_of = |ns: &Ns| match ns {
        Ns::Component => ns::COMPONENT.to_string(),
        Ns::Const(s) => s.clone(),
        Ns::Dynamic(_) => unreachable!("no placeholders here"),
    };
    let text = |pieces: &[Piece]| {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.as_str(),
                Piece::Hole(_) => unreachable!("no placeholders here"),
            })
            .collect::<String>()
    };
    let mut out = Element::bare(el.name.clone(), ns_of(&el.ns));
    for attr in &el.attrs {
        let name = rxml::NcName::try_from(attr.name.as_str()).unwrap();
        let ns = match &attr.ns {
            None => rxml::Namespace::NONE,
            Some(ns) if ns_of(ns) == ns::XML => rxml::Namespace::xml().clone(),
            Some(ns) => rxml::Namespace::from(ns_of(ns)),
        };
        out.attrs_mut().insert(ns, name, text(&attr.value));
    }
    for child in &el.children {
        match child {
            Content::Text(t) => out.append_text(t.clone()),
            Content::Element(e) => {
                out.append_child(build(e));
            }
            Content::Hole(_) => unreachable!("no placeholders here"),
        }
    }
    out
}

/// Pieces of XML, well-formed or not, to be shuffled into templates.
const TOKENS: &[&str] = &[
    "<a",
    "<b",
    "<p:a",
    "<q:b",
    ">",
    "/>",
    "</a>",
    "</b>",
    "</p:a>",
    "</q:b>",
    " ",
    "\n",
    "\r\n",
    "\t",
    " x='1'",
    " x=\"2\"",
    " y='a&amp;b'",
    " p:x='3'",
    " xml:lang='en'",
    " xmlns='urn:d'",
    " xmlns=''",
    " xmlns:p='urn:p'",
    " xmlns:q='urn:q'",
    "text",
    "é𝄞",
    "&amp;",
    "&lt;",
    "&gt;",
    "&apos;",
    "&quot;",
    "&#233;",
    "&#x1D11E;",
    "&#0;",
    "&nbsp;",
    "&",
    "<",
    "]]>",
    "]]",
    "<![CDATA[",
    "<![CDATA[x]]>",
    "<!-- c -->",
    "<?pi?>",
    "<!DOCTYPE a>",
    "'",
    "\"",
    "=",
    "{{",
    "}}",
    "x='\n'",
    "\u{1}",
    "\u{FFFE}",
];

fn soup() -> impl Strategy<Value = String> {
    let tokens = || proptest::collection::vec(proptest::sample::select(TOKENS), 0..10);
    prop_oneof![
        tokens().prop_map(|t| t.concat()),
        // Inside an element, so that more of them are well-formed.
        tokens().prop_map(|t| format!("<a>{}</a>", t.concat())),
        tokens().prop_map(|t| format!("<a xmlns:p='urn:p'{}</a>", t.concat())),
    ]
}

/// The runtime parser's input for a template: `{{` and `}}` are literal braces.
fn formatted(template: &str) -> String {
    template.replace("{{", "{").replace("}}", "}")
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Cdata(String),
    El(Box<El>),
}

#[derive(Debug, Clone)]
struct El {
    name: &'static str,
    decl: Option<&'static str>,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
}

fn text() -> impl Strategy<Value = String> {
    "[a-z <>&'\"{}\\]\t\né]{0,8}"
}

fn el() -> impl Strategy<Value = El> {
    let leaf = (
        proptest::sample::select(&["a", "b", "p:c", "é"][..]),
        proptest::option::of(proptest::sample::select(
            &[" xmlns='urn:x'", " xmlns=''", " xmlns:p='urn:p'"][..],
        )),
        proptest::collection::vec(
            (
                proptest::sample::select(&["x", "y", "xml:lang", "p:z"][..]),
                text(),
            ),
            0..3,
        ),
    )
        .prop_map(|(name, decl, attrs)| El {
            name,
            decl,
            attrs,
            children: Vec::new(),
        });
    let leaf = leaf.boxed();
    let parent = leaf.clone();
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (
            parent.clone(),
            proptest::collection::vec(
                prop_oneof![
                    text().prop_map(Node::Text),
                    "[a-z<>&{} ]{0,5}".prop_map(Node::Cdata),
                    inner.prop_map(|e| Node::El(Box::new(e))),
                ],
                0..4,
            ),
        )
            .prop_map(|(mut e, children)| {
                e.children = children;
                e
            })
    })
}

/// Writes `el` as a template (braces doubled), declaring `p` where it is used.
fn write(el: &El, out: &mut String, p_declared: bool) {
    let mut p = p_declared || el.decl == Some(" xmlns:p='urn:p'");
    let needs_p = el.name.starts_with("p:") || el.attrs.iter().any(|(n, _)| n.starts_with("p:"));
    out.push('<');
    out.push_str(el.name);
    if let Some(d) = el.decl {
        out.push_str(d);
    }
    if needs_p && !p {
        out.push_str(" xmlns:p='urn:p'");
        p = true;
    }
    let mut seen = Vec::new();
    for (name, value) in &el.attrs {
        if seen.contains(name) {
            continue;
        }
        seen.push(*name);
        out.push_str(&format!(" {name}='{}'", braces(&xml::escape(value))));
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &el.children {
        match child {
            Node::Text(t) => out.push_str(&braces(&xml::escape(t))),
            Node::Cdata(t) => out.push_str(&format!("<![CDATA[{}]]>", braces(t))),
            Node::El(e) => write(e, out, p),
        }
    }
    out.push_str(&format!("</{}>", el.name));
}

fn braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Well-formed templates: both parsers give the same element.
    #[test]
    fn well_formed_templates_agree(el in el()) {
        let mut t = String::new();
        write(&el, &mut t, false);
        let ours = template::parse(&t).map_err(|e| e.describe(&t));
        prop_assert!(ours.is_ok(), "{t}: {ours:?}");
        let expected = xml::parse(&formatted(&t));
        prop_assert!(expected.is_ok(), "{t}: {expected:?}");
        prop_assert_eq!(build(&ours.unwrap()), expected.unwrap(), "{}", t);
    }

    /// Any string: what the template parser accepts, the runtime parser accepts, and the
    /// elements are equal.
    #[test]
    fn accepted_templates_parse_the_same(t in soup()) {
        if let Ok(ours) = template::parse(&t) {
            let expected = xml::parse(&formatted(&t));
            prop_assert!(expected.is_ok(), "{t:?} accepted by xml! but not by xml::parse: {expected:?}");
            prop_assert_eq!(build(&ours), expected.unwrap(), "{:?}", t);
        }
    }
}

#[test]
fn the_soup_finds_templates_both_accept() {
    // Keeps the property above from passing vacuously.
    for t in [
        "<a/>",
        "<a x='1'>text</a>",
        "<p:a xmlns:p='urn:p'/>",
        "\n<a>&amp;<![CDATA[x]]></a>",
    ] {
        assert!(template::parse(t).is_ok(), "{t}");
    }
}
