// rustc reports the syntax error once; hotprof adds no error of its own.
#[hotprof::profile]
async fn port() -> u16 {
    let port = ;
    port
}

fn main() {
    drop(port());
}
