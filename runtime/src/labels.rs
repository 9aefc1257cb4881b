//! Sample labels: the `# labels: {...}` line of Go's `debug=1` text profiles (goroutine,
//! threadcreate, heap), in the JSON shape Go prints, and the scope and dye
//! labels of CPU, wall and heap samples.

use std::fmt::Write as _;

/// `# labels: {"key":"value",...}`, the pairs in order.
pub(crate) fn line(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
    format!("# labels: {{{}}}", fields.join(","))
}

/// The labels a sample carries after its thread: `scope` (the innermost
/// scope of stack node `node`) and `dye` (tag id `dye`), each when there is one.
pub(crate) fn scope_and_dye(node: u32, dye: u32) -> impl Iterator<Item = (&'static str, String)> {
    let scope = crate::scope::scope_name(node).map(|s| ("scope", s.to_string()));
    let dye = crate::dye::name(dye).map(|d| ("dye", d.to_string()));
    scope.into_iter().chain(dye)
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
