//! Parsing and validation of the arguments of `#[hotprof::main(...)]`.
//!
//! Every argument is `name = literal`. Errors about one argument (unknown
//! name, wrong value, repeat) are collected and parsing goes on at the next
//! comma, so the user sees all of them at once; only tokens that cannot start
//! an argument at all stop the parse.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Lit, Token};

use crate::errors::Errors;

mod kw {
    syn::custom_keyword!(dir);
    syn::custom_keyword!(enabled);
}

/// The valid arguments, as messages list them.
const VALID: &str = "`#[hotprof::main]` takes `dir = \"<folder>\"` and `enabled = true|false`";

/// An example `dir`, as messages show it.
const DIR_EXAMPLE: &str = "`dir = \"/var/tmp/hotprof\"`";

/// The argument names.
const NAMES: [&str; 2] = ["dir", "enabled"];

/// Names users reach for, and the argument they mean.
const ALIASES: [(&str, &str); 7] = [
    ("directory", "dir"),
    ("folder", "dir"),
    ("path", "dir"),
    ("out_dir", "dir"),
    ("output_dir", "dir"),
    ("enable", "enabled"),
    ("on", "enabled"),
];

/// The validated arguments of one `#[hotprof::main(...)]`, each with the
/// span of the literal the user wrote.
#[derive(Debug, Default)]
pub(crate) struct MainArgs {
    /// `dir = "..."`: the folder for dumps and profiles.
    pub(crate) dir: Option<(String, Span)>,
    /// `enabled = true|false`: whether capture starts on.
    pub(crate) enabled: Option<(bool, Span)>,
}

impl Parse for MainArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = MainArgs::default();
        let mut errors = Errors::default();
        let parsed = args.parse_each(input, &mut errors);
        errors.take(parsed);
        errors.finish()?;
        Ok(args)
    }
}

impl MainArgs {
    /// Parses `arg, arg, ...`, pushing errors about single arguments to
    /// `errors`; returns `Err` only for tokens that cannot start an argument.
    fn parse_each(&mut self, input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<()> {
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::dir) {
                let arg = input.parse::<Arg>()?;
                errors.take(self.set_dir(&arg));
            } else if lookahead.peek(kw::enabled) {
                let arg = input.parse::<Arg>()?;
                errors.take(self.set_enabled(&arg));
            } else if input.peek(Ident::peek_any) {
                let arg = input.parse::<Arg>()?;
                errors.push(unknown(&arg.name));
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(())
    }

    fn set_dir(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.dir.is_some() {
            return Err(repeated(arg));
        }
        let Some(Lit::Str(lit)) = arg.literal(DIR_EXAMPLE)? else {
            let message = format!("`dir` takes a string literal naming a folder, e.g. {DIR_EXAMPLE}");
            return Err(syn::Error::new_spanned(&arg.value, message));
        };
        if !lit.suffix().is_empty() {
            let message = format!("`dir` takes a plain string literal: remove the suffix `{}`", lit.suffix());
            return Err(syn::Error::new_spanned(&lit, message));
        }
        let dir = lit.value();
        if dir.trim().is_empty() {
            let message = format!(
                "`dir` is empty: name a folder, e.g. {DIR_EXAMPLE}, or leave `dir` out to use the default"
            );
            return Err(syn::Error::new_spanned(&lit, message));
        }
        self.dir = Some((dir, lit.span()));
        Ok(())
    }

    fn set_enabled(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.enabled.is_some() {
            return Err(repeated(arg));
        }
        match arg.literal("`enabled = true` or `enabled = false`")? {
            Some(Lit::Bool(lit)) => {
                self.enabled = Some((lit.value, lit.span));
                Ok(())
            }
            Some(Lit::Str(lit)) if matches!(lit.value().as_str(), "true" | "false") => {
                let message = format!(
                    "`enabled` takes a bool, not a string: write `enabled = {}` without quotes",
                    lit.value()
                );
                Err(syn::Error::new_spanned(&lit, message))
            }
            _ => Err(syn::Error::new_spanned(
                &arg.value,
                "`enabled` takes `true` or `false`, e.g. `enabled = false`",
            )),
        }
    }
}

/// One argument as written: a name, `=`, and the tokens up to the next
/// top-level comma.
struct Arg {
    name: Ident,
    eq: Option<Token![=]>,
    /// Everything after `=` (after the name if `=` is missing) up to the
    /// next top-level comma.
    value: TokenStream,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = Ident::parse_any(input)?;
        let eq = input.parse()?;
        let mut value = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            value.extend([input.parse::<TokenTree>()?]);
        }
        Ok(Arg { name, eq, value })
    }
}

