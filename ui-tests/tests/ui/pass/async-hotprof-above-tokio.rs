//! The order the docs show: hotprof above the runtime attribute.

#[hotprof::main]
#[tokio::main]
async fn main() {
    tokio::task::yield_now().await;
}
