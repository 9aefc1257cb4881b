#[hotprof::main(dir = "/var/tmp/hotprof"_dir)]
fn main() {}
