// Left to rustc, whose E0580 names the problem; hotprof adds no error.
#[hotprof::main]
extern "C" fn main() {}
