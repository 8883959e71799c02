//! XEP-0004 data forms at the wire level: XML in, XML out.

use std::sync::LazyLock;

use exampple_core::forms::{
    FORM_TYPE, Field, FieldType, FieldValue, Form, FormError, FormSpec, FormType, NS_DATA_FORMS,
    ValidationCode,
};
use minidom::{Element, Node};
use proptest::prelude::*;

/// Parses XML and drops the whitespace-only text nodes of pretty-printed
/// examples.
fn xml(text: &str) -> Element {
    let mut element: Element = text.trim().parse().expect("test XML must parse");
    strip_whitespace(&mut element);
    element
}

fn strip_whitespace(element: &mut Element) {
    let nodes = element.take_nodes();
    for node in nodes {
        match node {
            Node::Text(text) if text.trim().is_empty() => {}
            Node::Element(mut child) => {
                strip_whitespace(&mut child);
                element.append_child(child);
            }
            other => element.append_node(other),
        }
    }
}

/// The `<x xmlns='jabber:x:data'/>` inside an example stanza (XEP examples
/// show stanzas outside their stream: give the `<iq/>` its namespace).
fn data_form_in(stanza: &str) -> Element {
    let stanza = stanza.replacen("<iq ", "<iq xmlns='jabber:client' ", 1);
    fn find(element: &Element) -> Option<Element> {
        if element.is("x", NS_DATA_FORMS) {
            return Some(element.clone());
        }
        element.children().find_map(find)
    }
    find(&xml(&stanza)).expect("the example holds a data form")
}

fn to_xml(element: &Element) -> String {
    String::from(element)
}

// ---------------------------------------------------------------------------
// exampple's Form01

static FORM01: LazyLock<FormSpec> = LazyLock::new(|| {
    FormSpec::new("urn:xmpp:mydata")
        .title("Personal Details")
        .instructions("Fill the whole form, please.")
        .field(Field::text_single("name").required().label("Name"))
        .field(Field::text_single("surname").label("Surname"))
        .field(
            Field::list_single("gender")
                .label("Gender")
                .option("Male", "M")
                .option("Female", "F"),
        )
});

/// exampple's expected string, as minidom writes it: `xmlns` first, the
/// other attributes sorted, single quotes.
const FORM01_NEW: &str = "<x xmlns='jabber:x:data' type='form'>\
    <title>Personal Details</title>\
    <instructions>Fill the whole form, please.</instructions>\
    <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
    <field label='Name' type='text-single' var='name'><required/></field>\
    <field label='Surname' type='text-single' var='surname'/>\
    <field label='Gender' type='list-single' var='gender'>\
    <option label='Male'><value>M</value></option>\
    <option label='Female'><value>F</value></option></field></x>";

#[test]
fn form01_new_renders_exactly_like_exampple() {
    let form = FORM01.new_form();
    assert_eq!(form.form_type(), FormType::Form);
    assert_eq!(form.to_string(), FORM01_NEW);
    assert_eq!(to_xml(&form.to_element()), FORM01_NEW);
    assert_eq!(Element::from(&form), xml(FORM01_NEW));
}

#[test]
fn form01_cast_fills_declared_fields_only() {
    let mut form = FORM01.new_form();
    form.cast([
        ("name", "Manuel"),
        ("surname", "Rubio"),
        ("gender", "M"),
        ("age", "41"),
    ]);
    assert_eq!(
        form.to_string(),
        "<x xmlns='jabber:x:data' type='form'>\
         <title>Personal Details</title>\
         <instructions>Fill the whole form, please.</instructions>\
         <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
         <field label='Name' type='text-single' var='name'><required/><value>Manuel</value></field>\
         <field label='Surname' type='text-single' var='surname'><value>Rubio</value></field>\
         <field label='Gender' type='list-single' var='gender'><value>M</value>\
         <option label='Male'><value>M</value></option>\
         <option label='Female'><value>F</value></option></field></x>"
    );
    assert_eq!(form.value("age"), None);
    assert!(form.unknown_fields().is_empty());
    assert!(form.validate());
}

#[test]
fn form01_controller_flow_parse_validate_error_text() {
    let received = xml("<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
         <field var='surname'><value>Rubio</value></field>\
         <field var='gender'><value>X</value></field></x>");
    let mut form = FORM01.parse(&received).unwrap();
    assert!(form.is_valid(), "parse only checks FORM_TYPE");
    assert!(!form.validate());
    let errors: Vec<_> = form
        .errors()
        .iter()
        .map(|e| (e.var.as_str(), e.code, e.text.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("name", ValidationCode::Required, "name is required"),
            (
                "gender",
                ValidationCode::InvalidOption,
                "gender use invalid option `X`"
            ),
        ]
    );
    assert_eq!(
        form.error_text(),
        "name: name is required; gender: gender use invalid option `X`"
    );
    assert_eq!(form.errors()[0].to_string(), "name: name is required");
    assert_eq!(ValidationCode::InvalidOption.as_str(), "invalid-option");
}

#[test]
fn form01_new_with_and_submit_as_in_the_readme() {
    let data = [("name", "Manuel"), ("surname", "Rubio"), ("gender", "M")];
    let mut form = FORM01.new_with(FormType::Form, data);
    assert!(form.validate());

    let mut submitted = FORM01.new_form();
    assert_eq!(submitted.submit(data), Ok(true));
    assert_eq!(submitted.form_type(), FormType::Submit);
    assert_eq!(
        submitted.to_string(),
        "<x xmlns='jabber:x:data' type='submit'>\
         <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
         <field type='text-single' var='name'><value>Manuel</value></field>\
         <field type='text-single' var='surname'><value>Rubio</value></field>\
         <field type='list-single' var='gender'><value>M</value></field></x>"
    );
}

#[test]
fn a_form_goes_straight_into_a_payload() {
    let form = FORM01.new_form();
    let query = Element::builder("query", "urn:mydata")
        .append(&form)
        .build();
    assert_eq!(
        to_xml(&query),
        format!("<query xmlns='urn:mydata'>{FORM01_NEW}</query>")
    );
}

#[test]
fn specs_are_cheap_to_share_between_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<FormSpec>();
    assert_send_sync::<Form>();
    let spec = FORM01.clone();
    let rendered = std::thread::spawn(move || spec.new_form().to_string())
        .join()
        .unwrap();
    assert_eq!(rendered, FORM01_NEW);
}

