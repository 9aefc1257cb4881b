#[hotprof::profile]
struct Cart {
    items: Vec<u32>,
}

fn main() {}
