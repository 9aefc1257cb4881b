#[hotprof::profile("checkout")]
fn checkout() {}

fn main() {
    checkout();
}