// ---------------------------------------------------------------------------
// XEP-0128 discovery extension

#[test]
fn result_form_for_a_discovery_extension() {
    let form = FormSpec::new("urn:example:showcase")
        .field(Field::text_single("max-file-size"))
        .new_with(FormType::Result, [("max-file-size", "1048576")]);
    assert_eq!(
        form.to_string(),
        "<x xmlns='jabber:x:data' type='result'>\
         <field type='hidden' var='FORM_TYPE'><value>urn:example:showcase</value></field>\
         <field type='text-single' var='max-file-size'><value>1048576</value></field></x>"
    );
    assert_eq!(
        form.to_element(),
        xml("<x xmlns='jabber:x:data' type='result'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:example:showcase</value></field>\
             <field var='max-file-size' type='text-single'><value>1048576</value></field></x>")
    );
}

#[test]
fn field_values_convert_from_rust_values() {
    let spec = FormSpec::new("urn:example:values")
        .field(Field::text_single("size"))
        .field(Field::boolean("on"))
        .field(Field::boolean("off"))
        .field(Field::jid_single("owner"))
        .field(Field::jid_multi("admins"))
        .field(Field::text_multi("lines"));
    let owner: jid::Jid = "juliet@capulet.com".parse().unwrap();
    let admins: Vec<jid::Jid> = vec![owner.clone(), "romeo@montague.net".parse().unwrap()];
    let form = spec.new_with(
        FormType::Result,
        [
            ("size", FieldValue::from(1_048_576_u64)),
            ("on", FieldValue::from(true)),
            ("off", FieldValue::from(false)),
            ("owner", FieldValue::from(&owner)),
            ("admins", FieldValue::from(admins.clone())),
            ("lines", FieldValue::from(["a", "b"])),
        ],
    );
    assert_eq!(form.value("size"), Some("1048576"));
    assert_eq!(form.value("on"), Some("1"));
    assert_eq!(form.value("off"), Some("0"));
    assert_eq!(form.jid("owner"), Some(owner));
    assert_eq!(form.jids("admins"), Some(admins));
    assert_eq!(form.text("lines").as_deref(), Some("a\nb"));
}

// ---------------------------------------------------------------------------
// XEP-0004 §6 examples

const EXAMPLE_2: &str = r#"
<iq from='joogle@botster.shakespeare.lit'
    to='romeo@montague.net/home'
    type='result'
    xml:lang='en'
    id='create1'>
  <command xmlns='http://jabber.org/protocol/commands'
           node='create'
           sessionid='create:20040408T0128Z'
           status='executing'>
    <x xmlns='jabber:x:data' type='form'>
      <title>Bot Configuration</title>
      <instructions>Fill out this form to configure your new bot!</instructions>
      <field type='hidden'
             var='FORM_TYPE'>
        <value>jabber:bot</value>
      </field>
      <field type='fixed'><value>Section 1: Bot Info</value></field>
      <field type='text-single'
             label='The name of your bot'
             var='botname'/>
      <field type='text-multi'
             label='Helpful description of your bot'
             var='description'/>
      <field type='boolean'
             label='Public bot?'
             var='public'>
        <required/>
      </field>
      <field type='text-private'
             label='Password for special access'
             var='password'/>
      <field type='fixed'><value>Section 2: Features</value></field>
      <field type='list-multi'
             label='What features will the bot support?'
             var='features'>
        <option label='Contests'><value>contests</value></option>
        <option label='News'><value>news</value></option>
        <option label='Polls'><value>polls</value></option>
        <option label='Reminders'><value>reminders</value></option>
        <option label='Search'><value>search</value></option>
        <value>news</value>
        <value>search</value>
      </field>
      <field type='fixed'><value>Section 3: Subscriber List</value></field>
      <field type='list-single'
             label='Maximum number of subscribers'
             var='maxsubs'>
        <value>20</value>
        <option label='10'><value>10</value></option>
        <option label='20'><value>20</value></option>
        <option label='30'><value>30</value></option>
        <option label='50'><value>50</value></option>
        <option label='100'><value>100</value></option>
        <option label='None'><value>none</value></option>
      </field>
      <field type='fixed'><value>Section 4: Invitations</value></field>
      <field type='jid-multi'
             label='People to invite'
             var='invitelist'>
        <desc>Tell all your friends about your new bot!</desc>
      </field>
    </x>
  </command>
</iq>"#;

