#[hotprof::main]
fn main(argc: i32, argv: *const *const u8) {}
