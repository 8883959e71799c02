fn main() {
    let _ = exampple_core::xml!("<p:query/>");
}
