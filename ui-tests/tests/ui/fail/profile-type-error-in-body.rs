// A type error in the body points at the user's line, not at the attribute.
#[hotprof::profile]
fn port() -> Result<u16, std::io::Error> {
    let port: u16 = "8080";
    Ok(port)
}

fn main() {
    let _ = port();
}
