// In a fn returning `impl Future`: the future's output is checked against
// the declared one, at the user's code.
use std::future::{Future, ready};

#[hotprof::profile]
fn port(cached: bool) -> impl Future<Output = u16> {
    if cached {
        return ready("8080");
    }
    ready(8080)
}

fn main() {
    drop(port(true));
}
