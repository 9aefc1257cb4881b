// `?` in an async fn that returns `()` is rejected at the user's `?`, as
// without the attribute.
#[hotprof::profile]
async fn port() {
    let _port: u16 = "8080".parse()?;
}

fn main() {
    drop(port());
}
