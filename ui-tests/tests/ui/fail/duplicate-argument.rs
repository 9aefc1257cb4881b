#[hotprof::main(dir = "/var/tmp/a", enabled = true, dir = "/var/tmp/b")]
fn main() {}
