// The ui-tests crate uses hotprof without its `http` feature.
#[hotprof::main(http = "127.0.0.1:6060")]
fn main() {}
