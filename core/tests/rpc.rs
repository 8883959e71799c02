//! XEP-0009 Jabber-RPC at the wire level: XML in, XML out.

use exampple_core::rpc::{
    self, DateTime, Fault, MAX_VALUE_DEPTH, MethodCall, NS_RPC, Rpc, RpcError, Struct,
    TypeMismatch, Value,
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
    for node in element.take_nodes() {
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

/// The `<query xmlns='jabber:iq:rpc'/>` of an example stanza (XEP examples
/// show stanzas outside their stream: give the `<iq/>` its namespace).
/// Whitespace is kept: the payload must be read as received.
fn query_in(stanza: &str) -> Element {
    let stanza = stanza
        .trim()
        .replacen("<iq ", "<iq xmlns='jabber:client' ", 1);
    let iq: Element = stanza.parse().expect("test XML must parse");
    iq.get_child("query", NS_RPC)
        .expect("the example holds a query")
        .clone()
}

fn to_xml(element: &Element) -> String {
    String::from(element)
}

/// `<value xmlns='jabber:iq:rpc'>…</value>`
fn value_xml(inner: &str) -> Element {
    xml(&format!("<value xmlns='jabber:iq:rpc'>{inner}</value>"))
}

fn parse_value(inner: &str) -> Result<Value, RpcError> {
    Value::from_element(&value_xml(inner))
}

/// Rendered `<value/>` without the namespace declaration, for short asserts.
fn render(value: &Value) -> String {
    to_xml(&value.to_element()).replacen(" xmlns='jabber:iq:rpc'", "", 1)
}

fn get_state_name(params: Vec<Value>) -> Result<String, Fault> {
    match rpc::param::<i32>(&params, 0)? {
        6 => Ok("Colorado".to_owned()),
        41 => Ok("South Dakota".to_owned()),
        other => Err(Fault::new(4, format!("no state number {other}"))),
    }
}

fn registry() -> Rpc {
    Rpc::new()
        .method_with_arity("examples.getStateName", 1, get_state_name)
        .method_with_arity("sum_int", 2, |params| {
            let a: i32 = rpc::param(&params, 0)?;
            let b: i32 = rpc::param(&params, 1)?;
            a.checked_add(b).ok_or_else(|| Fault::new(1, "overflow"))
        })
        .method("now", |_params| Ok(DateTime::new("19980717T14:08:55")))
        .method("echo", Ok)
        .method("fail", |_params| {
            Err::<Value, _>(Fault::new(4, "Too many parameters."))
        })
}

// ---------------------------------------------------------------------------
// XEP-0009 §3 examples

const EXAMPLE_1: &str = r#"
<iq type='set'
    from='requester@company-b.com/jrpc-client'
    to='responder@company-a.com/jrpc-server'
    id='rpc1'>
  <query xmlns='jabber:iq:rpc'>
    <methodCall>
      <methodName>examples.getStateName</methodName>
      <params>
        <param>
          <value><i4>6</i4></value>
        </param>
      </params>
    </methodCall>
  </query>
</iq>"#;

const EXAMPLE_2: &str = r#"
<iq type='result'
    from='responder@company-a.com/jrpc-server'
    to='requester@company-b.com/jrpc-client'
    id='rpc1'>
  <query xmlns='jabber:iq:rpc'>
    <methodResponse>
      <params>
        <param>
          <value><string>Colorado</string></value>
        </param>
      </params>
    </methodResponse>
  </query>
</iq>"#;

#[test]
fn xep0009_example_1_request_is_answered_with_example_2() {
    let request = query_in(EXAMPLE_1);
    assert_eq!(
        MethodCall::parse(&request),
        Ok(MethodCall::new("examples.getStateName", [6]))
    );
    let response = registry().handle_query(&request).unwrap();
    let mut expected = query_in(EXAMPLE_2);
    strip_whitespace(&mut expected);
    assert_eq!(response, expected);
    assert_eq!(
        to_xml(&response),
        "<query xmlns='jabber:iq:rpc'><methodResponse><params><param>\
         <value><string>Colorado</string></value></param></params></methodResponse></query>"
    );
}

#[test]
fn xep0009_example_2_response_is_parsed() {
    assert_eq!(
        Rpc::parse_response(&query_in(EXAMPLE_2)),
        Ok(Ok(Value::from("Colorado")))
    );
}

#[test]
fn xep0009_example_1_request_is_built() {
    let request = Rpc::call_element("examples.getStateName", [6]);
    assert_eq!(
        to_xml(&request),
        "<query xmlns='jabber:iq:rpc'><methodCall><methodName>examples.getStateName</methodName>\
         <params><param><value><int>6</int></value></param></params></methodCall></query>"
    );
    // Identical to Example 1 but for the <i4/> alias, which reads the same.
    let mut example = query_in(EXAMPLE_1);
    strip_whitespace(&mut example);
    assert_eq!(to_xml(&example).replace("i4>", "int>"), to_xml(&request));
    assert_eq!(MethodCall::parse(&request), MethodCall::parse(&example));
}

// ---------------------------------------------------------------------------
// exampple's acceptance case and the registry

#[test]
fn exampple_sum_int() {
    let request = xml(
        "<query xmlns='jabber:iq:rpc'><methodCall><methodName>sum_int</methodName>\
         <params><param><value><int>12</int></value></param>\
         <param><value><int>55</int></value></param></params></methodCall></query>",
    );
    let response = registry().handle_query(&request).unwrap();
    assert_eq!(
        to_xml(&response),
        "<query xmlns='jabber:iq:rpc'><methodResponse><params><param>\
         <value><int>67</int></value></param></params></methodResponse></query>"
    );
    assert_eq!(Rpc::parse_response(&response), Ok(Ok(Value::Int(67))));
}

fn fault_query(code: i32, message: &str) -> String {
    format!(
        "<query xmlns='jabber:iq:rpc'><methodResponse><fault><value><struct>\
         <member><name>faultCode</name><value><int>{code}</int></value></member>\
         <member><name>faultString</name><value><string>{message}</string></value></member>\
         </struct></value></fault></methodResponse></query>"
    )
}

#[test]
fn a_method_fault_is_answered_as_an_xml_rpc_fault() {
    let response = registry()
        .handle_query(&Rpc::call_element("fail", Vec::<Value>::new()))
        .unwrap();
    assert_eq!(to_xml(&response), fault_query(4, "Too many parameters."));
    assert_eq!(
        Rpc::parse_response(&response),
        Ok(Err(Fault::new(4, "Too many parameters.")))
    );

    let response = registry()
        .handle_query(&Rpc::call_element("examples.getStateName", [99]))
        .unwrap();
    assert_eq!(to_xml(&response), fault_query(4, "no state number 99"));
}

#[test]
fn an_unknown_method_is_a_fault() {
    let response = registry()
        .handle_query(&Rpc::call_element("examples.nope", [1]))
        .unwrap();
    assert_eq!(
        to_xml(&response),
        fault_query(-32601, "method not found: examples.nope")
    );
}

#[test]
fn a_wrong_number_of_parameters_is_a_fault() {
    let response = registry()
        .handle_query(&Rpc::call_element("sum_int", [1, 2, 3]))
        .unwrap();
    assert_eq!(
        to_xml(&response),
        fault_query(-32602, "wrong number of parameters: sum_int takes 2, got 3")
    );
    // the type of a parameter, checked by the method through rpc::param
    let response = registry()
        .handle_query(&Rpc::call_element(
            "sum_int",
            [Value::from(1), Value::from("2")],
        ))
        .unwrap();
    assert_eq!(
        to_xml(&response),
        fault_query(-32602, "parameter 1: expected int, found string")
    );
}

#[test]
fn a_call_without_params_element_has_no_parameters() {
    let request = xml("<query xmlns='jabber:iq:rpc'><methodCall>\
         <methodName>now</methodName></methodCall></query>");
    assert_eq!(
        to_xml(&registry().handle_query(&request).unwrap()),
        "<query xmlns='jabber:iq:rpc'><methodResponse><params><param>\
         <value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value>\
         </param></params></methodResponse></query>"
    );
    let empty_params = xml("<query xmlns='jabber:iq:rpc'><methodCall>\
         <methodName> now </methodName><params/></methodCall></query>");
    assert_eq!(
        MethodCall::parse(&empty_params),
        Ok(MethodCall::new("now", Vec::<Value>::new()))
    );
}

#[test]
fn arrays_and_structs_are_decoded_and_echoed() {
    let request = query_in(
        "<iq type='set' id='1'><query xmlns='jabber:iq:rpc'><methodCall>
           <methodName>echo</methodName>
           <params>
             <param><value><array><data>
               <value><i4>1</i4></value>
               <value><struct>
                 <member><name>lowerBound</name><value><i4>18</i4></value></member>
                 <member><name>upperBound</name><value><i4>139</i4></value></member>
               </struct></value>
             </data></array></value></param>
           </params>
         </methodCall></query></iq>",
    );
    let response = registry().handle_query(&request).unwrap();
    let expected = Value::from(vec![Value::from(vec![
        Value::Int(1),
        Value::Struct(Struct::new().with("lowerBound", 18).with("upperBound", 139)),
    ])]);
    assert_eq!(Rpc::parse_response(&response), Ok(Ok(expected)));
}

#[test]
fn the_registry_is_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Rpc>();
    let rpc = registry();
    let shared = rpc.clone();
    let answer = std::thread::spawn(move || shared.call("sum_int", vec![1.into(), 2.into()]))
        .join()
        .unwrap();
    assert_eq!(answer, Ok(Value::Int(3)));
    assert!(rpc.has_method("echo"));
    assert!(!rpc.has_method("Echo"));
    assert_eq!(
        rpc.method_names().collect::<Vec<_>>(),
        ["echo", "examples.getStateName", "fail", "now", "sum_int"]
    );
    assert_eq!(
        format!("{rpc:?}"),
        "Rpc { methods: [\"echo\", \"examples.getStateName\", \"fail\", \"now\", \"sum_int\"] }"
    );
    // registering again replaces
    let replaced = rpc.method("echo", |_| Ok("replaced"));
    assert_eq!(replaced.call("echo", vec![]), Ok(Value::from("replaced")));
}

// ---------------------------------------------------------------------------
// Malformed requests: bad-request

fn bad_request(query: &str) -> String {
    match registry().handle_query(&xml(query)) {
        Err(RpcError::BadRequest(text)) => text,
        other => panic!("expected a bad request for {query}, got {other:?}"),
    }
}

fn call_with_param(param: &str) -> String {
    format!(
        "<query xmlns='jabber:iq:rpc'><methodCall><methodName>echo</methodName>\
         <params><param>{param}</param></params></methodCall></query>"
    )
}

#[test]
fn malformed_requests_are_bad_requests() {
    assert_eq!(
        bad_request("<query xmlns='jabber:iq:other'/>"),
        "expected <query xmlns='jabber:iq:rpc'/>, found <query xmlns='jabber:iq:other'/>"
    );
    assert_eq!(
        bad_request("<methodCall xmlns='jabber:iq:rpc'/>"),
        "expected <query xmlns='jabber:iq:rpc'/>, found <methodCall xmlns='jabber:iq:rpc'/>"
    );
    assert_eq!(
        bad_request("<query xmlns='jabber:iq:rpc'/>"),
        "methodCall tag not found"
    );
    assert_eq!(
        bad_request("<query xmlns='jabber:iq:rpc'><methodResponse/></query>"),
        "expected <methodCall/> in <query/>, found <methodResponse/>"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>a</methodName></methodCall>\
             <methodCall><methodName>b</methodName></methodCall></query>"
        ),
        "<query/> must hold exactly one <methodCall/>"
    );
    assert_eq!(
        bad_request("<query xmlns='jabber:iq:rpc'><methodCall><params/></methodCall></query>"),
        "methodName tag not found"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName> </methodName></methodCall></query>"
        ),
        "empty methodName"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName><b/></methodName></methodCall></query>"
        ),
        "<methodName/> must contain only text"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>a</methodName>\
             <methodName>b</methodName></methodCall></query>"
        ),
        "more than one <methodName/> in <methodCall/>"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>a</methodName>\
             <extra/></methodCall></query>"
        ),
        "unexpected <extra/> in <methodCall/>"
    );
    assert_eq!(
        bad_request(
            "<query xmlns='jabber:iq:rpc'><methodCall><methodName>a</methodName>\
             <params><value><int>1</int></value></params></methodCall></query>"
        ),
        "unexpected <value/> in <params/>"
    );
    assert_eq!(
        bad_request(&call_with_param("")),
        "param 0: value tag not found"
    );
    assert_eq!(
        bad_request(&call_with_param("<value>1</value><value>2</value>")),
        "param 0: <param/> must hold exactly one <value/>"
    );
    assert_eq!(
        bad_request(&call_with_param("<int>1</int>")),
        "param 0: expected <value/> in <param/>, found <int/>"
    );
    assert_eq!(
        bad_request(&call_with_param("<value><int>one</int></value>")),
        "param 0: invalid int `one`"
    );
    assert_eq!(
        RpcError::BadRequest("methodCall tag not found".to_owned()).to_string(),
        "bad request: methodCall tag not found"
    );
}

