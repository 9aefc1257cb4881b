#[hotprof::main(enabled = "false")]
fn main() {}
