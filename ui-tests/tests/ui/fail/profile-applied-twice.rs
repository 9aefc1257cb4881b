#[hotprof::profile]
#[hotprof::profile(name = "again")]
fn checkout() {}

fn main() {
    checkout();
}
