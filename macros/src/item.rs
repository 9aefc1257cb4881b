//! The item under `#[hotprof::main]`: parsed, and checked to be a `fn main`
//! that hotprof can install itself into.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt as _, quote};
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::{AttrStyle, Attribute, Item, ItemFn, Signature, Stmt, Visibility};

use crate::errors::Errors;

/// A `fn` item, parsed as far as syn can.
pub(crate) enum MainFn {
    /// The whole item parsed: the common case.
    Parsed(ItemFn),
    /// The signature parsed but the body did not (rustc reports why, or syn
    /// does not know the syntax yet); the body is kept as tokens.
    Unparsed(UnparsedFn),
}

/// A `fn` whose body is kept as tokens.
pub(crate) struct UnparsedFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: Group,
}

/// How to install hotprof into a valid `fn main`.
pub(crate) enum Plan {
    /// A sync `fn main`: put the guard at the top of its body.
    InsertGuard,
    /// An `async fn main` whose runtime attribute (e.g. `#[tokio::main]`) is
    /// at this index of its attributes: move `#[hotprof::main]` just below
    /// it, so the runtime expands first and hotprof then sees a sync `fn`.
    BelowRuntime(usize),
}

impl Parse for UnparsedFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body = input.parse::<Group>()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected `{`"));
        }
        Ok(UnparsedFn { attrs, vis, sig, body })
    }
}

impl ToTokens for UnparsedFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append_all(&self.attrs);
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

impl ToTokens for MainFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            MainFn::Parsed(item) => item.to_tokens(tokens),
            MainFn::Unparsed(item) => item.to_tokens(tokens),
        }
    }
}

impl MainFn {
    /// Parses `item`; the error says what the item is when it is no `fn`.
    pub(crate) fn parse(item: TokenStream) -> syn::Result<Self> {
        let error = match syn::parse2::<ItemFn>(item.clone()) {
            Ok(item) => return Ok(MainFn::Parsed(item)),
            Err(error) => error,
        };
        if let Ok(item) = syn::parse2::<UnparsedFn>(item.clone()) {
            return Ok(MainFn::Unparsed(item));
        }
        match syn::parse2::<Item>(item).ok().as_ref().and_then(not_a_fn) {
            Some(not_a_fn) => Err(not_a_fn),
            None => Err(error),
        }
    }

    fn attrs(&self) -> &Vec<Attribute> {
        match self {
            MainFn::Parsed(item) => &item.attrs,
            MainFn::Unparsed(item) => &item.attrs,
        }
    }

    fn attrs_mut(&mut self) -> &mut Vec<Attribute> {
        match self {
            MainFn::Parsed(item) => &mut item.attrs,
            MainFn::Unparsed(item) => &mut item.attrs,
        }
    }

    fn sig(&self) -> &Signature {
        match self {
            MainFn::Parsed(item) => &item.sig,
            MainFn::Unparsed(item) => &item.sig,
        }
    }

