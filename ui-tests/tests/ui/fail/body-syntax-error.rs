// rustc reports the syntax error once; hotprof adds no error of its own.
#[hotprof::main]
fn main() {
    let port = ;
}
