fn main() {
    let _ = exampple_core::xml!("<iq id='1' type='get' id='2'/>");
}
