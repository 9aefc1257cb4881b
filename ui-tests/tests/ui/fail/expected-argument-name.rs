#[hotprof::main("/var/tmp/hotprof")]
fn main() {}