const EXAMPLE_3: &str = r#"
<iq from='romeo@montague.net/home'
    to='joogle@botster.shakespeare.lit'
    type='set'
    xml:lang='en'
    id='create2'>
  <command xmlns='http://jabber.org/protocol/commands'
           node='create'
           sessionid='create:20040408T0128Z'>
    <x xmlns='jabber:x:data' type='submit'>
      <field type='hidden' var='FORM_TYPE'>
        <value>jabber:bot</value>
      </field>
      <field type='text-single' var='botname'>
        <value>The Jabber Google Bot</value>
      </field>
      <field type='text-multi' var='description'>
        <value>This bot enables you to send requests to</value>
        <value>Google and receive the search results right</value>
        <value>in your Jabber client. It&apos; really cool!</value>
        <value>It even supports Google News!</value>
      </field>
      <field type='boolean' var='public'>
        <value>0</value>
      </field>
      <field type='text-private' var='password'>
        <value>v3r0na</value>
      </field>
      <field type='list-multi' var='features'>
        <value>news</value>
        <value>search</value>
      </field>
      <field type='list-single' var='maxsubs'>
        <value>50</value>
      </field>
      <field type='jid-multi' var='invitelist'>
        <value>juliet@capulet.com</value>
        <value>benvolio@montague.net</value>
      </field>
    </x>
  </command>
</iq>"#;

const EXAMPLE_4: &str = r#"
<iq from='joogle@botster.shakespeare.lit'
    to='romeo@montague.net/home'
    type='result'
    xml:lang='en'
    id='create2'>
  <command xmlns='http://jabber.org/protocol/commands'
           node='create'
           sessionid='create:20040408T0128Z'
           status='completed'>
    <x xmlns='jabber:x:data' type='result'>
      <field type='hidden' var='FORM_TYPE'>
        <value>jabber:bot</value>
      </field>
      <field type='text-single' var='botname'>
        <value>The Jabber Google Bot</value>
      </field>
      <field type='boolean' var='public'>
        <value>0</value>
      </field>
      <field type='text-private' var='password'>
        <value>v3r0na</value>
      </field>
      <field type='list-multi' var='features'>
        <value>news</value>
        <value>search</value>
      </field>
      <field type='list-single' var='maxsubs'>
        <value>50</value>
      </field>
      <field type='jid-multi' var='invitelist'>
        <value>juliet@capulet.com</value>
        <value>benvolio@montague.net</value>
      </field>
    </x>
  </command>
</iq>"#;

const EXAMPLE_6: &str = r#"
<iq from='joogle@botster.shakespeare.lit'
    to='juliet@capulet.com/chamber'
    type='result'
    xml:lang='en'
    id='search1'>
  <command xmlns='http://jabber.org/protocol/commands'
           node='search'
           status='executing'>
    <x xmlns='jabber:x:data' type='form'>
      <title>Joogle Search</title>
      <instructions>Fill out this form to search for information!</instructions>
      <field type='text-single'
             var='search_request'>
        <required/>
      </field>
    </x>
  </command>
</iq>"#;

const EXAMPLE_8: &str = r#"
<iq from='joogle@botster.shakespeare.lit'
    to='juliet@capulet.com/chamber'
    type='result'
    xml:lang='en'
    id='search2'>
  <command xmlns='http://jabber.org/protocol/commands'
           node='search'
           status='completed'>
    <x xmlns='jabber:x:data' type='result'>
      <title>Joogle Search: verona</title>
      <reported>
        <field var='name'/>
        <field var='url'/>
      </reported>
      <item>
        <field var='name'>
          <value>Comune di Verona - Benvenuti nel sito ufficiale</value>
        </field>
        <field var='url'>
          <value>http://www.comune.verona.it/</value>
        </field>
      </item>
      <item>
        <field var='name'>
          <value>benvenuto!</value>
        </field>
        <field var='url'>
          <value>http://www.hellasverona.it/</value>
        </field>
      </item>
    </x>
  </command>
</iq>"#;

static BOT: LazyLock<FormSpec> = LazyLock::new(|| {
    FormSpec::new("jabber:bot")
        .title("Bot Configuration")
        .instructions("Fill out this form to configure your new bot!")
        .field(Field::fixed_text("Section 1: Bot Info"))
        .field(Field::text_single("botname").label("The name of your bot"))
        .field(Field::text_multi("description").label("Helpful description of your bot"))
        .field(Field::boolean("public").label("Public bot?").required())
        .field(Field::text_private("password").label("Password for special access"))
        .field(Field::fixed_text("Section 2: Features"))
        .field(
            Field::list_multi("features")
                .label("What features will the bot support?")
                .option("Contests", "contests")
                .option("News", "news")
                .option("Polls", "polls")
                .option("Reminders", "reminders")
                .option("Search", "search")
                .default_value("news")
                .default_value("search"),
        )
        .field(Field::fixed_text("Section 3: Subscriber List"))
        .field(
            Field::list_single("maxsubs")
                .label("Maximum number of subscribers")
                .default_value("20")
                .option("10", "10")
                .option("20", "20")
                .option("30", "30")
                .option("50", "50")
                .option("100", "100")
                .option("None", "none"),
        )
        .field(Field::fixed_text("Section 4: Invitations"))
        .field(
            Field::jid_multi("invitelist")
                .label("People to invite")
                .desc("Tell all your friends about your new bot!"),
        )
});

/// XEP-0004's schema orders a field's children `desc, required, value*,
/// option*`, which is how forms are rendered; Example 2 lists the options of
/// `features` before its values. Put values first everywhere to compare.
fn values_before_options(mut element: Element) -> Element {
    let nodes = element.take_nodes();
    let (options, others): (Vec<Node>, Vec<Node>) = nodes
        .into_iter()
        .map(|node| match node {
            Node::Element(child) => Node::Element(values_before_options(child)),
            other => other,
        })
        .partition(|node| matches!(node, Node::Element(e) if e.name() == "option"));
    for node in others.into_iter().chain(options) {
        element.append_node(node);
    }
    element
}

