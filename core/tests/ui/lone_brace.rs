fn main() {
    let _ = exampple_core::xml!("<a>}</a>");
}
