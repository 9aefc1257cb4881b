//! Attribute macros for [hotprof](https://docs.rs/hotprof). Use them through
//! the `hotprof` crate, which re-exports them: `#[hotprof::main]`.
//!
//! This crate only turns tokens into calls to `::hotprof::__private`, which is
//! not public API. `lib.rs` converts to `proc_macro2`; `args.rs` parses and
//! checks the arguments, `item.rs` the function, `expand.rs` writes the code.
#![warn(missing_docs)]

mod args;
mod errors;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Installs hotprof at the very start of the program's `fn main`.
///
/// hotprof is installed before any of your code runs and before any thread
/// exists, so a `kill -USR1` can never hit the process before its handler is
/// in place. It shuts down when `main` returns or unwinds.
///
/// ```no_run
/// #[hotprof::main]
/// fn main() {
///     // Your service, unchanged.
/// }
/// ```
///
/// # Async `main`
///
/// Put `#[hotprof::main]` above the runtime's attribute. hotprof installs
/// itself before the runtime and its worker threads are built.
///
/// ```no_run
/// #[hotprof::main]
/// #[tokio::main]
/// async fn main() {
///     // Your service, unchanged.
/// }
/// ```
///
/// Any runtime attribute whose name ends in `main` works the same way
/// (`#[tokio::main(flavor = "current_thread")]`, `#[actix_web::main]`,
/// `#[async_std::main]`), and so does the other order,
/// `#[tokio::main] #[hotprof::main]`.
///
/// # Arguments
///
/// | argument | value | default |
/// |---|---|---|
/// | `dir` | a string literal: the folder dumps and profiles are written to | hotprof's default folder |
/// | `enabled` | `true` or `false`: whether capture starts on | hotprof's default |
///
/// ```no_run
/// #[hotprof::main(dir = "/var/tmp/my-service", enabled = false)]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     Ok(())
/// }
/// ```
///
/// Environment variables set by operators override these arguments, so
/// behaviour can change without a rebuild.
///
/// # What it expands to
///
/// ```ignore
/// #[hotprof::main(dir = "/var/tmp/my-service")]
/// fn main() -> Result<(), Error> {
///     let config = load()?;
///     serve(config)
/// }
/// ```
///
/// becomes
///
/// ```ignore
/// fn main() -> Result<(), Error> {
///     let __hotprof_guard = ::hotprof::__private::MainArgs::new(
///         ::core::env!("CARGO_PKG_NAME"),
///         ::core::env!("CARGO_PKG_VERSION"),
///         ::core::option_env!("CARGO_BIN_NAME"),
///     )
///     .dir("/var/tmp/my-service")
///     .install();
///     let config = load()?;
///     serve(config)
/// }
/// ```
///
/// Only that first statement is added: the signature, attributes, docs,
/// return value and spans stay yours, and `__hotprof_guard` cannot clash with
/// your names. On an `async fn main`, the attribute first moves itself just
/// below the runtime attribute; the runtime's macro turns `main` into a sync
/// function, and the statement above goes at the top of that.
///
/// # Errors
///
/// Mistakes are compile errors at the offending token, all reported at once:
/// an unknown argument (with the closest valid name), a value of the wrong
/// kind, a missing value, an argument given twice, an empty `dir`, the
/// attribute on anything but `fn main`, a `main` that takes parameters, is
/// generic or `const`, an `async fn main` without a runtime attribute, or
/// `#[hotprof::main]` applied twice.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::main(args.into(), item.into()).into()
}
