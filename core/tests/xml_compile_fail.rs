//! Malformed `xml!` templates are compile errors with messages a newcomer understands
//! (the expected messages are the `.stderr` files beside each case in `ui/`).

#[test]
fn malformed_templates_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