#[test]
fn malformed_values_are_rejected() {
    let invalid = |inner: &str| match parse_value(inner) {
        Err(RpcError::InvalidValue(text)) => text,
        other => panic!("expected an invalid value for {inner}, got {other:?}"),
    };
    assert_eq!(invalid("<int>2147483648</int>"), "invalid int `2147483648`");
    assert_eq!(invalid("<i4>1.5</i4>"), "invalid int `1.5`");
    assert_eq!(invalid("<int/>"), "invalid int ``");
    assert_eq!(invalid("<int><b/></int>"), "<int/> must contain only text");
    assert_eq!(invalid("<boolean>true</boolean>"), "invalid boolean `true`");
    assert_eq!(invalid("<double>1,5</double>"), "invalid double `1,5`");
    assert_eq!(
        invalid("<dateTime.iso8601></dateTime.iso8601>"),
        "invalid dateTime.iso8601 ``"
    );
    assert_eq!(
        invalid("<base64>a*==</base64>"),
        "invalid base64 character `*`"
    );
    assert_eq!(invalid("<base64>QQ=</base64>"), "invalid base64 length");
    assert_eq!(invalid("<base64>QUJD=</base64>"), "invalid base64 length");
    assert_eq!(invalid("<base64>Q</base64>"), "invalid base64 length");
    assert_eq!(
        invalid("<base64>QQ==QQ==</base64>"),
        "invalid base64: data after padding"
    );
    assert_eq!(invalid("<nil>x</nil>"), "<nil/> must be empty");
    assert_eq!(invalid("<float>1</float>"), "unknown value type <float/>");
    assert_eq!(
        invalid("<int xmlns='urn:other'>1</int>"),
        "unknown value type <int/>"
    );
    assert_eq!(
        invalid("<int>1</int><int>2</int>"),
        "<value/> holds more than one element"
    );
    assert_eq!(
        invalid("x<int>1</int>"),
        "<value/> mixes text and an element"
    );
    assert_eq!(invalid("<array/>"), "data tag not found");
    assert_eq!(
        invalid("<array><data><int>1</int></data></array>"),
        "unexpected <int/> in <data/>"
    );
    assert_eq!(
        invalid("<struct><value/></struct>"),
        "unexpected <value/> in <struct/>"
    );
    assert_eq!(
        invalid("<struct><member><value>1</value></member></struct>"),
        "a <member/> needs a <name/> and a <value/>"
    );
    assert_eq!(
        invalid("<struct><member><name>a</name><value>1</value><value>2</value></member></struct>"),
        "more than one <value/> in <member/>"
    );
    assert_eq!(
        invalid("<struct><member><name>a</name><value>1</value><other/></member></struct>"),
        "unexpected <other/> in <member/>"
    );
    assert_eq!(
        Value::from_element(&xml("<param xmlns='jabber:iq:rpc'/>")),
        Err(RpcError::InvalidValue(
            "expected <value/>, found <param/>".to_owned()
        ))
    );
}

