//! The units hotprof's environment variables take: minutes, and `µs` with
//! the micro sign beside `us`.

#[hotprof::profile(threshold = "2m")]
fn batch() -> u32 {
    1
}

#[hotprof::profile(threshold = "5µs")]
fn lookup() -> u32 {
    2
}

fn main() {
    assert_eq!(batch() + lookup(), 3);
}
