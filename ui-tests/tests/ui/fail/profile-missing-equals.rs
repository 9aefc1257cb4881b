#[hotprof::profile(threshold "200ms")]
fn checkout() {}

fn main() {
    checkout();
}
