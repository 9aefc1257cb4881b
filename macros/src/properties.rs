//! Property tests: whatever the arguments of `#[hotprof::main]` and
//! `#[hotprof::profile]` say, the macro answers with code or spanned
//! errors (never a panic) and keeps the user's function.

use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;

/// Argument text built from the pieces users type, in any order.
fn argument_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "dir",
        "enabled",
        "http",
        "name",
        "threshold",
        "=",
        ",",
        "\"x\"",
        "\"200ms\"",
        "\"1.5s\"",
        "\":6060\"",
        "\"\"",
        "true",
        "false",
        "6060",
        "200ms",
        "1.5",
        "::",
        "a",
        "\"µs\"",
        "(",
        ")",
        "-",
        "r#dir",
        "'c'",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|p| p.join(" "))
}

fn tokens(text: &str) -> Option<TokenStream> {
    TokenStream::from_str(text).ok()
}

proptest! {
    #[test]
    fn main_answers_any_arguments(args in argument_text()) {
        let Some(args) = tokens(&args) else { return Ok(()) };
        let item = tokens("fn main() { let user_code = 1; }").unwrap_or_default();
        let out = crate::main::expand(args, item).to_string();
        prop_assert!(out.contains("user_code"), "the user's function is kept: {out}");
    }

    #[test]
    fn profile_answers_any_arguments(args in argument_text()) {
        let Some(args) = tokens(&args) else { return Ok(()) };
        let item = tokens("fn handle(x: u32) -> u32 { x + 1 }").unwrap_or_default();
        let out = crate::profile::expand(args, item).to_string();
        prop_assert!(out.contains("handle"), "the user's function is kept: {out}");
    }

    #[test]
    fn any_threshold_text_is_a_duration_or_an_error(text in "\\PC{0,16}") {
        let _ = crate::profile::parse_threshold(&text);
    }
}
