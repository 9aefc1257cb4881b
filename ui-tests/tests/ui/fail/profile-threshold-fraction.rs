// With the same duration as a whole number of a smaller unit, when there is
// one.
#[hotprof::profile(threshold = "1.5s")]
fn checkout() {}

#[hotprof::profile(threshold = "0.5ns")]
fn pay() {}

fn main() {
    checkout();
    pay();
}
