//! Runtime attribute arguments and hotprof arguments both pass through.

#[hotprof::main(enabled = true)]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    tokio::task::yield_now().await;
}
