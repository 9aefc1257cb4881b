struct Cart;

#[hotprof::profile]
impl Cart {
    fn total(&self) -> u32 {
        0
    }
}

fn main() {}
