#[hotprof::profile(threshold = "")]
fn checkout() {}

fn main() {
    checkout();
}
