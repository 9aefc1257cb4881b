//! Plain checks for the unit tests: they return `Err` describing what is
//! wrong instead of panicking, like the macro.

use proc_macro2::TokenStream;
use syn::parse::Parse;

/// `Err` describing the difference when `found != want`.
pub(crate) fn same<T: PartialEq + std::fmt::Debug>(found: T, want: T) -> Result<(), String> {
    if found == want { Ok(()) } else { Err(format!("found {found:?}, want {want:?}")) }
}

/// The messages of every error that parsing `tokens` as a `T` produces, in
/// order; none when it parses.
pub(crate) fn messages<T: Parse>(tokens: TokenStream) -> Vec<String> {
    match syn::parse2::<T>(tokens) {
        Ok(_) => Vec::new(),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// `Err` unless each message contains the matching part of `want`.
pub(crate) fn contains_each(found: &[String], want: &[&str]) -> Result<(), String> {
    same(found.len(), want.len())?;
    for (message, part) in found.iter().zip(want) {
        if !message.contains(part) {
            return Err(format!("{message:?} does not contain {part:?}"));
        }
    }
    Ok(())
}

/// `Err` unless the text of `found` has each of `parts`, in order.
pub(crate) fn in_order(found: &TokenStream, parts: &[&str]) -> Result<(), String> {
    let text = found.to_string();
    let mut rest = text.as_str();
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return Err(format!("{part:?} missing or out of order in {text}")),
        }
    }
    Ok(())
}

/// `Err` if the text of `found` has `part`; `why` says what that would mean.
pub(crate) fn lacks(found: &TokenStream, part: &str, why: &str) -> Result<(), String> {
    let text = found.to_string();
    match text.contains(part) {
        false => Ok(()),
        true => Err(format!("{why}: {text}")),
    }
}
