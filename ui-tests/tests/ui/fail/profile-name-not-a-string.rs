#[hotprof::profile(name = 5)]
fn checkout() {}

fn main() {
    checkout();
}
