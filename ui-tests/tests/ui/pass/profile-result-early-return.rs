//! `?` and `return` leave the function, and its scope, as they did before.

#[hotprof::profile]
fn port(text: &str) -> Result<u16, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(80);
    }
    let port: u16 = text.parse()?;
    Ok(port)
}

#[hotprof::profile]
fn first_even(numbers: &[u32]) -> Option<u32> {
    for &n in numbers {
        if n % 2 == 0 {
            return Some(n);
        }
    }
    None
}

fn main() {
    assert_eq!(port(""), Ok(80));
    assert_eq!(port("8080"), Ok(8080));
    assert!(port("eighty").is_err());
    assert_eq!(first_even(&[1, 3, 4, 5]), Some(4));
    assert_eq!(first_even(&[1]), None);
}
