//! Attribute macros for [hotprof](https://docs.rs/hotprof). Use them through
//! the `hotprof` crate, which re-exports them: `#[hotprof::main]` and
//! `#[hotprof::profile]`.
//!
//! This crate only turns tokens into calls to `::hotprof::__private`, which is
//! not public API. `lib.rs` converts to `proc_macro2`. `main/` holds
//! `#[hotprof::main]` and `profile/` `#[hotprof::profile]`, each with
//! `args.rs` (the arguments), `item.rs` (the function) and `expand.rs` (the
//! code); `profile/` also has `duration.rs` (`threshold`) and `returns.rs`.
//! Both share `attr_args.rs` (the parsing skeleton of the arguments and the
//! errors common to all), `suggest.rs` ("did you mean"), `fn_item.rs` (the
//! function and the edits made to it) and `errors.rs`; `checks.rs` holds the
//! unit tests' checks.
#![warn(missing_docs)]
// The lint is crate-wide only; it fires on any `mod main;`.
#![allow(
    special_module_name,
    reason = "`mod main` is `main/`, `#[hotprof::main]` beside `profile/`, not a binary's `main.rs`"
)]

mod attr_args;
#[cfg(test)]
mod checks;
mod errors;
mod fn_item;
mod main;
mod profile;
#[cfg(test)]
mod properties;
mod suggest;

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
    main::expand(args.into(), item.into()).into()
}

