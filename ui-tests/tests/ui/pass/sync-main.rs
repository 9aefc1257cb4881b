//! A plain sync `fn main`; the guard goes first, the user's code follows.

/// Docs and attributes stay on the user's function.
#[hotprof::main]
#[allow(unused_variables)]
fn main() {
    #![allow(unused_mut)]
    let mut answer = 42;
    assert_eq!(answer, 42);
}
