// In an async fn too: the body moves into an async block, its spans do not.
#[hotprof::profile]
async fn port() -> Result<u16, std::io::Error> {
    let port: u16 = "8080";
    Ok(port)
}

fn main() {
    drop(port());
}
