#[hotprof::profile(threshold = "-5ms")]
fn checkout() {}

fn main() {
    checkout();
}
