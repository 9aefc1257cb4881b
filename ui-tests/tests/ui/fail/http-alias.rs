#[hotprof::main(listen = ":6060")]
fn main() {}
