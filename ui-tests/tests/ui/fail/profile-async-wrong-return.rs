// The declared return type still decides: a mismatched tail points at it.
#[hotprof::profile]
async fn port() -> u16 {
    "8080"
}

fn main() {
    drop(port());
}
