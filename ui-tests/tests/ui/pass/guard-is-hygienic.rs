//! The generated local cannot clash with the user's names.

#[hotprof::main(dir = "target/hotprof")]
fn main() {
    let __hotprof_guard = 1;
    assert_eq!(__hotprof_guard, 1);
}
