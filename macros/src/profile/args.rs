//! Parsing and validation of the arguments of `#[hotprof::profile(...)]`; the
//! skeleton they share with `#[hotprof::main]`'s is in `attr_args.rs`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens as _;
use syn::parse::{Lookahead1, Parse, ParseStream};
use syn::{Lit, Path};

use super::duration;
use crate::attr_args::{self, Arg, AttrArgs, Known, Setter};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(threshold);
}

/// An example `name`, as messages show it.
const NAME_EXAMPLE: &str = "`name = \"Cart::checkout\"`";

/// An example `threshold`, as messages show it.
const THRESHOLD_EXAMPLE: &str = "`threshold = \"200ms\"`";

/// The validated arguments of one `#[hotprof::profile(...)]`, each with the
/// span of the literal the user wrote.
#[derive(Debug, Default)]
pub(crate) struct ProfileArgs {
    /// `name = "..."`: the scope's name in dumps and profiles.
    pub(crate) name: Option<(String, Span)>,
    /// `threshold = "200ms"`, in nanoseconds: calls that take longer are
    /// reported as slow.
    pub(crate) threshold: Option<(u64, Span)>,
}

impl Parse for ProfileArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        attr_args::parse(input)
    }
}

impl AttrArgs for ProfileArgs {
    const KNOWN: Known = Known {
        valid: "`#[hotprof::profile]` takes `name = \"<name>\"` and `threshold = \"<duration>\"`",
        names: &["name", "threshold"],
        aliases: &[
            ("label", "name"),
            ("id", "name"),
            ("span", "name"),
            ("scope", "name"),
            ("slow", "threshold"),
            ("limit", "threshold"),
            ("timeout", "threshold"),
            ("min_duration", "threshold"),
            ("slower_than", "threshold"),
        ],
    };

    fn setter(lookahead: &Lookahead1<'_>) -> Option<Setter<Self>> {
        if lookahead.peek(kw::name) {
            Some(Self::set_name)
        } else if lookahead.peek(kw::threshold) {
            Some(Self::set_threshold)
        } else {
            None
        }
    }
}

impl ProfileArgs {
    fn set_name(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.name.is_some() {
            return Err(arg.repeated());
        }
        let Some(Lit::Str(lit)) = arg.literal(NAME_EXAMPLE)? else {
            let message = match syn::parse2::<Path>(arg.value.clone()) {
                // `name = Cart::checkout`: the user meant the text.
                Ok(path) => format!(
                    "`name` takes a string literal: write `name = \"{}\"` with quotes",
                    path.to_token_stream().to_string().replace(' ', "")
                ),
                Err(_) => format!("`name` takes a string literal, e.g. {NAME_EXAMPLE}"),
            };
            return Err(syn::Error::new_spanned(&arg.value, message));
        };
        arg.plain(&lit)?;
        let name = lit.value();
        if name.trim().is_empty() {
            let message = format!(
                "`name` is empty: write a name, e.g. {NAME_EXAMPLE}, or leave `name` out to use the function's path"
            );
            return Err(syn::Error::new_spanned(&lit, message));
        }
        self.name = Some((name, lit.span()));
        Ok(())
    }

    fn set_threshold(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.threshold.is_some() {
            return Err(arg.repeated());
        }
        let lit = match arg.literal(THRESHOLD_EXAMPLE)? {
            Some(Lit::Str(lit)) => lit,
            Some(lit @ (Lit::Int(_) | Lit::Float(_))) => return Err(unquoted(&arg.value, &lit)),
            _ => {
                let message =
                    format!("`threshold` takes a string: {}, e.g. {THRESHOLD_EXAMPLE}", duration::FORM);
                return Err(syn::Error::new_spanned(&arg.value, message));
            }
        };
        arg.plain(&lit)?;
        match duration::parse(&lit.value()) {
            Ok(ns) => {
                self.threshold = Some((ns, lit.span()));
                Ok(())
            }
            Err(error) => Err(syn::Error::new_spanned(&lit, error)),
        }
    }
}

