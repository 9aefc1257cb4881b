//! Every argument, raw strings and a trailing comma included.

#[hotprof::profile(name = "checkout", threshold = "200ms")]
fn checkout() -> u32 {
    1
}

#[hotprof::profile(threshold = "1ns")]
fn tiny() {}

#[hotprof::profile(threshold = "250us", name = r"Cart::total",)]
fn total() -> u32 {
    2
}

#[hotprof::profile(threshold = "18446744073s")]
fn longest() {}

#[hotprof::profile(name = "async handler", threshold = "2s")]
async fn handle() -> u32 {
    3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(checkout() + total() + handle().await, 6);
    tiny();
    longest();
}
