//! Query parameters the way Go's `r.FormValue` reads them (the first value
//! wins; Parca can send `seconds` twice), and the checks on `seconds` and
//! `debug` that answer bad input with a 400 and Go's messages.

use std::time::Duration;

/// Go's default profile length: `go tool pprof` and scrapers rely on it.
pub(crate) const DEFAULT_SECONDS: u64 = 30;

pub(crate) const BAD_SECONDS: &str = r#"invalid value for "seconds" - must be a positive integer"#;
pub(crate) const SECONDS_WITH_DEBUG: &str = "seconds and debug params are incompatible";
pub(crate) const SECONDS_UNSUPPORTED: &str = r#""seconds" parameter is not supported for this profile type"#;

/// The first value of `name` in a raw query string, percent-decoded.
pub(crate) fn first(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `seconds`: missing means 30; anything but a whole number from 1 to
/// `max` is an error whose text is the 400 body.
pub(crate) fn seconds(query: Option<&str>, max: u64) -> Result<Duration, String> {
    let Some(v) = first(query, "seconds") else { return Ok(Duration::from_secs(DEFAULT_SECONDS.min(max))) };
    parse_seconds(&v, max).map(Duration::from_secs)
}

pub(crate) fn parse_seconds(v: &str, max: u64) -> Result<u64, String> {
    let n: u64 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| BAD_SECONDS.to_string())?;
    if n > max {
        return Err(format!(
            r#"invalid value for "seconds" - must be at most {max} (HOTPROF_HTTP_MAX_SECONDS)"#
        ));
    }
    Ok(n)
}

/// `debug`: 0 (missing), 1 or 2.
pub(crate) fn debug(query: Option<&str>) -> Result<u8, String> {
    match first(query, "debug").as_deref() {
        None | Some("0") => Ok(0),
        Some("1") => Ok(1),
        Some("2") => Ok(2),
        Some(_) => Err(r#"invalid value for "debug" - must be 0, 1 or 2"#.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_is_decoded() {
        assert_eq!(first(Some("seconds=5&seconds=9"), "seconds").as_deref(), Some("5"));
        assert_eq!(first(Some("a=1&seconds=%32"), "seconds").as_deref(), Some("2"));
        assert_eq!(first(Some("a=1"), "seconds"), None);
        assert_eq!(first(None, "seconds"), None);
        assert_eq!(first(Some("seconds"), "seconds").as_deref(), Some(""));
    }

    #[test]
    fn seconds_values() {
        assert_eq!(seconds(None, 300), Ok(Duration::from_secs(30)));
        assert_eq!(seconds(Some("gc=1"), 300), Ok(Duration::from_secs(30)));
        assert_eq!(seconds(Some("seconds=2"), 300), Ok(Duration::from_secs(2)));
        assert_eq!(seconds(Some("seconds=2&seconds=0"), 300), Ok(Duration::from_secs(2)));
        assert_eq!(seconds(Some("seconds=300"), 300), Ok(Duration::from_secs(300)));
        for bad in ["0", "-1", "abc", "", "1.5", " 3", "99999999999999999999999", "1e3", "0x10"] {
            assert_eq!(parse_seconds(bad, 300), Err(BAD_SECONDS.to_string()), "{bad:?}");
        }
        let over = parse_seconds("301", 300).unwrap_err();
        assert!(over.starts_with(r#"invalid value for "seconds" - must be at most 300"#), "{over}");
        assert_eq!(seconds(None, 10), Ok(Duration::from_secs(10)), "the default respects the maximum");
    }

    #[test]
    fn debug_values() {
        assert_eq!(debug(None), Ok(0));
        assert_eq!(debug(Some("debug=2&debug=7")), Ok(2));
        for bad in ["debug=3", "debug=-1", "debug=x", "debug=", "debug=01"] {
            assert!(debug(Some(bad)).is_err(), "{bad}");
        }
    }
}
