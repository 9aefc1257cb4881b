//! Code generation for `#[hotprof::profile]`.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::visit_mut::{self, VisitMut};
use syn::{Lifetime, LitStr, ReturnType, Signature, Token, Type, TypeInfer};

use super::args::ProfileArgs;
use super::item::{self, Shape};
use super::{future_fn, returns};
use crate::errors::{both, or_untouched};

/// Expands `#[hotprof::profile(args)] item`. On error: the errors, plus the
/// user's item untouched so that IDEs keep working.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    or_untouched(try_expand(args, item.clone()), item)
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let parsed = syn::parse2::<ProfileArgs>(args);
    let profiled = item::parse(item).and_then(|profiled| {
        let shape = item::check(&profiled)?;
        Ok((profiled, shape))
    });
    let (args, (mut profiled, shape)) = both(parsed, profiled)?;
    let scope = scope(&args, &profiled.sig().ident);
    match shape {
        Shape::Sync => {
            let guard = Ident::new("__hotprof_scope", Span::mixed_site());
            profiled.insert_first(quote!(let #guard = ::hotprof::__private::enter(#scope);))?;
        }
        Shape::Async => {
            let fake_return = fake_return(profiled.sig());
            let moves = future_fn::desugar(profiled.sig_mut());
            // The async block is spanned at the body, so that rustc's notes
            // about it ("this function should return `Result`") point there.
            // The inner braces are the macro's: were they at the body, rustc
            // would tell the user to remove them (`unused_braces`).
            let body_span = profiled.body_span();
            profiled.wrap_body(|body| {
                let body = quote!({ #body });
                let future = quote_spanned!(body_span=> async move { #moves #fake_return #body });
                quote!(::hotprof::__private::instrument(#scope, #future))
            })?;
        }
        Shape::ReturnsFuture => {
            let label = Lifetime::new("'__hotprof_body", Span::mixed_site());
            let has_returns = profiled.block_mut().is_some_and(|block| returns::into_breaks(block, &label));
            let label = has_returns.then(|| quote!(#label:));
            profiled.wrap_body(|body| quote!(::hotprof::__private::instrument(#scope, #label { #body })))?;
        }
    }
    Ok(profiled.into_token_stream())
}

/// `{ static __HOTPROF_SCOPE: Scope = ...; &__HOTPROF_SCOPE }`: the function's
/// scope, built at compile time. The block keeps the static's name out of the
/// user's code; a static in a generic function is one for all its
/// instantiations.
fn scope(args: &ProfileArgs, ident: &Ident) -> TokenStream {
    let scope = Ident::new("__HOTPROF_SCOPE", Span::mixed_site());
    let name = match &args.name {
        Some((name, span)) => LitStr::new(name, *span).into_token_stream(),
        None => {
            let ident = ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    // At the function's name, `line!()` is the function's line, not the
    // attribute's.
    let location = quote_spanned!(ident.span()=> ::core::file!(), ::core::line!());
    let threshold = Literal::u64_suffixed(args.threshold.map_or(0, |(ns, _)| ns));
    quote! {
        {
            static #scope: ::hotprof::__private::Scope =
                ::hotprof::__private::Scope::new(#name, #location, #threshold);
            &#scope
        }
    }
}

/// An unreachable `return` of the declared type, first in an async fn's
/// block, so that `?` and `return` inside it infer that type as they would
/// in the function itself (as `tracing::instrument` does). Spanned at the
/// return type, so that mismatches point there.
fn fake_return(sig: &Signature) -> TokenStream {
    let (ty, span) = match &sig.output {
        ReturnType::Type(_, ty) => {
            let mut erased = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut erased);
            (erased.into_token_stream(), ty.span())
        }
        ReturnType::Default => (quote!(()), sig.ident.span()),
    };
    // Hygienic, but located at the return type, where rustc's "return type
    // inferred to be ... here" should point.
    let fake = Ident::new("__hotprof_fake_return", Span::mixed_site().located_at(span));
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// Replaces each `impl Trait` in a type with `_`: a `let` cannot name one.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        match ty {
            Type::ImplTrait(impl_trait) => {
                let underscore_token = Token![_](impl_trait.impl_token.span);
                *ty = Type::Infer(TypeInfer { attrs: Vec::new(), underscore_token });
            }
            _ => visit_mut::visit_type_mut(self, ty),
        }
    }
}

#[cfg(test)]
mod tests {
    //! What the expansion looks like, as text; ui-tests check it compiles.

    use super::*;
    use crate::checks::{in_order, lacks};

    const SCOPE: &str = "{ static __HOTPROF_SCOPE : :: hotprof :: __private :: Scope = :: hotprof :: __private :: Scope :: new (";

    #[test]
    fn sync_fn_enters_its_scope_first() -> Result<(), String> {
        let found = expand(
            quote!(threshold = "200ms"),
            quote! {
                /// Docs.
                #[must_use]
                pub fn total<T: Into<u64>>(&self, items: &[T]) -> Result<u64, E> where T: Copy {
                    #![allow(unused)]
                    let sum = add(items)?;
                    Ok(sum)
                }
            },
        );
        in_order(
            &found,
            &[
                "Docs.",
                "# [must_use]",
                "pub fn total < T : Into < u64 > > (& self , items : & [T]) -> Result < u64 , E > where T : Copy {",
                "# ! [allow (unused)]",
                "let __hotprof_scope = :: hotprof :: __private :: enter (",
                SCOPE,
                ":: core :: concat ! (:: core :: module_path ! () , \"::\" , \"total\") ,",
                ":: core :: file ! () , :: core :: line ! () , 200000000u64) ;",
                "& __HOTPROF_SCOPE }) ;",
                "let sum = add (items) ? ;",
                "Ok (sum) }",
            ],
        )
    }

    #[test]
    fn async_fn_instruments_its_body() -> Result<(), String> {
        let found = expand(
            quote!(name = "Cart::checkout"),
            quote! {
                async fn checkout(&self, id: u32) -> Result<impl Display, E> {
                    let cart = self.load(id).await?;
                    Ok(cart)
                }
            },
        );
        in_order(
            &found,
            &[
                "fn checkout (& self , id : u32) -> impl :: core :: future :: Future < Output = Result < impl Display , E > > {",
                ":: hotprof :: __private :: instrument ({",
                "Scope :: new (\"Cart::checkout\" , :: core :: file ! () , :: core :: line ! () , 0u64) ;",
                "& __HOTPROF_SCOPE } , async move {",
                "let _ = & self ;",
                "let id = id ;",
                "if false { let __hotprof_fake_return : Result < _ , E > = loop { } ; return __hotprof_fake_return ; }",
                "{ let cart = self . load (id) . await ? ; Ok (cart) }",
                "}) }",
            ],
        )
    }

    #[test]
    fn async_fn_arguments_move_into_its_one_future() -> Result<(), String> {
        let found = expand(
            quote!(),
            quote!(
                async fn f(mut n: u32, (a, b): (u8, u8), _guard: G) {}
            ),
        );
        in_order(
            &found,
            &[
                "fn f (n : u32 , __hotprof_arg1 : (u8 , u8) , _guard : G) -> impl :: core :: future :: Future < Output = () > {",
                "async move {",
                "let mut n = n ;",
                "let (a , b) = __hotprof_arg1 ;",
                "let _guard = _guard ;",
            ],
        )?;
        lacks(&found, ". await", "one state machine: the future is returned, not awaited")
    }

    #[test]
    fn future_fn_instruments_what_it_returns() -> Result<(), String> {
        let found = expand(
            quote!(),
            quote! {
                fn fetch(&self) -> impl Future<Output = u32> + '_ {
                    if let Some(hit) = self.cached() { return ready(hit); }
                    self.load()
                }
            },
        );
        in_order(
            &found,
            &[
                "fn fetch (& self) -> impl Future < Output = u32 > + '_ {",
                ":: hotprof :: __private :: instrument ({",
                "& __HOTPROF_SCOPE } , '__hotprof_body : {",
                "break '__hotprof_body ready (hit) ;",
                "self . load () }) }",
            ],
        )?;
        lacks(&found, "return", "an early return skips the wrapper")
    }

    #[test]
    fn future_fn_without_returns_has_no_label() -> Result<(), String> {
        let found = expand(
            quote!(),
            quote!(
                fn fetch() -> impl Future<Output = u32> {
                    load()
                }
            ),
        );
        in_order(&found, &["& __HOTPROF_SCOPE } , { load () }) }"])?;
        lacks(&found, "'__hotprof_body", "a label no `break` uses")
    }

    #[test]
    fn unparsable_body_is_still_instrumented() -> Result<(), String> {
        // rustc reports the syntax error; hotprof must not add a second one.
        let found = expand(quote!(), quote!(async fn f() { #![allow(unused)] let port = ; }));
        in_order(
            &found,
            &["# ! [allow (unused)]", ":: hotprof :: __private :: instrument", "let port = ; }"],
        )?;
        lacks(&found, "compile_error", "error added to rustc's own")
    }

    #[test]
    fn errors_come_with_the_item_untouched() -> Result<(), String> {
        let item = quote!(
            const fn answer() -> u32 {
                42
            }
        );
        let found = expand(quote!(threshold = "0ms"), item.clone());
        in_order(&found, &[&item.to_string(), "compile_error !", "compile_error !"])?;
        lacks(&found, "__HOTPROF_SCOPE", "scope added despite the errors")
    }
}
