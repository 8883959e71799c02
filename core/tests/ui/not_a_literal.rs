fn main() {
    let t = "<a/>";
    let _ = exampple_core::xml!(t);
}