#[test]
fn deep_nesting_is_rejected_not_overflowing() {
    let depth = MAX_VALUE_DEPTH + 1;
    let nested = format!(
        "{}<int>1</int>{}",
        "<array><data><value>".repeat(depth),
        "</value></data></array>".repeat(depth)
    );
    assert_eq!(
        parse_value(&nested),
        Err(RpcError::InvalidValue(format!(
            "values nested deeper than {MAX_VALUE_DEPTH}"
        )))
    );
    let allowed = format!(
        "{}<int>1</int>{}",
        "<array><data><value>".repeat(MAX_VALUE_DEPTH),
        "</value></data></array>".repeat(MAX_VALUE_DEPTH)
    );
    assert!(parse_value(&allowed).is_ok());
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn malformed_responses() {
    let malformed = |query: &str| match Rpc::parse_response(&xml(query)) {
        Err(RpcError::MalformedResponse(text)) => text,
        other => panic!("expected a malformed response for {query}, got {other:?}"),
    };
    assert_eq!(
        malformed("<query xmlns='jabber:iq:rpc'/>"),
        "methodResponse tag not found"
    );
    assert_eq!(
        malformed("<query xmlns='jabber:iq:rpc'><methodResponse/></query>"),
        "<methodResponse/> must hold exactly one <params/> or <fault/>"
    );
    assert_eq!(
        malformed(
            "<query xmlns='jabber:iq:rpc'><methodResponse><params/></methodResponse></query>"
        ),
        "param tag not found"
    );
    assert_eq!(
        malformed(
            "<query xmlns='jabber:iq:rpc'><methodResponse><fault><value><int>4</int></value>\
             </fault></methodResponse></query>"
        ),
        "a fault must be a struct of faultCode and faultString"
    );
    assert_eq!(
        malformed("<query xmlns='jabber:iq:rpc'><methodResponse><oops/></methodResponse></query>"),
        "unexpected <oops/> in <methodResponse/>"
    );
    assert_eq!(
        malformed("<query xmlns='jabber:iq:other'/>"),
        "expected <query xmlns='jabber:iq:rpc'/>, found <query xmlns='jabber:iq:other'/>"
    );
}

#[test]
fn fault_example_of_the_xml_rpc_specification() {
    // i4 and an untyped string are fine in a received fault
    let response = xml(
        "<query xmlns='jabber:iq:rpc'><methodResponse><fault><value><struct>
           <member><name>faultCode</name><value><i4>4</i4></value></member>
           <member><name>faultString</name><value>Too many parameters.</value></member>
         </struct></value></fault></methodResponse></query>",
    );
    let fault = Rpc::parse_response(&response).unwrap().unwrap_err();
    assert_eq!(fault, Fault::new(4, "Too many parameters."));
    assert_eq!(fault.to_string(), "fault 4: Too many parameters.");
    assert_eq!(
        to_xml(&Rpc::response_element(&Err(fault))),
        fault_query(4, "Too many parameters.")
    );
}

// ---------------------------------------------------------------------------
// Every value type, both ways

#[test]
fn scalars_parse_and_render() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "<int>42</int>",
            Value::Int(42),
            "<value><int>42</int></value>",
        ),
        (
            "<i4>-7</i4>",
            Value::Int(-7),
            "<value><int>-7</int></value>",
        ),
        (
            "<int> +3 </int>",
            Value::Int(3),
            "<value><int>3</int></value>",
        ),
        (
            "<boolean>1</boolean>",
            Value::Boolean(true),
            "<value><boolean>1</boolean></value>",
        ),
        (
            "<boolean>0</boolean>",
            Value::Boolean(false),
            "<value><boolean>0</boolean></value>",
        ),
        (
            "<string>Hello &amp; bye</string>",
            Value::from("Hello & bye"),
            "<value><string>Hello &amp; bye</string></value>",
        ),
        ("<string/>", Value::from(""), "<value><string/></value>"),
        (
            "<string></string>",
            Value::from(""),
            "<value><string/></value>",
        ),
        (
            "untyped",
            Value::from("untyped"),
            "<value><string>untyped</string></value>",
        ),
        ("", Value::from(""), "<value><string/></value>"),
        (
            "<double>-12.214</double>",
            Value::Double(-12.214),
            "<value><double>-12.214</double></value>",
        ),
        (
            "<double>10.5</double>",
            Value::Double(10.5),
            "<value><double>10.5</double></value>",
        ),
        (
            "<double>3</double>",
            Value::Double(3.0),
            "<value><double>3.0</double></value>",
        ),
        (
            "<double>1e3</double>",
            Value::Double(1000.0),
            "<value><double>1000.0</double></value>",
        ),
        (
            "<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>",
            Value::DateTime(DateTime::new("19980717T14:08:55")),
            "<value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value>",
        ),
        (
            "<dateTime.iso8601>2022-08-01T10:00:00Z</dateTime.iso8601>",
            Value::DateTime(DateTime::new("2022-08-01T10:00:00Z")),
            "<value><dateTime.iso8601>2022-08-01T10:00:00Z</dateTime.iso8601></value>",
        ),
        (
            "<base64>eW91IGNhbid0IHJlYWQgdGhpcyE=</base64>",
            Value::Base64(b"you can't read this!".to_vec()),
            "<value><base64>eW91IGNhbid0IHJlYWQgdGhpcyE=</base64></value>",
        ),
        (
            "<base64>QQ==</base64>",
            Value::Base64(b"A".to_vec()),
            "<value><base64>QQ==</base64></value>",
        ),
        (
            "<base64>QUI=</base64>",
            Value::Base64(b"AB".to_vec()),
            "<value><base64>QUI=</base64></value>",
        ),
        (
            "<base64>QUJD</base64>",
            Value::Base64(b"ABC".to_vec()),
            "<value><base64>QUJD</base64></value>",
        ),
        (
            "<base64/>",
            Value::Base64(Vec::new()),
            "<value><base64/></value>",
        ),
        ("<nil/>", Value::Nil, "<value><nil/></value>"),
    ];
    for (inner, value, rendered) in cases {
        assert_eq!(parse_value(inner), Ok(value.clone()), "{inner}");
        assert_eq!(render(&value), rendered, "{inner}");
        assert_eq!(
            Value::from_element(&value.to_element()),
            Ok(value),
            "{inner}"
        );
    }
}

