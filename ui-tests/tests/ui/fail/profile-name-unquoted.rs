#[hotprof::profile(name = Cart::checkout)]
fn checkout() {}

fn main() {
    checkout();
}
