#[hotprof::main(http = 6060)]
fn main() {}
