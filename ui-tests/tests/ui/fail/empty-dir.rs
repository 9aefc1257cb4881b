#[hotprof::main(dir = "")]
fn main() {}