/// Records each call of a function as a scope: a frame on hotprof's logical
/// stacks.
///
/// While capture is on, thread dumps list the profiled calls each thread and
/// each task is inside, and since when (a task also while it waits at an
/// `.await`); the scope profile counts calls and samples wall time per
/// logical stack; and a call running longer than its `threshold` records a
/// slow-call event.
///
/// ```no_run
/// # struct Order;
/// # struct Receipt;
/// #[hotprof::profile]
/// fn checkout(order: &Order) -> Result<Receipt, std::io::Error> {
///     // Your code, unchanged: `?`, `return` and panics leave the scope.
///     # let _ = order;
///     Ok(Receipt)
/// }
///
/// #[hotprof::profile(threshold = "200ms")]
/// async fn handle(request: String) -> usize {
///     // The scope covers the whole future, from the first poll to the end.
///     request.len()
/// }
/// ```
///
/// # Where it goes
///
/// On any `fn` with a body: a free function, a method with any receiver in
/// an inherent or a trait `impl`, a trait method's default body, a generic
/// function, an `unsafe fn`, an `async fn`, or a `fn` that returns
/// `impl Future`. An `extern "C" fn` with a body is profiled like any other
/// (a panic cannot unwind out of it, with or without the attribute).
///
/// It cannot go on a `const fn` (a scope is entered at run time), on a trait
/// method's declaration without a body (put it on the method in each `impl`
/// instead), or on anything but a `fn`.
///
/// # Arguments
///
/// | argument | value | default |
/// |---|---|---|
/// | `name` | a non-empty string literal: the scope's name in dumps and profiles | the function's path, `module::function` |
/// | `threshold` | a string: a whole number followed by `ns`, `us` (or `µs`), `ms`, `s` or `m` (minutes), as in hotprof's environment variables, e.g. `"200ms"`; a call running longer records a slow-call event | no threshold |
///
/// ```no_run
/// struct Cart;
///
/// impl Cart {
///     #[hotprof::profile(name = "Cart::total", threshold = "5ms")]
///     fn total(&self) -> u64 {
///         42
///     }
/// }
/// ```
///
/// An attribute on a method cannot see the type of its `impl` block, so a
/// method's default name is `module::method`: pass `name` to include the
/// type, as above. The threshold is read at compile time; `"1.5s"`, `"0ms"`,
/// `"200"` or `"200 sec"` are compile errors that show the accepted form.
///
/// # What it expands to
///
/// Each function gets one `static` scope, built at compile time (a generic
/// function's instantiations share it). A sync function enters the scope
/// first thing, and a guard leaves it when the function returns, `?` exits,
/// or a panic unwinds:
///
/// ```ignore
/// #[hotprof::profile(threshold = "200ms")]
/// fn checkout(order: &Order) -> Result<Receipt, Error> {
///     let cart = load(order)?;
///     pay(cart)
/// }
/// ```
///
/// becomes
///
/// ```ignore
/// fn checkout(order: &Order) -> Result<Receipt, Error> {
///     let __hotprof_scope = ::hotprof::__private::enter({
///         static __HOTPROF_SCOPE: ::hotprof::__private::Scope = ::hotprof::__private::Scope::new(
///             ::core::concat!(::core::module_path!(), "::", "checkout"),
///             ::core::file!(),
///             ::core::line!(), // the line of `fn checkout`
///             200000000u64,    // nanoseconds; 0 for no threshold
///         );
///         &__HOTPROF_SCOPE
///     });
///     let cart = load(order)?;
///     pay(cart)
/// }
/// ```
///
/// An `async fn` becomes the plain `fn` returning `impl Future` that it
/// stands for, so that a call is one state machine: its body moves into an
/// `async move` block, which every argument moves into first (as `async fn`
/// does, also an argument the body never uses), and that future is wrapped,
/// so the scope covers every poll and every wait until the future completes
/// or is dropped. The `impl` captures every lifetime in scope, as the
/// `async fn` did, in crates of either edition. Callers see no difference;
/// rustdoc shows the `fn ... -> impl Future` form.
///
/// ```ignore
/// fn handle(&self, request: Request) -> impl Future<Output = Result<Response, Error>> {
///     ::hotprof::__private::instrument({ static __HOTPROF_SCOPE: ...; &__HOTPROF_SCOPE }, async move {
///         let _ = &self;
///         let request = request;
///         // An unreachable `return` of the declared type, so that `?` and
///         // `return` in the body infer `Result<Response, Error>`.
///         if false { let __hotprof_fake_return: Result<Response, Error> = loop {}; return __hotprof_fake_return; }
///         { /* the body, unchanged */ }
///     })
/// }
/// ```
///
/// A sync `fn` whose return type is `impl Future<...>` (alone or with other
/// bounds, e.g. `+ Send + '_`) wraps the future it returns, so the scope
/// covers that future's life, not the call that builds it. An early
/// `return fut` becomes a `break` out of the wrapped block, so its future is
/// wrapped too (one inside a macro call is not seen, and fails to compile
/// with a type mismatch):
///
/// ```ignore
/// fn fetch(&self, key: Key) -> impl Future<Output = Value> + '_ {
///     ::hotprof::__private::instrument({ static __HOTPROF_SCOPE: ...; &__HOTPROF_SCOPE }, { /* the body */ })
/// }
/// ```
///
/// Only the syntax is seen: a function returning a boxed or named future
/// (`Pin<Box<dyn Future<...>>>`, `BoxFuture`, or what `#[async_trait]` turns
/// an `async fn` into) is profiled as a sync call, which covers building the
/// future only.
///
/// The signature, attributes, docs, generics and spans stay yours: a type
/// error in the body points at your line, and `__hotprof_*` names cannot clash
/// with yours.
///
/// # Cost
///
/// When capture is off, a profiled call (or a poll of a profiled future)
/// costs one relaxed atomic load and a predictable branch. The scope is a
/// `static` built at compile time, and nothing is allocated or locked per
/// call. The book's scopes chapter has the costs with capture on, measured.
///
/// # Errors
///
/// Mistakes are compile errors at the offending token, all reported at once:
/// an unknown argument (with the closest valid name), a value of the wrong
/// kind (with the quoted form when a number was written), a missing value,
/// an argument given twice, an empty `name`, a `threshold` that is not a
/// positive whole number with a unit (with the same duration in an accepted
/// form when there is one, e.g. `"1500ms"` for `"1.5s"`), the attribute on
/// anything but a `fn` with a body, on a `const fn`, or applied twice.
#[proc_macro_attribute]
pub fn profile(args: TokenStream, item: TokenStream) -> TokenStream {
    profile::expand(args.into(), item.into()).into()
}
