//! The `# labels: {...}` line of Go's `debug=1` text profiles (goroutine,
//! threadcreate, heap), in the JSON shape Go prints.

use std::fmt::Write as _;

/// `# labels: {"key":"value",...}`, the pairs in order.
pub(crate) fn line(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
    format!("# labels: {{{}}}", fields.join(","))
}

/// A JSON string literal (names are short, but may hold anything).
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_strings() {
        assert_eq!(line(&[("thread_name", "worker-1")]), "# labels: {\"thread_name\":\"worker-1\"}");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(line(&[("thread", "t"), ("scope", "s")]), "# labels: {\"thread\":\"t\",\"scope\":\"s\"}");
    }
}
