//! `xml!`: the element a template builds is the element `xml::parse` gives for the same
//! template with the values escaped, and values are data: any string round-trips through
//! writing and parsing, and never adds markup.

use exampple_core::{Element, ns, xml};
use proptest::prelude::*;

/// Writes and parses back.
fn round_trip(el: &Element) -> Element {
    let text = xml::to_string(el);
    assert!(!text.is_empty(), "could not write {el:?}");
    xml::parse(&text).unwrap()
}

#[test]
fn constant_templates_equal_the_parser() {
    let cases: Vec<(Element, &str)> = vec![
        (xml!("<presence/>"), "<presence/>"),
        (
            xml!("<iq type='get' id=\"1\"><ping xmlns='urn:xmpp:ping'/></iq>"),
            "<iq type='get' id=\"1\"><ping xmlns='urn:xmpp:ping'/></iq>",
        ),
        (
            xml!(
                "  <message>\n  <body> a &amp; b &lt;&gt;&apos;&quot; &#233;&#x1D11E; </body>\n</message>\n"
            ),
            "  <message>\n  <body> a &amp; b &lt;&gt;&apos;&quot; &#233;&#x1D11E; </body>\n</message>\n",
        ),
        (
            xml!("<a xmlns='urn:a'><b><c xmlns=''/><d xmlns='urn:d'><e/></d></b></a>"),
            "<a xmlns='urn:a'><b><c xmlns=''/><d xmlns='urn:d'><e/></d></b></a>",
        ),
        (
            xml!(
                "<p:a xmlns:p='urn:p' xmlns='urn:x'><p:b p:at='1' xml:lang='en' at='2'><c/></p:b></p:a>"
            ),
            "<p:a xmlns:p='urn:p' xmlns='urn:x'><p:b p:at='1' xml:lang='en' at='2'><c/></p:b></p:a>",
        ),
        (
            xml!("<a>x<![CDATA[ <not> &amp; markup ]]>y</a>"),
            "<a>x<![CDATA[ <not> &amp; markup ]]>y</a>",
        ),
        (
            xml!("<a v='tab\tnl\ncrlf\r\nend' w='&#10;&#9;'>l1\r\nl2\rl3</a>"),
            "<a v='tab\tnl\ncrlf\r\nend' w='&#10;&#9;'>l1\r\nl2\rl3</a>",
        ),
        (xml!("<a>{{braces}}</a>"), "<a>{braces}</a>"),
        (xml!("<a b='{{x}}'/>"), "<a b='{x}'/>"),
        (xml!("<a >  </a >"), "<a >  </a >"),
        (xml!("<é-x.1 ü='v'/>"), "<é-x.1 ü='v'/>"),
    ];
    for (built, template) in cases {
        assert_eq!(built, xml::parse(template).unwrap(), "{template}");
    }
}

#[test]
fn values_equal_the_parser_of_the_escaped_template() {
    let v = "a<b>&c'd\"e]]>f";
    let n = 7;
    let built = xml!(
        "<message to='{v}' id='m{n}-{}'><body>x{v}y{n:>4}z</body>{:?}</message>",
        "p&",
        v
    );
    let e = xml::escape(v);
    let debug = xml::escape(&format!("{v:?}")).into_owned();
    let template =
        format!("<message to='{e}' id='m{n}-p&amp;'><body>x{e}y{n:>4}z</body>{debug}</message>");
    assert_eq!(built, xml::parse(&template).unwrap());
}

#[test]
fn a_value_cannot_add_markup() {
    let body = "a</body><injected/><body>";
    let el = xml!("<message><body>{}</body></message>", body);
    assert_eq!(el.children().count(), 1);
    let back = round_trip(&el);
    assert_eq!(back.children().count(), 1);
    assert_eq!(back.get_child("body", ns::COMPONENT).unwrap().text(), body);

    let id = "1' evil='yes";
    let el = xml!("<iq id='{id}'/>");
    let back = round_trip(&el);
    assert_eq!(back.attr("id"), Some(id));
    assert_eq!(back.attr("evil"), None);
}

#[test]
fn the_macro_has_its_documented_paths() {
    assert_eq!(
        exampple_core::xml::xml!("<a/>"),
        exampple_core::xml!("<a/>")
    );
}

#[test]
fn named_and_positional_arguments() {
    let el = xml!(
        "<a x='{1}{0}' y='{who}'>{0}{who}</a>",
        "zero",
        "one",
        who = "w"
    );
    assert_eq!(el.attr("x"), Some("onezero"));
    assert_eq!(el.attr("y"), Some("w"));
    assert_eq!(el.text(), "zerow");
}

