//! `#[hotprof::main]`: `args.rs` parses the arguments, `item.rs` checks the
//! function and picks where the guard goes, `expand.rs` writes the code.

mod args;
mod expand;
mod item;

pub(crate) use expand::expand;
