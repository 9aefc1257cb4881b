#[hotprof::profile(threshold = "200 ms")]
fn checkout() {}

fn main() {
    checkout();
}