impl Arg {
    /// The value if it is one literal, `None` if it is anything else; an
    /// error showing `example` when the value or the `=` is missing.
    fn literal(&self, example: &str) -> syn::Result<Option<Lit>> {
        if self.eq.is_none() || self.value.is_empty() {
            let (name, eq, value) = (&self.name, &self.eq, &self.value);
            let message = if eq.is_none() && !value.is_empty() {
                format!("`{name}` needs `=` before its value, e.g. {example}")
            } else {
                format!("`{name}` needs a value, e.g. {example}")
            };
            return Err(syn::Error::new_spanned(quote!(#name #eq #value), message));
        }
        Ok(syn::parse2::<Lit>(self.value.clone()).ok())
    }
}

/// The error for an argument given a second time, at the second one.
fn repeated(arg: &Arg) -> syn::Error {
    let (name, eq, value) = (&arg.name, &arg.eq, &arg.value);
    let message = format!("`{name}` is given twice: keep one `{name} = ...`");
    syn::Error::new_spanned(quote!(#name #eq #value), message)
}

/// The error for an argument name that does not exist, with a suggestion.
fn unknown(name: &Ident) -> syn::Error {
    let written = name.unraw().to_string();
    let message = match suggest(&written) {
        Some(meant) => format!("unknown argument `{written}`: did you mean `{meant}`? {VALID}"),
        None => format!("unknown argument `{written}`: {VALID}"),
    };
    syn::Error::new_spanned(name, message)
}

/// The argument a misspelled or guessed `name` most likely means.
fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    if let Some(&known) = NAMES.iter().find(|known| **known == lower) {
        return Some(known);
    }
    if let Some(&(_, meant)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
        return Some(meant);
    }
    // As rustc's "did you mean": at most one edit per three characters.
    let limit = lower.chars().count().max(3) / 3;
    NAMES
        .iter()
        .map(|known| (edit_distance(&lower, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost one (`dri` -> `dir` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    //! Plain checks that return `Err` instead of panicking, like the macro.

    use super::*;

    /// `Err` describing the difference when `found != want`.
    fn same<T: PartialEq + std::fmt::Debug>(found: T, want: T) -> Result<(), String> {
        if found == want { Ok(()) } else { Err(format!("found {found:?}, want {want:?}")) }
    }

    /// The messages of every error `tokens` produce, in order.
    fn messages(tokens: TokenStream) -> Vec<String> {
        match syn::parse2::<MainArgs>(tokens) {
            Ok(_) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    /// `Err` unless each message contains the matching part of `want`.
    fn contains_each(found: &[String], want: &[&str]) -> Result<(), String> {
        same(found.len(), want.len())?;
        for (message, part) in found.iter().zip(want) {
            if !message.contains(part) {
                return Err(format!("{message:?} does not contain {part:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() -> Result<(), String> {
        same(edit_distance("dri", "dir"), 1)?;
        same(edit_distance("dir", "dir"), 0)?;
        same(edit_distance("", "dir"), 3)?;
        same(edit_distance("enable", "enabled"), 1)?;
        same(edit_distance("enabeld", "enabled"), 1)?;
        same(edit_distance("kitten", "sitting"), 3)
    }

    #[test]
    fn suggests_close_names_and_aliases() -> Result<(), String> {
        same(suggest("dri"), Some("dir"))?;
        same(suggest("DIR"), Some("dir"))?;
        same(suggest("di"), Some("dir"))?;
        same(suggest("enabeld"), Some("enabled"))?;
        same(suggest("enable"), Some("enabled"))?;
        same(suggest("directory"), Some("dir"))?;
        same(suggest("path"), Some("dir"))?;
        same(suggest("threshold"), None)?;
        same(suggest("x"), None)
    }

    #[test]
    fn accepts_every_argument() -> Result<(), String> {
        let args = syn::parse2::<MainArgs>(quote!(dir = "/var/tmp/hp", enabled = false,))
            .map_err(|e| e.to_string())?;
        same(args.dir.map(|(dir, _)| dir).as_deref(), Some("/var/tmp/hp"))?;
        same(args.enabled.map(|(on, _)| on), Some(false))?;
        let args = syn::parse2::<MainArgs>(quote!()).map_err(|e| e.to_string())?;
        same((args.dir.is_none(), args.enabled.is_none()), (true, true))
    }

    #[test]
    fn reports_every_bad_argument() -> Result<(), String> {
        let found = messages(quote!(dri = "x", enabled = "yes", dir = 5, enabled));
        contains_each(
            &found,
            &[
                "did you mean `dir`?",
                "`enabled` takes `true` or `false`",
                "`dir` takes a string literal",
                "`enabled` needs a value",
            ],
        )
    }

    #[test]
    fn rejects_repeats_and_empty_dir() -> Result<(), String> {
        contains_each(&messages(quote!(dir = "a", dir = "b")), &["given twice"])?;
        contains_each(&messages(quote!(dir = " ")), &["`dir` is empty"])
    }

    #[test]
    fn stops_at_tokens_that_start_no_argument() -> Result<(), String> {
        let found = messages(quote!(dri = 1, "x", dir = 5));
        contains_each(&found, &["unknown argument `dri`", "expected `dir` or `enabled`"])
    }
}
