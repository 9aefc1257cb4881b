#[hotprof::profile(name = "checkout", threshold = "1s", name = "pay")]
fn checkout() {}

fn main() {
    checkout();
}
