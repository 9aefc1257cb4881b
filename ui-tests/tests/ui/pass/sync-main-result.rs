//! A sync `fn main` returning `Result`: `?` works and the tail stays the tail.

#[hotprof::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = "8080".parse()?;
    assert_eq!(port, 8080);
    Ok(())
}
