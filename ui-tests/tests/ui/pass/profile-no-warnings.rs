//! The expansion adds no warning of its own, whatever the body: single
//! expressions (`unused_braces`), empty bodies, early returns, `?`.
#![deny(warnings)]

use std::future::{Future, ready};

#[hotprof::profile]
fn one() -> u32 {
    1
}

#[hotprof::profile]
fn empty() {}

#[hotprof::profile]
async fn one_async() -> u32 {
    1
}

#[hotprof::profile]
async fn shown() -> impl std::fmt::Display {
    1
}

// On one line, rustc checks the braces it sees as if the user wrote them.
#[rustfmt::skip]
#[hotprof::profile]
async fn one_line() -> u32 { 1 }

#[rustfmt::skip]
#[hotprof::profile]
fn one_line_later() -> impl Future<Output = u32> { ready(1) }

#[hotprof::profile]
async fn empty_async() {}

#[hotprof::profile]
async fn parsed(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
}

#[hotprof::profile]
fn one_later() -> impl Future<Output = u32> {
    ready(1)
}

#[hotprof::profile]
fn maybe_later(now: bool) -> impl Future<Output = u32> {
    if now {
        return ready(0);
    }
    ready(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    empty();
    empty_async().await;
    assert_eq!(shown().await.to_string(), "1");
    let parsed = parsed("1").await.unwrap_or(0) + parsed("").await.unwrap_or(0);
    let total = one() + one_async().await + one_line().await + one_later().await;
    assert_eq!(total + one_line_later().await + maybe_later(true).await + parsed, 6);
}
