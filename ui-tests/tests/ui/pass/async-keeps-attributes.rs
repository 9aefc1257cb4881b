//! Re-emitting an `async fn main` below its runtime attribute keeps every
//! other attribute, doc comment and inner attribute in place.

/// The service.
#[hotprof::main(dir = "target/hotprof")]
#[allow(clippy::needless_return)]
#[tokio::main(flavor = "current_thread")]
#[deny(unused_must_use)]
pub async fn main() {
    #![allow(unused_mut)]
    let mut ready = true;
    tokio::task::yield_now().await;
    assert!(ready);
}
