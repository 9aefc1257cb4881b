//! `return` in a function that returns `impl Future`. The expansion wraps the
//! value of the body, so an early `return fut` would leave the function with
//! an unwrapped future; it becomes `break 'label fut` out of a labeled block
//! around the body instead, and is wrapped like the body's tail.

use std::mem;

use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprBreak, Item, Lifetime, Token};

/// Turns each `return` that leaves `block`'s function into a `break` to
/// `label`; true if there was one. The `return`s of closures, async blocks
/// and nested items inside are theirs and stay; so do any inside macro calls,
/// which are only tokens here (rustc then reports a type mismatch).
pub(crate) fn into_breaks(block: &mut Block, label: &Lifetime) -> bool {
    let mut returns = Returns { label, found: false };
    returns.visit_block_mut(block);
    returns.found
}

struct Returns<'a> {
    label: &'a Lifetime,
    found: bool,
}

impl VisitMut for Returns<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(_) => {
                // The value first: it may hold a `return` of its own.
                visit_mut::visit_expr_mut(self, expr);
                if let Expr::Return(ret) = expr {
                    *expr = Expr::Break(ExprBreak {
                        attrs: mem::take(&mut ret.attrs),
                        break_token: Token![break](ret.return_token.span),
                        label: Some(self.label.clone()),
                        expr: ret.expr.take(),
                    });
                    self.found = true;
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;
    use quote::{ToTokens as _, quote};

    use super::*;
    use crate::checks::{in_order, lacks, same};

    #[test]
    fn rewrites_only_the_functions_own_returns() -> Result<(), String> {
        let mut block: Block = syn::parse2(quote!({
            if cached {
                return ready(1);
            }
            let f = || {
                return 2;
            };
            let g = async {
                return 3;
            };
            fn nested() -> u8 {
                return 4;
            }
            lazy()
        }))
        .map_err(|e| e.to_string())?;
        let label = Lifetime::new("'body", Span::call_site());
        same(into_breaks(&mut block, &label), true)?;
        let found = block.to_token_stream();
        in_order(&found, &["break 'body ready (1)", "return 2", "return 3", "return 4", "lazy ()"])?;
        lacks(&found, "return ready", "the function's own return kept")
    }

    #[test]
    fn reports_a_body_without_returns() -> Result<(), String> {
        let mut block: Block = syn::parse2(quote!({
            let f = || {
                return 2;
            };
            lazy()
        }))
        .map_err(|e| e.to_string())?;
        same(into_breaks(&mut block, &Lifetime::new("'body", Span::call_site())), false)
    }
}
