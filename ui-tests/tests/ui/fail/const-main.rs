#[hotprof::main]
const fn main() {}
