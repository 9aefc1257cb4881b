//! A `fn` item under one of our attributes, parsed as far as syn can, and the
//! edits the expansions make to its body and attributes. Each attribute's own
//! checks live with it: `main/item.rs`, `profile/item.rs`.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt as _, quote};
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::{AttrStyle, Attribute, Block, Item, ItemFn, Signature, Stmt, Visibility};

/// A `fn` item, parsed as far as syn can.
pub(crate) enum FnItem {
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

impl ToTokens for FnItem {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            FnItem::Parsed(item) => item.to_tokens(tokens),
            FnItem::Unparsed(item) => item.to_tokens(tokens),
        }
    }
}

impl FnItem {
    /// Parses `item`; syn's error when it is no `fn` with a body. Callers
    /// turn that into their own message with [`describe`].
    pub(crate) fn parse(item: TokenStream) -> syn::Result<Self> {
        let error = match syn::parse2::<ItemFn>(item.clone()) {
            Ok(item) => return Ok(FnItem::Parsed(item)),
            Err(error) => error,
        };
        match syn::parse2::<UnparsedFn>(item) {
            Ok(item) => Ok(FnItem::Unparsed(item)),
            Err(_) => Err(error),
        }
    }

    /// Every attribute, outer and inner.
    pub(crate) fn attrs(&self) -> &[Attribute] {
        match self {
            FnItem::Parsed(item) => &item.attrs,
            FnItem::Unparsed(item) => &item.attrs,
        }
    }

    fn attrs_mut(&mut self) -> &mut Vec<Attribute> {
        match self {
            FnItem::Parsed(item) => &mut item.attrs,
            FnItem::Unparsed(item) => &mut item.attrs,
        }
    }

    /// The outer attributes, `#[...]`, with their index in [`Self::attrs`].
    pub(crate) fn outer_attrs(&self) -> impl Iterator<Item = (usize, &Attribute)> {
        self.attrs().iter().enumerate().filter(|(_, attr)| matches!(attr.style, AttrStyle::Outer))
    }

    pub(crate) fn sig(&self) -> &Signature {
        match self {
            FnItem::Parsed(item) => &item.sig,
            FnItem::Unparsed(item) => &item.sig,
        }
    }

    pub(crate) fn sig_mut(&mut self) -> &mut Signature {
        match self {
            FnItem::Parsed(item) => &mut item.sig,
            FnItem::Unparsed(item) => &mut item.sig,
        }
    }

    /// The span of the body, braces included.
    pub(crate) fn body_span(&self) -> Span {
        match self {
            FnItem::Parsed(item) => item.block.brace_token.span.join(),
            FnItem::Unparsed(item) => item.body.span(),
        }
    }

    /// The body, when it parsed.
    pub(crate) fn block_mut(&mut self) -> Option<&mut Block> {
        match self {
            FnItem::Parsed(item) => Some(&mut item.block),
            FnItem::Unparsed(_) => None,
        }
    }

    /// Puts `stmt` first in the body, after any inner attributes, so it runs
    /// before any of the user's code.
    pub(crate) fn insert_first(&mut self, stmt: TokenStream) -> syn::Result<()> {
        match self {
            FnItem::Parsed(item) => {
                // Inner attributes live in `item.attrs`; the printer puts
                // them before the statements.
                item.block.stmts.insert(0, syn::parse2::<Stmt>(stmt)?);
            }
            FnItem::Unparsed(item) => item.replace_statements(|statements| quote!(#stmt #statements)),
        }
        Ok(())
    }

    /// Replaces the statements of the body with what `wrap` makes of them.
    /// Inner attributes, `#![...]`, stay first and keep applying to the
    /// whole function; the braces keep their spans.
    pub(crate) fn wrap_body(&mut self, wrap: impl FnOnce(TokenStream) -> TokenStream) -> syn::Result<()> {
        match self {
            FnItem::Parsed(item) => {
                let mut statements = TokenStream::new();
                statements.append_all(&item.block.stmts);
                item.block.stmts = Block::parse_within.parse2(wrap(statements))?;
            }
            FnItem::Unparsed(item) => item.replace_statements(wrap),
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

impl UnparsedFn {
    /// Replaces the tokens after the inner attributes, `#![...]`, with what
    /// `wrap` makes of them.
    fn replace_statements(&mut self, wrap: impl FnOnce(TokenStream) -> TokenStream) {
        let tokens: Vec<TokenTree> = self.body.stream().into_iter().collect();
        let at = inner_attrs_len(&tokens);
        let mut body = TokenStream::new();
        body.extend(tokens.iter().take(at).cloned());
        body.extend(wrap(tokens.iter().skip(at).cloned().collect()));
        let mut group = Group::new(Delimiter::Brace, body);
        group.set_span(self.body.span());
        self.body = group;
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

/// `#[hotprof::<name>]` or `#[::hotprof::<name>(...)]`.
pub(crate) fn is_hotprof(attr: &Attribute, name: &str) -> bool {
    let mut names = attr.path().segments.iter().map(|segment| &segment.ident);
    matches!(
        (names.next(), names.next(), names.next()),
        (Some(krate), Some(last), None) if krate == "hotprof" && last == name
    )
}

/// What `item` is when it is no `fn` ("a struct"), and the tokens an error
/// underlines (its keyword and name); `None` for items syn does not know,
/// which keep syn's own error.
pub(crate) fn describe(item: TokenStream) -> Option<(&'static str, TokenStream)> {
    let item = syn::parse2::<Item>(item).ok()?;
    let described = match &item {
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
    Some(described)
}

/// `struct Name`, so an error underlines the keyword and the name.
fn keyword_and_name(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    quote!(#keyword #name)
}
