//! An `async fn` rewritten as the plain `fn` returning `impl Future` it
//! stands for, so that a marked call is one state machine (the instrumented
//! `async` block), not an `async fn` awaiting a second one.
//!
//! What `async fn` guarantees is kept: every argument moves into the future
//! when it is called (also those the body never uses, such as a guard kept
//! alive for the call), as the compiler's own lowering does; argument
//! patterns are bound inside the future. The `impl` is spanned at the
//! macro's own (2024) edition, whose rule captures every lifetime in scope
//! as `async fn` does, whatever the edition of the crate using it.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::{FnArg, Ident, Pat, PatIdent, ReturnType, Signature};

/// Makes `sig` (an `async fn`) `fn ... -> impl Future<Output = T>` and
/// returns the statements that move its arguments into the future, to come
/// first in the future's body.
pub(crate) fn desugar(sig: &mut Signature) -> TokenStream {
    sig.asyncness = None;
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty.to_token_stream(),
        ReturnType::Default => quote!(()),
    };
    let arrow = match &sig.output {
        ReturnType::Type(arrow, _) => arrow.to_token_stream(),
        ReturnType::Default => quote!(->),
    };
    let impl_token = quote_spanned!(Span::mixed_site()=> impl);
    sig.output = syn::parse_quote!(#arrow #impl_token ::core::future::Future<Output = #output>);
    let mut moves = TokenStream::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        moves.extend(move_in(i, input));
    }
    moves
}

/// The statement that moves argument `i` into the future; a pattern other
/// than a plain name is bound there, the signature naming the argument.
fn move_in(i: usize, input: &mut FnArg) -> TokenStream {
    // An argument the body never uses still warns, at the argument.
    let allow = quote!(#[allow(clippy::redundant_locals, clippy::let_underscore_untyped)]);
    let FnArg::Typed(typed) = input else {
        // A `&self` mentioned in a `move` block moves `self` in.
        return quote!(#allow let _ = &self;);
    };
    match &mut *typed.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
            // `mut` goes to the binding the body uses.
            let mutability = p.mutability.take();
            let ident = &p.ident;
            quote!(#allow let #mutability #ident = #ident;)
        }
        pat => {
            let arg = Ident::new(&format!("__hotprof_arg{i}"), Span::mixed_site());
            let named = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: arg.clone(),
                subpat: None,
            });
            let original = std::mem::replace(pat, named);
            quote!(#allow let #original = #arg;)
        }
    }
}
