// Argument and item errors are reported together.
#[hotprof::profile(nmae = "checkout", threshold = "1.5s")]
const fn checkout() {}

fn main() {
    checkout();
}
