fn main() {
    println!("edgewise {}", env!("CARGO_PKG_VERSION"));
}
