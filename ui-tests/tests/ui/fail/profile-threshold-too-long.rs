#[hotprof::profile(threshold = "20000000000s")]
fn checkout() {}

fn main() {
    checkout();
}
