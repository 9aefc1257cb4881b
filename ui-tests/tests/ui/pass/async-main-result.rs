//! An `async fn main` returning `Result`.

#[hotprof::main]
#[tokio::main]
async fn main() -> Result<(), std::num::ParseIntError> {
    let port: u16 = "8080".parse()?;
    tokio::task::yield_now().await;
    assert_eq!(port, 8080);
    Ok(())
}
