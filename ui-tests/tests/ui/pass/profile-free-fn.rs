//! The plainest case: a free function, called from `main`.

#[hotprof::profile]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[hotprof::profile]
fn nothing() {}

fn main() {
    assert_eq!(add(2, 3), 5);
    nothing();
}