#[test]
fn xep0004_example_2_bot_configuration_form_is_rendered() {
    let form = BOT.new_form();
    assert_eq!(
        values_before_options(form.to_element()),
        values_before_options(data_form_in(EXAMPLE_2))
    );
}

#[test]
fn xep0004_example_2_parsed_as_a_received_form() {
    let form = BOT.parse(&data_form_in(EXAMPLE_2)).unwrap();
    assert_eq!(form.form_type(), FormType::Form);
    assert!(form.is_valid());
    assert_eq!(form.values("features"), ["news", "search"]);
    assert_eq!(form.value("maxsubs"), Some("20"));
    assert_eq!(form.values("botname"), [] as [&str; 0]);
    assert_eq!(form.value("FORM_TYPE"), Some("jabber:bot"));
    assert!(form.unknown_fields().is_empty());
    // The client side answers it: form -> submit.
    let mut answer = form;
    assert_eq!(
        answer.submit([
            ("botname", FieldValue::from("The Jabber Google Bot")),
            ("public", FieldValue::from(false)),
        ]),
        Ok(true)
    );
    assert_eq!(answer.form_type(), FormType::Submit);
}

#[test]
fn xep0004_example_3_submission_is_parsed_and_validated() {
    let mut form = BOT.parse(&data_form_in(EXAMPLE_3)).unwrap();
    assert_eq!(form.form_type(), FormType::Submit);
    assert!(form.validate(), "{}", form.error_text());
    assert_eq!(form.value("botname"), Some("The Jabber Google Bot"));
    assert_eq!(
        form.text("description").as_deref(),
        Some(
            "This bot enables you to send requests to\n\
             Google and receive the search results right\n\
             in your Jabber client. It' really cool!\n\
             It even supports Google News!"
        )
    );
    assert_eq!(form.bool("public"), Some(false));
    assert_eq!(form.value("password"), Some("v3r0na"));
    assert_eq!(form.values("features"), ["news", "search"]);
    assert_eq!(form.value("maxsubs"), Some("50"));
    let invited: Vec<String> = form
        .jids("invitelist")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(invited, ["juliet@capulet.com", "benvolio@montague.net"]);
}

#[test]
fn xep0004_example_3_submission_is_rendered() {
    let mut form = BOT.new_form();
    let valid = form.submit([
        ("botname", FieldValue::from("The Jabber Google Bot")),
        (
            "description",
            FieldValue::from(vec![
                "This bot enables you to send requests to",
                "Google and receive the search results right",
                "in your Jabber client. It' really cool!",
                "It even supports Google News!",
            ]),
        ),
        ("public", FieldValue::from(false)),
        ("password", FieldValue::from("v3r0na")),
        ("features", FieldValue::from(["news", "search"])),
        ("maxsubs", FieldValue::from(50)),
        (
            "invitelist",
            FieldValue::from(vec!["juliet@capulet.com", "benvolio@montague.net"]),
        ),
    ]);
    assert_eq!(valid, Ok(true));
    assert_eq!(form.to_element(), data_form_in(EXAMPLE_3));
    // and the parsed submission renders back the same
    let parsed = BOT.parse(&data_form_in(EXAMPLE_3)).unwrap();
    assert_eq!(parsed.to_element(), data_form_in(EXAMPLE_3));
}

#[test]
fn xep0004_example_4_result_is_rendered() {
    let form = BOT.new_with(
        FormType::Result,
        [
            ("botname", FieldValue::from("The Jabber Google Bot")),
            ("public", FieldValue::from("0")),
            ("password", FieldValue::from("v3r0na")),
            ("features", FieldValue::from(["news", "search"])),
            ("maxsubs", FieldValue::from("50")),
            (
                "invitelist",
                FieldValue::from(["juliet@capulet.com", "benvolio@montague.net"]),
            ),
        ],
    );
    let mut expected = form.to_element();
    // the result leaves out the description that got no value
    assert!(!to_xml(&expected).contains("description"));
    assert_eq!(expected, data_form_in(EXAMPLE_4));
    expected = BOT.parse(&data_form_in(EXAMPLE_4)).unwrap().to_element();
    assert_eq!(expected, data_form_in(EXAMPLE_4));
}

#[test]
fn xep0004_example_6_search_form_has_no_form_type() {
    let search = FormSpec::new("jabber:iq:search")
        .title("Joogle Search")
        .field(Field::text_single("search_request").required());
    let mut form = search.parse(&data_form_in(EXAMPLE_6)).unwrap();
    assert_eq!(form.form_type(), FormType::Form);
    assert_eq!(form.errors().len(), 1);
    assert_eq!(form.errors()[0].var, FORM_TYPE);
    assert_eq!(form.errors()[0].code, ValidationCode::FormTypeMissing);
    assert_eq!(
        form.error_text(),
        "FORM_TYPE: FORM_TYPE is missing and is required"
    );
    assert!(!form.validate());
    assert_eq!(
        form.error_text(),
        "FORM_TYPE: FORM_TYPE is missing and is required; \
         search_request: search_request is required"
    );
}

#[test]
fn xep0004_example_8_reported_and_items_are_ignored() {
    let search = FormSpec::new("jabber:iq:search").field(Field::text_single("name"));
    let form = search.parse(&data_form_in(EXAMPLE_8)).unwrap();
    assert_eq!(form.form_type(), FormType::Result);
    assert_eq!(form.value("name"), None);
    assert!(form.unknown_fields().is_empty());
}

// ---------------------------------------------------------------------------
// Rendering details

