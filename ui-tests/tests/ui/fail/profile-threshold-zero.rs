#[hotprof::profile(threshold = "0ms")]
fn checkout() {}

fn main() {
    checkout();
}
