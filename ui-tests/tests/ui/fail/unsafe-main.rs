// Left to rustc, whose E0580 names the problem; hotprof adds no error.
#[hotprof::main]
unsafe fn main() {}
