//! XEP-0009 Jabber-RPC: `Rpc::handle_query`, `Value::from_element` and
//! `Rpc::parse_response` on arbitrary elements, with round trips of what parses.
#![no_main]

use exampple_core::rpc::{MethodCall, Rpc, Value};
use exampple_core::xml;
use exampple_fuzz::{element, rpc_registry};
use libfuzzer_sys::fuzz_target;

fn round_trip(value: &Value) {
    let el = value.to_element();
    let text = xml::to_string(&el);
    let parsed = xml::parse(&text).expect("a rendered value is XML");
    let again = Value::from_element(&parsed).expect("a rendered value parses");
    // NaN is not equal to itself; compare renderings instead.
    assert_eq!(xml::to_string(&again.to_element()), text);
}

fuzz_target!(|data: &[u8]| {
    let Some(el) = element(data) else {
        return;
    };
    let registry = rpc_registry();
    if let Ok(response) = registry.handle_query(&el) {
        let text = xml::to_string(&response);
        assert!(!text.is_empty());
        let parsed = xml::parse(&text).expect("a response is XML");
        let _ = Rpc::parse_response(&parsed).expect("our own response parses");
    }
    if let Ok(call) = MethodCall::parse(&el) {
        for value in &call.params {
            round_trip(value);
        }
        let text = xml::to_string(&call.to_element());
        let parsed = xml::parse(&text).expect("a call is XML");
        assert_eq!(
            MethodCall::parse(&parsed)
                .expect("our own call parses")
                .params
                .len(),
            call.params.len()
        );
    }
    if let Ok(value) = Value::from_element(&el) {
        round_trip(&value);
    }
    for child in el.children() {
        if let Ok(value) = Value::from_element(child) {
            round_trip(&value);
        }
    }
    if let Ok(Ok(value)) = Rpc::parse_response(&el) {
        round_trip(&value);
    }
});
