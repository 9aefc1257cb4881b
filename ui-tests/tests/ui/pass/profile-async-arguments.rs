//! A marked `async fn` is one future, with `async fn`'s meaning kept: every
//! argument moves into the future at the call (a guard the body never uses
//! lives until the future ends), patterns and `mut` bind inside it,
//! borrowed arguments and elided lifetimes are captured, `impl Trait`
//! arguments and generics work, and the future is `Send` when the body is.
#![deny(warnings)]

use std::cell::Cell;
use std::rc::Rc;

struct Guard(Rc<Cell<u32>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[hotprof::profile]
async fn keeps_guard(_guard: Guard, drops: Rc<Cell<u32>>) -> u32 {
    tokio::task::yield_now().await;
    drops.get()
}

#[hotprof::profile]
async fn patterns(mut n: u32, (a, b): (u32, u32), _: u8, Wrapper(w): Wrapper) -> u32 {
    tokio::task::yield_now().await;
    n += a + b + w;
    n
}

struct Wrapper(u32);

#[hotprof::profile]
async fn first_word(text: &str) -> &str {
    tokio::task::yield_now().await;
    text.split(' ').next().unwrap_or("")
}

#[hotprof::profile]
async fn longest<'a, T: AsRef<str> + ?Sized>(a: &'a T, b: &'a T) -> &'a str {
    let (a, b) = (a.as_ref(), b.as_ref());
    if a.len() >= b.len() { a } else { b }
}

#[hotprof::profile]
async fn total(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

struct Names {
    names: Vec<String>,
}

impl Names {
    #[hotprof::profile]
    async fn get(&self, i: usize) -> Option<&str> {
        tokio::task::yield_now().await;
        self.names.get(i).map(String::as_str)
    }
}

fn assert_send<F: std::future::Future + Send>(f: F) -> F {
    f
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let drops = Rc::new(Cell::new(0));
    let future = keeps_guard(Guard(drops.clone()), drops.clone());
    assert_eq!(drops.get(), 0, "the guard moved into the future at the call");
    assert_eq!(future.await, 0, "and lived while it ran");
    assert_eq!(drops.get(), 1);

    assert_eq!(patterns(1, (2, 3), 4, Wrapper(5)).await, 11);
    let text = String::from("hot sampling");
    assert_eq!(first_word(&text).await, "hot");
    assert_eq!(longest("ab", "abc").await, "abc");
    assert_eq!(assert_send(total(vec![1, 2, 3])).await, 6);
    let names = Names { names: vec!["osprey".into()] };
    assert_eq!(names.get(0).await, Some("osprey"));
}