/// The error for a number where `threshold` takes a string: `200ms` or
/// `200` instead of `"200ms"`.
fn unquoted(value: &TokenStream, lit: &Lit) -> syn::Error {
    let text = lit.to_token_stream().to_string();
    let message = match duration::parse(&text) {
        Ok(_) => format!("`threshold` takes a string: write `threshold = \"{text}\"` with quotes"),
        Err(duration::DurationError::NoUnit { .. }) => {
            format!("`threshold` takes a string with a unit: write e.g. `threshold = \"{text}ms\"`")
        }
        Err(_) => format!("`threshold` takes a string: {}, e.g. {THRESHOLD_EXAMPLE}", duration::FORM),
    };
    syn::Error::new_spanned(value, message)
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::checks::{contains_each, same};

    /// The messages of every error `tokens` produce, in order.
    fn messages(tokens: TokenStream) -> Vec<String> {
        crate::checks::messages::<ProfileArgs>(tokens)
    }

    #[test]
    fn accepts_every_argument() -> Result<(), String> {
        let args = syn::parse2::<ProfileArgs>(quote!(name = "Cart::checkout", threshold = "200ms",))
            .map_err(|e| e.to_string())?;
        same(args.name.map(|(name, _)| name).as_deref(), Some("Cart::checkout"))?;
        same(args.threshold.map(|(ns, _)| ns), Some(200_000_000))?;
        let args = syn::parse2::<ProfileArgs>(quote!(threshold = "2m")).map_err(|e| e.to_string())?;
        same(args.threshold.map(|(ns, _)| ns), Some(120_000_000_000))?;
        let args = syn::parse2::<ProfileArgs>(quote!()).map_err(|e| e.to_string())?;
        same((args.name.is_none(), args.threshold.is_none()), (true, true))
    }

    #[test]
    fn suggests_close_names_and_aliases() -> Result<(), String> {
        same(ProfileArgs::KNOWN.suggest("threshhold"), Some("threshold"))?;
        same(ProfileArgs::KNOWN.suggest("Threshold"), Some("threshold"))?;
        same(ProfileArgs::KNOWN.suggest("timeout"), Some("threshold"))?;
        same(ProfileArgs::KNOWN.suggest("label"), Some("name"))?;
        same(ProfileArgs::KNOWN.suggest("nmae"), Some("name"))?;
        same(ProfileArgs::KNOWN.suggest("dir"), None)
    }

    #[test]
    fn reports_every_bad_argument() -> Result<(), String> {
        let found = messages(quote!(threshhold = "1s", name = 5, threshold = 200ms, name));
        contains_each(
            &found,
            &[
                "did you mean `threshold`?",
                "`name` takes a string literal, e.g.",
                "write `threshold = \"200ms\"` with quotes",
                "`name` needs a value",
            ],
        )
    }

    #[test]
    fn explains_values_of_the_wrong_kind() -> Result<(), String> {
        contains_each(
            &messages(quote!(name = Cart::checkout)),
            &["write `name = \"Cart::checkout\"` with quotes"],
        )?;
        contains_each(&messages(quote!(threshold = 200)), &["`threshold = \"200ms\"`"])?;
        contains_each(&messages(quote!(threshold = 2m)), &["write `threshold = \"2m\"` with quotes"])?;
        contains_each(&messages(quote!(threshold = 1.5s)), &["`threshold` takes a string: a whole number"])?;
        contains_each(&messages(quote!(threshold = true)), &["`threshold` takes a string: a whole number"])
    }

    #[test]
    fn rejects_repeats_empty_names_and_bad_durations() -> Result<(), String> {
        contains_each(&messages(quote!(name = "a", name = "b")), &["given twice"])?;
        contains_each(&messages(quote!(threshold = "1s", threshold = "2s")), &["given twice"])?;
        contains_each(&messages(quote!(name = " ")), &["`name` is empty"])?;
        contains_each(&messages(quote!(name = "a"_b)), &["remove the suffix `_b`"])?;
        contains_each(&messages(quote!(threshold = "1.5s")), &["`threshold = \"1500ms\"`"])
    }

    #[test]
    fn stops_at_tokens_that_start_no_argument() -> Result<(), String> {
        let found = messages(quote!(nmae = "x", "200ms", name = 5));
        contains_each(&found, &["unknown argument `nmae`", "expected `name` or `threshold`"])
    }
}
