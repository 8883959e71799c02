//! Stanza matchers: exact and subset comparison, mismatch paths, pretty-printing.

use exampple_core::matching::{Match, matches_exact, matches_subset, pretty};
use exampple_core::{Element, xml};

fn el(text: &str) -> Element {
    xml::parse(text).unwrap()
}

fn exact_err(expected: &str, actual: &str, trimmed: bool) -> String {
    matches_exact(&el(expected), &el(actual), trimmed)
        .unwrap_err()
        .summary()
}

fn subset_err(pattern: &str, actual: &str) -> String {
    matches_subset(&el(pattern), &el(actual))
        .unwrap_err()
        .summary()
}

const RESULT: &str = "<iq type='result' id='1' from='localhost' to='alice@localhost/r'>\
    <query xmlns='jabber:iq:roster' ver='3'>\
      <item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group></item>\
      <item jid='carol@localhost' subscription='to'/>\
    </query></iq>";

#[test]
fn exact_accepts_the_same_stanza_whatever_the_attribute_order() {
    let reordered = "<iq to='alice@localhost/r' from='localhost' id='1' type='result'>\
        <query ver='3' xmlns='jabber:iq:roster'>\
          <item subscription='both' name='Bob' jid='bob@localhost'><group>Friends</group></item>\
          <item subscription='to' jid='carol@localhost'/>\
        </query></iq>";
    matches_exact(&el(RESULT), &el(reordered), false).unwrap();
    matches_exact(&el(RESULT), &el(RESULT), true).unwrap();
    assert!(Match::Exact.is_match(&el(RESULT), &el(reordered)));
}

#[test]
fn exact_reports_attribute_differences_with_a_path() {
    let actual = RESULT.replace("type='result'", "type='error'");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq: attribute type: expected 'result', found 'error'"
    );
    let actual = RESULT.replace("ver='3'", "ver='4'");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq/query[1]: attribute ver: expected '3', found '4'"
    );
    let actual = RESULT.replace("carol@", "dave@");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq/query[1]/item[2]: attribute jid: expected 'carol@localhost', found 'dave@localhost'"
    );
    // The id counts.
    let actual = RESULT.replace("id='1'", "id='2'");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq: attribute id: expected '1', found '2'"
    );
    let actual = RESULT.replace(" id='1'", "");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq: missing attribute id='1'"
    );
    let actual = RESULT.replace("id='1'", "id='1' xml:lang='en'");
    assert_eq!(
        exact_err(RESULT, &actual, false),
        "/iq: unexpected attribute xml:lang='en'"
    );
}

#[test]
fn exact_reports_names_namespaces_text_and_children() {
    assert_eq!(
        exact_err("<iq/>", "<message/>", false),
        "/message: element name: expected <iq>, found <message>"
    );
    assert_eq!(
        exact_err("<iq><q xmlns='a'/></iq>", "<iq><q xmlns='b'/></iq>", false),
        "/iq/q[1]: namespace of <q>: expected 'a', found 'b'"
    );
    assert_eq!(
        exact_err(
            "<message><body>hi</body></message>",
            "<message><body>ho</body></message>",
            false
        ),
        "/message/body[1]: text: expected \"hi\", found \"ho\""
    );
    assert_eq!(
        exact_err("<iq><a/></iq>", "<iq><a/><b/></iq>", false),
        "/iq: unexpected <b xmlns='jabber:component:accept'>"
    );
    assert_eq!(
        exact_err("<iq><a/><b/></iq>", "<iq><a/></iq>", false),
        "/iq: missing <b xmlns='jabber:component:accept'>"
    );
    assert_eq!(
        exact_err("<iq><a/><b/></iq>", "<iq><b/><a/></iq>", false),
        "/iq/b[1]: element name: expected <a>, found <b>"
    );
    assert_eq!(
        exact_err("<m><body>x</body></m>", "<m>x</m>", false),
        "/m: content 1: expected <body xmlns='jabber:component:accept'>, found text \"x\""
    );
}

#[test]
fn exact_whitespace_counts_unless_trimmed() {
    let spaced = "<message>\n  <body>hi</body>\n</message>";
    let compact = "<message><body>hi</body></message>";
    assert_eq!(
        exact_err(spaced, compact, false),
        "/message: content 1: expected text \"\\n  \", found <body xmlns='jabber:component:accept'>"
    );
    matches_exact(&el(spaced), &el(compact), true).unwrap();
    matches_exact(&el(compact), &el(spaced), true).unwrap();
    assert!(Match::ExactTrimmed.is_match(&el(spaced), &el(compact)));
    // Text with content keeps its spaces, trimmed or not.
    assert_eq!(
        exact_err(
            "<message><body>hi</body></message>",
            "<message><body> hi </body></message>",
            true
        ),
        "/message/body[1]: text: expected \"hi\", found \" hi \""
    );
}

