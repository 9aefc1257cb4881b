#[hotprof::profile(threshold = "200")]
fn checkout() {}

fn main() {
    checkout();
}
