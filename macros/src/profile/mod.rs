//! `#[hotprof::profile]`: `args.rs` parses the arguments (`duration.rs` reads
//! `threshold`), `item.rs` checks the function and sorts it by what a call
//! covers, `expand.rs` writes the code (`future_fn.rs` makes an `async fn` one
//! state machine, `returns.rs` keeps the early returns of an `impl Future`
//! function inside its scope).

mod args;
mod duration;
mod expand;
mod future_fn;
mod item;
mod returns;

pub(crate) use expand::expand;

/// `threshold = "..."` text to nanoseconds (for the property tests).
#[cfg(test)]
pub(crate) fn parse_threshold(text: &str) -> Result<u64, String> {
    duration::parse(text).map_err(|e| e.to_string())
}