#[test]
fn subset_ignores_extra_attributes_and_children() {
    let pattern = "<iq type='result'><query xmlns='jabber:iq:roster'>\
        <item jid='carol@localhost'/></query></iq>";
    matches_subset(&el(pattern), &el(RESULT)).unwrap();
    // A pattern with whitespace between elements still matches.
    let pattern = "<iq type='result'>\n  <query xmlns='jabber:iq:roster'>\n    <item jid='bob@localhost'>\n      <group>Friends</group>\n    </item>\n  </query>\n</iq>";
    matches_subset(&el(pattern), &el(RESULT)).unwrap();
    // The bare element matches any iq.
    matches_subset(&el("<iq/>"), &el(RESULT)).unwrap();
    assert!(Match::Subset.is_match(&el("<iq/>"), &el(RESULT)));
}

#[test]
fn subset_children_match_in_order() {
    let actual = "<x><a n='1'/><b/><a n='2'/><c/></x>";
    matches_subset(&el("<x><a/><a/></x>"), &el(actual)).unwrap();
    matches_subset(&el("<x><b/><a n='2'/><c/></x>"), &el(actual)).unwrap();
    // A greedy match on the first `a` still leaves the second for `a n='2'`.
    matches_subset(&el("<x><a/><a n='2'/></x>"), &el(actual)).unwrap();
    assert_eq!(
        subset_err("<x><c/><b/></x>", actual),
        "/x: missing child <b xmlns='jabber:component:accept'> after child 4"
    );
    assert_eq!(
        subset_err("<x><a/><a/><a/></x>", actual),
        "/x: missing child <a xmlns='jabber:component:accept'> after child 3"
    );
    assert_eq!(
        subset_err("<x><d/></x>", actual),
        "/x: missing child <d xmlns='jabber:component:accept'>"
    );
}

#[test]
fn subset_reports_inside_the_nearest_candidate() {
    let pattern = "<iq><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Robert'/></query></iq>";
    assert_eq!(
        subset_err(pattern, RESULT),
        "/iq/query[1]/item[1]: attribute name: expected 'Robert', found 'Bob'"
    );
    assert_eq!(
        subset_err("<iq type='get'/>", RESULT),
        "/iq: attribute type: expected 'get', found 'result'"
    );
    assert_eq!(
        subset_err("<iq><query xmlns='urn:other'/></iq>", RESULT),
        "/iq: missing child <query xmlns='urn:other'>"
    );
    assert_eq!(
        subset_err("<iq x='1'/>", RESULT),
        "/iq: missing attribute x='1'"
    );
}

#[test]
fn subset_text_only_when_the_pattern_has_some() {
    let actual = "<message type='chat'><body>hello</body></message>";
    matches_subset(&el("<message><body/></message>"), &el(actual)).unwrap();
    matches_subset(&el("<message><body>  </body></message>"), &el(actual)).unwrap();
    matches_subset(&el("<message><body>hello</body></message>"), &el(actual)).unwrap();
    assert_eq!(
        subset_err("<message><body>bye</body></message>", actual),
        "/message/body[1]: text: expected \"bye\", found \"hello\""
    );
}

#[test]
fn mismatch_display_pretty_prints_both_stanzas() {
    let err = matches_exact(
        &el("<iq type='result' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
        &el("<iq type='error' id='1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        false,
    )
    .unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown,
        "/iq: attribute type: expected 'result', found 'error'
expected:
  <iq xmlns='jabber:component:accept' id='1' type='result'>
    <ping xmlns='urn:xmpp:ping'/>
  </iq>
actual:
  <iq xmlns='jabber:component:accept' id='1' type='error'>
    <error type='cancel'>
      <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    </error>
  </iq>
"
    );
}

#[test]
fn pretty_escapes_and_handles_mixed_content() {
    let e = el("<message to='a&amp;b'><body>1 &lt; 2</body><x xmlns='urn:x'>a<y/>b</x></message>");
    assert_eq!(
        pretty(&e),
        "<message xmlns='jabber:component:accept' to='a&amp;b'>
  <body>1 &lt; 2</body>
  <x xmlns='urn:x'>
    a
    <y/>
    b
  </x>
</message>"
    );
    // The pretty form parses back to the same element, modulo whitespace.
    let back = el(&pretty(&el(RESULT)));
    matches_exact(&el(RESULT), &back, true).unwrap();
}
