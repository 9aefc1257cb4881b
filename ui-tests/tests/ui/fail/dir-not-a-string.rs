#[hotprof::main(dir = 5)]
fn main() {}