#[test]
fn text_is_read_as_received() {
    // untyped and <string/> text keeps its spaces; whitespace around a
    // typed element is ignored; base64 may be wrapped and unpadded
    let pretty: Element = "<value xmlns='jabber:iq:rpc'>\n  <int>5</int>\n</value>"
        .parse()
        .unwrap();
    assert_eq!(Value::from_element(&pretty), Ok(Value::Int(5)));
    let spaced: Element = "<value xmlns='jabber:iq:rpc'>  two  spaces </value>"
        .parse()
        .unwrap();
    assert_eq!(
        Value::from_element(&spaced),
        Ok(Value::from("  two  spaces "))
    );
    let string: Element = "<value xmlns='jabber:iq:rpc'><string> a\nb </string></value>"
        .parse()
        .unwrap();
    assert_eq!(Value::from_element(&string), Ok(Value::from(" a\nb ")));
    let wrapped: Element = "<value xmlns='jabber:iq:rpc'><base64>\n  eW91IGNh\n  bid0IHJlYWQgdGhpcyE\n</base64></value>"
        .parse()
        .unwrap();
    assert_eq!(
        Value::from_element(&wrapped),
        Ok(Value::Base64(b"you can't read this!".to_vec()))
    );
}

#[test]
fn nested_structs_and_arrays_parse_and_render() {
    let inner = "<struct>\
        <member><name>name</name><value><string>exampple</string></value></member>\
        <member><name>tags</name><value><array><data>\
          <value><string>xmpp</string></value>\
          <value><array><data/></array></value>\
          <value><struct/></value>\
          <value><nil/></value>\
        </data></array></value></member>\
        <member><name>owner</name><value><struct>\
          <member><name>id</name><value><int>1</int></value></member>\
          <member><name>admin</name><value><boolean>1</boolean></value></member>\
        </struct></value></member>\
      </struct>";
    let expected = Value::Struct(
        Struct::new()
            .with("name", "exampple")
            .with(
                "tags",
                vec![
                    Value::from("xmpp"),
                    Value::Array(vec![]),
                    Value::Struct(Struct::new()),
                    Value::Nil,
                ],
            )
            .with("owner", Struct::new().with("id", 1).with("admin", true)),
    );
    assert_eq!(parse_value(inner), Ok(expected.clone()));
    assert_eq!(render(&expected), format!("<value>{inner}</value>"));
    let members: Vec<_> = expected
        .as_struct()
        .unwrap()
        .iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        members,
        ["name", "tags", "owner"],
        "members keep their order"
    );
}

