//! Code generation for `#[hotprof::main]`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::{LitBool, LitStr};

use super::args::MainArgs;
use super::item::{self, Plan};
use crate::errors::{both, or_untouched};

/// Expands `#[hotprof::main(args)] item`. On error: the errors, plus the
/// user's item untouched so that IDEs keep working.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    or_untouched(try_expand(&args, item.clone()), item)
}

fn try_expand(args: &TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let parsed = syn::parse2::<MainArgs>(args.clone());
    let main_fn = item::parse(item).and_then(|main_fn| {
        let plan = item::check(&main_fn)?;
        Ok((main_fn, plan))
    });
    let (parsed, (mut main_fn, plan)) = both(parsed, main_fn)?;
    match plan {
        Plan::InsertGuard => main_fn.insert_first(guard(&parsed))?,
        // The runtime attribute expands next and keeps this one on the sync
        // `fn main` it generates; the arguments pass on as the user wrote them.
        Plan::BelowRuntime(index) => {
            main_fn.insert_attr_after(index, quote!(#[::hotprof::main(#args)]))?;
        }
    }
    Ok(main_fn.into_token_stream())
}

/// `let __hotprof_guard = ...install();`: installs hotprof, and shuts it down
/// when `main` returns or unwinds.
fn guard(args: &MainArgs) -> TokenStream {
    let guard = Ident::new("__hotprof_guard", Span::mixed_site());
    let dir = args.dir.as_ref().map(|(dir, span)| {
        let dir = LitStr::new(dir, *span);
        quote!(.dir(#dir))
    });
    let enabled = args.enabled.map(|(enabled, span)| {
        let enabled = LitBool::new(enabled, span);
        quote!(.enabled(#enabled))
    });
    // A const block, so that without hotprof's `http` feature the program
    // does not compile (the constructor panics at compile time, saying so).
    let http = args.http.as_ref().map(|(addr, span)| {
        let addr = LitStr::new(addr, *span);
        quote_spanned!(*span=> .http(const { ::hotprof::__private::HttpAddr::new(#addr) }))
    });
    quote! {
        let #guard = ::hotprof::__private::MainArgs::new(
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
            ::core::option_env!("CARGO_BIN_NAME"),
        )
        .build_info(
            ::core::option_env!("HOTPROF_GIT_COMMIT"),
            ::core::option_env!("GIT_COMMIT"),
            ::core::cfg!(debug_assertions),
        )
        #dir
        #enabled
        #http
        .install();
    }
}

#[cfg(test)]
mod tests {
    //! What the expansion looks like, as text; ui-tests check it compiles.

    use super::*;
    use crate::checks::{in_order, lacks};

    #[test]
    fn sync_main_gets_the_guard_first() -> Result<(), String> {
        let found = expand(
            quote!(dir = "/var/tmp/hp", enabled = false, http = ":6060"),
            quote! {
                /// Docs.
                fn main() -> Result<(), E> {
                    #![allow(unused)]
                    user_code();
                    Ok(())
                }
            },
        );
        in_order(
            &found,
            &[
                "Docs.",
                "fn main () -> Result < () , E > {",
                "# ! [allow (unused)]",
                "let __hotprof_guard = :: hotprof :: __private :: MainArgs :: new (",
                ":: core :: env ! (\"CARGO_PKG_NAME\")",
                ":: core :: option_env ! (\"CARGO_BIN_NAME\")",
                ". dir (\"/var/tmp/hp\") . enabled (false)",
                ". http (const { :: hotprof :: __private :: HttpAddr :: new (\":6060\") }) . install () ;",
                "user_code () ;",
                "Ok (()) }",
            ],
        )
    }

    #[test]
    fn async_main_goes_below_its_runtime() -> Result<(), String> {
        let found = expand(
            quote!(enabled = true),
            quote! {
                #[doc = "Docs."]
                #[tokio::main(flavor = "current_thread")]
                #[allow(dead_code)]
                async fn main() {}
            },
        );
        in_order(
            &found,
            &[
                "# [doc = \"Docs.\"]",
                "# [tokio :: main (flavor = \"current_thread\")]",
                "# [:: hotprof :: main (enabled = true)]",
                "# [allow (dead_code)]",
                "async fn main () { }",
            ],
        )?;
        lacks(&found, "__hotprof_guard", "guard inserted before the runtime expanded")
    }

    #[test]
    fn unparsable_body_still_gets_the_guard() -> Result<(), String> {
        // rustc reports the syntax error; hotprof must not add a second one.
        let found = expand(quote!(), quote!(fn main() { #![allow(unused)] let port = ; }));
        in_order(&found, &["# ! [allow (unused)]", "let __hotprof_guard", "let port = ; }"])?;
        lacks(&found, "compile_error", "error added to rustc's own")
    }

    #[test]
    fn errors_come_with_the_item_untouched() -> Result<(), String> {
        let item = quote!(
            fn main() {
                user_code();
            }
        );
        let found = expand(quote!(dir = 5), item.clone());
        in_order(&found, &[&item.to_string(), "compile_error !"])?;
        lacks(&found, "__hotprof_guard", "guard inserted despite the error")
    }
}