#[test]
fn desc_defaults_and_options_are_rendered_in_schema_order() {
    let spec = FormSpec::new("urn:example:render")
        .field(
            Field::list_multi("colours")
                .label("Colours")
                .desc("Pick some")
                .required()
                .option("Red", "r")
                .option("Blue", "b")
                .default_value("r")
                .default_value("b"),
        )
        .field(Field::text_single("plain").option("ignored", "x"));
    assert_eq!(
        spec.new_form().to_string(),
        "<x xmlns='jabber:x:data' type='form'>\
         <field type='hidden' var='FORM_TYPE'><value>urn:example:render</value></field>\
         <field label='Colours' type='list-multi' var='colours'>\
         <desc>Pick some</desc><required/><value>r</value><value>b</value>\
         <option label='Red'><value>r</value></option>\
         <option label='Blue'><value>b</value></option></field>\
         <field type='text-single' var='plain'/></x>"
    );
    // a value set to nothing hides the defaults
    let mut form = spec.new_form();
    form.set_values("colours", Vec::<String>::new());
    assert!(
        !form
            .to_string()
            .contains("<value>r</value><value>b</value>")
    );
}

#[test]
fn an_invalid_form_keeps_its_type_when_rendered() {
    let mut form = FORM01.new_with(FormType::Submit, [("gender", "X")]);
    assert!(!form.validate());
    assert!(
        form.to_string()
            .starts_with("<x xmlns='jabber:x:data' type='submit'>")
    );
}

#[test]
fn a_cancel_form_is_bare() {
    let form = FORM01.new_with(FormType::Cancel, [("name", "Manuel")]);
    assert_eq!(form.to_string(), "<x xmlns='jabber:x:data' type='cancel'/>");
    let parsed = FORM01
        .parse(&xml("<x xmlns='jabber:x:data' type='cancel'/>"))
        .unwrap();
    assert_eq!(parsed.form_type(), FormType::Cancel);
    assert!(parsed.is_valid(), "a cancel form carries no FORM_TYPE");
}

#[test]
fn characters_xml_cannot_carry_are_replaced_not_panicking() {
    let spec = FormSpec::new("urn:example:\u{0}").field(Field::text_single("t").label("a\u{1}b"));
    let form = spec.new_with(FormType::Form, [("t", "x\u{FFFE}y<&>'\"")]);
    let rendered = form.to_string();
    assert!(rendered.contains("<value>x\u{FFFD}y&lt;&amp;&gt;'\"</value>"));
    assert!(rendered.contains("label='a\u{FFFD}b'"));
    assert!(rendered.contains("<value>urn:example:\u{FFFD}</value>"));
}

#[test]
fn redeclaring_a_field_replaces_it_in_place_and_form_type_is_reserved() {
    let spec = FormSpec::new("urn:example:redeclare")
        .field(Field::text_single("a"))
        .field(Field::text_single("b"))
        .field(Field::boolean("a"))
        .field(Field::text_single(FORM_TYPE));
    let vars: Vec<_> = spec
        .fields()
        .iter()
        .map(|f| (f.var.as_deref(), f.field_type))
        .collect();
    assert_eq!(
        vars,
        [
            (Some(FORM_TYPE), FieldType::Hidden),
            (Some("a"), FieldType::Boolean),
            (Some("b"), FieldType::TextSingle),
        ]
    );
    assert_eq!(spec.namespace(), "urn:example:redeclare");
    assert_eq!(FORM01.get_title(), Some("Personal Details"));
    assert_eq!(FORM01.get_instructions(), ["Fill the whole form, please."]);
    assert_eq!(FORM01.get_field("gender").unwrap().options.len(), 2);
    assert!(FORM01.get_field("age").is_none());
}

// ---------------------------------------------------------------------------
// Round trips render -> parse -> validate, for every field type

fn one_field_spec(field: Field) -> FormSpec {
    FormSpec::new("urn:example:roundtrip").field(field)
}

#[test]
fn every_field_type_round_trips() {
    let cases: Vec<(Field, Vec<&str>)> = vec![
        (Field::boolean("f"), vec!["true"]),
        (Field::fixed("f"), vec!["Section 1"]),
        (Field::hidden("f"), vec!["one", "two"]),
        (
            Field::jid_multi("f"),
            vec!["juliet@capulet.com", "romeo@montague.net/orchard"],
        ),
        (Field::jid_single("f"), vec!["capulet.com"]),
        (
            Field::list_multi("f").option("A", "a").option("B", "b"),
            vec!["b", "a"],
        ),
        (Field::list_single("f").option("A", "a"), vec!["a"]),
        (Field::text_multi("f"), vec!["line 1", "", "  line 3  "]),
        (Field::text_private("f"), vec!["s3cr3t"]),
        (Field::text_single("f"), vec![" spaced & <escaped> "]),
    ];
    for (field, values) in cases {
        let field_type = field.field_type;
        let spec = one_field_spec(field.required());
        for form_type in [FormType::Form, FormType::Submit, FormType::Result] {
            let mut original = spec.new_form();
            original.set_form_type(form_type);
            original.set_values("f", values.iter().copied());
            assert!(
                original.validate(),
                "{field_type}: {}",
                original.error_text()
            );
            let wire = original.to_string();
            let mut parsed = spec.parse(&wire.parse().unwrap()).unwrap();
            assert_eq!(parsed.form_type(), form_type, "{wire}");
            assert_eq!(parsed.values("f"), values.as_slice(), "{wire}");
            assert!(parsed.validate(), "{field_type}: {}", parsed.error_text());
            assert_eq!(parsed, original, "{wire}");
        }
    }
}

