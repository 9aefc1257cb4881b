#[hotprof::main(enabled, dir =)]
fn main() {}