#[test]
fn elements_in_child_position_are_children() {
    let one = xml!("<one xmlns='urn:x'/>");
    let el = xml!("<iq type='result'>{one}</iq>");
    assert_eq!(
        el,
        xml::parse("<iq type='result'><one xmlns='urn:x'/></iq>").unwrap()
    );

    let borrowed = xml!("<one/>");
    let el = xml!("<a>{}{}</a>", &borrowed, &borrowed);
    assert_eq!(el.children().count(), 2);
    assert_eq!(borrowed.name(), "one");

    let many = vec![xml!("<x/>"), xml!("<y/>")];
    let el = xml!("<a>{}</a>", &many);
    assert_eq!(el.children().count(), 2);
    let el = xml!("<a>t{many}t</a>");
    assert_eq!(el, xml::parse("<a>t<x/><y/>t</a>").unwrap());

    let some: Option<Element> = Some(xml!("<x/>"));
    let none: Option<Element> = None;
    let el = xml!("<a>{some}{none}</a>");
    assert_eq!(el, xml::parse("<a><x/></a>").unwrap());

    let el = xml!(
        "<a>{}</a>",
        ["p", "q"].iter().map(|n| xml!("<item name='{n}'/>"))
    );
    assert_eq!(
        el,
        xml::parse("<a><item name='p'/><item name='q'/></a>").unwrap()
    );

    // Text values are text, whatever they hold.
    let markup = String::from("<x/>");
    let el = xml!("<a>{}</a>", &markup);
    assert_eq!(el.children().count(), 0);
    assert_eq!(el.text(), "<x/>");
}

#[test]
fn a_runtime_default_namespace_is_inherited() {
    let namespace = "urn:runtime";
    let el = xml!("<query xmlns='{namespace}'><item/><other xmlns='urn:o'><x/></other></query>");
    let expected =
        xml::parse("<query xmlns='urn:runtime'><item/><other xmlns='urn:o'><x/></other></query>")
            .unwrap();
    assert_eq!(el, expected);
    assert_eq!(el.children().next().unwrap().ns(), namespace);
    let el = xml!("<p:q xmlns:p='urn:{namespace}' p:a='1'/>");
    assert_eq!(el.ns(), "urn:urn:runtime");
}

#[test]
fn display_errors_never_panic() {
    struct Failing;
    impl std::fmt::Display for Failing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("part")?;
            Err(std::fmt::Error)
        }
    }
    let el = xml!("<a b='{}'>{}</a>", Failing, Failing);
    assert_eq!(el.attr("b"), Some("part"));
}

#[test]
fn forbidden_characters_are_kept_and_refused_by_the_writer() {
    for bad in ["\u{0}", "a\u{1}b", "\u{FFFE}", "\u{FFFF}", "\u{1B}[0m"] {
        let el = xml!("<message id='{bad}'><body>{bad}</body></message>");
        let mut out = Vec::new();
        assert_eq!(
            xml::write_in(&el, "", &mut out),
            Err(xml::WriteError::InvalidChar)
        );
        assert!(out.is_empty());
        assert_eq!(xml::to_string(&el), "");
    }
}

/// XML 1.0's `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("]]>".to_string()),
        Just("a</body><injected/><body>".to_string()),
        Just("' x=\"y\" &amp; &lt; <![CDATA[".to_string()),
        Just("{}{{}}".to_string()),
        Just(" \t\r\n \r".to_string()),
        "\\PC*",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn any_string_round_trips(v in any_text(), w in any_text()) {
        let el = xml!("<message a='{v}' b=\"x{w}y\"><body>{v}</body><t>{w}-{v}</t></message>");
        let mut out = Vec::new();
        let writable = xml::write_in(&el, "", &mut out).is_ok();
        let carried = |s: &str| s.chars().all(is_xml_char);
        if carried(&v) && carried(&w) {
            prop_assert!(writable);
            let back = xml::parse(std::str::from_utf8(&out).unwrap()).unwrap();
            prop_assert_eq!(&back, &el);
            prop_assert_eq!(back.attr("a"), Some(v.as_str()));
            let b = format!("x{w}y");
            prop_assert_eq!(back.attr("b"), Some(b.as_str()));
            prop_assert_eq!(back.children().count(), 2);
            prop_assert_eq!(back.get_child("body", ns::COMPONENT).unwrap().text(), v.clone());
            prop_assert_eq!(back.get_child("t", ns::COMPONENT).unwrap().text(), format!("{w}-{v}"));
        } else {
            prop_assert!(!writable);
            prop_assert!(out.is_empty());
        }
    }
}
