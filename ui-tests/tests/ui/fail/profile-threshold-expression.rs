#[hotprof::profile(threshold = std::time::Duration::from_millis(200))]
fn checkout() {}

fn main() {
    checkout();
}
