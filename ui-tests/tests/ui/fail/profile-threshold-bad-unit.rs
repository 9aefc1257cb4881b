// A unit users reach for gets the same duration in an accepted unit; any
// other unit gets the accepted form.
#[hotprof::profile(threshold = "200 sec")]
fn checkout() {}

#[hotprof::profile(threshold = "3fortnights")]
fn pay() {}

fn main() {
    checkout();
    pay();
}
