fn main() {
    let _ = exampple_core::xml!("<iq type=get/>");
}
