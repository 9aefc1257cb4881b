// A type error in the body points at the user's line, not at the attribute.
#[hotprof::main]
fn main() -> Result<(), std::io::Error> {
    let port: u16 = "8080";
    Ok(())
}
