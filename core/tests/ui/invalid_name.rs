fn main() {
    let _ = exampple_core::xml!("<1a/>");
}
