#[hotprof::profile(name, threshold =)]
fn checkout() {}

fn main() {
    checkout();
}