#[test]
fn doubles_render_so_they_parse_back_equal() {
    for number in [
        0.0,
        -0.0,
        1.0,
        0.1,
        -2.5e-300,
        1.7976931348623157e308,
        f64::MIN_POSITIVE,
        5e-324,
        123456789.0123,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let rendered = Value::Double(number)
            .to_element()
            .get_child("double", NS_RPC)
            .map(Element::text)
            .unwrap_or_default();
        assert!(
            !rendered.contains(['e', 'E']),
            "decimal notation: {rendered}"
        );
        let back = Value::from_element(&Value::Double(number).to_element()).unwrap();
        assert_eq!(
            back.as_f64().map(f64::to_bits),
            Some(number.to_bits()),
            "{rendered}"
        );
    }
    let nan = Value::from_element(&Value::Double(f64::NAN).to_element()).unwrap();
    assert!(nan.as_f64().is_some_and(f64::is_nan));
}

#[test]
fn strings_xml_cannot_carry_are_replaced_not_panicking() {
    assert_eq!(
        render(&Value::from("a\u{0}b\u{FFFF}")),
        "<value><string>a\u{FFFD}b\u{FFFD}</string></value>"
    );
    assert_eq!(
        to_xml(&Rpc::response_element(&Err(Fault::new(1, "\u{1b}[31m")))),
        fault_query(1, "\u{FFFD}[31m")
    );
}

