//! `?` and `return` in an `async fn` infer the declared return type, as they
//! do without the attribute.

#[derive(Debug, PartialEq)]
enum Error {
    Empty,
    Parse,
}

impl From<std::num::ParseIntError> for Error {
    fn from(_: std::num::ParseIntError) -> Self {
        Error::Parse
    }
}

#[hotprof::profile]
async fn port(text: &str) -> Result<u16, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    tokio::task::yield_now().await;
    let port: u16 = text.parse()?;
    Ok(port)
}

#[hotprof::profile]
async fn boxed(text: &str) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    Ok(text.parse()?)
}

#[hotprof::profile]
async fn shown(n: u8) -> impl std::fmt::Display {
    if n == 0 {
        return "none".to_owned();
    }
    n.to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(port("").await, Err(Error::Empty));
    assert_eq!(port("x").await, Err(Error::Parse));
    assert_eq!(port("8080").await, Ok(8080));
    assert!(boxed("x").await.is_err());
    assert_eq!(shown(0).await.to_string(), "none");
    assert_eq!(shown(7).await.to_string(), "7");
}
