//! The item under `#[hotprof::profile]`: checked to be a `fn` with a body
//! that can be timed at run time, and sorted by what its call covers.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, ReturnType, Signature, Token, Type, TypeParamBound, Visibility};

use crate::errors::Errors;
use crate::fn_item::{FnItem, describe, is_hotprof};

/// What a call of the function is, and so what its scope covers.
#[derive(Debug, PartialEq)]
pub(crate) enum Shape {
    /// A plain call: the scope covers it from the first statement until the
    /// function returns or unwinds.
    Sync,
    /// An `async fn`: the scope covers its future, from the first poll until
    /// it completes or is dropped.
    Async,
    /// A sync `fn` that returns `impl Future`: the scope covers the future
    /// it returns, not the call that builds it.
    ReturnsFuture,
}

/// Parses `item`; the error says what the item is when it is no `fn` with a
/// body.
pub(crate) fn parse(item: TokenStream) -> syn::Result<FnItem> {
    FnItem::parse(item.clone()).map_err(|error| {
        if let Ok(bodiless) = syn::parse2::<BodilessFn>(item.clone()) {
            let (fn_token, ident) = (&bodiless.sig.fn_token, &bodiless.sig.ident);
            let message = format!(
                "`#[hotprof::profile]` times a function's body, and `fn {ident}` has none: put the attribute on `fn {ident}` in each `impl` instead"
            );
            return syn::Error::new_spanned(quote!(#fn_token #ident), message);
        }
        match describe(item) {
            Some((what, tokens)) => {
                let message = format!(
                    "`#[hotprof::profile]` goes on a `fn` with a body, not on {what}: put it on each `fn` you want to profile"
                );
                syn::Error::new_spanned(tokens, message)
            }
            None => error,
        }
    })
}

/// Checks that `profiled` can be timed at run time, reporting every problem
/// at once, and says what its call covers.
pub(crate) fn check(profiled: &FnItem) -> syn::Result<Shape> {
    let mut errors = Errors::default();
    let sig = profiled.sig();
    if let Some(constness) = &sig.constness {
        let message = "`#[hotprof::profile]` times calls at run time, so it cannot go on a `const fn`: remove `const`, or profile the function that calls this one";
        errors.push(syn::Error::new_spanned(constness, message));
    }
    for (_, attr) in profiled.outer_attrs().filter(|(_, attr)| is_hotprof(attr, "profile")) {
        let message = "`#[hotprof::profile]` is applied twice: remove this one";
        errors.push(syn::Error::new_spanned(attr, message));
    }
    errors.finish()?;
    Ok(if sig.asyncness.is_some() {
        Shape::Async
    } else if returns_future(sig) {
        Shape::ReturnsFuture
    } else {
        Shape::Sync
    })
}

/// Whether `sig` returns `impl Future<...>`, alone or among other bounds
/// (`impl Future<Output = T> + Send + '_`). Only the syntax is seen: a
/// boxed future or a named future type is not recognised.
fn returns_future(sig: &Signature) -> bool {
    let ReturnType::Type(_, ty) = &sig.output else {
        return false;
    };
    let mut ty = &**ty;
    // `-> (impl Future)`, or a type passed in by a `macro_rules!` macro.
    while let Type::Paren(syn::TypeParen { elem, .. }) | Type::Group(syn::TypeGroup { elem, .. }) = ty {
        ty = elem;
    }
    let Type::ImplTrait(impl_trait) = ty else {
        return false;
    };
    impl_trait.bounds.iter().any(|bound| match bound {
        TypeParamBound::Trait(bound) => bound.path.segments.last().is_some_and(|last| last.ident == "Future"),
        _ => false,
    })
}

/// A `fn` declared without a body: a trait method's declaration, or a
/// function in an `extern` block.
struct BodilessFn {
    sig: Signature,
}

impl Parse for BodilessFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        let sig = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(BodilessFn { sig })
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::checks::same;

    /// The shape of `item`, or the messages of its errors.
    fn shape(item: TokenStream) -> Result<Shape, Vec<String>> {
        let errors = |error: syn::Error| error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>();
        parse(item).and_then(|profiled| check(&profiled)).map_err(errors)
    }

    #[test]
    fn sorts_functions_by_what_a_call_covers() -> Result<(), String> {
        same(
            shape(quote!(
                fn f(&self) -> u32 {
                    1
                }
            )),
            Ok(Shape::Sync),
        )?;
        same(
            shape(quote!(
                pub(crate) unsafe extern "C" fn f() {}
            )),
            Ok(Shape::Sync),
        )?;
        same(
            shape(quote!(
                async fn f(&mut self) {}
            )),
            Ok(Shape::Async),
        )?;
        same(
            shape(quote!(
                async fn f() -> impl Future<Output = u8> {
                    g()
                }
            )),
            Ok(Shape::Async),
        )?;
        same(
            shape(quote!(
                fn f() -> impl Future<Output = u8> {
                    g()
                }
            )),
            Ok(Shape::ReturnsFuture),
        )?;
        same(
            shape(quote!(
                fn f() -> impl Send + std::future::Future<Output = ()> + '_ {
                    g()
                }
            )),
            Ok(Shape::ReturnsFuture),
        )?;
        same(
            shape(quote!(
                fn f() -> (impl Future<Output = ()>) {
                    g()
                }
            )),
            Ok(Shape::ReturnsFuture),
        )?;
        same(
            shape(quote!(
                fn f() -> impl Iterator<Item = u8> {
                    g()
                }
            )),
            Ok(Shape::Sync),
        )?;
        same(
            shape(quote!(
                fn f() -> Pin<Box<dyn Future<Output = ()>>> {
                    g()
                }
            )),
            Ok(Shape::Sync),
        )?;
        // A body syn cannot parse is rustc's to report; the signature decides.
        same(shape(quote!(async fn f() { let x = ; })), Ok(Shape::Async))
    }

    #[test]
    fn rejects_what_cannot_be_timed() -> Result<(), String> {
        let first =
            |item| shape(item).err().and_then(|messages| messages.into_iter().next()).unwrap_or_default();
        same(
            first(quote!(
                const fn f() {}
            ))
            .contains("cannot go on a `const fn`"),
            true,
        )?;
        same(
            first(quote!(
                fn area(&self) -> f64;
            ))
            .contains("`fn area` has none"),
            true,
        )?;
        same(
            first(quote!(
                struct S;
            ))
            .contains("not on a struct"),
            true,
        )?;
        same(first(quote!(impl S { fn f() {} })).contains("not on an impl block"), true)?;
        same(
            first(quote!(
                #[hotprof::profile]
                fn f() {}
            ))
            .contains("applied twice"),
            true,
        )
    }
}