// ---------------------------------------------------------------------------
// Conversions

#[test]
fn conversions_from_rust_values() {
    assert_eq!(Value::from(7), Value::Int(7));
    assert_eq!(Value::from(7_u8), Value::Int(7));
    assert_eq!(Value::from(-7_i16), Value::Int(-7));
    assert_eq!(Value::from(true), Value::Boolean(true));
    assert_eq!(Value::from("s"), Value::String("s".to_owned()));
    assert_eq!(Value::from("s".to_owned()), Value::String("s".to_owned()));
    assert_eq!(Value::from(&"s".to_owned()), Value::String("s".to_owned()));
    assert_eq!(Value::from(1.5), Value::Double(1.5));
    assert_eq!(Value::from(1.5_f32), Value::Double(1.5));
    assert_eq!(
        Value::from(vec![1, 2]),
        Value::Array(vec![Value::Int(1), Value::Int(2)])
    );
    assert_eq!(
        Value::from(vec![Value::Nil]),
        Value::Array(vec![Value::Nil])
    );
    assert_eq!(Value::from(None::<i32>), Value::Nil);
    assert_eq!(Value::from(Some("x")), Value::from("x"));
    assert_eq!(
        [1, 2].into_iter().collect::<Value>(),
        Value::from(vec![1, 2])
    );
    let members: Struct = [("a", 1), ("b", 2), ("a", 3)].into_iter().collect();
    assert_eq!(members.iter().count(), 2);
    assert_eq!(members.get("a"), Some(&Value::Int(3)));
    let mut members = members;
    assert_eq!(members.insert("c", Value::Nil), None);
    assert_eq!(members.insert("c", true), Some(Value::Nil));
    assert!(!members.is_empty());
    let pairs: Vec<(String, Value)> = members.into_iter().collect();
    assert_eq!(pairs.len(), 3);
}

