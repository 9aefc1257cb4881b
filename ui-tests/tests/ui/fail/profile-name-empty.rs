#[hotprof::profile(name = "")]
fn checkout() {}

fn main() {
    checkout();
}
