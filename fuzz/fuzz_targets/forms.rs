//! XEP-0004 data forms: `FormSpec::parse` of an arbitrary element, then validate, render,
//! and parse the rendering again.
#![no_main]

use exampple_core::xml;
use exampple_fuzz::{element, form_spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(el) = element(data) else {
        return;
    };
    let spec = form_spec();
    let Ok(mut form) = spec.parse(&el) else {
        return;
    };
    let _ = form.validate();
    let _ = form.error_text();
    for field in spec.fields() {
        if let Some(var) = field.var.as_deref() {
            let _ = form.values(var);
            let _ = form.value(var);
            let _ = form.text(var);
            let _ = form.bool(var);
            let _ = form.jid(var);
            let _ = form.jids(var);
        }
    }
    let rendered = form.to_element();
    let text = xml::to_string(&rendered);
    assert!(!text.is_empty(), "a parsed form renders");
    let reparsed = xml::parse(&text).expect("a rendered form is XML");
    let mut again = spec.parse(&reparsed).expect("a rendered form parses");
    assert_eq!(again.form_type(), form.form_type());
    let _ = again.validate();
    let _ = form.to_string();
});