    /// Checks that this is a `fn main` hotprof can install into, reporting
    /// every problem at once.
    pub(crate) fn check(&self) -> syn::Result<Plan> {
        let mut errors = Errors::default();
        let sig = self.sig();
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
            let message = "`#[hotprof::main]` installs hotprof at run time, so `fn main` cannot be `const`: remove `const`";
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
            let message = "`fn main` takes no parameters: remove them and read the command line with `std::env::args()`";
            errors.push(syn::Error::new_spanned(quote!(#inputs #variadic), message));
        }
        let outer =
            || self.attrs().iter().enumerate().filter(|(_, attr)| matches!(attr.style, AttrStyle::Outer));
        for (_, attr) in outer().filter(|(_, attr)| is_hotprof_main(attr)) {
            let message = "`#[hotprof::main]` is applied twice: remove this one";
            errors.push(syn::Error::new_spanned(attr, message));
        }
        let runtime = outer().find(|(_, attr)| is_runtime_main(attr));
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

    /// Puts `stmt` first in the body, after any inner attributes, so it runs
    /// before any of the user's code.
    pub(crate) fn insert_first(&mut self, stmt: TokenStream) -> syn::Result<()> {
        match self {
            MainFn::Parsed(item) => {
                // Inner attributes live in `item.attrs`; the printer puts
                // them before the statements.
                item.block.stmts.insert(0, syn::parse2::<Stmt>(stmt)?);
            }
            MainFn::Unparsed(item) => {
                let tokens: Vec<TokenTree> = item.body.stream().into_iter().collect();
                // Keep inner attributes, `#![...]`, first.
                let at = inner_attrs_len(&tokens);
                let mut body = TokenStream::new();
                body.extend(tokens.iter().take(at).cloned());
                body.extend(stmt);
                body.extend(tokens.iter().skip(at).cloned());
                let mut group = Group::new(Delimiter::Brace, body);
                group.set_span(item.body.span());
                item.body = group;
            }
        }
        Ok(())
    }

    /// Puts `attr` just after the attribute at `index`.
    pub(crate) fn insert_attr_after(&mut self, index: usize, attr: TokenStream) -> syn::Result<()> {
        let new = Attribute::parse_outer.parse2(attr)?;
        let attrs = self.attrs_mut();
        let at = (index + 1).min(attrs.len());
        attrs.splice(at..at, new);
        Ok(())
    }
}

/// How many leading tokens of a body are inner attributes, `#![...]`.
fn inner_attrs_len(tokens: &[TokenTree]) -> usize {
    let is_inner = |chunk: &[TokenTree]| {
        matches!(
            chunk,
            [TokenTree::Punct(pound), TokenTree::Punct(bang), TokenTree::Group(_)]
                if pound.as_char() == '#' && bang.as_char() == '!'
        )
    };
    tokens.chunks(3).take_while(|chunk| is_inner(chunk)).count() * 3
}

/// `#[hotprof::main]` or `#[::hotprof::main(...)]`.
fn is_hotprof_main(attr: &Attribute) -> bool {
    let mut names = attr.path().segments.iter().map(|segment| &segment.ident);
    matches!(
        (names.next(), names.next(), names.next()),
        (Some(krate), Some(name), None) if krate == "hotprof" && name == "main"
    )
}

/// A runtime's entry attribute, by the last segment of its path:
/// `#[tokio::main]`, `#[actix_web::main]`, `#[async_std::main]`, ...
fn is_runtime_main(attr: &Attribute) -> bool {
    let last = attr.path().segments.last();
    last.is_some_and(|segment| segment.ident == "main") && !is_hotprof_main(attr)
}

/// The error for an item that is no `fn`, at its keyword and name; `None`
/// for items syn does not know, which keep syn's own error.
fn not_a_fn(item: &Item) -> Option<syn::Error> {
    let (what, tokens) = match item {
        Item::Struct(item) => ("a struct", keyword_and_name(&item.struct_token, &item.ident)),
        Item::Enum(item) => ("an enum", keyword_and_name(&item.enum_token, &item.ident)),
        Item::Union(item) => ("a union", keyword_and_name(&item.union_token, &item.ident)),
        Item::Const(item) => ("a const", keyword_and_name(&item.const_token, &item.ident)),
        Item::Static(item) => ("a static", keyword_and_name(&item.static_token, &item.ident)),
        Item::Mod(item) => ("a module", keyword_and_name(&item.mod_token, &item.ident)),
        Item::Trait(item) => ("a trait", keyword_and_name(&item.trait_token, &item.ident)),
        Item::Type(item) => ("a type alias", keyword_and_name(&item.type_token, &item.ident)),
        Item::Impl(item) => ("an impl block", keyword_and_name(&item.impl_token, &item.self_ty)),
        Item::Use(item) => ("a `use` item", item.use_token.to_token_stream()),
        Item::ExternCrate(item) => ("an `extern crate` item", item.crate_token.to_token_stream()),
        Item::ForeignMod(item) => ("an `extern` block", item.abi.to_token_stream()),
        Item::Macro(item) => ("a macro call", item.mac.path.to_token_stream()),
        _ => return None,
    };
    let message = format!(
        "`#[hotprof::main]` goes on the program's `fn main`, not on {what}: move it to `fn main() {{ ... }}`"
    );
    Some(syn::Error::new_spanned(tokens, message))
}

/// `struct Name`, so an error underlines the keyword and the name.
fn keyword_and_name(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    quote!(#keyword #name)
}
