#[hotprof::main]
fn main<T: Default>() {}
