//! What every attribute's arguments share: the `name = value, ...` skeleton
//! that fills an [`AttrArgs`] one argument at a time, and the errors common
//! to all (a missing value, a repeat, an unknown name, a suffixed string).
//!
//! Every argument is `name = literal`. Errors about one argument are
//! collected and parsing goes on at the next comma, so the user sees all of
//! them at once; only tokens that cannot start an argument at all stop the
//! parse.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::ext::IdentExt as _;
use syn::parse::{Lookahead1, Parse, ParseStream};
use syn::{Ident, Lit, LitStr, Token};

use crate::errors::Errors;
use crate::suggest::suggest;

/// Sets one argument from what the user wrote; `Err` when the value is
/// wrong or the argument was already given.
pub(crate) type Setter<T> = fn(&mut T, &Arg) -> syn::Result<()>;

/// The validated arguments of one attribute, filled in one argument at a
/// time by [`parse`].
pub(crate) trait AttrArgs: Default {
    /// The arguments this attribute takes, as its messages name them.
    const KNOWN: Known;

    /// The setter for the argument at `lookahead`, or `None` for any other
    /// token. Peek each name with its `custom_keyword!`, in the order of
    /// [`Known::names`], so that "expected one of ..." lists them all.
    fn setter(lookahead: &Lookahead1<'_>) -> Option<Setter<Self>>;
}

/// Parses `arg, arg, ...` into a `T`, reporting every bad argument at once.
pub(crate) fn parse<T: AttrArgs>(input: ParseStream<'_>) -> syn::Result<T> {
    let mut args = T::default();
    let mut errors = Errors::default();
    let parsed = parse_each(&mut args, input, &mut errors);
    errors.take(parsed);
    errors.finish()?;
    Ok(args)
}

/// Parses `arg, arg, ...` into `args`, pushing errors about single arguments
/// to `errors`; unknown names become spanned errors. Returns `Err` only for
/// tokens that cannot start an argument.
fn parse_each<T: AttrArgs>(args: &mut T, input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<()> {
    while !input.is_empty() {
        let lookahead = input.lookahead1();
        if let Some(set) = T::setter(&lookahead) {
            let arg = input.parse::<Arg>()?;
            errors.take(set(args, &arg));
        } else if input.peek(Ident::peek_any) {
            let arg = input.parse::<Arg>()?;
            errors.push(T::KNOWN.unknown(&arg.name));
        } else {
            return Err(lookahead.error());
        }
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(())
}

/// The arguments one attribute takes, as its messages name them.
pub(crate) struct Known {
    /// The valid arguments as one sentence, ending every "unknown argument"
    /// message: "`#[hotprof::main]` takes ...".
    pub(crate) valid: &'static str,
    /// The argument names.
    pub(crate) names: &'static [&'static str],
    /// Names users reach for, and the argument they mean.
    pub(crate) aliases: &'static [(&'static str, &'static str)],
}

impl Known {
    /// The error for an argument name that does not exist, with a suggestion.
    pub(crate) fn unknown(&self, name: &Ident) -> syn::Error {
        let written = name.unraw().to_string();
        let valid = self.valid;
        let message = match self.suggest(&written) {
            Some(meant) => format!("unknown argument `{written}`: did you mean `{meant}`? {valid}"),
            None => format!("unknown argument `{written}`: {valid}"),
        };
        syn::Error::new_spanned(name, message)
    }

    /// The argument a misspelled or guessed `written` most likely means.
    pub(crate) fn suggest(&self, written: &str) -> Option<&'static str> {
        suggest(written, self.names, self.aliases)
    }
}

/// One argument as written: a name, `=`, and the tokens up to the next
/// top-level comma.
pub(crate) struct Arg {
    pub(crate) name: Ident,
    eq: Option<Token![=]>,
    /// Everything after `=` (after the name if `=` is missing) up to the
    /// next top-level comma.
    pub(crate) value: TokenStream,
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
    pub(crate) fn literal(&self, example: &str) -> syn::Result<Option<Lit>> {
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

    /// `Err` when the string `lit` has a suffix (`"..."_x`): no argument
    /// takes one.
    pub(crate) fn plain(&self, lit: &LitStr) -> syn::Result<()> {
        if lit.suffix().is_empty() {
            return Ok(());
        }
        let message =
            format!("`{}` takes a plain string literal: remove the suffix `{}`", self.name, lit.suffix());
        Err(syn::Error::new_spanned(lit, message))
    }

    /// The error for an argument given a second time, at the second one.
    pub(crate) fn repeated(&self) -> syn::Error {
        let (name, eq, value) = (&self.name, &self.eq, &self.value);
        let message = format!("`{name}` is given twice: keep one `{name} = ...`");
        syn::Error::new_spanned(quote!(#name #eq #value), message)
    }
}
