// `#[must_use]` stays on the profiled function: ignoring the result is
// still caught.
#![deny(unused_must_use)]

#[hotprof::profile]
#[must_use = "the port is the point"]
fn port() -> u16 {
    8080
}

fn main() {
    port();
}
