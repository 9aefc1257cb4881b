//! Every argument, raw string and trailing comma included. trybuild runs this
//! in its own folder under `target/`, so the relative `dir` lands there.

#[hotprof::main(dir = r"target/hotprof-ui", enabled = false,)]
fn main() {}