#[test]
fn conversions_to_rust_values() {
    assert_eq!(i32::try_from(Value::Int(3)), Ok(3));
    assert_eq!(bool::try_from(Value::Boolean(true)), Ok(true));
    assert_eq!(f64::try_from(Value::Double(0.5)), Ok(0.5));
    assert_eq!(String::try_from(Value::from("s")), Ok("s".to_owned()));
    assert_eq!(
        DateTime::try_from(Value::DateTime(DateTime::new("19980717T14:08:55")))
            .map(|d| d.to_string()),
        Ok("19980717T14:08:55".to_owned())
    );
    assert_eq!(Vec::<u8>::try_from(Value::Base64(vec![1])), Ok(vec![1]));
    assert_eq!(
        Vec::<Value>::try_from(Value::from(vec![1])),
        Ok(vec![Value::Int(1)])
    );
    assert_eq!(
        Struct::try_from(Value::Struct(Struct::new())),
        Ok(Struct::new())
    );
    let mismatch: TypeMismatch = i32::try_from(Value::from("3")).unwrap_err();
    assert_eq!((mismatch.expected, mismatch.found), ("int", "string"));
    let mismatch = bool::try_from(&Value::Nil).unwrap_err();
    assert_eq!(mismatch.to_string(), "expected boolean, found nil");
    assert_eq!(Fault::from(mismatch).code, Fault::INVALID_PARAMS);

    let value = Value::from("text");
    assert_eq!(<&str>::try_from(&value), Ok("text"));
    assert_eq!(value.as_str(), Some("text"));
    assert_eq!(value.as_i32(), None);
    assert_eq!(Value::Int(1).as_i32(), Some(1));
    assert_eq!(Value::Boolean(false).as_bool(), Some(false));
    assert_eq!(Value::Double(2.0).as_f64(), Some(2.0));
    assert_eq!(Value::Base64(vec![9]).as_bytes(), Some(&[9][..]));
    assert_eq!(
        Value::DateTime(DateTime::new("x"))
            .as_datetime()
            .map(DateTime::as_str),
        Some("x")
    );
    assert_eq!(Value::from(vec![1]).as_array().map(<[Value]>::len), Some(1));
    assert!(Value::Nil.is_nil());
    let type_names: Vec<_> = [
        Value::Int(0),
        Value::Boolean(true),
        Value::from(""),
        Value::Double(0.0),
        Value::DateTime(DateTime::new("x")),
        Value::Base64(vec![]),
        Value::Struct(Struct::new()),
        Value::Array(vec![]),
        Value::Nil,
    ]
    .iter()
    .map(Value::type_name)
    .collect();
    assert_eq!(
        type_names,
        [
            "int",
            "boolean",
            "string",
            "double",
            "dateTime.iso8601",
            "base64",
            "struct",
            "array",
            "nil"
        ]
    );
}

