#[hotprof::main]
async fn main() {}
