#[hotprof::main(enabled = "yes")]
fn main() {}
