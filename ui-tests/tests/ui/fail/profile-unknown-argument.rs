#[hotprof::profile(threshhold = "200ms", enabled = true)]
fn checkout() {}

fn main() {
    checkout();
}
