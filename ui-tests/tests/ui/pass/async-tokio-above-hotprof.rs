//! The other order: tokio expands first and hotprof wraps its sync `fn main`.

#[tokio::main]
#[hotprof::main]
async fn main() {
    tokio::task::yield_now().await;
}
