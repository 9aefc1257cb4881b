#[hotprof::main(http = "example.com:6060")]
fn main() {}
