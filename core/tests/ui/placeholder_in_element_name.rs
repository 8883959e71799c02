fn main() {
    let name = "a";
    let _ = exampple_core::xml!("<{name}/>");
}
