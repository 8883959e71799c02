fn main() {
    struct Opaque;
    let _ = exampple_core::xml!("<a>{}</a>", Opaque);
}