#[test]
fn param_reads_typed_parameters() {
    let params = vec![Value::from(6), Value::from("x"), Value::from(vec![1])];
    assert_eq!(rpc::param::<i32>(&params, 0), Ok(6));
    assert_eq!(rpc::param::<&str>(&params, 1), Ok("x"));
    assert_eq!(rpc::param::<String>(&params, 1), Ok("x".to_owned()));
    assert_eq!(
        rpc::param::<&[Value]>(&params, 2).map(<[Value]>::len),
        Ok(1)
    );
    assert_eq!(
        rpc::param::<i32>(&params, 3),
        Err(Fault::invalid_params("parameter 3 is missing"))
    );
    assert_eq!(
        rpc::param::<bool>(&params, 0),
        Err(Fault::invalid_params(
            "parameter 0: expected boolean, found int"
        ))
    );
}

#[test]
fn a_call_round_trips() {
    let call = MethodCall::new(
        "a.b",
        [
            Value::from(1),
            Value::from(""),
            Value::Base64(vec![0, 255]),
            Value::from(vec![Value::Nil]),
        ],
    );
    assert_eq!(MethodCall::parse(&call.to_element()), Ok(call.clone()));
    assert_eq!(
        MethodCall::parse(&call.to_element()).map(|c| c.method_name),
        Ok("a.b".to_owned())
    );
    let no_params = MethodCall::new("ping", Vec::<Value>::new());
    assert_eq!(
        to_xml(&no_params.to_element()),
        "<query xmlns='jabber:iq:rpc'><methodCall><methodName>ping</methodName><params/></methodCall></query>"
    );
}

// ---------------------------------------------------------------------------
// Properties

fn xml_text() -> impl Strategy<Value = String> {
    "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]*"
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Boolean),
        xml_text().prop_map(Value::String),
        any::<f64>()
            .prop_filter("NaN never equals itself", |n| !n.is_nan())
            .prop_map(Value::Double),
        "[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(|d| Value::DateTime(DateTime::new(d))),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Base64),
        Just(Value::Nil),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,8}", inner), 0..6)
                .prop_map(|members| Value::Struct(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_value_round_trips_through_the_wire(value in any_value()) {
        let wire = to_xml(&Rpc::response_element(&Ok(value.clone())));
        let parsed = Rpc::parse_response(&wire.parse().unwrap());
        prop_assert_eq!(parsed, Ok(Ok(value)));
    }

    #[test]
    fn any_bytes_round_trip_as_base64(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let value = Value::Base64(bytes);
        prop_assert_eq!(Value::from_element(&value.to_element()), Ok(value));
    }

    #[test]
    fn handle_query_never_panics_on_arbitrary_text(method in any::<String>(), text in any::<String>()) {
        let query = Rpc::call_element(method, [Value::from(text)]);
        let wire = to_xml(&query);
        let _ = registry().handle_query(&wire.parse().unwrap());
    }
}
