//! The item under `#[hotprof::main]`: checked to be a `fn main` that hotprof
//! can install itself into.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Attribute;

use crate::errors::Errors;
use crate::fn_item::{FnItem, describe, is_hotprof};

/// How to install hotprof into a valid `fn main`.
pub(crate) enum Plan {
    /// A sync `fn main`: put the guard at the top of its body.
    InsertGuard,
    /// An `async fn main` whose runtime attribute (e.g. `#[tokio::main]`) is
    /// at this index of its attributes: move `#[hotprof::main]` just below
    /// it, so the runtime expands first and hotprof then sees a sync `fn`.
    BelowRuntime(usize),
}

/// Parses `item`; the error says what the item is when it is no `fn`.
pub(crate) fn parse(item: TokenStream) -> syn::Result<FnItem> {
    FnItem::parse(item.clone()).map_err(|error| match describe(item) {
        Some((what, tokens)) => {
            let message = format!(
                "`#[hotprof::main]` goes on the program's `fn main`, not on {what}: move it to `fn main() {{ ... }}`"
            );
            syn::Error::new_spanned(tokens, message)
        }
        None => error,
    })
}

/// Checks that this is a `fn main` hotprof can install into, reporting
/// every problem at once.
pub(crate) fn check(main_fn: &FnItem) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let sig = main_fn.sig();
    if sig.ident != "main" {
        let message = format!(
            "`#[hotprof::main]` goes on the program's `fn main`, not on `fn {}`: move it to `fn main`",
            sig.ident
        );
        errors.push(syn::Error::new_spanned(&sig.ident, message));
    }
    // rustc accepts a `const fn main`, but the guard cannot run in one.
    // `unsafe` and `extern` mains are left to rustc, whose E0580 names
    // them exactly; this attribute makes them no worse.
    if let Some(constness) = &sig.constness {
        let message =
            "`#[hotprof::main]` installs hotprof at run time, so `fn main` cannot be `const`: remove `const`";
        errors.push(syn::Error::new_spanned(constness, message));
    }
    if !sig.generics.params.is_empty() {
        let message = "`fn main` cannot be generic: remove the generic parameters";
        errors.push(syn::Error::new_spanned(&sig.generics, message));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        let message = "`fn main` cannot have a `where` clause: remove it";
        errors.push(syn::Error::new_spanned(where_clause, message));
    }
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        let (inputs, variadic) = (&sig.inputs, &sig.variadic);
        let message =
            "`fn main` takes no parameters: remove them and read the command line with `std::env::args()`";
        errors.push(syn::Error::new_spanned(quote!(#inputs #variadic), message));
    }
    for (_, attr) in main_fn.outer_attrs().filter(|(_, attr)| is_hotprof(attr, "main")) {
        let message = "`#[hotprof::main]` is applied twice: remove this one";
        errors.push(syn::Error::new_spanned(attr, message));
    }
    let runtime = main_fn.outer_attrs().find(|(_, attr)| is_runtime_main(attr));
    let plan = match (&sig.asyncness, runtime) {
        (None, _) => Plan::InsertGuard,
        (Some(_), Some((index, _))) => Plan::BelowRuntime(index),
        (Some(asyncness), None) => {
            let message = "an `async fn main` needs a runtime to run it: add e.g. `#[tokio::main]` on the line below `#[hotprof::main]`";
            errors.push(syn::Error::new_spanned(asyncness, message));
            Plan::InsertGuard
        }
    };
    errors.finish()?;
    Ok(plan)
}

/// A runtime's entry attribute, by the last segment of its path:
/// `#[tokio::main]`, `#[actix_web::main]`, `#[async_std::main]`, ...
fn is_runtime_main(attr: &Attribute) -> bool {
    let last = attr.path().segments.last();
    last.is_some_and(|segment| segment.ident == "main") && !is_hotprof(attr, "main")
}
