//! Attribute macros for hotprof; use them through the `hotprof` crate.
use proc_macro::TokenStream;

/// See `hotprof::main`.
#[proc_macro_attribute]
pub fn main(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
