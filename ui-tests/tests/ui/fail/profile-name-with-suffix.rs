#[hotprof::profile(name = "checkout"_name)]
fn checkout() {}

fn main() {
    checkout();
}
