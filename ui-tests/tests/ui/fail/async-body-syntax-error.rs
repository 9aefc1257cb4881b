// Through the runtime attribute too: rustc's error, once.
#[hotprof::main]
#[tokio::main]
async fn main() {
    let port = ;
}