proptest! {
    #[test]
    fn any_text_values_round_trip(values in prop::collection::vec("[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]*", 0..4)) {
        let spec = one_field_spec(Field::text_multi("f"));
        let form = spec.new_with(FormType::Submit, [("f", values.clone())]);
        let parsed = spec.parse(&form.to_string().parse().unwrap()).unwrap();
        prop_assert_eq!(parsed.values("f"), values.as_slice());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_values(value in any::<String>(), field_type in 0usize..10) {
        let types = [
            FieldType::Boolean, FieldType::Fixed, FieldType::Hidden, FieldType::JidMulti,
            FieldType::JidSingle, FieldType::ListMulti, FieldType::ListSingle,
            FieldType::TextMulti, FieldType::TextPrivate, FieldType::TextSingle,
        ];
        let spec = one_field_spec(Field::new("f", types[field_type]).option("A", "a"));
        let mut form = spec.new_with(FormType::Submit, [("f", value.as_str())]);
        form.validate();
        let _ = form.error_text();
        let wire = form.to_string();
        let mut parsed = spec.parse(&wire.parse().unwrap()).unwrap();
        parsed.validate();
    }
}

// ---------------------------------------------------------------------------
// Validation: every error

fn validation_spec() -> FormSpec {
    FormSpec::new("urn:example:validation")
        .field(Field::boolean("flag"))
        .field(Field::fixed("note"))
        .field(Field::hidden("secret"))
        .field(Field::jid_multi("friends"))
        .field(Field::jid_single("owner"))
        .field(
            Field::list_multi("tags")
                .option("Rust", "rust")
                .option("XMPP", "xmpp"),
        )
        .field(
            Field::list_single("gender")
                .option("Male", "M")
                .option("Female", "F"),
        )
        .field(Field::text_multi("bio"))
        .field(Field::text_private("password"))
        .field(Field::text_single("name"))
}

fn errors_of(form: &Form) -> Vec<(String, ValidationCode, String)> {
    form.errors()
        .iter()
        .map(|e| (e.var.clone(), e.code, e.text.clone()))
        .collect()
}

fn check(values: &[(&str, &[&str])]) -> Vec<(String, ValidationCode, String)> {
    let mut form = validation_spec().new_form();
    for (var, value) in values {
        form.set_values(*var, value.iter().copied());
    }
    form.validate();
    errors_of(&form)
}

fn one_error(var: &str, code: ValidationCode, text: &str) -> Vec<(String, ValidationCode, String)> {
    vec![(var.to_owned(), code, text.to_owned())]
}

#[test]
fn valid_values_of_every_type_pass() {
    let errors = check(&[
        ("flag", &[" TRUE "]),
        ("note", &["just text"]),
        ("secret", &["a", "b"]),
        ("friends", &["juliet@capulet.com", ""]),
        ("owner", &[""]),
        ("tags", &["xmpp", "rust"]),
        ("gender", &["F"]),
        ("bio", &["a", "b"]),
        ("password", &["text-private validates like text"]),
        ("name", &[""]),
    ]);
    assert_eq!(errors, []);
}

#[test]
fn required_fields() {
    let spec = FormSpec::new("urn:example:required")
        .field(Field::text_single("absent").required())
        .field(Field::text_single("empty").required())
        .field(Field::text_multi("no-values").required())
        .field(Field::text_multi("empty-values").required())
        .field(Field::list_single("list").required().option("A", "a"))
        .field(Field::text_single("given").required());
    let mut form = spec.new_form();
    form.set_values("empty", [""]);
    form.set_values("no-values", Vec::<String>::new());
    form.set_values("empty-values", ["", ""]);
    form.set_values("list", [""]);
    form.set_values("given", ["yes"]);
    assert!(!form.validate());
    let required = |var: &str| {
        (
            var.to_owned(),
            ValidationCode::Required,
            format!("{var} is required"),
        )
    };
    assert_eq!(
        errors_of(&form),
        [
            required("absent"),
            required("empty"),
            required("no-values"),
            required("empty-values"),
            required("list"),
        ]
    );
}

#[test]
fn single_value_fields_reject_several_values() {
    assert_eq!(
        check(&[("name", &["a", "b"])]),
        one_error(
            "name",
            ValidationCode::NoMulti,
            "name doesn't support multi values"
        )
    );
    assert_eq!(
        check(&[("gender", &["M", "F"])]),
        one_error(
            "gender",
            ValidationCode::NoMulti,
            "gender doesn't support multi values"
        )
    );
}

#[test]
fn booleans() {
    for valid in ["0", "1", "true", "false", "True", " FALSE "] {
        assert_eq!(check(&[("flag", &[valid])]), [], "{valid}");
    }
    assert_eq!(
        check(&[("flag", &["yes"])]),
        one_error(
            "flag",
            ValidationCode::InvalidBoolean,
            "flag boolean is invalid: yes"
        )
    );
    assert_eq!(
        check(&[("flag", &[""])]),
        one_error(
            "flag",
            ValidationCode::InvalidBoolean,
            "flag boolean is invalid: "
        )
    );
}

#[test]
fn fixed_values_without_newlines() {
    for bad in ["a\nb", "a\rb"] {
        assert_eq!(
            check(&[("note", &[bad])]),
            one_error(
                "note",
                ValidationCode::InvalidFixed,
                r"note fixed cannot contains \r\n"
            )
        );
    }
}

#[test]
fn jids() {
    assert_eq!(
        check(&[("owner", &["@capulet.com"])]),
        one_error(
            "owner",
            ValidationCode::InvalidJid,
            "owner has invalid JID `@capulet.com`"
        )
    );
    assert_eq!(
        check(&[("friends", &["juliet@capulet.com", "a@b@c", "/res"])]),
        [
            (
                "friends".to_owned(),
                ValidationCode::InvalidJid,
                "friends has invalid JID `a@b@c`".to_owned()
            ),
            (
                "friends".to_owned(),
                ValidationCode::InvalidJid,
                "friends has invalid JID `/res`".to_owned()
            ),
        ]
    );
}

#[test]
fn list_options() {
    assert_eq!(
        check(&[("gender", &["X"])]),
        one_error(
            "gender",
            ValidationCode::InvalidOption,
            "gender use invalid option `X`"
        )
    );
    assert_eq!(
        check(&[("gender", &[""])]),
        one_error(
            "gender",
            ValidationCode::InvalidOption,
            "gender use invalid empty option"
        )
    );
    assert_eq!(
        check(&[("tags", &["rust", "go"])]),
        one_error(
            "tags",
            ValidationCode::InvalidOption,
            "tags use invalid option `go`"
        )
    );
}

#[test]
fn form_type_errors_come_first() {
    let mut form = validation_spec().new_form();
    form.set_values(FORM_TYPE, ["urn:other"]);
    form.set_values("name", ["a", "b"]);
    form.set_values("flag", ["maybe"]);
    assert!(!form.validate());
    assert_eq!(
        form.error_text(),
        "FORM_TYPE: FORM_TYPE urn:other != urn:example:validation invalid; \
         flag: flag boolean is invalid: maybe; \
         name: name doesn't support multi values"
    );
    assert_eq!(form.errors()[0].code, ValidationCode::FormTypeNotMatching);

    form.set_values(FORM_TYPE, [""]);
    form.validate();
    assert_eq!(form.errors()[0].code, ValidationCode::FormTypeMissing);
    assert_eq!(
        form.errors()[0].text,
        "FORM_TYPE is missing and is required"
    );
}

#[test]
fn form_type_is_checked_when_parsing() {
    let wrong = xml("<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:other</value></field></x>");
    let form = FORM01.parse(&wrong).unwrap();
    assert!(!form.is_valid());
    assert_eq!(
        form.error_text(),
        "FORM_TYPE: FORM_TYPE urn:other != urn:xmpp:mydata invalid"
    );
    let missing = xml("<x xmlns='jabber:x:data' type='submit'/>");
    let form = FORM01.parse(&missing).unwrap();
    assert_eq!(form.errors()[0].code, ValidationCode::FormTypeMissing);
}

#[test]
fn validate_recomputes_and_custom_errors_can_be_added() {
    let mut form = FORM01.new_with(FormType::Submit, [("name", "Manuel")]);
    assert!(form.validate());
    form.add_error("name", "name is already taken");
    assert!(!form.is_valid());
    assert_eq!(form.errors()[0].code, ValidationCode::Custom);
    assert_eq!(form.error_text(), "name: name is already taken");
    assert!(form.validate(), "validate starts afresh");
    assert!(form.validate(), "and can run again");
}

// ---------------------------------------------------------------------------
// cast vs submit

#[test]
fn cast_rules() {
    let spec = FormSpec::new("urn:example:cast")
        .field(Field::text_single("single").default_value("default"))
        .field(Field::text_multi("multi"))
        .field(Field::hidden("hidden"));
    let mut form = spec.new_form();
    form.cast([
        ("single", FieldValue::from(vec!["first", "second"])),
        ("multi", FieldValue::from("only")),
        ("hidden", FieldValue::from(["h1", "h2"])),
        ("unknown", FieldValue::from("ignored")),
        (FORM_TYPE, FieldValue::from("urn:forged")),
    ]);
    assert_eq!(form.values("single"), ["first"]);
    assert_eq!(form.values("multi"), ["only"]);
    assert_eq!(form.values("hidden"), ["h1", "h2"]);
    assert_eq!(form.value("unknown"), None);
    assert_eq!(form.value(FORM_TYPE), Some("urn:example:cast"));
    assert_eq!(form.form_type(), FormType::Form, "cast keeps the type");

    // an empty list on a single field: present without value, so no default
    form.cast([("single", Vec::<String>::new())]);
    assert_eq!(form.values("single"), [] as [&str; 0]);
    assert!(!form.to_string().contains("default"));

    // cast does not validate, nor clear errors
    let mut form = FORM01.new_form();
    form.add_error("x", "kept");
    form.cast([("gender", "not an option")]);
    assert_eq!(form.error_text(), "x: kept");
}

#[test]
fn submit_moves_form_to_submit_to_result() {
    let mut form = FORM01.new_form();
    assert_eq!(form.submit([("gender", "X")]), Ok(false));
    assert_eq!(form.form_type(), FormType::Submit);
    assert_eq!(
        form.error_text(),
        "name: name is required; gender: gender use invalid option `X`"
    );
    assert_eq!(form.submit([("name", "Manuel"), ("gender", "F")]), Ok(true));
    assert_eq!(form.form_type(), FormType::Result);
    assert_eq!(form.value("name"), Some("Manuel"));

    for stuck in [FormType::Result, FormType::Cancel] {
        let mut form = FORM01.new_with(stuck, [("name", "Manuel")]);
        let before = form.clone();
        assert_eq!(
            form.submit([("name", "Other")]),
            Err(FormError::CannotSubmit(stuck))
        );
        assert_eq!(form, before);
    }
    assert_eq!(
        FormError::CannotSubmit(FormType::Result).to_string(),
        "cannot submit a form of type `result`: only `form` and `submit` forms can be submitted"
    );
}

// ---------------------------------------------------------------------------
// Parsing: unknown fields and malformed forms

#[test]
fn unknown_fields_are_kept_apart() {
    let received = xml("<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
         <field var='name'><value>Manuel</value></field>\
         <field var='age' type='text-single'><value>41</value></field>\
         <field var='pets'><value>cat</value><value>dog</value></field>\
         <field type='fixed'><value>no var, no problem</value></field>\
         <title>ignored</title><foo xmlns='urn:foreign'/></x>");
    let mut form = FORM01.parse(&received).unwrap();
    let unknown: Vec<_> = form
        .unknown_fields()
        .iter()
        .map(|f| (f.var.as_str(), f.values.clone()))
        .collect();
    assert_eq!(
        unknown,
        [
            ("age", vec!["41".to_owned()]),
            ("pets", vec!["cat".to_owned(), "dog".to_owned()])
        ]
    );
    assert_eq!(form.value("age"), None);
    assert!(form.validate(), "unknown fields are no error");
    assert!(!form.to_string().contains("age"), "nor rendered");
}

#[test]
fn parsing_details() {
    // no type attribute: a form; an unknown field type reads as text-single
    let form = FORM01
        .parse(&xml("<x xmlns='jabber:x:data'>\
             <field var='name' type='color'><value>blue</value></field>\
             <field var='surname'/></x>"))
        .unwrap();
    assert_eq!(form.form_type(), FormType::Form);
    assert_eq!(form.value("name"), Some("blue"));
    assert_eq!(form.text("surname").as_deref(), Some(""));
    assert_eq!(form.text("gender"), None);
    // an empty <value/> is an empty string, text is kept as is
    let form = FORM01
        .parse(&xml("<x xmlns='jabber:x:data' type='submit'>\
             <field var='name'><value/></field>\
             <field var='surname'><value> Rubio </value></field></x>"))
        .unwrap();
    assert_eq!(form.values("name"), [""]);
    assert_eq!(form.value("surname"), Some(" Rubio "));
}

#[test]
fn malformed_forms_are_errors() {
    let parse = |text: &str| FORM01.parse(&xml(text));
    assert_eq!(
        parse("<x xmlns='urn:other' type='form'/>"),
        Err(FormError::NotADataForm {
            name: "x".to_owned(),
            namespace: "urn:other".to_owned()
        })
    );
    assert!(matches!(
        parse("<query xmlns='jabber:x:data'/>"),
        Err(FormError::NotADataForm { .. })
    ));
    assert_eq!(
        parse("<x xmlns='jabber:x:data' type='sent'/>"),
        Err(FormError::InvalidFormType("sent".to_owned()))
    );
    assert_eq!(
        parse("<x xmlns='jabber:x:data' type='submit'><field><value>a</value></field></x>"),
        Err(FormError::MissingVar(FieldType::TextSingle))
    );
    assert_eq!(
        parse("<x xmlns='jabber:x:data' type='submit'><field type='boolean'/></x>"),
        Err(FormError::MissingVar(FieldType::Boolean))
    );
    assert_eq!(
        parse("<x xmlns='jabber:x:data' type='submit'><field var='name'/><field var='name'/></x>"),
        Err(FormError::DuplicateField("name".to_owned()))
    );
    assert_eq!(
        parse(
            "<x xmlns='jabber:x:data' type='submit'><field var='name'><value><b>x</b></value></field></x>"
        ),
        Err(FormError::InvalidValue("name".to_owned()))
    );
    assert_eq!(
        FormError::MissingVar(FieldType::Boolean).to_string(),
        "a field of type `boolean` has no var attribute"
    );
}

#[test]
fn type_names() {
    for (name, field_type) in [
        ("boolean", FieldType::Boolean),
        ("fixed", FieldType::Fixed),
        ("hidden", FieldType::Hidden),
        ("jid-multi", FieldType::JidMulti),
        ("jid-single", FieldType::JidSingle),
        ("list-multi", FieldType::ListMulti),
        ("list-single", FieldType::ListSingle),
        ("text-multi", FieldType::TextMulti),
        ("text-private", FieldType::TextPrivate),
        ("text-single", FieldType::TextSingle),
    ] {
        assert_eq!(name.parse::<FieldType>(), Ok(field_type));
        assert_eq!(field_type.to_string(), name);
    }
    assert_eq!(
        "text".parse::<FieldType>(),
        Err(FormError::InvalidFieldType("text".to_owned()))
    );
    for (name, form_type) in [
        ("form", FormType::Form),
        ("submit", FormType::Submit),
        ("cancel", FormType::Cancel),
        ("result", FormType::Result),
    ] {
        assert_eq!(name.parse::<FormType>(), Ok(form_type));
        assert_eq!(form_type.to_string(), name);
    }
}

#[test]
fn typed_access() {
    let spec = FormSpec::new("urn:example:typed")
        .field(Field::boolean("yes"))
        .field(Field::boolean("bad"))
        .field(Field::jid_single("jid"))
        .field(Field::jid_multi("jids"));
    let mut form = spec.new_form();
    form.set_values("yes", [" True "]);
    form.set_values("bad", ["maybe"]);
    form.set_values("jid", ["not a@valid@jid"]);
    form.set_values("jids", ["juliet@capulet.com", "", "@bad"]);
    assert_eq!(form.bool("yes"), Some(true));
    assert_eq!(form.bool("bad"), None);
    assert_eq!(form.bool("absent"), None);
    assert_eq!(form.jid("jid"), None);
    assert_eq!(form.jids("jids"), None);
    assert_eq!(form.jids("absent"), Some(vec![]));
    form.set_values("jids", ["juliet@capulet.com", ""]);
    assert_eq!(form.jids("jids").map(|jids| jids.len()), Some(1));
    assert_eq!(form.values("absent"), [] as [&str; 0]);
}
