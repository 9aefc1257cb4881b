//! An `async fn` stays an `async fn`: awaited in place, or spawned on a
//! multi-thread runtime, which needs its future to be `Send + 'static`.

#[hotprof::profile]
async fn double(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n * 2
}

#[hotprof::profile]
async fn greet(name: String) -> String {
    let greeting = format!("hello {name}");
    tokio::task::yield_now().await;
    greeting
}

#[hotprof::profile]
async fn nothing() {}

#[tokio::main]
async fn main() {
    assert_eq!(double(21).await, 42);
    let spawned = tokio::spawn(greet("there".to_owned()));
    assert_eq!(spawned.await.ok().as_deref(), Some("hello there"));
    nothing().await;
}
