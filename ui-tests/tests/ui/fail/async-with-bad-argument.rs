// The arguments are checked before the runtime attribute expands.
#[hotprof::main(dir = 5)]
#[tokio::main]
async fn main() {}
