#[hotprof::main]
#[hotprof::main(enabled = false)]
fn main() {}
