#[hotprof::main(dri = "/var/tmp/hotprof", threshold = "200ms")]
fn main() {}
