fn main() {
    let _ = exampple_core::xml!("<message><body>hi</message></body>");
}
