fn main() {
    let name = "a";
    let _ = exampple_core::xml!("<a {name}='1'/>");
}
